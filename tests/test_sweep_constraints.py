"""A real sweep of tiny variants under every constraint: quantization forms as a dimension, and measured
alternatives when nothing fits."""

from __future__ import annotations

import json
import os
import shutil

import pytest
from click.testing import CliRunner

from edgenet.bench import BenchParams
from edgenet.cli import main
from edgenet.errors import EdgenetError
from edgenet.family.variants import parse_variant
from edgenet.results import read_records
from edgenet.sweep import SweepParams, run_sweep

TINY = "phi=0,width=0.25,depth=0.25,resolution=32"
QUICK = BenchParams(warmup_s=0.05, min_runs=5, min_s=0.05, max_s=2.0)


def _params(budget_ms, **kw):
    return SweepParams(budget_ms=budget_ms, variants=(parse_variant(TINY),), samples=4, bench=QUICK, **kw)


@pytest.fixture(scope="module")
def below_everything(tmp_path_factory):
    """One sweep under an impossible budget: it converts the variant as int8, fp16 and fp32 (the alternatives);
    the other tests start from a copy of its models (up to date: nothing is converted twice)."""
    rundir = tmp_path_factory.mktemp("below")
    (outcome,) = run_sweep(_params(1e-6), rundir, progress=False).devices
    return rundir, outcome


def _models_of(below_everything, rundir):
    shutil.copytree(below_everything[0] / "models", rundir / "models")
    return rundir


def test_a_budget_below_everything_ends_in_measured_alternatives(below_everything):
    tmp_path, outcome = below_everything
    assert outcome.decision.pick is None
    alternatives = outcome.alternatives
    kinds = {a.proposal.kind for a in alternatives}
    # fp16/fp32, the runtime's engines, the other thread counts (a smaller phi: below the phi range for this tiny
    # spec, so not proposed; tests/test_alternatives.py proposes one for b0)
    assert {"quant", "engine"} <= kinds and ("threads" in kinds) == ((os.cpu_count() or 1) > 1)
    measured = [a for a in alternatives if a.how == "measured"]
    assert {a.proposal.quant for a in measured if a.proposal.kind == "quant"} == {"fp16", "fp32"}
    for a in measured:  # each judged with its interval against the same (impossible) budget
        assert a.latency_ms > 0 and a.verdict == "does not fit" and a.judgements[0].figure.low is not None
        assert a.line("p50").startswith(f"instead of {a.proposal.of}: ") and ", measured: does not fit" in a.line("p50")
    fp32 = next(a for a in measured if a.proposal.quant == "fp32")
    assert fp32.note.endswith("x the int8 form's latency on this device")
    for a in alternatives:  # an engine this LiteRT lacks (YNNPACK) is one line, never a crash
        assert a.how in ("measured", "predicted", "failed") and "\n" not in a.line("p50")
    # the candidates' results stay one setting; what was tried lives apart
    assert {(r["model"]["quant"], r["settings"]["threads"]) for r in read_records(tmp_path / "results.jsonl")} == \
        {("int8", 1)}
    tried = read_records(tmp_path / "alternatives.jsonl")
    assert {r["model"]["quant"] for r in tried} >= {"fp16", "fp32"}
    assert "## What would fit" in (tmp_path / "REPORT.md").read_text()
    saved = json.loads((tmp_path / "sweep.json").read_text())
    assert [a["change"] for a in saved["devices"][0]["alternatives"]] == [a.proposal.change for a in alternatives]
    # rerun: every measured alternative is reused, not measured again (a failed one is tried again)
    def measured_ok():
        return [r for r in read_records(tmp_path / "alternatives.jsonl") if not r["error"]]

    before = measured_ok()
    (again,) = run_sweep(_params(1e-6), tmp_path, progress=False).devices
    assert measured_ok() == before
    assert [a.verdict for a in again.alternatives] == [a.verdict for a in alternatives]


def test_quantization_forms_are_a_dimension_of_the_pick(below_everything, tmp_path):
    rundir = _models_of(below_everything, tmp_path / "run")
    before = {p.name: p.stat().st_mtime_ns for p in (rundir / "models").iterdir()}
    (outcome,) = run_sweep(_params(10_000.0, quant="int8,fp32", remeasure_rounds=0), rundir, progress=False).devices
    assert [(s.quant, s.action) for s in outcome.steps] == [("int8", "measured"), ("fp32", "measured")]
    # both forms were up to date: nothing converted again
    assert {p.name: p.stat().st_mtime_ns for p in (rundir / "models").iterdir()} == before
    quants = {a.candidate.quant for a in outcome.decision.assessments}
    assert quants == {"int8", "fp32"}
    pick = outcome.decision.pick.candidate
    other = next(a.candidate for a in outcome.decision.assessments if a.candidate.quant != pick.quant)
    assert pick.latency_ms <= other.latency_ms  # same size: the faster form (largest by MACs, then faster)


def test_bad_quant_lists_and_an_edgetpu_target_stays_int8():
    with pytest.raises(EdgenetError, match="unknown form 'int4'"):
        _params(10.0, quant="int8,int4")
    with pytest.raises(EdgenetError, match="Edge TPU runs full-integer"):
        SweepParams(budget_ms=10.0, variants=(parse_variant(TINY),), quant="int8,fp16",
                    bench=BenchParams(delegate="edgetpu"))
    result = CliRunner().invoke(main, ["sweep", "--budget-ms", "10", "--quant", "int8,bogus"])
    assert result.exit_code == 2 and "--quant" in result.output and "Traceback" not in result.output
    result = CliRunner().invoke(main, ["sweep", "--budget-ms", "10", "--max-size-mb", "0"])
    assert result.exit_code == 2 and "--max-size-mb" in result.output


def test_a_device_constraint_in_devices_toml_applies_to_that_device_only(below_everything, tmp_path):
    _models_of(below_everything, tmp_path / "run")
    inventory = tmp_path / "devices.toml"
    inventory.write_text('[[device]]\nname = "here"\nthreads = [1]\n\n'
                         '[[device]]\nname = "there"\nthreads = [1]\nconstraints = { max_size_mb = 0.001 }\n')
    args = ["sweep", "--budget-ms", "10000", "--samples", "4", "--warmup-s", "0.05", "--min-runs", "5", "--min-s",
            "0.05", "--max-s", "2", "-o", str(tmp_path / "run"), "--variants", TINY, "--devices", str(inventory),
            "--no-alternatives", "--json"]
    result = CliRunner().invoke(main, args)
    assert result.exit_code == 0, result.output  # one device has a pick
    here, there = json.loads(result.stdout)["devices"]
    assert here["decision"]["pick"]["variant"] == TINY and here["decision"]["constraints"]["max_size_mb"] is None
    assert there["decision"]["pick"] is None and there["decision"]["constraints"]["max_size_mb"] == 0.001
    (candidate,) = there["decision"]["candidates"]
    assert [(j["constraint"], j["verdict"]) for j in candidate["constraints"]] == [
        ("budget_ms", "fits"), ("max_size_mb", "does not fit")]
    # a constraint the table does not know is one line naming the device, before anything is converted
    inventory.write_text('[[device]]\nname = "there"\nconstraints = { max_ram_mb = 3 }\n')
    bad = CliRunner().invoke(main, [*args[:-8], "-o", str(tmp_path / "bad"), "--variants", TINY, "--devices",
                                    str(inventory)])
    assert bad.exit_code != 0 and "there" in bad.output and "max_ram_mb" in bad.output
    assert "Traceback" not in bad.output and not (tmp_path / "bad" / "models").exists()
