"""The sweep engine (edgenet.sweep) on real tiny variants, real conversions and real interpreters.

One engine whatever the targets: this machine alone, or several devices of an inventory (here,
local ones, which share this machine's one latency queue). A module-scoped sweep of three tiny
variants converts them once; the other tests start from a copy of its models (up to date: nothing is
converted again) and, where they say so, of its measurements.
"""

from __future__ import annotations

import json
import os
import shutil
import signal
import socket
import subprocess
import sys
import time

import pytest
from click.testing import CliRunner

from edgenet.bench import BenchParams
from edgenet.cli import main
from edgenet.decide.decision import decide
from edgenet.errors import EdgenetError
from edgenet.family.variants import parse_variant
from edgenet.results import as_record, read_records
from edgenet.sweep import SWEEP_SCHEMA, SweepParams, run_sweep, weights_for
from edgenet.sweep.engine import earlier_measurement

TINY = ["phi=0,width=0.25,depth=0.25,resolution=48", "phi=0,width=0.25,depth=0.25,resolution=64",
        "phi=0,width=0.25,depth=0.25,resolution=96"]
QUICK = BenchParams(warmup_s=0.05, min_runs=12, min_s=0.05, max_s=2.0)
QUICK_ARGS = ["--samples", "4", "--min-runs", "12", "--min-s", "0.05"]


def _params(budget_ms, specs=TINY, **kw):
    return SweepParams(budget_ms=budget_ms, variants=tuple(parse_variant(s) for s in specs), samples=4,
                       bench=QUICK, **kw)


def _args(rundir, budget_ms, *extra, specs=TINY):
    return ["sweep", "--budget-ms", str(budget_ms), *QUICK_ARGS, "-o", str(rundir),
            *[a for s in specs for a in ("--variants", s)], *extra]


def _inventory(path, *names):
    path.write_text("".join(f'[[device]]\nname = "{n}"\nthreads = [1]\n\n' for n in names))
    return path


def _temp_files(folder):
    return [p for p in folder.rglob("*") if ".tmp" in p.name]


@pytest.fixture(scope="module")
def base(tmp_path_factory):
    """A sweep of the three tiny variants with a generous budget on this machine (the default target)."""
    rundir = tmp_path_factory.mktemp("sweep") / "run"
    return rundir, run_sweep(_params(10_000.0), rundir, progress=False)


def _copy(base_dir, to, records=True, models=TINY):
    """A run folder holding ``base``'s converted ``models`` (and its measurements with ``records``)."""
    (to / "models").mkdir(parents=True)
    for spec in models:
        for path in (base_dir / "models").glob(f"{parse_variant(spec).name}-*"):
            shutil.copy(path, to / "models" / path.name)
    if records:
        shutil.copy(base_dir / "results.jsonl", to / "results.jsonl")
    return to


def _clean_runs(rundir, centres_ms) -> None:
    """Set the run's bench records, in order, to clean runs around ``centres_ms`` (60 seeded lognormal samples, 2 %
    spread): a decision on them depends on the test, not on what else this machine was doing when they ran."""
    from dataclasses import asdict

    import numpy as np

    from edgenet.bench.result import LatencyStats
    from edgenet.results import append_records

    records = read_records(rundir / "results.jsonl")
    for record, centre_ms in zip(records, centres_ms, strict=True):
        samples = [float(x) for x in np.random.default_rng(7).lognormal(np.log(centre_ms), 0.02, 60)]
        record.update(samples_ms=samples, runs=60,
                      latency_ms=dict(record["latency_ms"], **asdict(LatencyStats.from_samples(samples))))
    (rundir / "results.jsonl").unlink()
    append_records(rundir / "results.jsonl", records)


