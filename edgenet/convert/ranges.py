"""Activation ranges beyond min/max, from histograms the calibrator collects (still full-integer).

min/max calibration lets one outlier stretch a tensor's range, so ordinary values get few int8
steps (EfficientNet's swish/SE tails: tensorflow/tensorflow#49927, tensorflow/tpu#549). While
:func:`edgenet.convert.calibrator.tensor_ranges` runs the calibration samples it can also fill a
:class:`Histogram` per tensor: 2048 bins over ``[-R, R)``, ``R`` a power of two that doubles (two
neighbouring bins merge) when a value exceeds it, so a tensor costs 2 x 2048 counts whatever the
number of samples. Samples alternate between two folds (even/odd), for ``auto``.

Range methods (``--ranges``):

* ``minmax``: the tensor's min/max over all samples (TF's rule; the default);
* ``percentile``: the 0.01th and 99.99th percentiles (:data:`PERCENTILE`), within min/max;
* ``mse``: the clipping range minimising the expected quantization MSE on the histogram:
  clipping error of the values outside plus ``step^2 / 12`` rounding noise of those inside, with
  ``step = (hi - lo) / 255``, searched over a grid of ``lo`` and ``hi``;
* ``auto``: per tensor, the method whose range, fitted on one fold, gives the lower MSE on the
  other fold (both ways): a method that clips an outlier the other fold also has loses. The
  held-out images of the fidelity check are never used here.

Graph inputs (raw pixels, scale 1) and outputs (logits: clipping the top logit would change the
answer) always keep min/max. Only numpy.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field

import numpy as np

RANGE_METHODS = ("minmax", "percentile", "mse", "auto")
FITTED_METHODS = ("minmax", "percentile", "mse")
BINS = 2048
PERCENTILE = 99.99
#: Grid points per side of the MSE search (candidates between the extreme and 1/64 of it, geometric).
MSE_GRID = 48
LEVELS = 255  # int8 steps across the range


@dataclass
class Histogram:
    """Counts of a tensor's values in :data:`BINS` bins over ``[-R, R)`` per fold, plus exact min/max."""

    radius: float = 0.0
    counts: np.ndarray = field(default_factory=lambda: np.zeros((2, BINS), dtype=np.int64))
    low: float = math.inf
    high: float = -math.inf

    def add(self, values: np.ndarray, fold: int) -> None:
        v = np.asarray(values, dtype=np.float32).ravel()
        if v.size == 0:
            return
        low, high = float(v.min()), float(v.max())
        self.low, self.high = min(self.low, low), max(self.high, high)
        peak = max(abs(low), abs(high))
        if peak == 0.0 and self.radius == 0.0:
            self.radius = 1.0
        if self.radius == 0.0:
            self.radius = 2.0 ** math.ceil(math.log2(peak))
        while peak >= self.radius:
            # Double R: pairs of bins merge into the central half.
            merged = self.counts.reshape(2, BINS // 2, 2).sum(axis=2)
            self.counts = np.zeros_like(self.counts)
            self.counts[:, BINS // 4 : BINS // 4 + BINS // 2] = merged
            self.radius *= 2.0
        index = np.floor((v + self.radius) * (BINS / (2.0 * self.radius))).astype(np.int64)
        np.clip(index, 0, BINS - 1, out=index)
        self.counts[fold] += np.bincount(index, minlength=BINS)

    def centres(self) -> np.ndarray:
        width = 2.0 * self.radius / BINS
        return -self.radius + width * (np.arange(BINS) + 0.5)

    def total(self, fold: int | None = None) -> np.ndarray:
        return self.counts.sum(axis=0) if fold is None else self.counts[fold]


def _nudge(low: float, high: float) -> tuple[float, float]:
    """TFLite ranges include zero."""
    return min(low, 0.0), max(high, 0.0)


def percentile_range(hist: Histogram, counts: np.ndarray | None = None,
                     percentile: float = PERCENTILE) -> tuple[float, float]:
    counts = hist.total() if counts is None else counts
    n = counts.sum()
    if n == 0:
        return _nudge(hist.low, hist.high)
    cdf = np.cumsum(counts) / n
    centres = hist.centres()
    width = 2.0 * hist.radius / BINS
    tail = 1.0 - percentile / 100.0
    low = centres[min(int(np.searchsorted(cdf, tail)), BINS - 1)] - width / 2
    high = centres[min(int(np.searchsorted(cdf, 1.0 - tail)), BINS - 1)] + width / 2
    return _nudge(max(low, hist.low), min(high, hist.high))


def expected_mse(hist: Histogram, counts: np.ndarray, low: np.ndarray, high: np.ndarray) -> np.ndarray:
    """Quantization MSE (per value) of ranges ``[low, high]`` (broadcast) on ``counts``: clipping + rounding."""
    centres = hist.centres()
    c0 = np.concatenate([[0.0], np.cumsum(counts)])
    c1 = np.concatenate([[0.0], np.cumsum(counts * centres)])
    c2 = np.concatenate([[0.0], np.cumsum(counts * centres**2)])
    n = c0[-1]
    if n == 0:
        return np.zeros(np.broadcast(low, high).shape)
    i_low = np.searchsorted(centres, low)  # bins below low: [0, i_low)
    i_high = np.searchsorted(centres, high, side="right")  # bins above high: [i_high, BINS)
    below = c2[i_low] - 2 * low * c1[i_low] + low**2 * c0[i_low]
    above = (c2[-1] - c2[i_high]) - 2 * high * (c1[-1] - c1[i_high]) + high**2 * (c0[-1] - c0[i_high])
    inside = c0[i_high] - c0[i_low]
    step = (high - low) / LEVELS
    return (below + above + inside * step**2 / 12.0) / n


def mse_range(hist: Histogram, counts: np.ndarray | None = None) -> tuple[float, float]:
    counts = hist.total() if counts is None else counts
    low0, high0 = _nudge(hist.low, hist.high)
    if counts.sum() == 0 or high0 - low0 <= 0:
        return low0, high0
    shrink = np.geomspace(1.0, 1.0 / 64.0, MSE_GRID)
    highs = high0 * shrink if high0 > 0 else np.zeros(1)
    lows = low0 * shrink if low0 < 0 else np.zeros(1)
    grid_low, grid_high = np.meshgrid(lows, highs, indexing="ij")
    mse = expected_mse(hist, counts, grid_low, grid_high)
    mse[(grid_high - grid_low) <= 0] = np.inf
    i, j = np.unravel_index(int(np.argmin(mse)), mse.shape)
    return float(grid_low[i, j]), float(grid_high[i, j])


def fitted_range(hist: Histogram, method: str, counts: np.ndarray | None = None) -> tuple[float, float]:
    if method == "minmax":
        return hist.low, hist.high
    if method == "percentile":
        return percentile_range(hist, counts)
    if method == "mse":
        return mse_range(hist, counts)
    raise ValueError(f"unknown range method {method!r}; choose from {', '.join(RANGE_METHODS)}")


def auto_method(hist: Histogram) -> str:
    """The fitted method with the lowest two-fold cross-validated MSE (min/max on ties)."""
    a, b = hist.counts[0], hist.counts[1]
    if a.sum() == 0 or b.sum() == 0:
        return "mse"
    scores = {}
    for method in FITTED_METHODS:
        score = 0.0
        for fit, test in ((a, b), (b, a)):
            low, high = fitted_range(hist, method, fit)
            score += float(expected_mse(hist, test, np.asarray(low), np.asarray(high)))
        scores[method] = score
    return min(FITTED_METHODS, key=lambda m: (scores[m], FITTED_METHODS.index(m)))


def choose_ranges(histograms: dict[int, Histogram], method: str,
                  keep_minmax: set[int] | frozenset[int] = frozenset()) -> dict[int, tuple[tuple[float, float], str]]:
    """``{tensor: ((low, high), method used)}``; tensors in ``keep_minmax`` (graph io) keep min/max."""
    if method not in RANGE_METHODS:
        raise ValueError(f"unknown range method {method!r}; choose from {', '.join(RANGE_METHODS)}")
    out = {}
    for index, hist in histograms.items():
        if not math.isfinite(hist.low):
            continue
        chosen = "minmax" if index in keep_minmax else (auto_method(hist) if method == "auto" else method)
        low, high = fitted_range(hist, chosen)
        out[index] = ((float(low), float(high)), chosen)
    return out
