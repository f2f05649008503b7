"""How far to trust a latency number: confidence intervals and stability verdicts.

Pure functions over the raw timed runs a bench record keeps (``samples_ms``); numpy and the
standard library only, so ``select`` on a Raspberry Pi needs nothing more.

**Intervals.** A percentile's interval comes from the order statistics, which needs no
assumption about the shape of the distribution (latencies are skewed, long-tailed and on a busy
machine bimodal, so a normal approximation or a bootstrap of a p99 would be wrong in ways nobody
sees). With ``n`` independent runs, the number ``B`` of runs faster than the true percentile
``q`` is Binomial(n, q), so the ``l``-th and ``u``-th fastest runs bracket it with probability
``P(l <= B <= u-1)``. :func:`order_statistic_ranks` takes the ranks with at most ``(1-c)/2`` in
each tail, so the coverage is at least ``c`` (it is computed exactly and reported). When even the
slowest run cannot bound the percentile -- p99 from 50 runs -- the upper end is unbounded and the
number of runs needed is said: that is the honest answer to "p99 from 50 runs".
The mean gets a normal-approximation interval; ``min`` and ``max`` get none.

**Verdicts.** Independence is what the interval assumes, and a shared machine breaks it. Each
record is checked for: drift (the median of the second half of the runs against the first
half), more than one mode (clusters of runs, e.g. another process taking the core half of the
time), throttling (a Raspberry Pi's ``vcgencmd get_throttled`` before and after) and too few runs
for the percentile asked. An unstable record is marked; its interval is still the best
statement about those runs, but it does not describe the device at rest.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from statistics import NormalDist

import numpy as np

from ..bench.params import QUANTILES, runs_needed

__all__ = [
    "CONFIDENCE",
    "PERCENTILES",
    "VERDICTS",
    "Interval",
    "Stability",
    "binomial_cdf",
    "budget_verdict",
    "count_modes",
    "drift",
    "fmt_ms",
    "interval_for",
    "order_statistic_ranks",
    "percentile_interval",
    "runs_needed",
    "stability",
    "throttling",
]

CONFIDENCE = 0.95
#: Statistic name -> the quantile it estimates (the harness's table).
PERCENTILES: dict[str, float] = QUANTILES
FITS, DOES_NOT_FIT, TOO_CLOSE = "fits", "does not fit", "too close to call"
VERDICTS = (FITS, DOES_NOT_FIT, TOO_CLOSE)

#: Drift: the halves' medians differ by more than this (percent) AND their intervals are disjoint.
DRIFT_PCT = 5.0
#: Modes: each cluster holds at least this share of the runs and sits this far (relative) from the next.
MODE_MIN_SHARE = 0.10
MODE_MIN_SEPARATION = 0.05
#: ... and the density between two clusters falls below this fraction of the smaller peak.
MODE_MAX_VALLEY = 0.5
#: Below this many runs a record is too short to judge drift or modes (not an issue by itself).
MIN_RUNS_TO_JUDGE = 20


def fmt_ms(value: float) -> str:
    """Milliseconds with two decimals, or three significant digits below 1 ms (0.0123, not 0.01)."""
    return f"{value:.2f}" if abs(value) >= 1.0 else f"{value:.3g}"


def binomial_cdf(n: int, p: float) -> np.ndarray:
    """``P(B <= k)`` for ``k = 0..n``, B ~ Binomial(n, p), from log-pmfs (exact to float precision)."""
    k = np.arange(n + 1, dtype=np.float64)
    if p <= 0.0 or p >= 1.0:
        return np.where(k >= (n if p >= 1.0 else 0), 1.0, 0.0)
    lg = np.array([math.lgamma(i + 1.0) for i in range(n + 1)])
    log_pmf = lg[n] - lg - lg[::-1] + k * math.log(p) + (n - k) * math.log1p(-p)
    return np.minimum(np.cumsum(np.exp(log_pmf - log_pmf.max())) * math.exp(log_pmf.max()), 1.0)


def order_statistic_ranks(n: int, q: float, confidence: float = CONFIDENCE) -> tuple[int | None, int | None, float]:
    """1-based ranks ``(l, u)`` of the sorted runs bracketing the ``q`` quantile, and their exact coverage.

    ``l`` is None when no run is surely below the quantile, ``u`` None when no run is surely above
    it (too few runs); the coverage then counts that side as unbounded.
    """
    if n < 1:
        return None, None, 1.0
    tail = (1.0 - confidence) / 2.0
    cdf = binomial_cdf(n, q)  # cdf[k] = P(B <= k)
    # Largest l >= 1 with P(B <= l-1) <= tail; smallest u <= n with P(B <= u-1) >= 1 - tail.
    lows = np.flatnonzero(cdf[:n] <= tail)
    low = int(lows[-1]) + 1 if lows.size else None
    highs = np.flatnonzero(cdf[:n] >= 1.0 - tail)
    high = int(highs[0]) + 1 if highs.size else None
    covered = (cdf[high - 1] if high is not None else 1.0) - (cdf[low - 1] if low is not None else 0.0)
    return low, high, float(covered)


@dataclass(frozen=True)
class Interval:
    """A confidence interval for one latency statistic; None at an end means unbounded there."""

    stat: str
    low_ms: float | None
    high_ms: float | None
    confidence: float  # the level asked for
    coverage: float | None  # exact coverage of the order statistics used (None: approximate method)
    runs: int
    method: str  # "order statistics" | "normal approximation" | "none"
    runs_needed: int | None = None  # for a percentile: the runs both ends need

    @property
    def bounded(self) -> bool:
        return self.low_ms is not None and self.high_ms is not None

    def describe(self) -> str:
        """``9.10-10.30 ms`` or ``9.10 ms-unbounded``; the level is said by the caller's heading."""
        if self.method == "none":
            return "no interval"
        low = "unbounded" if self.low_ms is None else fmt_ms(self.low_ms)
        high = "unbounded" if self.high_ms is None else fmt_ms(self.high_ms)
        return f"{low}-{high} ms"

    def to_dict(self) -> dict:
        return {
            "stat": self.stat, "low_ms": self.low_ms, "high_ms": self.high_ms, "confidence": self.confidence,
            "coverage": self.coverage, "runs": self.runs, "method": self.method, "runs_needed": self.runs_needed,
        }


