"""The ``edgenet`` command line: a thin layer over the Python API.

Each topic lives in its own module; this group only lists them explicitly.
"""

from __future__ import annotations

import click

from .._version import __version__
from . import bench, edgetpu, models, predict


@click.group(context_settings={"help_option_names": ["-h", "--help"], "max_content_width": 100})
@click.version_option(__version__, prog_name="edgenet")
def main() -> None:
    """EfficientNet for the edge: build, quantize, benchmark, and pick a variant.

    \b
    Example:
      edgenet variants
      edgenet layout b0
    """


main.add_command(models.variants)
main.add_command(models.scale)
main.add_command(models.layout)
main.add_command(predict.predict)
main.add_command(predict.import_weights)
main.add_command(bench.bench)
main.add_command(edgetpu.edgetpu)
