"""``edgenet bench``: latency of .tflite models, one row per (model, threads) setting."""

from __future__ import annotations

import sys

import click

from .. import numbers
from ..bench.params import BenchParams
from ..results.records import STATS
from . import options
from .cluster import executor_for
from .common import info, table, user_errors

__all__ = ["bench"]


@click.command("bench")
@click.argument("models", nargs=-1, required=True, type=click.Path(dir_okay=False))
@options.threads(many=True)
@options.harness()
@options.json_records()
@options.results_file()
@options.csv()
@options.label()
@options.remote(help="Run on another machine over ssh, or on the device a device file describes "
                     "(e.g. an emulated Pi from tools/emulated-pi).")
@options.remote_command("bench")
@options.ssh_option()
@options.devices_file()
@options.device_names()
@options.cluster()
@options.deprecated("--tune", is_flag=True, instead="edgenet tune MODELS")
@options.deprecated("--tune-reps", "tune_reps", type=options.number(numbers.COUNT), default=3,
                    instead="edgenet tune --reps")
@options.deprecated("--tune-stat", "tune_stat", type=click.Choice(STATS), default="p50",
                    instead="edgenet tune --stat")
@options.deprecated("--engines", default=None, instead="edgenet tune --engines")
@options.deprecated("--save-settings", default=None, instead="edgenet tune --save-settings")
@user_errors
def bench(models, threads, as_json, results_path, csv_path, label, remote, remote_command, ssh_options, inventory,
          device_names, cluster, tune, tune_reps, tune_stat, engines, save_settings, **measure):
    """Measure inference latency of MODELS (.tflite), each in its own process.

    Protocol (as the TFLite benchmark tool): warm up for --warmup-s, then time invoke() until at
    least --min-runs runs AND --min-s seconds, capped at --max-s. Init (interpreter creation +
    allocation) and first inference are reported apart. A model that fails or hangs prints one
    line; the others still run, and the exit code is 1 at the end. The fastest runtime settings
    are `edgenet tune`'s job.

    \b
    Example:
      edgenet bench b0_int8.tflite lite0_int8.tflite --threads 1,2,4 --results results.jsonl
      edgenet bench b0_int8.tflite --json | jq .latency_ms.p50
      edgenet bench b0_edgetpu.tflite --delegate edgetpu
      edgenet bench b0_int8.tflite --remote pi@raspberrypi.local --results pi.jsonl
      edgenet bench b0_int8.tflite --remote ~/.cache/edgenet/emulated-pi/pi4/device.json
    """
    to_stdout, json_path, models = options.json_and_results(as_json, results_path, models)
    base = BenchParams(threads=threads[0], **measure)
    if tune:  # deprecated: `edgenet tune` (the warning is printed by the option)
        from .tune import run_tune

        explicit = click.get_current_context().get_parameter_source("threads") != click.core.ParameterSource.DEFAULT
        run_tune(models, base, threads if explicit else None, engines, tune_reps, to_stdout, json_path, csv_path,
                 label, remote, remote_command, ssh_options, save_settings, stat=tune_stat)
        return
    if save_settings:
        raise click.UsageError("--save-settings belongs to `edgenet tune`")
    from .. import results
    from ..bench import ConsoleTableListener, CsvListener, JsonLinesListener, ProgressListener, run_settings
    from ..bench.listeners import replay


    table_stream = sys.stderr if to_stdout else None  # keep stdout parseable JSON lines
    if inventory or cluster != "local":
        if remote:
            raise click.UsageError("--remote measures one host; with --devices/--cluster, declare it in devices.toml")
        if not inventory:
            raise click.UsageError("on a cluster, bench measures the devices of an inventory: pass --devices FILE")
        from ..results.table import BENCH_COLUMNS, bench_row

        explicit = click.get_current_context().get_parameter_source("threads").name != "DEFAULT"
        records = _bench_fleet(models, base, inventory, device_names, threads if explicit else None, cluster)
        files = [JsonLinesListener(path) for path in ("-" if to_stdout else None, json_path) if path]
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
    listeners += [JsonLinesListener(path) for path in ("-" if to_stdout else None, json_path) if path]
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
    from ..devices import load_devices

    fleet = load_devices(inventory, device_names or ())
    with executor_for(cluster) as executor:
        futures = [executor.submit_latency(d, models, threads or d.threads, base) for d in fleet]
        info(f"measuring {len(models)} model(s) on {len(fleet)} device(s)")
        return [record for future in futures for record in future.result()]


if __name__ == "__main__":  # python -m edgenet.cli.bench (used by --remote-command before registration)
    bench()
