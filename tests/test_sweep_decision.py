"""The sweep's decision on real measurements: intervals, the re-measurement rule, accuracy objective.

The accuracy test is a real sweep of tiny variants carrying the digits-trained weights (one
network at three input resolutions: the weights do not depend on the resolution), evaluated on
the labelled digits and, for agreement, on unlabelled digit images.
"""

from __future__ import annotations

import json
import shutil

import numpy as np
import pytest
from click.testing import CliRunner
from test_decision import noisy_record

from edgenet.bench import BenchParams
from edgenet.cli import main
from edgenet.decide.decision import decide
from edgenet.decide.remeasure import plan_remeasure, pooled_record
from edgenet.decide.sweep import SweepParams, run_sweep
from edgenet.family.variants import parse_variant
from edgenet.results import read_records

QUICK = BenchParams(warmup_s=0.05, min_runs=12, min_s=0.05, max_s=2.0)
TINY = ["phi=0,width=0.25,depth=0.25,resolution=48", "phi=0,width=0.25,depth=0.25,resolution=64",
        "phi=0,width=0.25,depth=0.25,resolution=96"]
DIGITS_RESOLUTIONS = (32, 40, 48)


# --- the rule on recorded results ----------------------------------------------------------------


def test_plan_remeasures_a_straddling_candidate_with_its_smaller_neighbour():
    records = [noisy_record("b0", 6.0), noisy_record("b1", 9.7, spread=0.15), noisy_record("b2", 14.0)]
    decision = decide(records, budget_ms=10.0)
    (plan,) = plan_remeasure(decision, ["b0", "b1", "b2"])
    assert (plan.target, plan.neighbour, plan.order) == ("b1", "b0", ("b1", "b0"))
    assert plan.before == next(a for a in decision.assessments if a.candidate.variant == "b1").interval.describe()


def test_plan_is_empty_when_the_case_is_clear():
    records = [noisy_record("b0", 6.0), noisy_record("b1", 8.0), noisy_record("b2", 14.0)]
    assert plan_remeasure(decide(records, budget_ms=10.0), ["b0", "b1", "b2"]) == []


def test_plan_takes_the_closest_when_nothing_surely_fits():
    records = [noisy_record("b0", 9.95, spread=0.1), noisy_record("b1", 14.0)]
    (plan,) = plan_remeasure(decide(records, budget_ms=10.0), ["b0", "b1"])
    assert (plan.target, plan.neighbour) == ("b0", "b1")  # the smallest: its larger neighbour


def test_a_neighbour_already_remeasured_is_not_planned_again():
    records = [noisy_record("b0", 9.95, spread=0.1), noisy_record("b1", 10.0, spread=0.1, seed=3),
               noisy_record("b2", 10.05, spread=0.1, seed=4)]
    decision = decide(records, budget_ms=10.0)
    assert decision.pick is None and len([a for a in decision.assessments if a.verdict == "too close to call"]) == 3
    plans = plan_remeasure(decision, ["b0", "b1", "b2"])
    assert [p.order for p in plans] == [("b2", "b1"), ("b0", "b1")]  # b1 is not a target: b2's neighbour already
    assert [p.order for p in plan_remeasure(decision, ["b0", "b1", "b2"], limit=1)] == [("b2", "b1")]


def test_pooled_record_keeps_every_run_in_order():
    a, b = noisy_record("b0", 6.0, runs=30, seed=1), noisy_record("b0", 6.5, runs=20, seed=2)
    a["device"]["throttled_before"], b["device"]["throttled_after"] = "0x0", "0x4"
    pooled = pooled_record([a, b], lambda s: {"p50": float(np.percentile(s, 50)), "min": min(s)})
    assert pooled["samples_ms"] == a["samples_ms"] + b["samples_ms"] and pooled["runs"] == 50
    assert pooled["latency_ms"]["p50"] == pytest.approx(np.percentile(a["samples_ms"] + b["samples_ms"], 50))
    assert pooled["device"]["throttled_before"] == "0x0" and pooled["device"]["throttled_after"] == "0x4"


# --- real sweeps ---------------------------------------------------------------------------------


def _params(budget_ms, **kw):
    return SweepParams(budget_ms=budget_ms, variants=tuple(parse_variant(s) for s in TINY), samples=4,
                       bench=QUICK, **kw)


def test_straddling_budget_triggers_interleaved_remeasurement_and_a_clear_one_does_not(tmp_path):
    clear = run_sweep(_params(10_000.0), tmp_path, progress=False)
    assert "remeasured" not in [s.action for s in clear.steps]
    assert {a.verdict for a in clear.decision.assessments} == {"fits"}
    middle = parse_variant(TINY[1])
    p50 = next(s.latency_ms for s in clear.steps if s.variant == middle.name)
    before = len(read_records(tmp_path / "results.jsonl"))

    # The same measurements against a budget equal to the middle variant's p50: its interval straddles it.
    off = run_sweep(_params(p50, remeasure_rounds=0), tmp_path, progress=False)
    assert "remeasured" not in [s.action for s in off.steps]
    middle_label = middle.spec
    assert next(a for a in off.decision.assessments if a.candidate.variant == middle_label).verdict == \
        "too close to call"
    assert len(read_records(tmp_path / "results.jsonl")) == before

    on = run_sweep(_params(p50), tmp_path, progress=False)
    again = [s for s in on.steps if s.action == "remeasured"]
    assert [s.variant for s in again] == [middle.name, parse_variant(TINY[0]).name]
    assert "straddled the budget: measured again" in again[0].reason
    pattern = f"{middle_label}-{TINY[0]}-{middle_label}-{TINY[0]}"
    assert pattern in again[0].reason and pattern in again[1].reason
    records = read_records(tmp_path / "results.jsonl")
    assert len(records) == before + 2
    pooled = {r["model"]["variant"]: r for r in records[-2:]}
    for record in pooled.values():
        assert record["runs"] >= 2 * QUICK.min_runs  # both rounds' runs
    saved = json.loads((tmp_path / "sweep.json").read_text())
    assert [s["action"] for s in saved["steps"]].count("remeasured") == 2
    assert saved["decision"]["message"] == on.decision.message
    verdict = next(a for a in on.decision.assessments if a.candidate.variant == middle_label).verdict
    assert verdict in ("fits", "does not fit", "too close to call")
    assert ("too close to call on this device" in on.decision.message) == (verdict == "too close to call")


