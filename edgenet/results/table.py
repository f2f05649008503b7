"""Tables for people: the one table printer of every command, and the bench table's rows.

Rows are built from typed record views (:mod:`.records`), so a table printed while a sweep runs
(:mod:`edgenet.bench.listeners`) and one printed from records that came back from another machine
(``edgenet bench --remote``) are the same table.
"""

from __future__ import annotations

from pathlib import PurePath

from .records import BenchRecord, as_record

__all__ = ["BENCH_COLUMNS", "bench_row", "table"]

#: Bench table: row key -> column title (and the columns, in order).
BENCH_COLUMNS: dict[str, str] = {
    "model": "model",
    "threads": "threads",
    "delegate": "delegate",
    "runs": "runs",
    "init_ms": "init ms",
    "first_ms": "first ms",
    "mean_ms": "mean ms",
    "p50_ms": "p50 ms",
    "p90_ms": "p90 ms",
    "p99_ms": "p99 ms",
    "std_ms": "std ms",
    "peak_rss_mb": "RSS MB",
    "status": "status",
}


def table(rows: list[dict], headers: dict[str, str] | None = None, floatfmt: str = "g") -> str:
    """Render rows with tabulate; ``headers`` maps keys to column titles (and picks the columns)."""
    from tabulate import tabulate

    if headers is None:
        headers = {k: k for k in (rows[0] if rows else {})}
    data = [[row.get(k, "") for k in headers] for row in rows]
    return tabulate(data, headers=list(headers.values()), tablefmt="github", floatfmt=floatfmt, disable_numparse=False)


def _r(value: float | None, digits: int = 3) -> float | None:
    return None if value is None else round(value, digits)


def bench_row(record: dict | BenchRecord) -> dict:
    """One row of the bench table (rounded for people; the JSON keeps full precision).

    The model column is the file name (``b0_int8.tflite``), as the user named it on the command line.

    The delegate column names the delegate that really ran; a setting that asked for one that did
    not run shows ``-``, never a CPU figure labelled ``edgetpu``.
    """
    r = as_record(record)
    lat = r.latency if r.ok else None
    delegate = r.delegate_ran or ("cpu" if (r.delegate_setting or "cpu") == "cpu" else "-")
    return {
        "model": PurePath(r.model.path).name if r.model.path else r.model.name,
        "threads": r.threads,
        "delegate": delegate + ("" if r.xnnpack is not False else " (no xnnpack)"),
        "runs": r.runs,
        "init_ms": _r(r.latency.init_ms) if r.latency else None,
        "first_ms": _r(r.latency.first_ms) if r.latency else None,
        "mean_ms": _r(lat.mean_ms) if lat else None,
        "p50_ms": _r(lat.p50_ms) if lat else None,
        "p90_ms": _r(lat.p90_ms) if lat else None,
        "p99_ms": _r(lat.p99_ms) if lat else None,
        "std_ms": _r(lat.std_ms) if lat else None,
        "peak_rss_mb": _r(r.peak_rss_mb, 1),
        "status": "ok" if r.ok else "FAILED",
    }
