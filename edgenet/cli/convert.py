"""``edgenet convert``: variants -> (quantized) TFLite models with manifests.

TensorFlow is only loaded by the conversion child processes, never by this module.
"""

from __future__ import annotations

import sys
from pathlib import Path

import click

from .. import numbers
from ..convert.calibrator import CALIBRATORS
from ..convert.modes import IO_TYPES
from ..convert.request import DEFAULT_ROUNDING_METHOD, ROUNDING_METHODS, TARGETS
from ..convert.rounding import ADAROUND_ITERATIONS, BRECQ_ITERATIONS
from ..errors import EdgenetError
from . import options
from .cluster import executor_for
from .common import IMAGENET, VARIANT_LIST, emit_json, info, table, user_errors, weights_for

IO_CHOICES = IO_TYPES


def _batch(ctx, param, value):
    if value is None or str(value).lower() == "none":
        return None
    if str(value) == "1":
        return 1
    raise click.BadParameter("must be 1 (static, for edge runtimes and the Edge TPU) or none (dynamic)")


@click.command()
@click.argument("variants", nargs=-1, required=True, type=VARIANT_LIST)
@options.quant(help="Quantization mode. int8 is full-integer (int8 builtin ops only: fails if an op cannot be "
                   "quantized).")
@click.option("--io", type=click.Choice(IO_CHOICES), default=None,
              help="Input/output type of an int8 model (default int8; float keeps float io).")
@options.weights(help="Weights file (.weights.h5, .h5, .pth, .safetensors...), or 'imagenet': each variant's published "
                   "weights (verified, cached; see 'edgenet weights list'). Without it: random weights.")
@options.calib()
@options.samples(default=100, help="Calibration samples (more are made by seeded crops/flips if the folder has fewer).")
@options.seed()
@click.option("--calibrator", type=click.Choice(CALIBRATORS), default=CALIBRATORS[0], show_default=True,
              help="Activation ranges: edgenet's streamed multi-threaded pass (each tensor's own range; B0-B7 about "
                   "4x faster) or TF's own single-threaded calibrator; see README.")
@click.option("--ranges", type=click.Choice(("minmax", "percentile", "mse", "auto")), default="minmax",
              show_default=True,
              help="Activation ranges: min/max, 99.99th percentile, MSE-optimal clipping, or auto (per tensor, the "
                   "method with the lowest cross-validated error on the calibration samples). Still full-integer.")
@click.option("--bias-correction", is_flag=True,
              help="Fold each convolution's measured mean quantization error into its int32 bias (full-integer).")
@click.option("--weight-rounding", is_flag=True,
              help="Re-round the int8 weights to minimise each convolution's output error on the calibration "
                   "samples (same scales, full-integer, no latency cost). Before --bias-correction.")
@click.option("--rounding-method", type=click.Choice(ROUNDING_METHODS), default=DEFAULT_ROUNDING_METHOD,
              show_default=True,
              help="How --weight-rounding (and the budget's re-rounded rungs) choose the integers: gptq (column by "
                   "column with error feedback), adaround (each weight's up/down learnt by gradient descent, "
                   f"{ADAROUND_ITERATIONS} Adam steps per op; slower), brecq (the up/down learnt per MBConv block "
                   "against the float block's output, with the block's activation quantization in the loop, "
                   f"{BRECQ_ITERATIONS} Adam steps per block; slowest) or qdrop (brecq with half the activations "
                   "left unquantized at random in each step, QDrop; as slow). See docs/convert.md.")
@options.min_agreement(help="Accuracy budget: top-1 agreement with the float model on held-out images, in percent. Starts "
                   "from plain int8 and adds bias correction, then auto ranges, then both, then re-rounded weights "
                   "(--weight-rounding) with bias correction, then (--allow-int16/--allow-float) int16 or float for "
                   "the 1, 2, 4... worst ops, only as far as needed. Met only when the lower bound of the 95 % "
                   "interval on half the held-out photos reaches it; a rung replaces plain int8 only if, on those "
                   "photos, it flips fewer, or no more and is closer on the close calls (paired tests, p < 0.05); "
                   "the other half reports.")
@click.option("--allow-float", is_flag=True,
              help="Let --min-agreement keep the worst ops (by the quant report, on calibration samples) in float "
                   "when the integer rungs miss it, int8 io kept. CPU targets only; latency cost measured.")
@click.option("--allow-int16", is_flag=True,
              help="Let --min-agreement give the worst tensors 16-bit activations (mixed int8/int16, needs the "
                   "'mixed' extra) when the integer rungs miss it, before any float. CPU targets only; latency cost "
                   "measured (XNNPACK has no int16 kernels: expect several times plain int8).")
@click.option("--max-latency-cost", type=options.number(numbers.Bounds(0, 1000, unit="%")), default=10.0, show_default=True,
              help="Percent of extra latency against plain int8 a float rung of --min-agreement may cost (measured "
                   "side by side, XNNPACK); a rung over it is not accepted.")
@click.option("--holdout", type=click.Path(path_type=Path), default=None,
              help="Images for the fidelity check (default: held-out images of the calibration source).")
