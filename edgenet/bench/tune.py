"""Runtime settings as a search space: find the fastest way to run one model on one device.

The space: thread counts x engines, where an engine is how LiteRT runs the model on the CPU:

* ``interpreter/xnnpack`` -- the Interpreter with its default XNNPACK delegate (``edgenet bench``'s default);
* ``interpreter/xnnpack+latest`` -- the same with XNNPACK's flag-protected latest features
  (``experimental_default_delegate_latest_features``);
* ``interpreter/builtin`` -- TFLite's builtin kernels, no XNNPACK (what older runtimes give);
* ``compiled/xnnpack`` -- LiteRT 2.x's CompiledModel API;
* ``compiled/xnnpack+cache`` -- CompiledModel with the XNNPACK weight cache (a file of packed
  weights: faster start-up on the second run; the init time and peak memory show its effect).

Every setting is measured in its own child process, as ``edgenet bench`` does, in every repetition;
repetitions alternate the order (forward, then backward) so drift on a shared machine cancels. Each
setting is compared with the reference (the default engine at the same thread count, and the
default settings overall) by per-repetition ratios of neighbouring measurements; the pick is the
setting with the lowest median ratio against ``edgenet bench``'s defaults.
"""

from __future__ import annotations

import statistics
from collections.abc import Callable, Sequence
from dataclasses import dataclass, replace

from ..errors import EdgenetError
from .params import BenchParams

__all__ = ["ENGINES", "TuneOutcome", "candidates", "tune", "load_settings", "SETTINGS_SCHEMA"]

SETTINGS_SCHEMA = "edgenet.settings/1"

#: Engine name -> the BenchParams fields that select it.
_OFF = {"xnnpack_latest": False, "xnnpack_weight_cache": False, "ynnpack": False}
ENGINES: dict[str, dict] = {
    "interpreter/xnnpack": {"api": "interpreter", "xnnpack": True, **_OFF},
    "interpreter/xnnpack+latest": {"api": "interpreter", "xnnpack": True, **_OFF, "xnnpack_latest": True},
    "interpreter/builtin": {"api": "interpreter", "xnnpack": False, **_OFF},
    "compiled/xnnpack": {"api": "compiled", "xnnpack": True, **_OFF},
    "compiled/xnnpack+cache": {"api": "compiled", "xnnpack": True, **_OFF, "xnnpack_weight_cache": True},
    # Only where the installed LiteRT offers it (available_engines()).
    "compiled/ynnpack": {"api": "compiled", "xnnpack": True, **_OFF, "ynnpack": True},
}
DEFAULT_ENGINE = "interpreter/xnnpack"
#: The runtime fields a settings file carries (what ``sweep --settings`` applies).
RUNTIME_FIELDS = ("threads", "api", "xnnpack", "xnnpack_latest", "xnnpack_weight_cache", "ynnpack")


def available_engines(ynnpack: bool = False) -> tuple[str, ...]:
    """The engines of :data:`ENGINES` the installed runtime offers; YNNPACK only when asked for (``ynnpack``)
    and where LiteRT has the option (a build may have the option and still lack YNNPACK: measuring says)."""
    from ..runtime.compiled import ynnpack_available

    return tuple(name for name, fields in ENGINES.items()
                 if not fields["ynnpack"] or (ynnpack and ynnpack_available()))


def engine_of(params: BenchParams) -> str:
    for name, fields in ENGINES.items():
        if all(getattr(params, k) == v for k, v in fields.items()):
            return name
    return params.label()


def candidates(base: BenchParams, threads: Sequence[int], engines: Sequence[str] | None = None) -> list[BenchParams]:
    """Every (threads, engine) setting, on top of ``base``'s measuring protocol."""
    engines = available_engines() if engines is None else engines
    unknown = [e for e in engines if e not in ENGINES]
    if unknown:
        raise EdgenetError(f"unknown engine {unknown[0]!r}; choose from {', '.join(ENGINES)}")
    base = replace(base, delegate="cpu", **ENGINES[DEFAULT_ENGINE])
    return [replace(base, threads=t, **ENGINES[e]) for t in threads for e in engines]


@dataclass(frozen=True)
class TuneOutcome:
    """All measurements, the per-setting summary and the pick."""

    records: tuple[dict, ...]
    rows: tuple[dict, ...]
    pick: BenchParams | None
    reference: BenchParams
    stat: str

    def settings_document(self, model_path: str) -> dict:
        """What ``edgenet tune --save-settings`` writes and ``sweep --settings`` reads."""
        if self.pick is None:
            raise EdgenetError("no setting could be measured: nothing to save")
        from ..results.records import as_record

        row = next(r for r in self.rows if r["setting"] == self.pick.label())
        device = as_record(self.records[0]).device_name if self.records else None
        return {
            "schema": SETTINGS_SCHEMA,
            "settings": {k: getattr(self.pick, k) for k in RUNTIME_FIELDS},
            "label": self.pick.label(),
            "tuned_on": {"model": model_path, "device": device, "stat": self.stat,
                         "ratio_vs_default": row["ratio_vs_default_median"],
                         "ratio_vs_default_min": row["ratio_vs_default_min"], "reps": row["reps"]},
        }


def _stat(record: dict, stat: str) -> float | None:
    from ..results.records import as_record

    view = as_record(record)
    return view.stat_ms(stat) if view.usable else None


