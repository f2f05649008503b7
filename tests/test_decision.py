"""The decision on recorded results: intervals, verdicts and the objective."""

from __future__ import annotations

import json

import numpy as np
import pytest
from click.testing import CliRunner
from test_select import bench_record, eval_record, pi4_records, write

from edgenet.cli.select import select as select_cmd
from edgenet.decide.decision import decide
from edgenet.decide.objective import Ranked, rank, resolve_objective
from edgenet.errors import EdgenetError


def noisy_record(variant, centre_ms, spread=0.05, runs=60, seed=0, **kw):
    """A bench record from lognormal runs around ``centre_ms`` (stats from the runs themselves)."""
    samples = np.random.default_rng(seed).lognormal(np.log(centre_ms), spread, runs)
    record = bench_record(variant, float(np.median(samples)), samples=[float(x) for x in samples], **kw)
    pct = np.percentile(samples, [50, 90, 95, 99])
    record["latency_ms"].update(p50=pct[0], p90=pct[1], p95=pct[2], p99=pct[3], mean=float(samples.mean()))
    return record


def test_a_candidate_straddling_the_budget_is_too_close_to_call_and_not_picked():
    # b1's runs spread around 9.8 ms: its median is under the 10 ms budget, its CI straddles it.
    records = [noisy_record("b0", 6.0), noisy_record("b1", 9.7, spread=0.15), noisy_record("b2", 14.0)]
    d = decide(records, budget_ms=10.0)
    verdicts = {a.candidate.variant: a.verdict for a in d.assessments}
    assert verdicts == {"b0": "fits", "b1": "too close to call", "b2": "does not fit"}
    b1 = next(a for a in d.assessments if a.candidate.variant == "b1")
    assert b1.interval.low_ms < 10.0 < b1.interval.high_ms
    assert b1.candidate.latency_ms < 10.0 and d.selection.pick.variant == "b1"  # the point estimate would take it
    assert d.pick.candidate.variant == "b0"  # never picked on a coin toss
    assert [a.candidate.variant for a in d.too_close] == ["b1"]
    msg = d.message
    assert msg.startswith("pick: b0 (int8), the largest that fits:") and "95% CI" in msg
    assert "b1 at 9." in msg and "is too close to call on this device" in msg


def test_a_clear_case_has_no_doubt():
    d = decide(pi4_records(), budget_ms=150)
    assert d.pick.candidate.variant == "b2" and not d.too_close
    assert {a.verdict for a in d.assessments} == {"fits", "does not fit"}
    assert "too close" not in d.message


def test_nothing_surely_fits_names_the_too_close_one():
    d = decide([noisy_record("b0", 9.95, spread=0.1)], budget_ms=10.0)
    assert d.pick is None and d.closest.candidate.variant == "b0"
    assert "no variant fits 10 ms at p50 with 95% confidence; closest: b0" in d.message
    assert "too close to call on this device" in d.message


def test_p99_from_too_few_runs_is_not_a_p99():
    records = [noisy_record("b0", 5.0, runs=50)]
    d = decide(records, budget_ms=100.0, stat="p99")
    (a,) = d.assessments
    assert a.verdict == "too close to call" and a.interval.high_ms is None
    assert "too few runs for p99: 50, a 95% interval needs 368" in a.stability.verdict
    assert d.pick is None


def test_unstable_records_are_marked():
    bimodal = [7.0] * 40 + [10.5] * 30
    rng = np.random.default_rng(1)
    samples = [float(x * rng.lognormal(0, 0.02)) for x in bimodal]
    rng.shuffle(samples)
    records = [bench_record("b0", float(np.median(samples)), samples=samples)]
    d = decide(records, budget_ms=100.0)
    assert not d.pick.stability.stable and "2 modes" in d.pick.stability.verdict
    assert "[unstable: 2 modes" in d.message and any("unstable" in n for n in d.notes)


