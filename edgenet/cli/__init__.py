"""The ``edgenet`` command line: a thin layer over the Python API.

Each topic lives in its own module; this group lists them explicitly. No module imported
here loads TensorFlow: commands that build or convert models import it when they run.
"""

from __future__ import annotations

import click

from .._version import __version__
from ..process import install_signal_handlers
from ..runtime.heap import retain_freed_memory
from . import bench, cluster, convert, edgetpu, evaluate, models, predict, profile, quant, select, sweep, tune, weights


@click.group(context_settings={"help_option_names": ["-h", "--help"], "max_content_width": 100})
@click.version_option(__version__, prog_name="edgenet")
@click.option("--verbose", is_flag=True,
              help="Also show TensorFlow's and LiteRT's own log lines (hidden by default).")
@click.pass_context
def main(ctx: click.Context, verbose: bool) -> None:
    """EfficientNet for the edge: build, quantize, benchmark, and pick a variant.

    \b
    The main job (convert B0-B3 to int8, benchmark, pick the largest within 50 ms):
      edgenet sweep --budget-ms 50 --variants b0-b3 -o runs/quickstart
    \b
    Step by step:
      edgenet variants                              # the family, with counts
      edgenet convert b0 lite0 --quant int8 -o out  # quantized .tflite + manifests
      edgenet bench out/*.tflite --threads 1,2 --results results.jsonl
      edgenet select results.jsonl --budget-ms 25
    """
    # SIGTERM (kill, timeout, systemd, CI) and SIGHUP end a command as Ctrl-C does.
    install_signal_handlers()
    retain_freed_memory()  # image after image: NumPy's temporaries reuse the heap (edgenet.runtime.heap)
    if verbose:
        from ..logs import set_verbose
        from ..logs import verbose as was_verbose

        before = was_verbose()
        set_verbose(True)  # inherited by the benchmark and conversion child processes
        ctx.call_on_close(lambda: set_verbose(before))


for command in (
    models.variants,
    models.scale,
    models.layout,
    predict.import_weights,
    predict.predict,
    convert.convert,
    quant.quant_report,
    bench.bench,
    tune.tune,
    profile.profile,
    evaluate.evaluate,
    select.select,
    select.predict_latency,
    select.report,
    sweep.sweep,
    edgetpu.edgetpu,
    weights.weights,
    cluster.devices,
):
    main.add_command(command)
