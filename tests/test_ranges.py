"""Range methods beyond min/max: histogram bookkeeping, the methods, and real full-int8 conversions."""

from __future__ import annotations

import numpy as np
import pytest

from edgenet.convert.ranges import BINS, Histogram, auto_method, choose_ranges, expected_mse, fitted_range


def test_histogram_growth_keeps_counts_and_extremes():
    rng = np.random.default_rng(0)
    hist = Histogram()
    a, b = rng.normal(0, 0.5, 10_000), rng.normal(0, 40.0, 10_000)  # the second forces R to double many times
    hist.add(a, 0)
    hist.add(b, 1)
    assert hist.counts.sum() == 20_000
    assert hist.low == pytest.approx(min(a.min(), b.min()), rel=1e-6)
    assert hist.radius >= max(abs(hist.low), abs(hist.high))
    # The histogram's mean is the data's mean within one bin width.
    centres = hist.centres()
    mean = float((hist.total() * centres).sum() / hist.total().sum())
    assert abs(mean - np.concatenate([a, b]).astype(np.float32).mean()) < 2 * hist.radius / BINS


def test_mse_and_percentile_clip_a_long_tail_that_minmax_keeps():
    rng = np.random.default_rng(1)
    values = rng.laplace(0, 1.0, 200_000)  # a long tail, as swish/SE activations have
    hist = Histogram()
    hist.add(values, 0)
    low_mm, high_mm = fitted_range(hist, "minmax")
    low_p, high_p = fitted_range(hist, "percentile")
    low_mse, high_mse = fitted_range(hist, "mse")
    assert high_mm == pytest.approx(values.max(), rel=1e-6)
    assert high_p < high_mm and low_p > low_mm
    assert high_mse < 0.95 * high_mm and low_mse > 0.95 * low_mm  # 8-bit Laplace optimum is ~9.9 b
    counts = hist.total()
    mse = {m: float(expected_mse(hist, counts, np.asarray(lo), np.asarray(hi)))
           for m, (lo, hi) in {"minmax": (low_mm, high_mm), "mse": (low_mse, high_mse)}.items()}
    assert mse["mse"] < mse["minmax"]


def test_auto_keeps_minmax_for_io_tensors_and_picks_by_cross_validation():
    rng = np.random.default_rng(2)
    heavy, io = Histogram(), Histogram()
    for fold in (0, 1):
        heavy.add(rng.laplace(0, 1.0, 50_000), fold)
        io.add(rng.uniform(0, 255, 1000), fold)
    assert auto_method(heavy) in ("mse", "percentile")
    chosen = choose_ranges({0: io, 1: heavy}, "auto", keep_minmax={0})
    assert chosen[0][1] == "minmax" and chosen[0][0] == (io.low, io.high)
    assert chosen[1][0][1] < heavy.high


@pytest.mark.slow
def test_range_methods_give_valid_full_int8_models_with_narrower_ranges(tiny_variant, photos):
    from edgenet.convert.worker import float_ops, keras_to_tflite
    from edgenet.family.model import build_model
    from edgenet.pixels.preprocess import preprocess
    from edgenet.runtime.tflite_graph import read_graph

    model = build_model(tiny_variant)
    calib = np.stack([preprocess(p, tiny_variant.contract) for p in photos.values()]).astype(np.float32)
    scales = {}
    for method in ("minmax", "mse"):
        record: dict = {}
        data, _ = keras_to_tflite(model, "int8", "int8", calib, calibrator="edgenet", ranges=method, record=record)
        assert float_ops(data) == []  # still full-integer
        graph = read_graph(data)
        scales[method] = {t.name: t.quantization.scale[0] for t in graph.tensors
                          if t.dtype == "int8" and not t.is_constant and t.quantization.scale}
        if method == "mse":
            assert sum(record["range_methods"].values()) > 0
    common = set(scales["minmax"]) & set(scales["mse"])
    narrower = [n for n in common if scales["mse"][n] < 0.999 * scales["minmax"][n]]
    wider = [n for n in common if scales["mse"][n] > 1.001 * scales["minmax"][n]]
    assert len(narrower) >= 5  # MSE clips the long tails of several tensors...
    assert not wider  # ...and never widens a range beyond min/max
    # The input keeps raw-pixel quantization (scale 1) under every method.
    assert scales["mse"]["input"] == pytest.approx(scales["minmax"]["input"])
