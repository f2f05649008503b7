"""``edgenet tune``: the fastest runtime settings for a model (the presentation of :mod:`edgenet.bench.tune`)."""

from __future__ import annotations

import json
import sys

import click

from .. import numbers
from ..bench.params import BenchParams
from . import options
from .common import info, table, user_errors

__all__ = ["run_tune", "tune"]


@click.command("tune")
@click.argument("models", nargs=-1, required=True, type=click.Path(dir_okay=False))
@options.threads(many=True, default=None, reason="tune tries 1 up to the usable cores unless told",
                 help="Thread counts to try, e.g. 1,2,4  [default: 1 up to the usable cores; 1,2,4 with --remote].")
@click.option("--engines", default=None, metavar="LIST",
              help="Engines to try (comma-separated; default: all, see below).")
@click.option("--reps", type=options.number(numbers.COUNT), default=3, show_default=True,
              help="Repetitions: every setting is measured once per repetition, interleaved.")
@options.stat(help="Statistic compared (min is the robust one on a shared, busy CPU).")
@click.option("--save-settings", default=None, metavar="FILE",
              help="Write the chosen settings for `edgenet sweep --settings FILE`.")
@options.harness("warmup_s", "min_runs", "min_s", "max_s", "timeout_s")
@options.json_records()
@options.results_file()
@options.csv()
@options.label()
@options.remote()
@options.remote_command("bench")
@options.ssh_option()
@user_errors
def tune(models, threads, engines, reps, stat, save_settings, as_json, results_path, csv_path, label, remote,
         remote_command, ssh_options, **measure) -> None:
    """Find the fastest runtime settings (threads x engine) for each of MODELS, interleaved, repeated.

    Every setting is measured once per repetition in turn, and compared with the defaults by the
    median (and minimum) of the per-repetition ratios. The settings file it writes is what
    `edgenet sweep --settings` measures with.

    \b
    Engines: interpreter/xnnpack (the default), interpreter/xnnpack+latest,
    interpreter/builtin (no XNNPACK), compiled/xnnpack (CompiledModel API),
    compiled/xnnpack+cache (with the XNNPACK weight cache).

    \b
    Example:
      edgenet tune b0_int8.tflite --save-settings tuned.json   # then: edgenet sweep --settings tuned.json
      edgenet tune b0_int8.tflite --threads 1,2 --stat min --reps 5 --results tune.jsonl
    """
    to_stdout, json_path, models = options.json_and_results(as_json, results_path, models)
    run_tune(models, BenchParams(threads=threads[0] if threads else 1, **measure), threads, engines, reps,
             to_stdout, json_path, csv_path, label, remote, remote_command, ssh_options, save_settings, stat=stat)


def _r(value, digits=3):
    return None if value is None else round(value, digits)


def run_tune(models, base, threads, engines, reps, to_stdout, json_path, csv_path, label, remote, remote_command,
             ssh_options, save_settings, stat: str = "p50") -> None:
    from .. import results
    from ..bench.tune import available_engines, tune
    from ..fsutil import atomic_write_text
    from ..runtime.envinfo import cpu_cores

    if save_settings and len(models) != 1:
        raise click.UsageError("--save-settings needs exactly one model (settings are tuned per model)")
    engine_list = tuple(e.strip() for e in engines.split(",") if e.strip()) if engines else available_engines()
    if threads is None:
        if remote:
            threads = (1, 2, 4)
        else:
            cores = cpu_cores()
            usable = int(cores.get("usable") or cores.get("logical") or 1)
            threads = tuple(sorted({t for t in (1, 2, 4, 8, 16) if t <= usable} | {usable}))
    stream = sys.stderr if to_stdout else sys.stdout
    failed = 0
    for model in models:
        info(f"tuning {model}: threads {','.join(map(str, threads))} x {len(engine_list)} engine(s), {reps} rep(s)")
        measure = None
        if remote:
            from ..bench.remote import run_remote

            def measure(params_list, model=model):
                out = []
                for params in params_list:
                    out += run_remote(remote, [model], [params.threads], params, label=label,
                                      remote_command=remote_command, ssh_options=ssh_options)
                return out
        elif label:
            from ..bench.runner import run_settings

            def measure(params_list, model=model):
                return [r.to_record() for r in run_settings([model], list(params_list), label=label)]

        outcome = tune(str(model), base, threads, engines=engine_list, reps=reps, stat=stat, measure=measure,
                       log=lambda m: info(m))
        stat = outcome.stat
        rows = [{
            "setting": r["setting"], "reps": r["reps"],
            f"{stat} ms (median)": _r(r[f"{stat}_median_ms"]), f"{stat} ms (min)": _r(r[f"{stat}_min_ms"]),
            "init ms": _r(r["init_ms_median"], 1), "RSS MB": _r(r["peak_rss_mb_median"], 1),
            "init private/file MB": _memory(r["init_anon_mb_median"], r["init_file_mb_median"]),
            "vs default (median/min)": _pair(r["ratio_vs_default_median"], r["ratio_vs_default_min"]),
            "vs same threads (median/min)": _pair(r["ratio_vs_same_threads_median"], r["ratio_vs_same_threads_min"]),
            "failed": r["failed"],
        } for r in outcome.rows]
        click.echo(table(rows), file=stream)
        if outcome.pick is None:
            failed += 1
            info(f"{model}: no setting could be measured")
            continue
        best = next(r for r in outcome.rows if r["setting"] == outcome.pick.label())
        click.echo(f"fastest for {model}: {outcome.pick.label()}: {best['ratio_vs_default_median']:.3f}x the "
                   f"defaults ({outcome.reference.label()}), median of {best['reps']} per-repetition ratios "
                   f"(min {best['ratio_vs_default_min']:.3f})", file=stream)
        records = list(outcome.records)  # each carries its device fingerprint (run_settings / the remote host)
        if to_stdout:
            results.write_records(sys.stdout, records)
        if json_path:
            results.append_records(json_path, records)
        if csv_path:
            results.write_csv(csv_path, records)
        if save_settings:
            atomic_write_text(save_settings, json.dumps(outcome.settings_document(str(model)), indent=2) + "\n")
            info(f"settings: {save_settings} ({outcome.pick.label()}); use them with "
                 f"`edgenet sweep --settings {save_settings}`")
    if failed:
        raise click.ClickException(f"{failed} of {len(models)} model(s) could not be tuned (see above)")


def _memory(private_mb, file_mb) -> str:
    return "" if private_mb is None or file_mb is None else f"{private_mb:.1f} / {file_mb:.1f}"


def _pair(median, minimum) -> str:
    return "" if median is None else f"{median:.3f} / {minimum:.3f}"