def test_generous_budget_picks_the_largest_and_reports(base):
    rundir, outcome = base
    (device,) = outcome.devices
    assert device.device == socket.gethostname() and device.where == "this node's CPU"
    assert [s.action for s in device.steps] == ["measured"] * 3
    assert device.pick.variant == parse_variant(TINY[-1]).spec  # largest by MACs
    assert {a.verdict for a in device.decision.assessments} == {"fits"}
    # One target: its report is the run's (no summary beside it).
    assert outcome.report == device.report == rundir / "REPORT.md"
    assert (rundir / "latency_vs_macs.png").is_file() and not (rundir / "devices").exists()
    saved = json.loads((rundir / "sweep.json").read_text())
    assert saved["schema"] == SWEEP_SCHEMA and saved["params"]["executor"] == "local"
    assert saved["devices"][0]["decision"]["pick"]["variant"] == device.pick.variant
    assert len(read_records(rundir / "results.jsonl", kind="bench")) == 3
    assert not _temp_files(rundir)

    # Rerun with identical inputs: nothing is converted or measured again.
    (again,) = run_sweep(_params(10_000.0), rundir, progress=False).devices
    assert [s.action for s in again.steps] == ["reused"] * 3
    assert len(read_records(rundir / "results.jsonl", kind="bench")) == 3


def test_a_fleet_of_one_is_the_one_device_sweep(base, tmp_path):
    """The same records through `sweep` and `sweep --devices` (this machine as a one-device inventory):
    the same steps, the same decision, the same JSON document."""
    single = CliRunner().invoke(main, _args(_copy(base[0], tmp_path / "single"), 10_000, "--json"))
    assert single.exit_code == 0, single.output
    inventory = _inventory(tmp_path / "devices.toml", socket.gethostname())
    fleet = CliRunner().invoke(main, _args(_copy(base[0], tmp_path / "fleet"), 10_000, "--json",
                                           "--devices", str(inventory)))
    assert fleet.exit_code == 0, fleet.output
    a, b = (json.loads(r.stdout.replace(str(tmp_path / name), "RUNDIR"))
            for r, name in ((single, "single"), (fleet, "fleet")))
    assert [s["action"] for s in a["devices"][0]["steps"]] == ["reused"] * 3
    assert a["devices"][0]["decision"]["pick"]["variant"] == TINY[-1]
    assert a == b
    assert json.loads((tmp_path / "fleet" / "sweep.json").read_text().replace(str(tmp_path / "fleet"), "RUNDIR")) == b


def test_impossible_budget_stops_each_device_after_its_first_measurement(base, tmp_path):
    rundir = _copy(base[0], tmp_path / "run", records=False, models=TINY[:1])
    inventory = _inventory(tmp_path / "devices.toml", "here", "there")
    result = CliRunner().invoke(main, _args(rundir, 0.000001, "--devices", str(inventory), "--no-alternatives"))
    assert result.exit_code == 1, result.output
    assert "no variant fits" in result.stdout and "skipped" in result.stdout
    outcome = json.loads((rundir / "sweep.json").read_text())
    assert [d["device"] for d in outcome["devices"]] == ["here", "there"]
    for device in outcome["devices"]:
        steps = device["steps"]
        assert [s["action"] for s in steps] == ["measured", "skipped", "skipped"]
        assert "measured" in steps[1]["reason"] and "> budget" in steps[1]["reason"]
        assert device["decision"]["pick"] is None and device["decision"]["closest"]["variant"] == TINY[0]
        assert (rundir / "devices" / device["device"] / "REPORT.md").is_file()
    assert sorted(r["device"]["label"] for r in read_records(rundir / "results.jsonl")) == ["here", "there"]
    assert not (rundir / "models" / f"{parse_variant(TINY[1]).name}-int8.tflite").exists()  # never converted
    report = (rundir / "REPORT.md").read_text()
    assert "| here | this node's CPU | 1 | none fits |" in report and "devices/there/REPORT.md" in report
    assert not _temp_files(rundir)


def test_bad_parameters():
    with pytest.raises(EdgenetError, match="budget"):
        SweepParams(budget_ms=-1, variants=(parse_variant("b0"),))
    with pytest.raises(EdgenetError, match="no variants"):
        SweepParams(budget_ms=10, variants=())
    with pytest.raises(EdgenetError, match="--objective accuracy needs --data"):
        _params(10.0, objective="accuracy")
    with pytest.raises(EdgenetError, match="unknown objective"):
        _params(10.0, objective="fastest")
    with pytest.raises(EdgenetError, match="remeasure_rounds"):
        _params(10.0, remeasure_rounds=-1)
    with pytest.raises(EdgenetError, match="exclude each other"):
        _params(10.0, weights="imagenet", weights_dir=".")


