"""Latency benchmark harness: params, runner, listeners, result (see :mod:`edgenet.bench.runner`)."""

from __future__ import annotations

from .listeners import (
    BenchListener,
    ConsoleTableListener,
    CsvListener,
    JsonLinesListener,
    ProgressListener,
)
from .params import BenchParams, BenchParamsError
from .result import BenchResult, LatencyStats
from .runner import TFLiteBackend, measure, run_in_child, run_in_process, run_settings

__all__ = [
    "BenchListener",
    "BenchParams",
    "BenchParamsError",
    "BenchResult",
    "ConsoleTableListener",
    "CsvListener",
    "JsonLinesListener",
    "LatencyStats",
    "ProgressListener",
    "TFLiteBackend",
    "measure",
    "run_in_child",
    "run_in_process",
    "run_settings",
]
