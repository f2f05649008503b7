"""Listeners: how results are shown and stored while a sweep runs (console, JSON lines, CSV)."""

from __future__ import annotations

import sys
from pathlib import Path
from typing import TextIO

from .. import results
from .params import BenchParams

__all__ = [
    "BenchListener",
    "ConsoleTableListener",
    "ProgressListener",
    "JsonLinesListener",
    "CsvListener",
    "result_row",
    "TABLE_HEADERS",
]

TABLE_HEADERS = {
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


class BenchListener:
    """Hooks called by :func:`edgenet.bench.runner.run_sweep`; override what you need."""

    def on_start(self, n_settings: int) -> None:
        """Called once, before the first setting."""

    def on_setting(self, model_path: Path, params: BenchParams) -> None:
        """Called before each (model, params) setting is measured."""

    def on_result(self, result) -> None:
        """Called with each setting's BenchResult as soon as it is known."""

    def on_end(self, results_list) -> None:
        """Called once with every result, in order."""


def _r(value, digits: int = 3):
    return None if value is None else round(value, digits)


def result_row(result) -> dict:
    """One table row (rounded for people; the JSON keeps full precision)."""
    stats = result.latency
    delegate = result.delegate["name"] if result.delegate else ("cpu" if result.params.delegate == "cpu" else "-")
    return {
        "model": Path(result.model_path).name,
        "threads": result.params.threads,
        "delegate": delegate + ("" if result.params.xnnpack else " (no xnnpack)"),
        "runs": result.runs,
        "init_ms": _r(result.init_ms),
        "first_ms": _r(result.first_ms),
        "mean_ms": _r(stats.mean) if stats and result.ok else None,
        "p50_ms": _r(stats.p50) if stats and result.ok else None,
        "p90_ms": _r(stats.p90) if stats and result.ok else None,
        "p99_ms": _r(stats.p99) if stats and result.ok else None,
        "std_ms": _r(stats.std) if stats and result.ok else None,
        "peak_rss_mb": _r(result.peak_rss_mb, 1),
        "status": "ok" if result.ok else "FAILED",
    }


class ConsoleTableListener(BenchListener):
    """Prints one table of all settings at the end (results: stdout by default)."""

    def __init__(self, stream: TextIO | None = None):
        self.stream = stream

    def on_end(self, results_list) -> None:
        from ..cli.common import table

        stream = self.stream or sys.stdout
        stream.write(table([result_row(r) for r in results_list], TABLE_HEADERS) + "\n")
        stream.flush()


class ProgressListener(BenchListener):
    """Progress text and failures on stderr, one line each."""

    def __init__(self, stream: TextIO | None = None):
        self.stream = stream
        self.total = 0
        self.index = 0

    def _write(self, text: str) -> None:
        stream = self.stream or sys.stderr
        stream.write(text + "\n")
        stream.flush()

    def on_start(self, n_settings: int) -> None:
        self.total = n_settings

    def on_setting(self, model_path: Path, params: BenchParams) -> None:
        self.index += 1
        self._write(f"[{self.index}/{self.total}] {model_path.name} threads={params.threads} {params.delegate}")

    def on_result(self, result) -> None:
        if not result.ok:
            self._write(f"error: {result.error}")
        elif result.latency:
            self._write(f"  p50 {result.latency.p50:.3f} ms over {result.runs} runs")


class JsonLinesListener(BenchListener):
    """Appends each record as soon as its setting finishes (atomic), so Ctrl-C keeps finished work.

    ``path="-"`` writes JSON lines to ``stream`` (stdout) instead, for ``--remote``.
    """

    def __init__(self, path: str | Path, stream: TextIO | None = None):
        self.path = path
        self.stream = stream

    def on_result(self, result) -> None:
        record = result.to_record()
        if str(self.path) == "-":
            results.write_records(self.stream or sys.stdout, [record])
        else:
            results.append_records(self.path, [record])


class CsvListener(BenchListener):
    """Writes all records of the sweep as CSV at the end (atomic; replaces the file)."""

    def __init__(self, path: str | Path, include_samples: bool = False):
        self.path = path
        self.include_samples = include_samples

    def on_end(self, results_list) -> None:
        results.write_csv(self.path, [r.to_record() for r in results_list], include_samples=self.include_samples)