def percentile_interval(samples_ms, q: float, confidence: float = CONFIDENCE, stat: str | None = None) -> Interval:
    """Distribution-free interval for the ``q`` quantile from the order statistics (see module doc)."""
    data = np.sort(np.asarray(samples_ms, dtype=np.float64))
    n = int(data.size)
    low, high, covered = order_statistic_ranks(n, q, confidence)
    return Interval(
        stat=stat or f"q{q:g}",
        low_ms=float(data[low - 1]) if low is not None else None,
        high_ms=float(data[high - 1]) if high is not None else None,
        confidence=confidence,
        coverage=covered,
        runs=n,
        method="order statistics",
        runs_needed=runs_needed(q, confidence),
    )


def interval_for(samples_ms, stat: str, confidence: float = CONFIDENCE) -> Interval | None:
    """The interval of ``stat`` (p50..p99, mean; min/max get method "none"); None without samples."""
    data = np.asarray(samples_ms if samples_ms is not None else [], dtype=np.float64)
    if data.size == 0:
        return None
    if stat in PERCENTILES:
        return percentile_interval(data, PERCENTILES[stat], confidence, stat=stat)
    if stat == "mean" and data.size >= 2:
        half = NormalDist().inv_cdf(0.5 + confidence / 2.0) * float(data.std(ddof=1)) / math.sqrt(data.size)
        mean = float(data.mean())
        return Interval(stat, mean - half, mean + half, confidence, None, int(data.size), "normal approximation")
    return Interval(stat, None, None, confidence, None, int(data.size), "none")


