"""``edgenet profile``: where a model's latency goes, block by block, on this machine or a remote one."""

from __future__ import annotations

import json
import sys
from dataclasses import replace

import click

from .. import numbers
from ..bench.profile import PROFILE_BENCH
from . import options
from .common import info, table, user_errors

__all__ = ["profile"]


@click.command("profile")
@click.argument("model", type=click.Path(dir_okay=False))
@options.threads()
@options.harness("xnnpack", "xnnpack_latest", "warmup_s", "max_s", "timeout_s", preset="PROFILE_BENCH")
@click.option("--rounds", type=options.number(numbers.Bounds(2, 10_000, integer=True)), default=10, show_default=True,
              help="Rounds; each times the whole model and every part.")
@click.option("--runs", type=options.number(numbers.COUNT), default=20, show_default=True,
              help="Invocations per round.")
@options.stat(default="min", reason="per-round statistic of a few runs: the minimum is robust on a shared CPU",
              help="Per-round statistic of the runs (min: robust on a shared CPU; median is p50).")
@options.json_flag(help="Print the profile as JSON on stdout (table on stderr).")
@options.output("Also write the JSON profile to this file.")
@options.png("Draw the profile (needs matplotlib).")
@options.remote(help="Profile on another device: USER@HOST over ssh, or a device file.")
@options.remote_command("profile")
@options.ssh_option()
@user_errors
def profile(model, threads, rounds, runs, stat, as_json, output, png_path, remote, remote_command, ssh_options,
            **measure):
    """Attribute MODEL's latency to its stem, each block (and its squeeze-excitation), and head.

    The graph is cut at block boundaries into sub-models; each round times the whole model and
    one pass through the parts, in one child process. The parts must add up to the whole: the
    last lines say how far off they are.

    \b
    Example:
      edgenet profile b0-int8.tflite --png b0.png
      edgenet profile b0-int8.tflite --threads 4 --remote pi@raspberrypi.local --json > pi-b0.json
    """
    from ..bench.profile import profile_in_child, profile_rows, render_png, summary_lines
    from ..fsutil import atomic_write_text

    params = replace(PROFILE_BENCH, threads=threads, **measure)
    if remote:
        from ..bench.remote import run_remote_profile

        info(f"profiling {model} on {remote}")
        args = ["--threads", str(threads), "--rounds", str(rounds), "--runs", str(runs), "--stat", stat,
                "--warmup-s", str(params.warmup_s), "--max-s", str(params.max_s)]
        args += ["--timeout-s", str(params.timeout_s)] if params.timeout_s else []
        args += ["--no-xnnpack"] if not params.xnnpack else []
        args += ["--xnnpack-latest"] if params.xnnpack_latest else []
        budget_s = params.timeout_s or params.warmup_s + 4 * params.max_s + 600
        result = run_remote_profile(remote, model, args, remote_command=remote_command, ssh_options=ssh_options,
                                    timeout_s=budget_s)
    else:
        result = profile_in_child(model, params, rounds=rounds, runs=runs, stat=stat)
        from ..runtime.envinfo import device_info

        result["device"] = device_info(runtime=result.get("runtime"))
    text = json.dumps(result, indent=2)
    if output:
        atomic_write_text(output, text + "\n")
    if png_path:
        render_png([result], png_path)
    stream = sys.stderr if as_json else sys.stdout
    click.echo(table(profile_rows(result)), file=stream)
    for line in summary_lines(result):
        click.echo(line, file=stream)
    if as_json:
        click.echo(text)


if __name__ == "__main__":  # python -m edgenet.cli.profile (a remote host with an older entry point)
    profile()
