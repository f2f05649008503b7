"""``edgenet sweep``: convert, benchmark and pick the largest variant that meets a budget."""

from __future__ import annotations

from dataclasses import replace
from pathlib import Path

import click

from .. import numbers
from ..errors import InputFileError
from ..sweep import SWEEP_BENCH
from . import options
from .cluster import executor_for
from .common import IMAGENET, VARIANT_LIST, emit_json, info, table, user_errors

#: The README's first command (after the install): ``edgenet sweep`` with these arguments ends in a pick
#: on every 2-core x86-64 machine of the kind CI and cloud VMs are, fast or slow. B0-B3 int8 at one
#: thread take ~3-11 ms with AVX-512 VNNI and ~15-57 ms with AVX2 only (the same kind of machine, 5x
#: apart), so a 50 ms budget over b0-b3 picks B3 on the first and B2 on the second, and B0 still fits
#: on a machine 3x slower than that. At most four conversions. tests/test_quickstart.py holds it.
QUICKSTART_ARGS = ("--budget-ms", "50", "--variants", "b0-b3", "-o", "runs/quickstart")


@click.command()
@options.budget_ms()
@click.option("--variants", "variant_lists", type=VARIANT_LIST, multiple=True,
              help="Variants to consider, e.g. b0-b7 or lite0-lite4,phi=1.5 (default: b0-b7).")
@options.quant(many=True, help="Quantization form(s): several as int8,fp16,fp32 measure each and pick across "
                               "them under the same constraints (an Edge TPU target stays int8).")
@options.stat(help="Latency statistic the budget applies to.")
@options.threads()
@options.calib()
@options.samples(default=32, reason="latency does not depend on calibration: the sweep calibrates on few",
                 help="Calibration samples per variant (latency does not depend on them; re-convert the pick "
                      "with your own images and more samples for deployment).")
@options.seed()
@click.option("--weights-dir", type=click.Path(file_okay=False, exists=True), default=None,
              help="Folder with <variant>.weights.h5 / .pth / .safetensors files (else random weights: "
                   "latency is unaffected, accuracy is meaningless).")
@options.weights(help="imagenet: each variant's published weights (fetched and verified when the sweep reaches "
                      "it; a custom --refine phi has none and stays random). For your own files: --weights-dir.")
@options.constraints()
@options.objective()
@options.data(help="Labelled images (DIR/<class>/<image> or a 'path label' list file): measure each converted "
                   "model's top-1 on them.")
@options.labels()
@click.option("--agreement-images", type=click.Path(exists=True, file_okay=False, path_type=Path), default=None,
              help="Unlabelled images: measure each converted model's top-1 agreement with its float model.")
@click.option("--remeasure-rounds", type=options.number(numbers.Bounds(0, 10, integer=True)), default=2,
              show_default=True,
              help="When a candidate's interval straddles the budget, measure it again interleaved with its "
                   "neighbour this many times each (A-B-A-B); 0 turns this off.")
@options.remote(help="Benchmark on that device: user@host over SSH, or a device file (e.g. an emulated Pi's, "
                     "whose latencies are never picked on).")
@click.option("--far-factor", type=options.number(numbers.FACTOR), default=1.5, show_default=True,
              help="Skip converting a variant predicted above this multiple of the budget.")
@click.option("--refine", is_flag=True, help="Also try a custom phi between the pick and the next variant.")
@click.option("--no-alternatives", "no_alternatives", is_flag=True,
              help="When nothing fits, do not measure what would (other threads, the Lite variant of the same size, "
                   "fp16/fp32, a smaller phi, the runtime's engines).")
@click.option("--settings", "settings_path", type=click.Path(dir_okay=False), default=None,
              help="Runtime settings from `edgenet tune --save-settings` (threads, api, XNNPACK flags); "
                   "they replace --threads.")
@options.harness("warmup_s", "min_runs", "min_s", "max_s", "timeout_s", preset="SWEEP_BENCH")
@options.output("Run folder (resumable).", default="runs/sweep", reason="each command's own output",
                old_names=("--out",))
@options.json_flag(help="Print the outcome as JSON on stdout.")
@options.devices_file(help="Sweep a fleet: convert each variant once, measure on every device of this inventory "
                           "in parallel (each one job at a time), decide per device.")
