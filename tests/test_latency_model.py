"""The latency predictor on recorded measurements (no timing of this machine, no thresholds on it)."""

from __future__ import annotations

import json

import numpy as np
import pytest
from click.testing import CliRunner
from test_select import bench_record, write

from edgenet.cli.select import predict_latency
from edgenet.decide.latency_model import (
    LatencyModel,
    equivalent_phi,
    features,
    holdout_errors,
    nnls,
    suggest_custom_phi,
)
from edgenet.decide.select import analytic_counts
from edgenet.errors import EdgenetError, VariantError

# A realistic int8 p50 table at one thread, Raspberry-Pi-4-like (constructed, not measured here:
# a fixed overhead plus a cost per MAC and per activation byte, with a few percent of noise).
RECORDED_MS = {"b0": 46.1, "b1": 77.9, "b2": 108.4, "b3": 192.5, "b4": 455.0, "b5": 1041.0}


# Measured here (benchmarks/latency_model_error.py, 2026-11-23): int8 B0-B7 at one thread on a
# 2-vCPU AMD EPYC VM, minimum over 150 interleaved rounds.
MEASURED_X86_MIN_MS = {
    "b0": 3.00,
    "b1": 5.17,
    "b2": 6.83,
    "b3": 11.69,
    "b4": 25.24,
    "b5": 54.12,
    "b6": 95.86,
    "b7": 174.91,
}


def recorded(names=RECORDED_MS, **kw):
    return [bench_record(n, RECORDED_MS[n], **kw) for n in names]


def test_nnls_matches_kkt_conditions():
    rng = np.random.default_rng(0)
    for _ in range(100):
        a, b = rng.normal(size=(9, 4)), rng.normal(size=9)
        x = nnls(a, b)
        grad = a.T @ (b - a @ x)
        assert (x >= 0).all()
        assert np.allclose(grad[x > 0], 0, atol=1e-8)
        assert (grad[x == 0] <= 1e-8).all()
    # An unconstrained solution that is already non-negative is returned as is.
    a = rng.uniform(1, 2, size=(6, 3))
    assert np.allclose(nnls(a, a @ np.array([1.0, 2.0, 3.0])), [1, 2, 3])


def test_features_are_exact_and_grow_with_phi():
    f = features("b0")
    assert f["macs"] == analytic_counts("b0")["macs"]
    assert f["pointwise_macs"] + f["depthwise_macs"] == f["macs"]
    prev = None
    for phi in np.arange(-1.0, 3.01, 0.25):
        cur = features(f"phi={phi:g}")
        if prev:
            assert all(cur[k] >= prev[k] for k in cur)
        prev = cur
    with pytest.raises(VariantError, match="reference model"):
        features("resnet50")


def test_fit_predicts_held_out_variants_within_ten_percent():
    model = LatencyModel.fit(recorded())
    assert model.loo_max_abs_rel_error < 0.10
    assert set(model.loo_rel_errors) == set(RECORDED_MS)
    rows = holdout_errors(recorded())  # nested: the form choice is redone without the held-out one
    assert [r["variant"] for r in rows] == list(RECORDED_MS)
    assert max(abs(r["rel_error"]) for r in rows) < 0.10
    for name, ms in RECORDED_MS.items():
        assert model.predict(name) == pytest.approx(ms, rel=0.10)


def test_three_points_fit_and_extrapolate_honestly():
    model = LatencyModel.fit(recorded(["b0", "b1", "b2"]))
    assert model.form in ("power", "macs")  # only two-parameter forms with 3 points
    detail = model.predict_detail("b5")
    assert detail.extrapolated and detail.rel_uncertainty > model.loo_max_abs_rel_error
    inside = model.predict_detail("phi=0.5")
    assert not inside.extrapolated and inside.rel_uncertainty == pytest.approx(model.loo_max_abs_rel_error)
    assert model.predict("b4") == pytest.approx(RECORDED_MS["b4"], rel=0.25)


def test_predictions_are_monotone_in_phi():
    model = LatencyModel.fit(recorded())
    preds = [model.predict(f"phi={phi:g}") for phi in np.arange(-0.5, 4.01, 0.1)]
    assert all(b >= a for a, b in zip(preds, preds[1:], strict=False))