def test_conflicting_targets_are_one_line(tmp_path):
    inventory = _inventory(tmp_path / "devices.toml", "alpha")
    for extra, code, why in ((["--remote", "pi@board", "--devices", str(inventory)], 2, "exclude each other"),
                             (["--weights", "imagenet", "--weights-dir", str(tmp_path)], 2, "exclude each other"),
                             (["--cluster", "127.0.0.1:1"], 2, "pass --devices FILE")):
        res = CliRunner().invoke(main, _args(tmp_path / "run", 5, *extra))
        assert res.exit_code == code and why in res.output, (extra, res.output)
        assert "Traceback" not in res.output
    assert not (tmp_path / "run").exists()  # refused before anything ran


def test_a_measurement_is_reused_only_for_the_same_device_and_settings():
    bench = BenchParams(threads=1)
    record = {"kind": "bench", "error": None, "model": {"sha256": "abc"}, "runs": 30,
              "latency_ms": {"min": 1.0, "mean": 1.2, "p50": 1.2, "p90": 1.4, "p95": 1.5, "p99": 1.6, "max": 2.0,
                             "std": 0.1, "init": 5.0, "first": 2.0},
              "settings": {"threads": 1, "xnnpack": True, "delegate": "cpu"},
              "device": {"label": "here", "hostname": "here"}}
    on_board = dict(record, device={"label": "pi@board", "hostname": "board"})
    assert earlier_measurement([record], "here", "abc", bench) == as_record(record)
    assert earlier_measurement([record], "pi@board", "abc", bench) is None  # measured here, not on the board
    assert earlier_measurement([record], "here", "abd", bench) is None  # other model bytes
    assert earlier_measurement([record], "here", "abc", BenchParams(threads=2)) is None  # other settings
    assert earlier_measurement([record, on_board], "pi@board", "abc", bench) == as_record(on_board)


def test_interrupted_sweep_resumes(base, tmp_path):
    """Kill the CLI mid-run, then rerun: finished work is reused, nothing partial is left."""
    rundir = _copy(base[0], tmp_path / "run", records=False)
    args = [sys.executable, "-m", "edgenet", *_args(rundir, 10_000)]
    args[args.index("--min-s") + 1] = "1.0"  # each measurement takes a second: time to interrupt
    proc = subprocess.Popen(args, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, start_new_session=True)
    results = rundir / "results.jsonl"
    deadline = time.monotonic() + 300
    while time.monotonic() < deadline and proc.poll() is None:
        if results.exists() and len(read_records(results)) >= 1:
            break
        time.sleep(0.1)
    assert proc.poll() is None, "the sweep finished before it could be interrupted"
    os.killpg(proc.pid, signal.SIGKILL)  # as hard as an interruption gets: no cleanup handlers run
    proc.wait()
    first = read_records(results)
    assert len(first) == 1
    assert not (rundir / "sweep.json").exists()

    result = CliRunner().invoke(main, args[3:])
    assert result.exit_code == 0, result.output
    outcome = json.loads((rundir / "sweep.json").read_text())
    actions = [s["action"] for s in outcome["devices"][0]["steps"]]
    assert actions[0] == "reused" and actions[1:] == ["measured", "measured"]
    records = read_records(results)
    assert len(records) == 3 and records[0] == first[0]  # the earlier result is intact
    assert not _temp_files(rundir)
    for model in (rundir / "models").glob("*.tflite"):
        assert model.with_suffix(".json").is_file()  # every model has its manifest