def tune(
    model_path: str,
    base: BenchParams,
    threads: Sequence[int],
    *,
    engines: Sequence[str] = tuple(ENGINES),
    reps: int = 3,
    stat: str = "p50",
    measure: Callable[[Sequence[BenchParams]], list[dict]] | None = None,
    log: Callable[[str], None] = lambda _m: None,
) -> TuneOutcome:
    """Measure every candidate ``reps`` times, interleaved; pick the fastest against the defaults.

    ``measure(params_list)`` returns one ``edgenet.result/1`` record per setting, in order
    (default: a child process per setting on this machine).
    """
    from ..results.records import as_record

    if reps < 1:
        raise EdgenetError(f"reps must be >= 1, got {reps}")
    settings = candidates(base, threads, engines)
    reference = replace(settings[0], threads=1, **ENGINES[DEFAULT_ENGINE])  # `edgenet bench`'s defaults
    if reference not in settings:
        settings.insert(0, reference)
    if measure is None:
        from .runner import run_settings

        def measure(params_list):
            return [r.to_record() for r in run_settings([model_path], list(params_list))]

    values: dict[BenchParams, list[float | None]] = {p: [] for p in settings}
    records: list[dict] = []
    for rep in range(reps):
        order = settings if rep % 2 == 0 else settings[::-1]
        new = measure(order)
        for params, record in zip(order, new, strict=True):
            values[params].append(_stat(record, stat))
            records.append(record)
            error = as_record(record).error
            if error:
                log(f"rep {rep + 1}/{reps} {params.label()}: {error}")
        done = ", ".join(f"{p.label()} {v[-1]:.3f}" for p, v in values.items() if v[-1] is not None)
        log(f"rep {rep + 1}/{reps} ({stat} ms): {done}")

    def ratios(a: BenchParams, b: BenchParams) -> list[float]:
        return [x / y for x, y in zip(values[a], values[b], strict=True) if x is not None and y]

    rows = []
    for params in settings:
        ok = [v for v in values[params] if v is not None]
        same_threads = replace(params, **ENGINES[DEFAULT_ENGINE])
        vs_default = ratios(params, reference)
        vs_same = ratios(params, same_threads) if same_threads in values else []
        rows.append({
            "setting": params.label(),
            "engine": engine_of(params),
            "threads": params.threads,
            "reps": len(ok),
            f"{stat}_median_ms": statistics.median(ok) if ok else None,
            f"{stat}_min_ms": min(ok) if ok else None,
            "init_ms_median": _median_of(records, params, "init_ms"),
            "peak_rss_mb_median": _median_field(records, params, "peak_rss_mb"),
            "init_anon_mb_median": _median_field(records, params, "init_anon_mb"),
            "init_file_mb_median": _median_field(records, params, "init_file_mb"),
            "ratio_vs_default_median": statistics.median(vs_default) if vs_default else None,
            "ratio_vs_default_min": min(vs_default) if vs_default else None,
            "ratio_vs_same_threads_median": statistics.median(vs_same) if vs_same else None,
            "ratio_vs_same_threads_min": min(vs_same) if vs_same else None,
            "failed": len(values[params]) - len(ok),
        })
    complete = [(r, p) for r, p in zip(rows, settings, strict=True)
                if r["failed"] == 0 and r["ratio_vs_default_median"] is not None]
    pick = min(complete, key=lambda rp: rp[0]["ratio_vs_default_median"])[1] if complete else None
    return TuneOutcome(tuple(records), tuple(rows), pick, reference, stat)


def _matching(records, params: BenchParams) -> list:
    from ..results.records import usable_bench

    return [r for r in usable_bench(records) if r.threads == params.threads and r.api == params.api
            and (r.xnnpack is not False) == params.xnnpack and r.xnnpack_latest == params.xnnpack_latest
            and r.xnnpack_weight_cache == params.xnnpack_weight_cache and r.ynnpack == params.ynnpack]


def _median_of(records, params, key) -> float | None:
    found = [getattr(r.latency, key, None) for r in _matching(records, params)]
    found = [v for v in found if v is not None]
    return statistics.median(found) if found else None


def _median_field(records, params, field: str) -> float | None:
    found = [getattr(r, field) for r in _matching(records, params) if getattr(r, field) is not None]
    return statistics.median(found) if found else None


def load_settings(path) -> dict:
    """The runtime fields of a settings file written by ``edgenet tune --save-settings``."""
    import json

    from ..errors import InputFileError
    from ..fsutil import read_input_text

    text = read_input_text(path, "a settings file (edgenet tune --save-settings)")
    try:
        document = json.loads(text)
        fields = document["settings"]
        if document.get("schema") != SETTINGS_SCHEMA or not isinstance(fields, dict):
            raise KeyError
        settings = {k: fields[k] for k in RUNTIME_FIELDS if k != "ynnpack"}
        settings["ynnpack"] = bool(fields.get("ynnpack", False))  # settings files from before issue 24 have none
        replace(BenchParams(), **settings)  # validates
        return settings
    except (json.JSONDecodeError, KeyError, TypeError, ValueError) as exc:
        raise InputFileError(path, f"not an {SETTINGS_SCHEMA} settings file ({type(exc).__name__})") from None
