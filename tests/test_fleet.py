"""The fleet sweep with the local executor: each device walks the variants and stops at its own budget."""

from __future__ import annotations

from edgenet.bench import BenchParams
from edgenet.cluster.executor import LocalExecutor
from edgenet.decide.fleet import run_fleet_sweep
from edgenet.decide.sweep import SweepParams
from edgenet.devices import Device
from edgenet.family.variants import parse_variant
from edgenet.results import read_records

TINY = ["phi=0,width=0.25,depth=0.25,resolution=48", "phi=0,width=0.25,depth=0.25,resolution=64"]
QUICK = BenchParams(warmup_s=0.05, min_runs=5, min_s=0.05, max_s=2.0)


def test_impossible_budget_stops_each_device_after_its_first_measurement(tmp_path):
    params = SweepParams(budget_ms=1e-6, variants=tuple(parse_variant(s) for s in TINY), quant="fp32", bench=QUICK)
    with LocalExecutor() as executor:
        outcome = run_fleet_sweep(params, [Device("here", threads=(1,))], tmp_path, executor)
    (device,) = outcome.devices
    assert [s.action for s in device.steps] == ["measured", "skipped"]
    assert "> budget" in device.steps[1].reason
    assert device.selection.pick is None and device.selection.closest is not None
    (record,) = read_records(tmp_path / "results.jsonl")
    assert record["device"]["label"] == "here" and record["error"] is None
    assert not (tmp_path / "models" / "phi0-w0.25-d0.25-r64-fp32.tflite").exists()  # never converted
    report = (tmp_path / "REPORT.md").read_text()
    assert "| here | this node's CPU | 1 | none fits |" in report
    assert not [p for p in tmp_path.rglob("*") if ".tmp" in p.name]
