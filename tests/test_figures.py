"""The report's pictures read well: labelled log axes, intervals, unstable records marked."""

from __future__ import annotations

import json

import numpy as np
import pytest
from test_decision import noisy_record
from test_report import assert_png, parse_markdown_tables
from test_select import bench_record, eval_record

from edgenet.decide.decision import decide
from edgenet.decide.figures import _figure, log_axis, log_ticks
from edgenet.decide.report import write_report


@pytest.mark.parametrize(
    ("low", "high", "expected"),
    [
        (6.7, 10.9, [7, 8, 9, 10]),  # the quickstart: one decade or less
        (3.0, 470.0, [5, 10, 20, 50, 100, 200]),  # B0-B4 on a Pi
        (1.0, 100_000.0, [1, 10, 100, 1000, 10_000, 100_000]),
        (9.5, 9.9, [9.5, 9.6, 9.7, 9.8, 9.9]),  # narrower than any 1-2-5 step: round linear steps
    ],
)
def test_log_ticks(low, high, expected):
    assert log_ticks(low, high) == pytest.approx(expected)


@pytest.mark.parametrize("span", [(6.7, 10.9), (0.4, 0.9), (3.0, 470.0), (50.0, 52.0)])
def test_every_log_axis_shows_several_values(span):
    fig = _figure()
    ax = fig.add_subplot(111)
    ax.plot([1, 2], list(span))
    log_axis(ax, "y", list(span))
    fig.canvas.draw()
    low, high = ax.get_ylim()
    labels = [t.get_text() for t, v in zip(ax.get_yticklabels(), ax.get_yticks(), strict=True) if low <= v <= high]
    shown = [t for t in labels if t]
    assert len(shown) >= 3, labels
    assert all("10^" not in t and "$" not in t for t in shown)


def test_report_shows_intervals_verdicts_and_marks_unstable_records(tmp_path):
    rng = np.random.default_rng(4)
    bimodal = [float(x * rng.lognormal(0, 0.02)) for x in [7.0] * 40 + [10.5] * 30]  # drifts, two modes
    records = [
        noisy_record("b0", 6.9, 0.04, seed=1),
        noisy_record("b1", 9.7, 0.12, seed=2),
        bench_record("b2", float(np.median(bimodal)), samples=bimodal),
        eval_record("b0", 0.70), eval_record("b1", 0.76), eval_record("b2", 0.74),
    ]
    decision = decide(records, budget_ms=10.0)
    write_report(tmp_path, records, decision.selection, 10.0, decision=decision)
    for name in ("latency_vs_macs.png", "accuracy_vs_latency.png", "latency_distribution.png"):
        assert_png(tmp_path / name)
    text = (tmp_path / "REPORT.md").read_text()
    assert f"Decision: {decision.message}." in text and "Objective: most accurate" in text
    rows = {r["variant"]: r for r in next(iter(parse_markdown_tables(text).values()))}
    assert rows["b0"]["budget verdict"] == "fits" and rows["b0"]["pick"] == "yes"
    assert rows["b1"]["budget verdict"] == "too close to call"
    assert rows["b2"]["stability"].startswith("unstable:") and "2 modes" in rows["b2"]["stability"]
    assert rows["b0"]["stability"] == "stable"
    assert rows["b0"]["published fp32 top-1 % (context)"] == "77.1" and rows["b0"]["top-1 %"] == "70.0"
    payload = json.loads((tmp_path / "results.json").read_text())
    js = {r["variant"]: r for r in payload["tables"][0]["rows"]}
    low, high = (float(x) for x in rows["b1"]["95% CI ms"].split("-"))
    assert js["b1"]["ci_low_ms"] == pytest.approx(low, abs=0.006) and js["b1"]["ci_high_ms"] == pytest.approx(high,
                                                                                                              abs=0.006)
    assert js["b2"]["stable"] is False and payload["decision"]["pick"]["variant"] == "b0"
