"""Every constraint on constructed records: each verdict, the interval rules, the accuracy tie-break."""

from __future__ import annotations

import json

import pytest
from test_decision import noisy_record
from test_select import bench_record, eval_record

from edgenet.decide.constraints import (
    CONSTRAINTS,
    NOT_MEASURED,
    ConstraintError,
    Constraints,
    Figure,
    judge,
)
from edgenet.decide.decision import decide
from edgenet.decide.objective import Ranked, rank
from edgenet.results import make_record


def _with(record: dict, **top) -> dict:
    """A copy of a record with top-level fields and ``model.*`` keys replaced (``model_size_bytes=...``)."""
    record = json.loads(json.dumps(record))
    for key, value in top.items():
        if key.startswith("model_"):
            record["model"][key.removeprefix("model_")] = value
        else:
            record[key] = value
    return record


def _agreement(variant, fraction, count):
    return make_record("eval", model={"name": f"{variant}_int8", "sha256": f"sha-{variant}-int8", "variant": variant,
                                      "quant": "int8"},
                       accuracy={"top1": None, "agreement_top1": fraction, "count": count, "dataset": "photos"})


def _verdicts(decision, name):
    return {a.candidate.variant: next(j.verdict for j in a.judgements if j.constraint.name == name)
            for a in decision.assessments}


def test_the_table_names_every_constraint_once_with_its_option():
    assert list(CONSTRAINTS) == ["budget_ms", "max_memory_mb", "max_size_mb", "min_top1", "min_agreement",
                                 "edgetpu_on_chip"]
    assert all(c.option == "--" + c.name.replace("_", "-") for c in CONSTRAINTS.values())
    assert set(CONSTRAINTS) == set(Constraints.__dataclass_fields__)


@pytest.mark.parametrize("bad, message", [
    (dict(budget_ms=-1.0), "--budget-ms must be a positive number"),
    (dict(budget_ms=10.0, max_memory_mb=float("nan")), "--max-memory-mb must be a positive number"),
    (dict(budget_ms=10.0, min_top1=101.0), "--min-top1 is a percentage"),
    (dict(budget_ms=10.0, max_size_mb="big"), "--max-size-mb must be a number"),
    (dict(budget_ms=10.0, edgetpu_on_chip="yes"), "--edgetpu-on-chip is a switch"),
])
def test_bad_limits_are_one_clear_error(bad, message):
    with pytest.raises(ConstraintError, match=message):
        Constraints(**bad)


def test_unknown_keys_and_a_device_overlay():
    with pytest.raises(ConstraintError, match=r"devices.toml \[pi\]: unknown constraint\(s\) max_ram"):
        Constraints.from_dict({"budget_ms": 5.0, "max_ram": 3}, "devices.toml [pi]")
    base = Constraints(budget_ms=10.0, min_top1=70.0)
    mine = base.overlay({"max_memory_mb": 64.0, "budget_ms": 20.0}, "devices.toml [pi]")
    assert (mine.budget_ms, mine.max_memory_mb, mine.min_top1) == (20.0, 64.0, 70.0)
    assert base.overlay(None) is base
    with pytest.raises(ConstraintError, match=r"devices.toml \[pi\]: --max-memory-mb must be a positive"):
        base.overlay({"max_memory_mb": -3}, "devices.toml [pi]")


def test_the_judging_rule_for_an_upper_and_a_lower_bound():
    top, mem = CONSTRAINTS["min_top1"], CONSTRAINTS["max_memory_mb"]
    assert judge(mem, 64.0, Figure.point(63.9, "one measurement")).verdict == "fits"
    assert judge(mem, 64.0, Figure.point(64.1, "one measurement")).verdict == "does not fit"
    assert judge(top, 75.0, Figure(76.0, 75.1, 77.0, "Wilson")).verdict == "fits"
    assert judge(top, 75.0, Figure(76.0, 74.9, 77.0, "Wilson")).verdict == "too close to call"
    assert judge(top, 75.0, Figure(74.0, 73.0, 74.9, "Wilson")).verdict == "does not fit"
    assert judge(top, 75.0, Figure(None)).verdict == NOT_MEASURED
    # an unbounded side can never be sure
    assert judge(CONSTRAINTS["budget_ms"], 10.0, Figure(5.0, 4.0, None, "order statistics")).verdict == \
        "too close to call"