def test_straddling_budget_triggers_interleaved_remeasurement_and_a_clear_one_does_not(base, tmp_path):
    rundir = _copy(base[0], tmp_path / "run")
    middle = parse_variant(TINY[1])
    # Clean 1, 2 and 4 ms runs: the smallest fits, the middle one straddles its own p50 and the largest does not fit,
    # whatever the load was when they were measured (a larger variant measured faster would be picked instead).
    _clean_runs(rundir, (1.0, 2.0, 4.0))
    p50 = next(r["latency_ms"]["p50"] for r in read_records(rundir / "results.jsonl")
               if r["model"]["resolution"] == middle.resolution)
    before = len(read_records(rundir / "results.jsonl"))

    # The same measurements against a budget equal to the middle variant's p50: its interval straddles it.
    (off,) = run_sweep(_params(p50, remeasure_rounds=0), rundir, progress=False).devices
    assert "remeasured" not in [s.action for s in off.steps]
    assert next(a for a in off.decision.assessments if a.candidate.variant == middle.spec).verdict == \
        "too close to call"
    assert len(read_records(rundir / "results.jsonl")) == before

    (on,) = run_sweep(_params(p50), rundir, progress=False).devices
    again = [s for s in on.steps if s.action == "remeasured"]
    assert [s.variant for s in again] == [middle.name, parse_variant(TINY[0]).name]
    assert "straddled the budget: measured again" in again[0].reason
    pattern = f"{middle.spec}-{TINY[0]}-{middle.spec}-{TINY[0]}"
    assert pattern in again[0].reason and pattern in again[1].reason
    records = read_records(rundir / "results.jsonl")
    assert len(records) == before + 2
    for record in records[-2:]:
        assert record["runs"] >= 2 * QUICK.min_runs  # both rounds' runs
    saved = json.loads((rundir / "sweep.json").read_text())["devices"][0]
    assert [s["action"] for s in saved["steps"]].count("remeasured") == 2
    assert saved["decision"]["message"] == on.decision.message
    verdict = next(a for a in on.decision.assessments if a.candidate.variant == middle.spec).verdict
    assert verdict in ("fits", "does not fit", "too close to call")
    assert ("too close to call on this device" in on.decision.message) == (verdict == "too close to call")


REFINE = ["phi=-8", "phi=-7", "phi=-6"]  # the smallest the family allows: four real conversions


def test_refine_tries_a_custom_phi_between_the_pick_and_the_next_variant(tmp_path):
    """Three variants measured, their records then set to clean 1, 2 and 4 ms runs (so the pick does not depend on
    this machine's load) and a 3 ms budget: the pick is the 2nd and --refine converts and really measures a custom
    phi between the 2nd and the 3rd."""
    variants = tuple(parse_variant(s) for s in REFINE)
    # The re-measurement rule is off here: this test counts refine's records.
    run_sweep(_params(10_000.0, REFINE, remeasure_rounds=0), tmp_path, progress=False)
    _clean_runs(tmp_path, (1.0, 2.0, 4.0))
    (again,) = run_sweep(_params(3.0, REFINE, refine=True, remeasure_rounds=0), tmp_path, progress=False).devices
    suggestion = again.suggestion
    assert suggestion is not None
    assert parse_variant(suggestion["lo_variant"]) == variants[1]
    assert parse_variant(suggestion["hi_variant"]) == variants[2]
    assert suggestion["phi_range"][0] < suggestion["phi"] < suggestion["phi_range"][1]
    assert suggestion["measured_ms"] is not None  # it was converted and measured, not just predicted
    assert (tmp_path / "models" / f"{parse_variant(suggestion['spec']).name}-int8.tflite").is_file()
    assert len(read_records(tmp_path / "results.jsonl", kind="bench")) == 4
    # The decision is made again with the new measurement: the custom phi is picked only when it fits.
    assert (again.pick.variant == suggestion["spec"]) <= bool(suggestion["fits"])
    saved = json.loads((tmp_path / "sweep.json").read_text())["devices"][0]
    assert saved["suggestion"] == suggestion


# --- accuracy on a fleet -------------------------------------------------------------------------

DIGITS_RESOLUTIONS = (32, 48)  # the native resolution and one it was not trained at


@pytest.fixture(scope="module")
def digits_sweep(digits_model, tmp_path_factory):
    """The digits network at two resolutions swept on two devices, with labelled and unlabelled digits."""
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
    args = _args(rundir, 10_000, "--weights-dir", str(weights), "--calib", str(digits_model.data.train_dir),
                 "--data", str(digits_model.data.test_dir), "--agreement-images", str(unlabelled),
                 "--objective", "accuracy", "--devices", str(_inventory(root / "devices.toml", "alpha", "beta")),
                 specs=[v.spec for v in variants])
    args[args.index("--samples") + 1] = "16"
    result = CliRunner().invoke(main, args)
    assert result.exit_code == 0, result.output
    return rundir, variants, unlabelled, args, result


