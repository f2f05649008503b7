"""``edgenet bench``: latency of .tflite models, one row per (model, threads) setting."""

from __future__ import annotations

import sys

import click

from ..bench.params import APIS, DELEGATES, BenchParams
from .cluster import cluster_option, executor_for
from .common import info, table, user_errors

#: The defaults of every measurement option are BenchParams' own (bench/params.py).
DEFAULTS = BenchParams()

__all__ = ["bench", "ThreadList"]


class ThreadList(click.ParamType):
    """Comma-separated positive thread counts, e.g. ``1,2,4``."""

    name = "threads"

    def convert(self, value, param, ctx) -> tuple[int, ...]:
        if isinstance(value, tuple):
            return value
        try:
            counts = tuple(int(part) for part in str(value).split(",") if part.strip())
        except ValueError:
            self.fail(f"{value!r} is not a comma-separated list of integers", param, ctx)
        if not counts or any(c < 1 for c in counts):
            self.fail(f"{value!r}: thread counts must be positive integers", param, ctx)
        return counts


@click.command("bench")
@click.argument("models", nargs=-1, required=True, type=click.Path(dir_okay=False))
@click.option("--threads", type=ThreadList(), default=str(DEFAULTS.threads), show_default=True,
              help="Thread counts to sweep, e.g. 1,2,4.")
@click.option("--delegate", type=click.Choice(DELEGATES), default=DEFAULTS.delegate, show_default=True)
@click.option("--edgetpu-lib", default=DEFAULTS.edgetpu_lib, show_default=True, help="Edge TPU delegate library.")
@click.option("--no-xnnpack", is_flag=True, help="Builtin kernels without the default XNNPACK delegate.")
@click.option("--xnnpack-latest", is_flag=True, help="XNNPACK with its flag-protected latest features.")
@click.option("--api", type=click.Choice(APIS), default=DEFAULTS.api, show_default=True,
              help="LiteRT's Interpreter or its CompiledModel API (ai-edge-litert 2.x).")
@click.option("--xnnpack-weight-cache", is_flag=True,
              help="XNNPACK weight cache file (with --api compiled): packed weights reused across starts.")
@click.option("--ynnpack", is_flag=True,
              help="YNNPACK before XNNPACK (with --api compiled, where the installed LiteRT offers it).")
@click.option("--tune", is_flag=True,
              help="Find the fastest runtime settings (threads x engine) for each model, interleaved, repeated.")
@click.option("--tune-reps", type=click.IntRange(min=1), default=3, show_default=True, help="Repetitions for --tune.")
@click.option("--tune-stat", type=click.Choice(["p50", "min", "mean", "p90"]), default="p50", show_default=True,
              help="Statistic --tune compares (min is the robust one on a shared, busy CPU).")
@click.option("--engines", default=None, metavar="LIST",
              help="Engines --tune tries (comma-separated; default: all, see --tune).")
@click.option("--save-settings", default=None, metavar="FILE",
              help="With --tune: write the chosen settings for `edgenet sweep --settings FILE`.")
@click.option("--warmup-s", type=click.FloatRange(min=0), default=DEFAULTS.warmup_s, show_default=True,
              help="Warm-up time.")
@click.option("--min-runs", type=click.IntRange(min=1), default=DEFAULTS.min_runs, show_default=True)
@click.option("--min-s", type=click.FloatRange(min=0), default=DEFAULTS.min_s, show_default=True,
              help="Minimum measured time.")
@click.option("--max-s", type=click.FloatRange(min=0), default=DEFAULTS.max_s, show_default=True,
              help="Cap on measured time.")
@click.option("--timeout-s", type=click.FloatRange(min=0, min_open=True), default=None,
              help="Kill a model's process after this long; with --remote the whole run (connection and copying "
                   "included) is bounded by settings x this  [default: warm-up + max + 60].")
@click.option("--json", "json_path", default=None, metavar="FILE",
              help="Append JSON-lines records (edgenet.result/1) to FILE; '-' writes them to stdout.")
@click.option("--csv", "csv_path", default=None, metavar="FILE", help="Write the sweep as CSV (dotted columns).")
@click.option("--label", default=None, help="Device label stored in the records  [default: hostname].")
@click.option("--remote", default=None, metavar="USER@HOST|DEVICE.json",
              help="Run on another machine over ssh, or on the device a device file describes "
                   "(e.g. an emulated Pi from tools/emulated-pi).")
@click.option("--remote-command", default=None,
              help="How to start the bench command on the remote device  [default: edgenet bench, or the "
                   "device file's command + bench].")
@click.option("--ssh-option", "ssh_options", multiple=True, metavar="KEY=VALUE",
              help="Extra ssh/scp -o option for --remote (repeatable), e.g. Port=2222.")
@click.option("--devices", "inventory", default=None, type=click.Path(dir_okay=False), metavar="devices.toml",
              help="Measure on the devices of this inventory, all in parallel, each one job at a time.")
@click.option("--device", "device_names", multiple=True, metavar="NAME",
              help="With --devices: only this device (repeatable).")