@pytest.fixture(scope="module")
def digits_sweep(digits_model, tmp_path_factory):
    """A sweep of the digits network at three resolutions, with labelled and unlabelled digits."""
    root = tmp_path_factory.mktemp("digits-sweep")
    weights = root / "weights"
    weights.mkdir()
    variants = [parse_variant(f"phi=0,width=0.25,depth=0.25,resolution={r}") for r in DIGITS_RESOLUTIONS]
    for v in variants:
        shutil.copy(digits_model.weights, weights / f"{v.name}.weights.h5")
    unlabelled = root / "unlabelled"
    unlabelled.mkdir()
    for path in sorted(digits_model.data.test_dir.rglob("*.png"))[::12]:
        shutil.copy(path, unlabelled / f"{path.parent.name}-{path.name}")
    rundir = root / "run"
    args = ["sweep", "--budget-ms", "10000", "--samples", "16", "--min-runs", "12", "--min-s", "0.05",
            "--weights-dir", str(weights), "--calib", str(digits_model.data.train_dir),
            "--data", str(digits_model.data.test_dir), "--agreement-images", str(unlabelled), "-o", str(rundir)]
    for v in variants:
        args += ["--variants", v.spec]
    result = CliRunner().invoke(main, args)
    assert result.exit_code == 0, result.output
    return rundir, variants, unlabelled, args, result


def test_digits_sweep_measures_accuracy_and_picks_the_most_accurate(digits_sweep, digits_model):
    rundir, variants, unlabelled, _, result = digits_sweep
    records = read_records(rundir / "results.jsonl")
    evals = [r for r in records if r["kind"] == "eval"]
    top1 = {r["model"]["sha256"]: r["accuracy"] for r in evals if r["accuracy"]["top1"] is not None}
    agreement = {r["model"]["sha256"]: r["accuracy"] for r in evals if r["accuracy"]["agreement_top1"] is not None}
    bench = [r for r in records if r["kind"] == "bench"]
    assert len(bench) == 3 and len(top1) == 3 and len(agreement) == 3
    for r in bench:
        acc = top1[r["model"]["sha256"]]
        assert acc["count"] == digits_model.data.test_count and acc["dataset"] == str(digits_model.data.test_dir)
        agree = agreement[r["model"]["sha256"]]
        assert agree["top1"] is None and agree["count"] == len(list(unlabelled.glob("*.png")))
    # The network was trained at 32 px: its int8 model there is accurate and agrees with its float model.
    native = next(r for r in bench if r["model"]["resolution"] == 32)
    assert top1[native["model"]["sha256"]]["top1"] > 0.8
    assert agreement[native["model"]["sha256"]]["agreement_top1"] > 0.85

    payload = json.loads((rundir / "sweep.json").read_text())
    decision = payload["decision"]
    assert decision["objective"] == "accuracy"
    best = max(bench, key=lambda r: (top1[r["model"]["sha256"]]["top1"], -r["latency_ms"]["p50"]))
    assert decision["pick"]["sha256"] == best["model"]["sha256"]
    pick_top1 = 100 * top1[best["model"]["sha256"]]["top1"]
    assert f"top-1 {pick_top1:.1f}% measured on {digits_model.data.test_count} images" in result.stdout
    assert "the most accurate that fits" in result.stdout and "ms p50 (95% CI" in result.stdout
    text = (rundir / "REPORT.md").read_text()
    assert "accuracy_vs_latency.png" in text and (rundir / "accuracy_vs_latency.png").is_file()
    assert "agreement with float %" in text

    # --objective largest among the same candidates: the 48 px model
    largest = decide(records, 10_000.0, objective="largest")
    assert largest.pick.candidate.variant == variants[-1].spec


def test_digits_sweep_rerun_evaluates_nothing_again(digits_sweep):
    rundir, _, _, args, _ = digits_sweep
    before = read_records(rundir / "results.jsonl")
    result = CliRunner().invoke(main, args)
    assert result.exit_code == 0, result.output
    assert read_records(rundir / "results.jsonl") == before


def test_sweep_parameters_of_the_decision_are_checked():
    from edgenet.errors import EdgenetError

    with pytest.raises(EdgenetError, match="--objective accuracy needs --data"):
        _params(10.0, objective="accuracy")
    with pytest.raises(EdgenetError, match="unknown objective"):
        _params(10.0, objective="fastest")
    with pytest.raises(EdgenetError, match="remeasure_rounds"):
        _params(10.0, remeasure_rounds=-1)
