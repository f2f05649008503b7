"""``edgenet profile``: where a model's latency goes, block by block, on this machine or a remote one."""

from __future__ import annotations

import json
import sys

import click

from .common import info, table, user_errors

__all__ = ["profile"]


@click.command("profile")
@click.argument("model", type=click.Path(dir_okay=False))
@click.option("--threads", type=click.IntRange(min=1), default=1, show_default=True)
@click.option("--no-xnnpack", is_flag=True, help="Builtin kernels without the default XNNPACK delegate.")
@click.option("--xnnpack-latest", is_flag=True, help="XNNPACK with its flag-protected latest features.")
@click.option("--rounds", type=click.IntRange(min=2), default=10, show_default=True,
              help="Rounds; each times the whole model and every part.")
@click.option("--runs", type=click.IntRange(min=1), default=20, show_default=True, help="Invocations per round.")
@click.option("--stat", type=click.Choice(["min", "median"]), default="min", show_default=True,
              help="Per-round statistic of the runs (min: robust on a shared CPU).")
@click.option("--warmup-s", type=click.FloatRange(min=0), default=1.0, show_default=True)
@click.option("--max-s", type=click.FloatRange(min=0), default=60.0, show_default=True,
              help="Stop adding rounds after this long (at least 3 rounds run).")
@click.option("--timeout-s", type=click.FloatRange(min=0, min_open=True), default=None,
              help="Kill the profiling process after this long; with --remote the whole run (connection and copying "
                   "included)  [default: warm-up + 4 x max + 600].")
@click.option("--json", "as_json", is_flag=True, help="Print the profile as JSON on stdout (table on stderr).")
@click.option("-o", "--output", default=None, metavar="FILE", help="Also write the JSON profile to FILE.")
@click.option("--png", default=None, metavar="FILE", help="Draw the profile (needs matplotlib).")
@click.option("--remote", default=None, metavar="USER@HOST|DEVICE.json|devices.toml",
              help="Profile on another machine over ssh, or on the device a device file (or an inventory of one) "
                   "describes.")
@click.option("--remote-command", default=None,
              help="How to start the profile command on the remote device  [default: edgenet profile, or the "
                   "device file's command + profile].")
@click.option("--ssh-option", "ssh_options", multiple=True, metavar="KEY=VALUE",
              help="Extra ssh/scp -o option for --remote (repeatable), e.g. Port=2222.")
@user_errors
def profile(model, threads, no_xnnpack, xnnpack_latest, rounds, runs, stat, warmup_s, max_s, timeout_s, as_json, output,
            png, remote, remote_command, ssh_options):
    """Attribute MODEL's latency to its stem, each block (and its squeeze-excitation), and head.

    The graph is cut at block boundaries into sub-models; each round times the whole model and
    one pass through the parts, in one child process. The parts must add up to the whole: the
    last lines say how far off they are.

    \b
    Example:
      edgenet profile b0-int8.tflite --png b0.png
      edgenet profile b0-int8.tflite --threads 4 --remote pi@raspberrypi.local --json > pi-b0.json
    """
    from ..bench.params import BenchParams
    from ..bench.profile import profile_in_child, profile_rows, render_png, summary_lines
    from ..fsutil import atomic_write_text

    params = BenchParams(threads=threads, xnnpack=not no_xnnpack, xnnpack_latest=xnnpack_latest, warmup_s=warmup_s,
                         min_s=0.0, max_s=max_s, timeout_s=timeout_s)
    if remote:
        from ..bench.remote import run_remote_profile

        info(f"profiling {model} on {remote}")
        args = ["--threads", str(threads), "--rounds", str(rounds), "--runs", str(runs), "--stat", stat,
                "--warmup-s", str(warmup_s), "--max-s", str(max_s)]
        args += ["--timeout-s", str(timeout_s)] if timeout_s else []
        args += ["--no-xnnpack"] if no_xnnpack else []
        args += ["--xnnpack-latest"] if xnnpack_latest else []
        budget_s = timeout_s if timeout_s else warmup_s + 4 * max_s + 600
        result = run_remote_profile(remote, model, args, remote_command=remote_command, ssh_options=ssh_options,
                                    timeout_s=budget_s)
    else:
        result = profile_in_child(model, params, rounds=rounds, runs=runs, stat=stat)
        from ..runtime.envinfo import device_info

        result["device"] = device_info(runtime=result.get("runtime"))
    text = json.dumps(result, indent=2)
    if output:
        atomic_write_text(output, text + "\n")
    if png:
        render_png([result], png)
    stream = sys.stderr if as_json else sys.stdout
    click.echo(table(profile_rows(result)), file=stream)
    for line in summary_lines(result):
        click.echo(line, file=stream)
    if as_json:
        click.echo(text)


if __name__ == "__main__":  # python -m edgenet.cli.profile (a remote host with an older entry point)
    profile()
