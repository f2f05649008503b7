"""When nothing fits: what is proposed, how a measured proposal is judged, and how it is reported."""

from __future__ import annotations

import json

from test_select import bench_record

from edgenet.decide.alternatives import Proposal, assess, predicted, propose
from edgenet.decide.constraints import Constraints
from edgenet.decide.decision import decide
from edgenet.decide.report import write_report

ENGINES = {"interpreter/xnnpack": {"api": "interpreter", "xnnpack_latest": False},
           "interpreter/xnnpack+latest": {"api": "interpreter", "xnnpack_latest": True},
           "compiled/xnnpack": {"api": "compiled", "xnnpack_latest": False}}
CURRENT = {"api": "interpreter", "xnnpack_latest": False}


def _over_budget():
    records = [bench_record("b0", 12.0), bench_record("b1", 18.0), bench_record("b2", 25.0)]
    return records, decide(records, budget_ms=10.0)


def test_nothing_fits_proposes_for_the_largest_failure_and_the_smallest():
    _, d = _over_budget()
    assert d.pick is None
    proposals = propose(d, threads=1, thread_counts=(1, 2), engines=ENGINES, current_engine=CURRENT)
    by_of: dict[str, list[str]] = {}
    for p in proposals:
        by_of.setdefault(p.of, []).append(f"{p.kind}:{p.change}")
    assert list(by_of) == ["b2/int8", "b0/int8"]  # the largest that failed, then the smallest
    assert by_of["b2/int8"] == ["threads:2 threads", "lite:lite2 (b2's size, edge family)", "quant:fp16",
                                "quant:fp32", "engine:engine interpreter/xnnpack+latest",
                                "engine:engine compiled/xnnpack"]
    kinds = [k.split(":")[0] for k in by_of["b0/int8"]]
    assert kinds == ["threads", "lite", "quant", "quant", "phi", "engine", "engine"]  # a smaller phi: smallest only
    phi = next(p for p in proposals if p.kind == "phi")
    assert phi.variant.startswith("phi=-") and phi.quant == "int8"
    assert next(p for p in proposals if p.kind == "threads").bench == {"threads": 2}


def test_an_edgetpu_target_stays_full_integer_and_keeps_its_delegate():
    _, d = _over_budget()
    proposals = propose(d, threads=1, thread_counts=(1,), engines=ENGINES, current_engine=CURRENT, edgetpu=True)
    assert {p.kind for p in proposals} == {"lite", "phi"}
    assert all(p.quant == "int8" for p in proposals)


def test_a_pick_needs_no_alternatives():
    d = decide([bench_record("b0", 5.0)], budget_ms=10.0)
    assert propose(d, threads=1, thread_counts=(1, 2), engines=ENGINES) == []


def test_a_measured_proposal_is_judged_on_every_constraint_by_decide():
    records, _ = _over_budget()
    proposal = Proposal("b0/int8", "threads", "2 threads", "b0", "int8", {"threads": 2})
    measured = [bench_record("b0", 7.0, threads=2)]
    measured[0]["rss_after_first_run_mb"] = 90.0
    constraints = Constraints(budget_ms=10.0, max_memory_mb=64.0)
    alt = assess(proposal, measured, records, constraints, "p50")
    assert alt.how == "measured" and alt.verdict == "does not fit"  # fast enough, but too much memory
    assert [j.verdict for j in alt.judgements] == ["fits", "does not fit"]
    line = alt.line("p50")
    assert line.startswith("instead of b0/int8: 2 threads -> 7.00 ms p50 (95% CI ")
    assert "measured: does not fit; memory 90.0 MB (one measurement) <= 64 MB: does not fit" in line
    ok = assess(proposal, [bench_record("b0", 7.0, threads=2)], records, Constraints(budget_ms=10.0), "p50")
    assert ok.verdict == "fits" and ok.line("p50").endswith("measured: fits")
    fp32 = assess(Proposal("b0/int8", "quant", "fp32", "b0", "fp32"), [bench_record("b0", 13.2, quant="fp32")],
                  records, Constraints(budget_ms=10.0), "p50", reference_ms=12.0)
    assert fp32.note == "1.10x the int8 form's latency on this device" and fp32.verdict == "does not fit"


def test_a_failed_measurement_is_one_line():
    failed = bench_record("lite0", None, error="lite0: conversion failed: out of memory")
    alt = assess(Proposal("b0/int8", "lite", "lite0", "lite0", "int8"), [failed], [], Constraints(budget_ms=10.0),
                 "p50")
    assert alt.how == "failed"
    assert alt.line("p50") == "instead of b0/int8: lite0 -> could not be measured: lite0: conversion failed: out of memory"


def test_a_size_proposal_not_measured_is_predicted_and_says_so():
    records, d = _over_budget()
    phi = next(p for p in propose(d, threads=1) if p.kind == "phi")
    alt = predicted(phi, records, Constraints(budget_ms=10.0), "p50")
    assert alt.how == "predicted" and alt.latency_ms < 12.0  # smaller than b0, so faster than it
    assert alt.low_ms < alt.latency_ms < alt.high_ms
    assert ", predicted: " in alt.line("p50") and "band" in alt.line("p50")
    threads = Proposal("b0/int8", "threads", "2 threads", "b0", "int8", {"threads": 2})
    assert predicted(threads, records, Constraints(budget_ms=10.0), "p50") is None  # another setting: no model


def test_the_report_has_the_table_and_the_json_the_same(tmp_path):
    records, d = _over_budget()
    proposal = Proposal("b0/int8", "threads", "2 threads", "b0", "int8", {"threads": 2})
    alt = assess(proposal, [bench_record("b0", 7.0, threads=2)], records, Constraints(budget_ms=10.0), "p50")
    path = write_report(tmp_path, records, None, 10.0, stat="p50", decision=d, alternatives=[alt])
    text = path.read_text()
    assert "## What would fit" in text
    assert "| b0/int8 | 2 threads | measured | 7.00 |" in text
    data = json.loads((tmp_path / "results.json").read_text())
    assert data["alternatives"][0]["how"] == "measured" and data["alternatives"][0]["bench"] == {"threads": 2}