def test_memory_and_size_verdicts_name_the_figure():
    records = [_with(bench_record("b0", 5.0), rss_after_first_run_mb=48.0, model_size_bytes=5 * 2**20),
               _with(bench_record("b1", 7.0), rss_after_first_run_mb=70.0, model_size_bytes=8 * 2**20),
               bench_record("b2", 9.0)]  # an older record: no resident memory
    d = decide(records, constraints=Constraints(budget_ms=100.0, max_memory_mb=64.0, max_size_mb=6.0))
    assert _verdicts(d, "max_memory_mb") == {"b0": "fits", "b1": "does not fit", "b2": NOT_MEASURED}
    b1 = next(a for a in d.assessments if a.candidate.variant == "b1")
    assert b1.verdict == "does not fit"
    assert "memory 70.0 MB (one measurement) <= 64 MB: does not fit" in b1.reason
    assert "size 8.0 MB (exact) <= 6 MB: does not fit" in b1.reason
    # b2's memory is unknown: it is not held to the limit, and the decision says so
    assert d.pick.candidate.variant == "b2"
    assert any("not measured" in n and "--max-memory-mb" in n for n in d.notes)
    assert "memory: not measured" in d.message
    data = d.to_dict()
    assert data["constraints"]["max_memory_mb"] == 64.0
    row = next(c for c in data["candidates"] if c["variant"] == "b0")
    assert [j["constraint"] for j in row["constraints"]] == ["budget_ms", "max_memory_mb", "max_size_mb"]
    assert row["constraints"][1] == {"constraint": "max_memory_mb", "limit": 64.0, "verdict": "fits", "value": 48.0,
                                     "low": 48.0, "high": 48.0, "unit": "MB", "method": "one measurement"}


def test_top1_is_judged_with_wilson_on_its_images():
    # 76 % on 100 images: Wilson 66.8-83.3 % -> too close to a 75 % floor; on 1000 images 73.3-78.6 % -> too
    # close still; 80 % on 1000: 77.4-82.4 % -> fits; 70 % on 1000: 67.1-72.7 % -> does not fit.
    small = make_record("eval", model={"name": "b0_int8", "sha256": "sha-b0-int8", "variant": "b0", "quant": "int8"},
                        accuracy={"top1": 0.76, "count": 100, "dataset": "val"})
    records = [bench_record("b0", 5.0), bench_record("b1", 7.0), bench_record("b2", 9.0),
               small, eval_record("b1", 0.80), eval_record("b2", 0.70)]
    d = decide(records, constraints=Constraints(budget_ms=100.0, min_top1=75.0))
    assert _verdicts(d, "min_top1") == {"b0": "too close to call", "b1": "fits", "b2": "does not fit"}
    b0 = next(a for a in d.assessments if a.candidate.variant == "b0")
    (top1,) = [j for j in b0.judgements if j.constraint.name == "min_top1"]
    assert top1.figure.method == "Wilson on 100 images"
    assert 66.0 < top1.figure.low < 67.5 and 83.0 < top1.figure.high < 83.5
    assert d.pick.candidate.variant == "b1"
    assert b0.reason == "too close to call: top-1 76.0% (95% CI 66.8-83.3%, Wilson on 100 images) >= 75%: too close to call"


def test_agreement_from_eval_records_and_from_the_conversion_check():
    fidelity = {"top1_agreement": 0.97, "top1_agreement_ci95": [0.90, 0.99],
                "ci_method": "cluster bootstrap over 8 images, at least Wilson on 64 samples"}
    records = [_with(bench_record("b0", 5.0), model_manifest={"fidelity": fidelity}),
               bench_record("b1", 7.0), bench_record("b2", 9.0),
               _agreement("b1", 0.99, 2000), _agreement("b2", 0.80, 2000)]
    d = decide(records, constraints=Constraints(budget_ms=100.0, min_agreement=95.0))
    assert _verdicts(d, "min_agreement") == {"b0": "too close to call", "b1": "fits", "b2": "does not fit"}
    b0 = next(a for a in d.assessments if a.candidate.variant == "b0")
    assert "conversion check: cluster bootstrap over 8 images" in b0.judgements[1].figure.method
    assert d.pick.candidate.variant == "b1"


def test_edgetpu_on_chip_reads_the_compiler_before_the_static_check():
    static = {"param_bytes_off_chip": 0, "param_bytes_on_chip": 4 * 2**20}
    records = [_with(bench_record("b0", 5.0), model_manifest={"edgetpu": {"static_check": static}}),
               _with(bench_record("b1", 7.0), model_manifest={"edgetpu": {
                   "static_check": {"param_bytes_off_chip": 0},  # the compiler knows better
                   "compiler": {"off_chip_used_bytes": 3 * 2**20}}}),
               bench_record("b2", 9.0)]
    d = decide(records, constraints=Constraints(budget_ms=100.0, edgetpu_on_chip=True))
    assert _verdicts(d, "edgetpu_on_chip") == {"b0": "fits", "b1": "does not fit", "b2": NOT_MEASURED}
    b1 = next(a for a in d.assessments if a.candidate.variant == "b1")
    assert "off-chip 3.0 MB (edgetpu_compiler) on-chip only: does not fit" in b1.reason


