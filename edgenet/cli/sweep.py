"""``edgenet sweep``: convert, benchmark and pick the largest variant that meets a budget."""

from __future__ import annotations

from dataclasses import replace
from pathlib import Path

import click

from ..convert.modes import QUANT_MODES
from ..decide.sweep import SWEEP_BENCH
from ..results.records import PERCENTILES
from .cluster import cluster_option, executor_for
from .common import BUDGET_MS, IMAGENET, VARIANT_LIST, emit_json, info, table, user_errors


@click.command()
@click.option("--budget-ms", type=BUDGET_MS, required=True,
              help="Latency budget in milliseconds.")
@click.option("--variants", "variant_lists", type=VARIANT_LIST, multiple=True,
              help="Variants to consider, e.g. b0-b7 or lite0-lite4,phi=1.5 (default: b0-b7).")
@click.option("--quant", type=click.Choice(QUANT_MODES), default="int8", show_default=True)
@click.option("--stat", type=click.Choice(PERCENTILES), default="p50", show_default=True,
              help="Latency statistic the budget applies to.")
@click.option("--threads", type=click.IntRange(1, 64), default=1, show_default=True)
@click.option("--calib", default="default", show_default=True,
              help="Calibration images: a folder, or 'default' for the embedded set.")
@click.option("--samples", type=click.IntRange(1, 10000), default=32, show_default=True,
              help="Calibration samples per variant (latency does not depend on them; re-convert the pick "
                   "with your own images and more samples for deployment).")
@click.option("--seed", type=int, default=0, show_default=True)
@click.option("--weights-dir", type=click.Path(file_okay=False, exists=True), default=None,
              help="Folder with <variant>.weights.h5 / .pth / .safetensors files (else random weights: "
                   "latency is unaffected, accuracy is meaningless).")
@click.option("--weights", type=click.Choice([IMAGENET]), default=None,
              help="imagenet: each variant's published weights (fetched and verified when the sweep reaches it; "
                   "a custom --refine phi has none and stays random).")
@click.option("--min-top1", type=click.FloatRange(0, 100), default=None,
              help="Accuracy floor (percent) for candidates whose top-1 was measured.")
@click.option("--objective", type=click.Choice(["largest", "accuracy"]), default=None,
              help="Among the candidates that fit: the largest, or the most accurate by measured top-1 "
                   "[default: accuracy when measured for every candidate, else largest].")
@click.option("--data", type=click.Path(exists=True, path_type=Path), default=None,
              help="Labelled images (DIR/<class>/<image> or a 'path label' list file): measure each converted "
                   "model's top-1 on them.")
@click.option("--labels", type=click.Path(exists=True, dir_okay=False, path_type=Path), default=None,
              help="Class-name to index file for a --data folder (as edgenet eval).")
@click.option("--agreement-images", type=click.Path(exists=True, file_okay=False, path_type=Path), default=None,
              help="Unlabelled images: measure each converted model's top-1 agreement with its float model.")
@click.option("--remeasure-rounds", type=click.IntRange(0, 10), default=2, show_default=True,
              help="When a candidate's interval straddles the budget, measure it again interleaved with its "
                   "neighbour this many times each (A-B-A-B); 0 turns this off.")
@click.option("--remote", default=None, metavar="USER@HOST|DEVICE.json",
              help="Benchmark on that device: user@host over SSH, or a device file (e.g. an emulated Pi's, whose "
                   "latencies are never picked on).")
@click.option("--far-factor", type=click.FloatRange(1.0, 100.0), default=1.5, show_default=True,
              help="Skip converting a variant predicted above this multiple of the budget.")
@click.option("--refine", is_flag=True, help="Also try a custom phi between the pick and the next variant.")
@click.option("--settings", "settings_path", type=click.Path(dir_okay=False), default=None,
              help="Runtime settings from `edgenet bench --tune --save-settings` (threads, api, XNNPACK flags); "
                   "they replace --threads.")
@click.option("--min-runs", type=click.IntRange(1), default=SWEEP_BENCH.min_runs, show_default=True)
@click.option("--min-s", type=click.FloatRange(0), default=SWEEP_BENCH.min_s, show_default=True)
@click.option("-o", "--out", "rundir", type=click.Path(file_okay=False), default="runs/sweep", show_default=True,
              help="Run folder (resumable).")
@click.option("--json", "as_json", is_flag=True, help="Print the outcome as JSON.")
@click.option("--devices", "inventory", default=None, type=click.Path(dir_okay=False), metavar="devices.toml",
              help="Sweep a fleet: convert each variant once, measure on every device of this inventory in "
                   "parallel (each one job at a time), pick per device.")
@click.option("--device", "device_names", multiple=True, metavar="NAME",
              help="With --devices: only this device (repeatable).")