def test_suggest_custom_phi_between_two_variants_fits_the_budget():
    model = LatencyModel.fit(recorded())
    budget = 150.0  # between b2 (108 ms) and b3 (192 ms)
    s = suggest_custom_phi(model, budget, "b2", "b3")
    assert s is not None
    assert analytic_counts("b2")["macs"] < s.macs < analytic_counts("b3")["macs"]
    assert equivalent_phi("b2") < s.phi < equivalent_phi("b3")
    assert s.predicted_ms <= budget
    assert model.predict(f"phi={s.phi + 0.01:g}") > budget  # the largest on the 0.01 grid
    assert s.spec == f"phi={s.phi:g}"
    careful = suggest_custom_phi(model, budget, "b2", "b3", safety=0.10)
    assert careful.phi < s.phi and careful.predicted_ms * 1.10 <= budget
    # Nothing above b2 fits a budget below b2's latency; everything fits a huge budget.
    assert suggest_custom_phi(model, 100.0, "b2", "b3") is None
    assert suggest_custom_phi(model, 1e6, "b2", "b3").macs < analytic_counts("b3")["macs"]


def test_equivalent_phi_matches_macs():
    for name in ("b1", "b3", "b5"):
        # MACs step with phi (channel rounding, whole repeats): the smallest phi reaching the target.
        phi = equivalent_phi(name)
        assert features(f"phi={phi:.6f}")["macs"] >= features(name)["macs"]
        assert features(f"phi={phi - 0.001:.6f}")["macs"] < features(name)["macs"]


def test_round_trip_and_refusals():
    model = LatencyModel.fit(recorded())
    again = LatencyModel.from_dict(json.loads(json.dumps(model.to_dict())))
    assert again.predict("phi=1.7") == pytest.approx(model.predict("phi=1.7"))
    with pytest.raises(EdgenetError, match="at least 3"):
        LatencyModel.fit(recorded(["b0", "b1"]))
    with pytest.raises(EdgenetError, match="results mix"):
        LatencyModel.fit(recorded() + [bench_record("b0", 9.0, device="laptop")])
    with pytest.raises(VariantError, match="lite"):
        model.predict("lite2")
    with pytest.raises(EdgenetError, match="not a latency model"):
        LatencyModel.from_dict({"form": "cubic"})


def test_other_family_is_left_out_with_a_note():
    records = recorded() + [bench_record("lite0", 30.0)]
    model = LatencyModel.fit(records)
    assert "lite0" not in model.measured_ms and any("lite" in n for n in model.notes)


def test_cli_predict_latency(tmp_path):
    path = write(tmp_path, recorded())
    runner = CliRunner()
    result = runner.invoke(predict_latency, [str(path), "--variant", "b6", "--variant", "phi=1.5"])
    assert result.exit_code == 0, result.output
    assert "| b6 " in result.stdout and "extrapolated" in result.stdout and "phi=1.5" in result.stdout
    assert "leave-one-out" in result.stderr
    result = runner.invoke(predict_latency, [str(path), "--variant", "b3", "--json"])
    payload = json.loads(result.stdout)
    (pred,) = payload["predictions"]
    assert pred["measured_ms"] == RECORDED_MS["b3"] and pred["low_ms"] < pred["latency_ms"] < pred["high_ms"]
    assert payload["model"]["form"] in payload["model"]["form_scores"]
    result = runner.invoke(predict_latency, [str(path), "--variant", "b9"])
    assert result.exit_code == 2 and "unknown variant" in result.output


def test_measured_b0_b7_table_held_out_within_ten_percent():
    records = [bench_record(n, ms, device="x86-vm") for n, ms in MEASURED_X86_MIN_MS.items()]
    rows = holdout_errors(records)
    assert max(abs(r["rel_error"]) for r in rows) < 0.10
    small = LatencyModel.fit(records[:3])  # b0, b1, b2 only
    for name in ("b3", "b4", "b5", "b6", "b7"):
        assert small.predict(name) == pytest.approx(MEASURED_X86_MIN_MS[name], rel=0.10)