def test_a_fleet_measures_accuracy_once_and_every_device_picks_the_most_accurate(digits_sweep, digits_model):
    rundir, variants, unlabelled, _, result = digits_sweep
    records = read_records(rundir / "results.jsonl")
    evals = [r for r in records if r["kind"] == "eval"]
    top1 = {r["model"]["sha256"]: r["accuracy"] for r in evals if r["accuracy"]["top1"] is not None}
    agreement = {r["model"]["sha256"]: r["accuracy"] for r in evals if r["accuracy"]["agreement_top1"] is not None}
    bench = [r for r in records if r["kind"] == "bench"]
    n = len(DIGITS_RESOLUTIONS)
    assert sorted(r["device"]["label"] for r in bench) == ["alpha"] * n + ["beta"] * n
    assert len(evals) == 2 * n and len(top1) == n and len(agreement) == n  # once per model, not per device
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
    for device in payload["devices"]:
        decision = device["decision"]
        assert decision["objective"] == "accuracy"
        mine = [r for r in bench if r["device"]["label"] == device["device"]]
        best = max(mine, key=lambda r: (top1[r["model"]["sha256"]]["top1"], -r["latency_ms"]["p50"]))
        assert decision["pick"]["sha256"] == best["model"]["sha256"]
        pick_top1 = 100 * top1[best["model"]["sha256"]]["top1"]
        assert f"top-1 {pick_top1:.1f}% measured on {digits_model.data.test_count} images" in result.stdout
        text = (rundir / "devices" / device["device"] / "REPORT.md").read_text()
        assert "accuracy_vs_latency.png" in text and "agreement with float %" in text
    assert "the most accurate that fits" in result.stdout and "ms p50 (95% CI" in result.stdout

    # --objective largest among the same candidates: the 48 px model
    largest = decide([r for r in records if r["kind"] == "eval" or r["device"]["label"] == "alpha"], 10_000.0,
                     objective="largest")
    assert largest.pick.candidate.variant == variants[-1].spec


def test_digits_sweep_rerun_evaluates_nothing_again(digits_sweep):
    rundir, _, _, args, _ = digits_sweep
    before = read_records(rundir / "results.jsonl")
    result = CliRunner().invoke(main, args)
    assert result.exit_code == 0, result.output
    assert read_records(rundir / "results.jsonl") == before


def test_a_fleet_converts_with_the_published_weights_and_decides_on_accuracy(tmp_path, photos):
    """`sweep --devices FILE --weights imagenet --data ... --objective accuracy`: the real Lite0 from its package."""
    from edgenet.weights.registry import REGISTRY

    data = tmp_path / "val.txt"
    data.write_text(f"{photos['coffee']} 967\n{photos['chelsea']} 285\n")
    rundir = tmp_path / "run"
    args = _args(rundir, 100_000, "--weights", "imagenet", "--data", str(data), "--objective", "accuracy",
                 "--devices", str(_inventory(tmp_path / "devices.toml", "alpha")), "--json", specs=["lite0"])
    args[args.index("--min-runs") + 1] = "3"
    result = CliRunner().invoke(main, args, env={"EDGENET_OFFLINE": "1"})
    assert result.exit_code == 0, result.output
    published = REGISTRY["lite0"].hash.removeprefix("sha256:")
    manifests = [json.loads(p.read_text()) for p in (rundir / "models").rglob("*.json")]
    assert manifests and all(m["weights"]["sha256"] == published for m in manifests)
    assert weights_for(parse_variant("lite0"), None, "imagenet").name == "efficientnet-lite0-57934424.pth"
    assert weights_for(parse_variant("lite1"), None, "imagenet").name == "efficientnet-lite1-77cc7160.pth"
    assert weights_for(parse_variant("phi=0.5,base=lite"), None, "imagenet") is None  # custom: no published file
    (device,) = json.loads(result.stdout)["devices"]
    decision = device["decision"]
    assert decision["objective"] == "accuracy" and decision["pick"]["variant"] == "lite0"
    assert decision["pick"]["top1_count"] == 2 and decision["pick"]["top1"] is not None
