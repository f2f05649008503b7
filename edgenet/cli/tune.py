"""``edgenet bench --tune``: the presentation of :mod:`edgenet.bench.tune` (search, table, files)."""

from __future__ import annotations

import json
import sys

import click

from .common import info, table

__all__ = ["run_tune"]


def _r(value, digits=3):
    return None if value is None else round(value, digits)


def run_tune(models, base, threads, engines, reps, json_path, csv_path, label, remote, remote_command, ssh_options,
             save_settings, stat: str = "p50") -> None:
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
    to_stdout = json_path == "-"
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
        elif json_path:
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