@click.option("--batch-size", "batch_size", default="1", show_default=True, callback=_batch,
              help="1 (static batch) or none (dynamic).")
@options.output("Output folder: OUTDIR/<variant>-<quant>[-<io>].tflite plus a .json manifest beside it.",
                required=True, reason="convert writes nowhere by default")
@click.option("--target", type=click.Choice(TARGETS), default="cpu", show_default=True,
              help="edgetpu: full-integer int8 with uint8 I/O (or --io int8) and batch 1, then the static Edge TPU "
                   "check and edgetpu_compiler where it is installed.")
@click.option("--force", is_flag=True, help="Rebuild even if an up-to-date output exists.")
@options.json_flag()
@options.quiet()
@options.cluster()
@user_errors
def convert(variants, quant, io, weights, calib, samples, seed, calibrator, ranges, bias_correction, weight_rounding,
            rounding_method, min_agreement, allow_float, allow_int16, max_latency_cost, holdout, batch_size, output, target, force, as_json, quiet,
            cluster) -> None:
    """Convert VARIANTS (names, ranges like b0-b3, or specs like phi=1.5) to TFLite.

    Each conversion runs in its own process: a converter crash fails that variant with one
    line and the run goes on. Rerunning with identical inputs skips finished variants.

    \b
    Example:
      edgenet convert lite0 --weights efficientnet-lite0.pth -o models/
      edgenet convert b0 lite0-lite2 --weights imagenet -o models/
      edgenet convert b0-b3 --quant int8 --io uint8 --calib photos/ --samples 200 -o models/
      edgenet convert lite0 --target edgetpu --weights lite0.weights.h5 -o models/
      edgenet convert lite0 --weights lite0.pth --min-agreement 99.5 -o models/
    """
    from ..convert.api import SUMMARY_HEADERS, ConvertRequest, convert_variants, summary_rows
    from ..convert.fidelity import agreement_line

    out_dir = output
    flat = [v for group in variants for v in group]
    # 'imagenet': one published file per variant, all found (or fetched) before any conversion starts.
    per_variant = {v.name: Path(weights_for(IMAGENET, v)) for v in flat} if weights == IMAGENET else None
    try:  # every option rule (Edge TPU refusals included) lives in ConvertRequest: one line, exit 2
        request = ConvertRequest(quant=quant, io=io, weights=None if weights is None or per_variant else Path(weights),
                                 calib=calib, samples=samples, seed=seed, batch_size=batch_size, holdout=holdout,
                                 calibrator=calibrator, ranges=ranges, bias_correction=bias_correction,
                                 weight_rounding=weight_rounding, rounding_method=rounding_method,
                                 min_agreement=min_agreement,
                                 allow_float=allow_float, allow_int16=allow_int16, max_latency_cost=max_latency_cost,
                                 target=target, out_dir=out_dir, force=force, progress=not quiet)
    except EdgenetError as exc:
        raise click.UsageError(str(exc)) from None

    def report(result) -> None:
        if result.status == "failed":
            info(f"error: {result.error}")
        elif result.status == "up to date":
            info(f"{result.variant}: up to date ({result.model_path})")
        else:
            info(f"{result.variant}: wrote {result.model_path}")
        if result.fidelity:  # int8/int16x8 vs float on held-out images, with how far to trust it
            info(f"{result.variant}: {agreement_line(result.fidelity)}")
        for note in result.notes:
            if note.startswith(("accuracy budget", "quantization repairs")):
                info(f"{result.variant}: {note}")

    if cluster != "local":  # each variant a Ray task declaring its memory; files written here, atomically
        if per_variant is not None:
            raise click.UsageError("--cluster converts with one weights file or none; convert per-variant weights "
                                   "locally")
        with executor_for(cluster) as executor:
            results = executor.convert(flat, request, on_result=report)
    elif per_variant is None:
        results = convert_variants(flat, request, on_result=report, log=info)
    else:
        from dataclasses import replace

        results = [r for v in flat for r in
                   convert_variants([v], replace(request, weights=per_variant[v.name]), on_result=report, log=info)]
    if weights is None:
        info("WARNING: no --weights given: the models carry RANDOM weights; their accuracy and the fidelity "
             "numbers are meaningless for deployment")
    if as_json:
        emit_json([r.to_dict() for r in results])
    else:
        click.echo(table(summary_rows(results), SUMMARY_HEADERS))
    if target == "edgetpu":
        from ..edgetpu.prepare import prepare_for_edgetpu

        ready = prepare_for_edgetpu([r.model_path for r in results if r.ok], out_dir)
        for item in ready:
            where = f"compiled: {item.compiled_path}" if item.compiled_path else "not compiled"
            cut = f"; graph cut at {item.first_unsupported}" if item.first_unsupported else ""
            info(f"edgetpu: {item.model_path}: {100 * item.ops_tpu_share:.0f}% of ops and "
                 f"{100 * item.macs_tpu_share:.0f}% of MACs map to the Edge TPU{cut}; {where}")
        if ready and not ready[0].compiled_path:
            info(ready[0].note)
    failed = [r for r in results if not r.ok]
    if failed:
        info(f"{len(failed)} of {len(results)} conversion(s) failed")
        sys.exit(1)