def test_latency_too_close_still_names_the_other_constraints():
    records = [_with(noisy_record("b0", 9.8, spread=0.15), rss_after_first_run_mb=30.0)]
    d = decide(records, constraints=Constraints(budget_ms=10.0, max_memory_mb=64.0))
    (a,) = d.assessments
    assert a.verdict == "too close to call" and d.pick is None
    assert [j.verdict for j in a.judgements] == ["too close to call", "fits"]
    assert d.message.startswith("no variant fits 10 ms at p50, memory <= 64 MB with 95% confidence; closest: b0")


def test_accuracy_tie_when_the_intervals_overlap_goes_to_the_smaller_file_then_the_faster():
    # 76.5 % and 76.0 % on 500 images: the intervals (about +-3.7 points) overlap -> a tie.
    tied = [Ranked("b1/int8", 700, 9.0, 76.5, 72.6, 80.0, 8_000_000),
            Ranked("b0/int8", 400, 6.0, 76.0, 72.1, 79.5, 5_000_000),
            Ranked("lite0/int8", 400, 5.0, 70.0, 68.9, 71.1, 5_000_000)]
    assert [r.key for r in rank("accuracy", tied)] == ["b0/int8", "b1/int8", "lite0/int8"]
    same_size = [Ranked("a/int8", 1, 9.0, 76.5, 72.6, 80.0, 5), Ranked("b/int8", 1, 6.0, 76.0, 72.1, 79.5, 5)]
    assert [r.key for r in rank("accuracy", same_size)] == ["b/int8", "a/int8"]  # then the faster
    apart = [Ranked("b1/int8", 700, 9.0, 80.0, 79.0, 81.0, 8_000_000),
             Ranked("b0/int8", 400, 6.0, 76.0, 75.0, 77.0, 5_000_000)]
    assert [r.key for r in rank("accuracy", apart)] == ["b1/int8", "b0/int8"]  # no overlap: more accurate wins


def test_the_decision_breaks_an_accuracy_tie_by_size_and_says_so():
    def ev(variant, top1, count=500):
        return make_record("eval", model={"name": f"{variant}_int8", "sha256": f"sha-{variant}-int8",
                                          "variant": variant, "quant": "int8"},
                           accuracy={"top1": top1, "count": count, "dataset": "val"})

    records = [_with(bench_record("b0", 5.0), model_size_bytes=5_000_000),
               _with(bench_record("b1", 7.0), model_size_bytes=8_000_000), ev("b0", 0.750), ev("b1", 0.765)]
    d = decide(records, budget_ms=100.0)
    assert d.objective == "accuracy" and d.pick.candidate.variant == "b0"
    assert any("tied within the intervals with b1/int8" in n for n in d.notes)
    # with 100x the images the intervals part: b1 is surely more accurate
    many = records[:2] + [ev("b0", 0.750, 50_000), ev("b1", 0.765, 50_000)]
    assert decide(many, budget_ms=100.0).pick.candidate.variant == "b1"


def test_both_forms_of_limits_cannot_be_mixed():
    with pytest.raises(Exception, match="either as constraints or as budget_ms"):
        decide([bench_record("b0", 5.0)], budget_ms=10.0, constraints=Constraints(budget_ms=10.0))


def test_select_takes_every_constraint_and_predicts_sizes_when_nothing_fits(tmp_path):
    from click.testing import CliRunner
    from test_select import write

    from edgenet.cli.select import select as select_cmd

    records = [_with(bench_record(v, ms), rss_after_first_run_mb=mb)
               for v, ms, mb in (("b0", 12.0, 40.0), ("b1", 18.0, 50.0), ("b2", 25.0, 60.0))]
    path = write(tmp_path, records)
    runner = CliRunner()
    result = runner.invoke(select_cmd, [str(path), "--budget-ms", "30", "--max-memory-mb", "55", "--json"])
    assert result.exit_code == 0, result.output
    data = json.loads(result.stdout)
    assert data["pick"]["variant"] == "b1" and data["constraints"]["max_memory_mb"] == 55.0
    b2 = next(c for c in data["candidates"] if c["variant"] == "b2")
    assert [j["verdict"] for j in b2["constraints"]] == ["fits", "does not fit"]
    # nothing fits 10 ms: the Lite variant and a smaller phi are predicted from these results, and say so
    result = runner.invoke(select_cmd, [str(path), "--budget-ms", "10"])
    assert result.exit_code == 1
    lines = [line for line in result.stderr.splitlines() if line.startswith("alternative: ")]
    assert lines and all(", predicted: " in line for line in lines)
    assert any("instead of b0/int8: phi=-" in line for line in lines)
    bad = runner.invoke(select_cmd, [str(path), "--budget-ms", "10", "--max-memory-mb", "-5"])
    assert bad.exit_code == 2 and "--max-memory-mb" in bad.output and "Traceback" not in bad.output