@cluster_option
@user_errors
def bench(models, threads, delegate, edgetpu_lib, no_xnnpack, xnnpack_latest, api, xnnpack_weight_cache, ynnpack, tune,
          tune_reps, tune_stat, engines, save_settings, warmup_s, min_runs, min_s, max_s, timeout_s, json_path, csv_path, label,
          remote, remote_command, ssh_options, inventory, device_names, cluster):
    """Measure inference latency of MODELS (.tflite), each in its own process.

    Protocol (as the TFLite benchmark tool): warm up for --warmup-s, then time invoke() until at
    least --min-runs runs AND --min-s seconds, capped at --max-s. Init (interpreter creation +
    allocation) and first inference are reported apart. A model that fails or hangs prints one
    line; the others still run, and the exit code is 1 at the end.

    \b
    Example:
      edgenet bench b0_int8.tflite lite0_int8.tflite --threads 1,2,4 --json results.jsonl
      edgenet bench b0_edgetpu.tflite --delegate edgetpu
      edgenet bench b0_int8.tflite --remote pi@raspberrypi.local --json pi.jsonl
      edgenet bench b0_int8.tflite --remote ~/.cache/edgenet/emulated-pi/pi4/device.json
      edgenet bench b0_int8.tflite --tune --save-settings tuned.json   # then: edgenet sweep --settings tuned.json

    \b
    --tune engines: interpreter/xnnpack (the default), interpreter/xnnpack+latest,
    interpreter/builtin (no XNNPACK), compiled/xnnpack (CompiledModel API),
    compiled/xnnpack+cache (with the XNNPACK weight cache). Threads: --threads if given,
    else 1 up to the usable cores.
    """
    from .. import results
    from ..bench import ConsoleTableListener, CsvListener, JsonLinesListener, ProgressListener, run_settings
    from ..bench.listeners import replay

    base = BenchParams(
        threads=threads[0], xnnpack=not no_xnnpack, delegate=delegate, warmup_s=warmup_s, min_runs=min_runs,
        min_s=min_s, max_s=max_s, timeout_s=timeout_s, edgetpu_lib=edgetpu_lib, xnnpack_latest=xnnpack_latest,
        api=api, xnnpack_weight_cache=xnnpack_weight_cache, ynnpack=ynnpack,
    )
    if save_settings and not tune:
        raise click.UsageError("--save-settings needs --tune")
    if tune:
        from .tune import run_tune

        ctx = click.get_current_context()
        explicit = ctx.get_parameter_source("threads") != click.core.ParameterSource.DEFAULT
        run_tune(models, base, threads if explicit else None, engines, tune_reps, json_path, csv_path, label,
                 remote, remote_command, ssh_options, save_settings, stat=tune_stat)
        return
    to_stdout = json_path == "-"
    table_stream = sys.stderr if to_stdout else None  # keep stdout parseable JSON lines
    if inventory or cluster != "local":
        if remote:
            raise click.UsageError("--remote measures one host; with --devices/--cluster, declare it in devices.toml")
        if not inventory:
            raise click.UsageError("on a cluster, bench measures the devices of an inventory: pass --devices FILE")
        from ..results.table import BENCH_COLUMNS, bench_row

        explicit = click.get_current_context().get_parameter_source("threads").name != "DEFAULT"
        records = _bench_fleet(models, base, inventory, device_names, threads if explicit else None, cluster)
        files = [JsonLinesListener(json_path)] if json_path else []
        if csv_path:
            files.append(CsvListener(csv_path))
        replay(records, files)  # the same files as a local run; the table gains a device column
        click.echo(table([dict(bench_row(r), device=(r.get("device") or {}).get("label")) for r in records],
                         {"device": "device", **BENCH_COLUMNS}), file=table_stream)
        for record in records:
            if record.get("error"):
                info(f"error: {record['error']}")
        raise_if_failed(sum(1 for r in results.as_records(records) if not r.ok), len(records))
        return
    listeners = [ProgressListener()]
    if json_path:
        listeners.append(JsonLinesListener(json_path))
    if csv_path:
        listeners.append(CsvListener(csv_path))
    listeners.append(ConsoleTableListener(stream=table_stream))
    if remote:
        from ..bench.remote import run_remote

        info(f"running {len(models)} model(s) x {len(threads)} thread setting(s) on {remote}")
        records = run_remote(remote, models, threads, base, label=label, remote_command=remote_command,
                             ssh_options=ssh_options)
        replay(records, listeners)  # the same progress lines, files and table as a local run
        failed = sum(1 for r in results.as_records(records) if not r.ok)
    else:
        from dataclasses import replace

        params_list = [replace(base, threads=t) for t in threads]
        out = run_settings(models, params_list, listeners, label=label)
        failed = sum(1 for r in out if not r.ok)
        records = out
    if failed:
        raise click.ClickException(f"{failed} of {len(records)} setting(s) failed (see the lines above)")


def raise_if_failed(failed: int, total: int) -> None:
    if failed:
        raise click.ClickException(f"{failed} of {total} setting(s) failed (see the lines above)")


def _bench_fleet(models, base, inventory, device_names, threads, cluster) -> list[dict]:
    """Every device in parallel (each serially: one latency job per device at a time); records in inventory order."""
    from ..cluster.devices import load_inventory

    fleet = load_inventory(inventory, device_names or ())
    with executor_for(cluster) as executor:
        futures = [executor.submit_latency(d, models, threads or d.threads, base) for d in fleet]
        info(f"measuring {len(models)} model(s) on {len(fleet)} device(s)")
        return [record for future in futures for record in future.result()]


if __name__ == "__main__":  # python -m edgenet.cli.bench (used by --remote-command before registration)
    bench()
