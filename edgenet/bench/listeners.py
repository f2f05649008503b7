"""Listeners: how results are shown and stored while a sweep runs (console, JSON lines, CSV)."""

from __future__ import annotations

import sys
from pathlib import Path
from typing import TextIO

from .. import results
from ..results.table import BENCH_COLUMNS, bench_row, table
from .params import BenchParams

__all__ = [
    "BenchListener",
    "ConsoleTableListener",
    "ProgressListener",
    "JsonLinesListener",
    "CsvListener",
    "replay",
    "result_row",
    "TABLE_HEADERS",
]

#: The bench table's columns (defined with the row in :mod:`edgenet.results.table`).
TABLE_HEADERS = BENCH_COLUMNS


class BenchListener:
    """Hooks called by :func:`edgenet.bench.runner.run_settings`; override what you need."""

    def on_start(self, n_settings: int) -> None:
        """Called once, before the first setting."""

    def on_setting(self, model_path: Path, params: BenchParams) -> None:
        """Called before each (model, params) setting is measured."""

    def on_result(self, result) -> None:
        """Called with each setting's BenchResult as soon as it is known."""

    def on_end(self, results_list) -> None:
        """Called once with every result, in order."""


def _record(result) -> dict:
    """The stored record of a result: a live BenchResult's, or a record measured on another machine."""
    return result if isinstance(result, dict) else result.to_record()


def replay(records: list[dict], listeners) -> None:
    """Feed records measured elsewhere (``bench --remote``) through the same listeners as a local run."""
    listeners = list(listeners)
    for listener in listeners:
        listener.on_start(len(records))
    for record in records:
        for listener in listeners:
            listener.on_result(record)
    for listener in listeners:
        listener.on_end(records)


def result_row(result) -> dict:
    """One table row of a :class:`~edgenet.bench.result.BenchResult` (the row of its record)."""
    return bench_row(result.to_record())


class ConsoleTableListener(BenchListener):
    """Prints one table of all settings at the end (results: stdout by default)."""

    def __init__(self, stream: TextIO | None = None):
        self.stream = stream

    def on_end(self, results_list) -> None:
        stream = self.stream or sys.stdout
        stream.write(table([bench_row(_record(r)) for r in results_list], TABLE_HEADERS) + "\n")
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
        self._write(f"[{self.index}/{self.total}] {model_path.name} threads={params.threads} {params.delegate}"
                    + ("" if params.label().startswith("interpreter/xnnpack t=") else f" ({params.label()})"))

    def on_result(self, result) -> None:
        view = results.as_record(_record(result))
        if not view.ok:
            self._write(f"error: {view.error}")
        elif view.stat_ms("p50") is not None:
            self._write(f"  p50 {view.stat_ms('p50'):.3f} ms over {view.runs} runs")


class JsonLinesListener(BenchListener):
    """Appends each record as soon as its setting finishes (atomic), so Ctrl-C keeps finished work.

    ``path="-"`` writes JSON lines to ``stream`` (stdout) instead, for ``--remote``.
    """

    def __init__(self, path: str | Path, stream: TextIO | None = None):
        self.path = path
        self.stream = stream

    def on_result(self, result) -> None:
        record = _record(result)
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
        results.write_csv(self.path, [_record(r) for r in results_list], include_samples=self.include_samples)