@options.device_names()
@options.cluster()
@user_errors
def sweep(budget_ms, variant_lists, quant, stat, threads, calib, samples, seed, weights_dir, weights,
          max_memory_mb, max_size_mb, min_top1, min_agreement, edgetpu_on_chip, objective, data, labels,
          agreement_images, remeasure_rounds, remote, far_factor, refine, no_alternatives, settings_path,
          output, as_json, inventory, device_names, cluster, **measure) -> None:
    """Convert, benchmark and select in one resumable run.

    Works in increasing size; stops converting once a measured variant is over budget or
    the predicted latency of the next one is far above it, and says what it skipped and
    why. Every latency comes with a 95% interval: a candidate is picked only when all of it
    fits, and one too close to call is measured again interleaved with its neighbour first.
    Interrupted and rerun, it continues from what is done. Ends with REPORT.md.

    \b
    Example:
      edgenet sweep --budget-ms 50 --variants b0-b3 -o runs/quickstart   # the README's first command
      edgenet sweep --budget-ms 25                       # B0-B7, int8, 1 thread, embedded calibration
      edgenet sweep --budget-ms 10 --variants lite0-lite4 --threads 4 -o runs/pi --remote pi@raspberrypi.local
      edgenet sweep --budget-ms 25 --weights-dir weights/ --data val/   # the most accurate int8 that fits
    """
    from ..decide.constraints import Constraints
    from ..family.variants import parse_variant_list
    from ..sweep import SweepParams, describe, remote_device, run_sweep, summary_rows

    variants = [v for group in variant_lists for v in group] or parse_variant_list(["b0-b7"])
    if weights is not None and weights != IMAGENET:
        raise click.UsageError("sweep --weights takes 'imagenet'; for your own files use --weights-dir DIR "
                               "(one file per variant)")
    if weights == IMAGENET and weights_dir:
        raise click.UsageError("--weights imagenet and --weights-dir exclude each other")
    if remote and inventory:
        raise click.UsageError("--remote and --devices exclude each other: declare the board in the inventory")
    if cluster != "local" and not inventory:
        raise click.UsageError("a sweep on a cluster measures the devices of an inventory: pass --devices FILE")
    for path in (data, labels):  # before any conversion, not after the first one
        if path is not None and not path.exists():
            raise InputFileError(path, "no such file or folder")
    rundir = output
    threads_given = click.get_current_context().get_parameter_source("threads").name != "DEFAULT"
    measure["max_s"] = max(measure["max_s"], measure["min_s"])
    bench = replace(SWEEP_BENCH, threads=threads, **measure)
    if settings_path:
        from ..bench.tune import load_settings

        bench = replace(bench, **load_settings(settings_path))
        threads, threads_given = bench.threads, True
        info(f"benchmark settings: {bench.label()} (from {settings_path})")
    params = SweepParams(
        budget_ms=budget_ms, variants=tuple(variants), quant=quant, stat=stat, threads=threads, calib=calib,
        samples=samples, seed=seed, weights_dir=Path(weights_dir) if weights_dir else None, weights=weights,
        min_top1=min_top1, far_factor=far_factor, refine=refine, objective=objective, data=data, labels=labels,
        agreement_images=agreement_images, remeasure_rounds=remeasure_rounds,
        bench=bench,
        alternatives=not no_alternatives,
        constraints=Constraints(budget_ms=budget_ms, max_memory_mb=max_memory_mb, max_size_mb=max_size_mb,
                                min_top1=min_top1, min_agreement=min_agreement, edgetpu_on_chip=edgetpu_on_chip),
    )
    devices = None
    if inventory:
        from ..devices import load_devices

        devices = load_devices(inventory, device_names or ())
        if threads_given:  # --threads/--settings: every device at that thread count
            devices = tuple(replace(d, threads=(threads,)) for d in devices)
    elif remote:
        devices = (remote_device(remote, threads),)
    with executor_for(cluster) as executor:
        outcome = run_sweep(params, rundir, devices, executor, log=lambda m: info(m))
    if as_json:
        emit_json(outcome.to_dict(params, executor.name))
    else:
        for d in outcome.devices:
            if len(outcome.devices) > 1:
                click.echo(f"{d.device} ({d.where}, {d.threads} thread(s)):")
            click.echo(table(describe(d.steps)))
            if d.decision is not None:
                click.echo(d.decision.message)
                for alternative in d.alternatives:  # nothing fits: what would, measured or predicted
                    click.echo(f"alternative: {alternative.line(stat, d.decision.confidence)}")
            if d.suggestion:
                s = d.suggestion
                verdict = "fits" if s.get("fits") else "does not fit"
                measured = "not measured" if s["measured_ms"] is None else f"{s['measured_ms']:.2f} ms"
                click.echo(f"refine: {s['spec']} predicted {s['predicted_ms']:.2f} ms, measured {measured}: {verdict}")
        if len(outcome.devices) > 1:
            click.echo(table(summary_rows(outcome, params.budget_ms)))
        click.echo(f"measured with {bench.label()}" + (f" (tuned: {settings_path})" if settings_path else ""))
        if outcome.report:
            info(f"report: {outcome.report}")
    if all(d.emulated for d in outcome.devices):
        info("emulated device: the variants ran on its ARM code; latencies are the emulator's, so none is picked")
        return
    if not any(d.pick is not None for d in outcome.devices):
        raise SystemExit(1)
