"""The re-measurement rule on recorded results: what is measured again, with which neighbour, pooled how."""

from __future__ import annotations

import numpy as np
import pytest
from test_decision import noisy_record

from edgenet.decide.decision import decide
from edgenet.decide.remeasure import plan_remeasure, pooled_record


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
