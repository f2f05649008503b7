"""Numbers a user gives: finite, in range, and named in the error (durations, counts, factors, ports, budgets).

One rule for every number that crosses into edgenet, whatever the surface: a command-line option
(:class:`edgenet.cli.common.NumberType` wraps a :class:`Bounds`), a ``--cluster`` address's port, or a
parameter object of the Python API (``BenchParams``). ``nan``, ``inf`` and ``1e308`` never reach a
timer, a ``sleep`` or a socket: they end in one line naming what was wrong.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

from .errors import EdgenetError, printable

__all__ = [
    "Bounds", "NumberError", "BUDGET_MS", "COUNT", "DURATION_S", "FACTOR", "PERCENT", "PERCENT_FLOOR", "MEGABYTES", "PORT", "SEED",
    "THREADS", "TIMEOUT_S",
]


class NumberError(EdgenetError, ValueError):
    """A number that is not a number, not finite, or out of its range (the message names it)."""


@dataclass(frozen=True)
class Bounds:
    """The range a number may take: ``lo``..``hi`` (either end open), integer or real, with its unit."""

    lo: float
    hi: float
    lo_open: bool = False
    hi_open: bool = False
    integer: bool = False
    unit: str = ""

    def describe(self) -> str:
        """``above 0 and at most 86400 s``, ``from 1 to 65535``."""
        unit = f" {self.unit}" if self.unit else ""
        lo = f"above {self.lo:g}" if self.lo_open else f"at least {self.lo:g}"
        hi = f"below {self.hi:g}" if self.hi_open else f"at most {self.hi:g}"
        if not (self.lo_open or self.hi_open):
            return f"from {self.lo:g} to {self.hi:g}{unit}"
        return f"{lo} and {hi}{unit}"

    def check(self, value, name: str):
        """``value`` (a number or its text) as an int or float within the bounds; else :class:`NumberError`
        whose one line names ``name`` (an option, a field, ``--cluster port``)."""
        shown = printable(str(value))[:60]
        if isinstance(value, bool):
            raise NumberError(f"{name}: {shown!r} is not a number")
        if self.integer:
            if isinstance(value, float):
                if not value.is_integer():
                    raise NumberError(f"{name}: {shown!r} is not a whole number")
                value = int(value)
            try:
                number = int(str(value).strip(), 10) if not isinstance(value, int) else value
            except ValueError:
                raise NumberError(f"{name}: {shown!r} is not a whole number") from None
        else:
            try:
                number = float(value)
            except (TypeError, ValueError, OverflowError):
                raise NumberError(f"{name}: {shown!r} is not a number") from None
            if not math.isfinite(number):
                raise NumberError(f"{name}: {shown!r} is not a finite number")
        low_ok = number > self.lo if self.lo_open else number >= self.lo
        high_ok = number < self.hi if self.hi_open else number <= self.hi
        if not (low_ok and high_ok):
            raise NumberError(f"{name}: must be {self.describe()}, got {shown}")
        return number


ONE_DAY_S = 86_400.0
#: A duration in seconds (warm-up, minimum and maximum measured time): 0 up to a day.
DURATION_S = Bounds(0.0, ONE_DAY_S, unit="s")
#: A deadline in seconds: above 0, at most a day (a longer wait is a hang).
TIMEOUT_S = Bounds(0.0, ONE_DAY_S, lo_open=True, unit="s")
#: A latency budget in milliseconds: above 0, at most an hour.
BUDGET_MS = Bounds(0.0, 3_600_000.0, lo_open=True, unit="ms")
#: A count of things (runs, rounds, samples, images, rows): a whole number from 1.
COUNT = Bounds(1, 10_000_000, integer=True)
#: Interpreter threads.
THREADS = Bounds(1, 1024, integer=True)
#: A random seed: a whole number that numpy and TensorFlow both accept.
SEED = Bounds(0, 2**32 - 1, integer=True)
#: A share in percent.
PERCENT = Bounds(0.0, 100.0, unit="%")
#: A floor in percent that must ask for something (--min-agreement, --min-top1): above 0.
PERCENT_FLOOR = Bounds(0.0, 100.0, lo_open=True, unit="%")
#: A size in megabytes (MiB-based: resident memory, a model file): above 0, at most a terabyte.
MEGABYTES = Bounds(0.0, 1_048_576.0, lo_open=True, unit="MB")
#: A multiple of something (a budget, a latency): at least 1.
FACTOR = Bounds(1.0, 100.0, unit="x")
#: A TCP port.
PORT = Bounds(1, 65_535, integer=True)
