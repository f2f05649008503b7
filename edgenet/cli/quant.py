"""``edgenet quant-report``: where quantization hurts a model, tensor by tensor.

TensorFlow is only loaded by the measuring child process (and only for a variant float source).
"""

from __future__ import annotations

from pathlib import Path

import click

from . import options
from .common import emit_json, info, user_errors, weights_for


@click.command("quant-report")
@click.argument("float_source")
@click.argument("model", type=click.Path(path_type=Path))
@options.weights(help="Weights of the float reference when FLOAT_SOURCE is a variant (.pth, .weights.h5, ...), or "
                      "'imagenet': its published weights.")
@click.option("--images", type=click.Path(path_type=Path), default=None,
              help="Held-out photos to measure on (default: edgenet's embedded held-out photos; never use the "
                   "calibration images).")
@options.top(default=20, reason="rows of a ranked table, not classes",
             help="Rows of the ranked table printed (the JSON has every tensor).")
@options.json_flag(help="Print the whole report as JSON on stdout.")
@click.option("--md", "md_path", type=click.Path(path_type=Path, dir_okay=False), default=None,
              help="Also write the ranked Markdown table (every tensor) to this file.")
@options.png("Also draw the error per tensor to this picture (.png/.svg/.pdf; needs matplotlib).")
@options.threads(default=None, reason="all cores unless told", help="Interpreter threads (default: all).")
@user_errors
def quant_report(float_source, model, weights, images, top, as_json, md_path, png_path, threads) -> None:
    """Per-tensor quantization error of MODEL (int8 or int16x8 .tflite) against its float original.

    FLOAT_SOURCE is the variant MODEL was converted from (with --weights) or a float .tflite of the
    same network. Both run on held-out photos with every intermediate tensor kept; tensors are
    matched by name (Keras layer names survive into TFLite) and ranked by the error each adds.

    \b
    Example:
      edgenet quant-report lite0 models/lite0-int8.tflite --weights lite0.pth --png lite0.png
      edgenet quant-report models/b0-fp32.tflite models/b0-int8.tflite --images photos/ --json
    """
    from ..errors import InputFileError
    from ..fsutil import atomic_write_text
    from ..quant.report import quant_report as measure

    if png_path is not None:
        try:
            import matplotlib  # noqa: F401
        except ImportError:
            raise click.ClickException("--png needs matplotlib: pip install 'edgenet[plot]'") from None
    if weights is not None and not str(float_source).endswith(".tflite"):
        weights = weights_for(weights, float_source)
    report, notes = measure(float_source, model, weights=weights, images=images, threads=threads)
    for note in notes:
        info(f"note: {note}")
    if md_path is not None:
        try:
            atomic_write_text(md_path, report.markdown(top=None))
        except OSError as exc:
            raise InputFileError(md_path, f"cannot write ({exc.strerror or exc})") from None
        info(f"wrote {md_path}")
    if png_path is not None:
        try:
            report.plot(png_path)
        except OSError as exc:
            raise InputFileError(png_path, f"cannot write ({exc.strerror or exc})") from None
        info(f"wrote {png_path}")
    if as_json:
        emit_json(report.to_dict())
    else:
        click.echo(report.markdown(top=top), nl=False)
