"""Runtime settings as a search space: real settings on a real tiny model, in real child processes.

No timing thresholds: the tests check that every setting runs and is recorded as what it was,
that a valid pick comes back with its ratios, and that a sweep measures with the tuned settings.
"""

from __future__ import annotations

import json

import pytest
from click.testing import CliRunner
from fixtures_tflite import tiny_tflite_models

from edgenet import results
from edgenet.bench import BenchParams, BenchParamsError, run_in_child
from edgenet.bench.tune import ENGINES, load_settings, tune
from edgenet.cli import main
from edgenet.errors import EdgenetError

QUICK = BenchParams(warmup_s=0.02, min_runs=5, min_s=0.02, max_s=1.0)
QUICK_ARGS = ["--warmup-s", "0.02", "--min-runs", "5", "--min-s", "0.02", "--max-s", "1"]


@pytest.fixture(scope="session")
def tiny():
    return tiny_tflite_models()


@pytest.mark.parametrize("engine", list(ENGINES))
def test_every_engine_runs_and_is_recorded_as_itself(tiny, engine, tmp_path, monkeypatch):
    from dataclasses import replace

    monkeypatch.setenv("EDGENET_XNNPACK_CACHE_DIR", str(tmp_path))
    params = replace(QUICK, **ENGINES[engine])
    result = run_in_child(tiny.int8, params)
    if params.ynnpack and not result.ok:  # ai-edge-litert 2.3 has the option but not YNNPACK: one clear line
        assert "rejected the model with YNNPACK on (this LiteRT build may lack YNNPACK)" in result.error
        assert "\n" not in result.error
        return
    assert result.ok, result.error
    settings = result.to_record()["settings"]
    assert {k: settings[k] for k in ENGINES[engine]} == ENGINES[engine]
    # What init and the first run added, split private / file-backed: the runtime's own libraries are
    # mapped then (file), and the interpreter's tensors allocated (private).
    memory = result.to_record()["init_memory_mb"]
    assert set(memory) == {"anon", "file"} and memory["file"] > 1.0 and memory["anon"] > 0.0, memory
    if params.xnnpack_weight_cache:  # the cache file is really written, next to nothing else
        assert [p.suffix for p in tmp_path.iterdir()] == [".xnnpack"]


def test_contradictory_settings_are_refused_in_one_line():
    with pytest.raises(BenchParamsError, match="weight cache needs --api compiled"):
        BenchParams(xnnpack_weight_cache=True)
    with pytest.raises(BenchParamsError, match="latest-features"):
        BenchParams(xnnpack=False, xnnpack_latest=True)
    with pytest.raises(BenchParamsError, match="unknown api"):
        BenchParams(api="gpu")


def test_tune_returns_valid_records_and_a_pick_with_ratios(tiny, tmp_path, monkeypatch):
    monkeypatch.setenv("EDGENET_XNNPACK_CACHE_DIR", str(tmp_path))
    engines = ("interpreter/xnnpack", "interpreter/xnnpack+latest", "compiled/xnnpack")
    outcome = tune(str(tiny.int8), QUICK, threads=(1, 2), engines=engines, reps=2)
    assert len(outcome.rows) == 2 * len(engines)
    assert len(outcome.records) == 2 * 2 * len(engines)
    for record in outcome.records:  # every measurement is a valid, complete schema record
        assert list(record) == list(results.schema.FIELDS) and record["error"] is None
    assert outcome.pick is not None and outcome.pick.label() in [r["setting"] for r in outcome.rows]
    reference = next(r for r in outcome.rows if r["setting"] == outcome.reference.label())
    assert reference["ratio_vs_default_median"] == 1.0 and reference["reps"] == 2
    best = min(r["ratio_vs_default_median"] for r in outcome.rows)
    assert next(r for r in outcome.rows if r["setting"] == outcome.pick.label())["ratio_vs_default_median"] == best
    document = outcome.settings_document(str(tiny.int8))
    path = tmp_path / "tuned.json"
    path.write_text(json.dumps(document))
    assert load_settings(path) == {k: getattr(outcome.pick, k) for k in document["settings"]}


def test_cli_tune_saves_settings_and_sweep_uses_them(tiny, tmp_path, monkeypatch):
    monkeypatch.setenv("EDGENET_XNNPACK_CACHE_DIR", str(tmp_path))
    settings, jsonl = tmp_path / "tuned.json", tmp_path / "tune.jsonl"
    res = CliRunner().invoke(main, ["tune", str(tiny.int8), "--threads", "1", "--reps", "1",
                                    "--engines", "interpreter/xnnpack,compiled/xnnpack", *QUICK_ARGS,
                                    "--save-settings", str(settings), "--results", str(jsonl)])
    assert res.exit_code == 0, res.output
    assert "fastest for" in res.stdout and len(results.read_records(jsonl)) == 2
    # force a known non-default choice so the sweep's use of it is visible
    document = json.loads(settings.read_text())
    document["settings"].update(api="compiled", threads=1)
    settings.write_text(json.dumps(document))
    rundir = tmp_path / "run"
    res = CliRunner().invoke(main, ["sweep", "--budget-ms", "10000", "--samples", "2", "--min-runs", "5",
                                    "--min-s", "0.05", "-o", str(rundir), "--variants",
                                    "phi=0,width=0.25,depth=0.25,resolution=48", "--settings", str(settings)])
    assert res.exit_code == 0, res.output
    assert "compiled/xnnpack t=1" in res.output
    (record,) = results.read_records(rundir / "results.jsonl")
    assert record["settings"]["api"] == "compiled" and record["error"] is None
    swept = json.loads((rundir / "sweep.json").read_text())
    assert swept["params"]["bench"]["api"] == "compiled"


def test_bad_settings_file_is_one_line(tmp_path):
    bad = tmp_path / "bad.json"
    bad.write_text('{"schema": "something else"}')
    with pytest.raises(EdgenetError, match="bad.json"):
        load_settings(bad)
    res = CliRunner().invoke(main, ["sweep", "--budget-ms", "5", "--settings", str(tmp_path / "missing.json"),
                                    "-o", str(tmp_path / "run")])
    assert res.exit_code == 1 and "missing.json" in res.output and "Traceback" not in res.output