@cluster_option
@user_errors
def sweep(budget_ms, variant_lists, quant, stat, threads, calib, samples, seed, weights_dir, weights, min_top1,
          objective, data, labels, agreement_images, remeasure_rounds, remote, far_factor, refine, settings_path,
          min_runs, min_s, rundir, as_json, inventory, device_names, cluster) -> None:
    """Convert, benchmark and select in one resumable run.

    Works in increasing size; stops converting once a measured variant is over budget or
    the predicted latency of the next one is far above it, and says what it skipped and
    why. Every latency comes with a 95% interval: a candidate is picked only when all of it
    fits, and one too close to call is measured again interleaved with its neighbour first.
    Interrupted and rerun, it continues from what is done. Ends with REPORT.md.

    \b
    Example:
      edgenet sweep --budget-ms 25                       # B0-B7, int8, 1 thread, embedded calibration
      edgenet sweep --budget-ms 10 --variants lite0-lite4 --threads 4 -o runs/pi --remote pi@raspberrypi.local
      edgenet sweep --budget-ms 25 --weights-dir weights/ --data val/   # the most accurate int8 that fits
    """
    from ..decide.sweep import SweepParams, describe, run_sweep
    from ..family.variants import parse_variant_list

    variants = [v for group in variant_lists for v in group] or parse_variant_list(["b0-b7"])
    if weights == IMAGENET and weights_dir:
        raise click.UsageError("--weights imagenet and --weights-dir exclude each other")
    bench = replace(SWEEP_BENCH, threads=threads, min_runs=min_runs, min_s=min_s, max_s=max(SWEEP_BENCH.max_s, min_s))
    if settings_path:
        from ..bench.tune import load_settings

        bench = replace(bench, **load_settings(settings_path))
        threads = bench.threads
        info(f"benchmark settings: {bench.label()} (from {settings_path})")
    params = SweepParams(
        budget_ms=budget_ms, variants=tuple(variants), quant=quant, stat=stat, threads=threads, calib=calib,
        samples=samples, seed=seed, weights_dir=Path(weights_dir) if weights_dir else None, weights=weights,
        remote=remote,
        min_top1=min_top1, far_factor=far_factor, refine=refine, objective=objective, data=data, labels=labels,
        agreement_images=agreement_images, remeasure_rounds=remeasure_rounds,
        bench=bench,
    )
    if inventory or cluster != "local":
        _fleet(params, inventory, device_names, cluster, rundir, as_json, remote, refine,
               threads if click.get_current_context().get_parameter_source("threads").name != "DEFAULT" else None)
        return
    outcome = run_sweep(params, rundir, log=lambda m: info(m))
    if as_json:
        emit_json(outcome.to_dict())
    else:
        click.echo(table(describe(outcome.steps)))
        if outcome.decision is not None:
            click.echo(outcome.decision.message)
        elif outcome.selection is not None:
            click.echo(outcome.selection.message)
        click.echo(f"measured with {bench.label()}" + (f" (tuned: {settings_path})" if settings_path else ""))
        if outcome.suggestion:
            s = outcome.suggestion
            verdict = "fits" if s.get("fits") else "does not fit"
            click.echo(f"refine: {s['spec']} predicted {s['predicted_ms']:.2f} ms, measured "
                       f"{s['measured_ms'] if s['measured_ms'] is None else round(s['measured_ms'], 2)} ms: {verdict}")
        if outcome.report:
            info(f"report: {outcome.report}")
    if outcome.emulated:
        info("emulated device: the variants ran on its ARM code; latencies are the emulator's, so none is picked")
        return
    if outcome.decision is None or outcome.decision.pick is None:
        raise SystemExit(1)


def _fleet(params, inventory, device_names, cluster, rundir, as_json, remote, refine, threads) -> None:
    from ..decide.fleet import fleet_rows, run_fleet_sweep
    from ..devices import load_devices

    if not inventory:
        raise click.UsageError("a sweep on a cluster measures the devices of an inventory: pass --devices FILE")
    if remote or refine:
        raise click.UsageError("--remote/--refine apply to a one-device sweep; declare boards in devices.toml")
    if params.objective == "accuracy" or params.data is not None:
        # The fleet sweep picks by size under each device's budget; it does not evaluate accuracy yet.
        raise click.UsageError("--objective accuracy/--data apply to a one-device sweep (a fleet sweep picks "
                               "the largest variant within each device's budget)")
    fleet = load_devices(inventory, device_names or ())
    with executor_for(cluster) as executor:
        outcome = run_fleet_sweep(params, fleet, rundir, executor, log=lambda m: info(m),
                                  threads={d.name: threads for d in fleet} if threads else None)
    if as_json:
        emit_json(outcome.to_dict())
    else:
        click.echo(table(fleet_rows(outcome, params.budget_ms)))
        info(f"report: {outcome.report}")
    if not any(d.selection is not None and d.selection.pick is not None for d in outcome.devices):
        raise SystemExit(1)