def budget_verdict(interval: Interval | None, value_ms: float, budget_ms: float) -> str:
    """"fits" when the whole interval is within the budget, "does not fit" when all of it is over,
    else "too close to call". Without an interval (no raw runs, or min/max) the point decides."""
    if interval is None or interval.method == "none":
        return FITS if value_ms <= budget_ms else DOES_NOT_FIT
    if interval.high_ms is not None and interval.high_ms <= budget_ms:
        return FITS
    if interval.low_ms is not None and interval.low_ms > budget_ms:
        return DOES_NOT_FIT
    return TOO_CLOSE


# --- stability ------------------------------------------------------------------------------------


def drift(samples_ms, confidence: float = CONFIDENCE) -> float | None:
    """Percent change of the second half's median over the first half's when it is both large
    (> ``DRIFT_PCT``) and beyond noise (the halves' median intervals are disjoint); else 0.0.
    None when there are too few runs to judge."""
    data = np.asarray(samples_ms, dtype=np.float64)
    if data.size < MIN_RUNS_TO_JUDGE:
        return None
    first, second = data[: data.size // 2], data[data.size // 2 :]
    m1, m2 = float(np.median(first)), float(np.median(second))
    change = 100.0 * (m2 - m1) / m1 if m1 > 0 else 0.0
    a = percentile_interval(first, 0.5, confidence)
    b = percentile_interval(second, 0.5, confidence)
    disjoint = (a.high_ms is not None and b.low_ms is not None and a.high_ms < b.low_ms) or (
        b.high_ms is not None and a.low_ms is not None and b.high_ms < a.low_ms
    )
    return change if (disjoint and abs(change) > DRIFT_PCT) else 0.0


def count_modes(samples_ms) -> tuple[float, ...]:
    """Centres (ms) of the clusters of runs: one entry for a unimodal record.

    Design: a Gaussian kernel density of the log latencies (timing noise is multiplicative, and the
    log makes latency's long right tail nearly symmetric so that it does not pass for a second
    mode), Silverman's bandwidth with the robust spread ``min(sd, IQR/1.34)`` (which does not
    smooth two clusters into one the way the plain sd does). Its local maxima split the runs at the
    density's valleys; a cluster counts only if it holds at least ``MODE_MIN_SHARE`` of the runs
    (a few slow outliers are a tail, not a mode) and lies at least ``MODE_MIN_SEPARATION`` away
    from its neighbour (a 1 % wobble cannot change a decision); weaker clusters merge into their
    neighbour, and two clusters whose valley is shallower than ``MODE_MAX_VALLEY`` of the smaller
    peak are one (kernel wiggles on a unimodal record). Hartigan's dip test would give a p-value, but says nothing about how far apart or
    how big the clusters are, which is what matters to a budget.
    """
    data = np.sort(np.log(np.asarray(samples_ms, dtype=np.float64)))
    n = data.size
    if n < MIN_RUNS_TO_JUDGE:
        return (float(np.exp(np.median(data))),) if n else ()
    q75, q25 = np.percentile(data, [75, 25])
    spread = min(float(data.std(ddof=1)), float(q75 - q25) / 1.34) or float(data.std(ddof=1))
    if spread <= 0:
        return (float(np.exp(data[0])),)
    bandwidth = 0.9 * spread * n ** (-0.2)
    grid = np.linspace(data[0] - 3 * bandwidth, data[-1] + 3 * bandwidth, 512)
    density = np.exp(-0.5 * ((grid[:, None] - data[None, :]) / bandwidth) ** 2).sum(axis=1)
    peaks = [i for i in range(1, grid.size - 1) if density[i] >= density[i - 1] and density[i] > density[i + 1]]
    if not peaks:
        return (float(np.exp(np.median(data))),)
    # The lowest point between successive peaks; the runs are cut there into clusters.
    valleys = [a + int(np.argmin(density[a : b + 1])) for a, b in zip(peaks, peaks[1:], strict=False)]
    while len(peaks) > 1:
        bounds = [0, *np.searchsorted(data, grid[valleys]).tolist(), n]
        shares = [(hi - lo) / n for lo, hi in zip(bounds, bounds[1:], strict=False)]
        scores = [_valley_weakness(density, grid, peaks, valleys, shares, v) for v in range(len(valleys))]
        worst = int(np.argmax(scores))
        if scores[worst] < 0:
            break
        keep = max(peaks[worst], peaks[worst + 1], key=lambda i: density[i])
        peaks[worst : worst + 2] = [keep]
        del valleys[worst]
    bounds = [0, *np.searchsorted(data, grid[valleys]).tolist(), n]
    clusters = [data[lo:hi] for lo, hi in zip(bounds, bounds[1:], strict=False)]
    return tuple(float(np.exp(np.median(c))) for c in clusters)


def _valley_weakness(density, grid, peaks, valleys, shares, v: int) -> float:
    """How little the ``v``-th valley separates its two neighbours; negative when it is a real gap.

    No real gap: a shallow valley, peaks too close, or either side holding too few runs."""
    a, b = peaks[v], peaks[v + 1]
    depth = float(density[valleys[v]] / min(density[a], density[b]))
    smaller = min(shares[v], shares[v + 1])
    if depth > MODE_MAX_VALLEY or grid[b] - grid[a] < math.log1p(MODE_MIN_SEPARATION) or smaller < MODE_MIN_SHARE:
        return depth + 1.0 - smaller
    return -1.0


#: ``vcgencmd get_throttled`` bits: now (0-3) and since boot (16-19).
_THROTTLE_BITS = {0x1: "under-voltage", 0x2: "frequency capped", 0x4: "throttled", 0x8: "soft temperature limit"}


def _flags(text: str | None) -> int | None:
    if text is None:
        return None
    try:
        return int(str(text), 0)
    except ValueError:
        return None


def throttling(before: str | None, after: str | None) -> str | None:
    """What throttled the device during a run (a Pi's flags now, or newly set since boot), else None."""
    b, a = _flags(before), _flags(after)
    if a is None:
        return None
    now = a & 0xF
    new = ((a >> 16) & 0xF) & ~((b >> 16) & 0xF if b is not None else 0)
    hit = now | new
    if not hit:
        return None
    return ", ".join(name for bit, name in _THROTTLE_BITS.items() if hit & bit) + f" (get_throttled {after})"


@dataclass(frozen=True)
class Stability:
    """The verdict on one record's runs; ``issues`` empty means stable."""

    runs: int
    drift_pct: float | None
    modes_ms: tuple[float, ...]
    throttled: str | None
    issues: tuple[str, ...]

    @property
    def stable(self) -> bool:
        return not self.issues

    @property
    def verdict(self) -> str:
        return "stable" if self.stable else "unstable: " + "; ".join(self.issues)

    def to_dict(self) -> dict:
        return {"runs": self.runs, "drift_pct": self.drift_pct, "modes_ms": list(self.modes_ms),
                "throttled": self.throttled, "issues": list(self.issues), "stable": self.stable}


def stability(
    samples_ms,
    stat: str = "p50",
    throttled_before: str | None = None,
    throttled_after: str | None = None,
    confidence: float = CONFIDENCE,
) -> Stability:
    """Drift, modes, throttling and run count of one record's timed runs (see the module doc)."""
    data = np.asarray(samples_ms if samples_ms is not None else [], dtype=np.float64)
    issues = []
    if data.size == 0:
        return Stability(0, None, (), throttling(throttled_before, throttled_after), ("no raw runs recorded",))
    change = drift(data, confidence)
    if change:
        issues.append(f"drifted {change:+.0f}% from the first half of the runs to the second")
    modes = count_modes(data)
    if len(modes) > 1:
        issues.append(f"{len(modes)} modes (" + ", ".join(f"{m:.2f}" for m in modes) + " ms)")
    throttled = throttling(throttled_before, throttled_after)
    if throttled:
        issues.append(f"throttled: {throttled}")
    if stat in PERCENTILES:
        needed = runs_needed(PERCENTILES[stat], confidence)
        if data.size < needed:
            issues.append(f"too few runs for {stat}: {data.size}, a {confidence:.0%} interval needs {needed}")
    return Stability(int(data.size), change, modes, throttled, tuple(issues))