def test_accuracy_is_the_default_objective_when_every_contender_has_it():
    # b2 quantized badly: less accurate than b1 although larger.
    records = pi4_records() + [eval_record("b0", 0.70), eval_record("b1", 0.76), eval_record("b2", 0.61)]
    d = decide(records, budget_ms=150)
    assert d.objective == "accuracy" and d.pick.candidate.variant == "b1"
    assert "the most accurate that fits" in d.message and "top-1 76.0% measured on 1000 images" in d.message
    assert "81.00 ms p50" in d.message  # both numbers
    assert decide(records, budget_ms=150, objective="largest").pick.candidate.variant == "b2"
    # a floor excludes the inaccurate ones
    floored = decide(records, budget_ms=150, objective="largest", min_top1=65)
    assert floored.pick.candidate.variant == "b1"


def test_largest_when_accuracy_is_partly_unknown_and_published_is_context_only():
    records = pi4_records() + [eval_record("b1", 0.76)]
    d = decide(records, budget_ms=150)
    assert d.objective == "largest" and "only 1 of 3" in d.objective_reason
    assert d.pick.candidate.variant == "b2" and d.pick.candidate.top1 is None
    assert d.pick.published_top1 == 80.1  # the paper's float number, shown ...
    assert "top-1" not in d.message  # ... but never as a measured accuracy
    with pytest.raises(EdgenetError, match="--data"):
        decide(pi4_records(), budget_ms=150, objective="accuracy")
    assert decide(records, budget_ms=150, objective="accuracy").pick.candidate.variant == "b1"


def test_rank_and_resolve():
    a = Ranked("a", 100, 5.0, 70.0)
    b = Ranked("b", 200, 6.0, 69.0)
    c = Ranked("c", 300, 7.0, None)
    assert [r.key for r in rank("largest", [a, b, c])] == ["c", "b", "a"]
    assert [r.key for r in rank("accuracy", [a, b, c])] == ["a", "b", "c"]
    assert resolve_objective(None, [a, b])[0] == "accuracy"
    assert resolve_objective(None, [a, b, c])[0] == "largest"
    with pytest.raises(EdgenetError, match="objective"):
        resolve_objective("fastest", [a])


def test_cli_json_and_objective(tmp_path):
    path = write(tmp_path, pi4_records() + [eval_record("b0", 0.70), eval_record("b1", 0.76),
                                            eval_record("b2", 0.61)])
    result = CliRunner().invoke(select_cmd, [str(path), "--budget-ms", "150", "--json"])
    assert result.exit_code == 0, result.output
    payload = json.loads(result.stdout)
    assert payload["objective"] == "accuracy" and payload["pick"]["variant"] == "b1"
    assert payload["pick"]["verdict"] == "fits" and payload["pick"]["interval"]["high_ms"] < 150
    assert payload["point_pick"] == "b2"
    result = CliRunner().invoke(select_cmd, [str(path), "--budget-ms", "150", "--objective", "largest"])
    assert result.exit_code == 0 and "pick: b2" in result.stderr
    assert "95% CI" in result.stdout and "verdict" in result.stdout and "stability" in result.stdout


def test_cli_report_in_a_sweep_folder_decides_with_the_sweeps_budget(tmp_path):
    from edgenet.cli.select import report as report_cmd

    write(tmp_path, pi4_records())
    (tmp_path / "sweep.json").write_text(json.dumps({"params": {"budget_ms": 90, "stat": "p50", "objective": None}}))
    result = CliRunner().invoke(report_cmd, [str(tmp_path)])
    assert result.exit_code == 0, result.output
    payload = json.loads((tmp_path / "results.json").read_text())
    assert payload["budget_ms"] == 90 and payload["decision"]["pick"]["variant"] == "b1"
    assert payload["decision"]["pick"]["verdict"] == "fits" and "pick: b1 (int8), the largest that fits" in result.stderr
    (tmp_path / "sweep.json").write_text("{not json")
    result = CliRunner().invoke(report_cmd, [str(tmp_path)])
    assert result.exit_code == 1 and "sweep.json: not a sweep written by edgenet" in result.stderr
