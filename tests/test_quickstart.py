"""The README's first command ends in a pick on any 2-core x86-64 machine of its kind, slow or fast.

The quickstart's own arguments (``edgenet.cli.sweep.QUICKSTART_ARGS``, parsed by the real command)
meet bench records of simulated machines: the AVX2-only EPYC where B0 int8 takes 14.5 ms (every
variant slower than the old 10 ms budget, which picked nothing there), one twice as slow again, and
the AVX-512 VNNI Xeon. The decision and the report are the real ones (``decide``, ``write_report``
with the sweep's scope notes); only the latencies are made up, from lognormal runs.
"""

from __future__ import annotations

import numpy as np
import pytest

from edgenet.bench.params import BenchParams
from edgenet.bench.result import LatencyStats
from edgenet.cli.sweep import QUICKSTART_ARGS, sweep
from edgenet.decide.decision import decide
from edgenet.decide.report import write_report
from edgenet.family.architecture import architecture
from edgenet.results import make_record
from edgenet.runtime.envinfo import isa_features, measured_on
from edgenet.sweep import SWEEP_BENCH
from edgenet.sweep.engine import scope_notes

#: B0-B3 int8, one thread, relative to B0 (the VNNI Xeon: 2.9, 4.4, 6.4, 11.2 ms).
RELATIVE = {"b0": 1.0, "b1": 1.52, "b2": 2.21, "b3": 3.86}
OLD_BUDGET_MS = 10.0  # the README's budget before: nothing fits it on the AVX2-only EPYC

EPYC_CPUINFO = "model name\t: AMD EPYC 7B12\nflags\t\t: fpu sse sse2 avx avx2 fma bmi2\n"
XEON_CPUINFO = "model name\t: Intel(R) Xeon(R) CPU @ 2.80GHz\nflags\t\t: avx avx2 avx512f avx512bw avx512_vnni\n"


def device(cpuinfo: str, load: float) -> dict:
    block = {"label": "quickstart-vm", "hostname": "vm", "machine": "x86_64",
             "cpu_model": cpuinfo.splitlines()[0].partition(":")[2].strip(), "cores": 2,
             "isa": isa_features(cpuinfo, "x86_64"), "load_1m": load}
    return dict(block, measured_on=measured_on(block))


def machine_records(b0_ms: float, cpuinfo: str, variants, load: float = 0.3) -> list[dict]:
    rng = np.random.default_rng(23)
    records = []
    for v in variants:
        samples = rng.lognormal(np.log(b0_ms * RELATIVE[v.name]), 0.03, 60)
        stats = LatencyStats.from_samples(samples)
        records.append(make_record(
            "bench",
            model={"path": f"runs/quickstart/models/{v.name}-int8.tflite", "name": f"{v.name}-int8",
                   "sha256": f"sha-{v.name}", "size_bytes": 1, "variant": v.name, "quant": "int8",
                   "macs": architecture(v).macs},
            device=device(cpuinfo, load), settings=SWEEP_BENCH.settings(),
            latency_ms={"init": 50.0, "first": stats.max, **stats.__dict__}, runs=len(samples), failed_runs=0,
            samples_ms=[float(x) for x in samples]))
    return records


def quickstart():
    ctx = sweep.make_context("sweep", list(QUICKSTART_ARGS))
    variants = [v for group in ctx.params["variant_lists"] for v in group]
    return ctx.params["budget_ms"], ctx.params["stat"], sorted(variants, key=lambda v: architecture(v).macs)


@pytest.mark.parametrize("b0_ms, cpuinfo, expected", [
    (14.5, EPYC_CPUINFO, "b2"),  # AVX2 only: the machine the old quickstart failed on
    (29.0, EPYC_CPUINFO, "b1"),  # twice as slow again (a busy or older core)
    (2.9, XEON_CPUINFO, "b3"),  # AVX-512 VNNI: every variant fits, the largest considered is picked
])
def test_the_quickstart_ends_in_a_pick_on_slow_and_fast_machines(tmp_path, b0_ms, cpuinfo, expected):
    budget_ms, stat, variants = quickstart()
    records = machine_records(b0_ms, cpuinfo, variants)
    if cpuinfo is EPYC_CPUINFO:  # the simulated slow machine: every variant over the old default budget
        assert min(r["latency_ms"]["p50"] for r in records) > OLD_BUDGET_MS
        assert decide(records, OLD_BUDGET_MS, stat=stat).pick is None  # what the old quickstart did
    decision = decide(records, budget_ms, stat=stat)
    assert decision.pick is not None and decision.pick.candidate.variant == expected, decision.message
    report = write_report(tmp_path, records, decision.selection, budget_ms, stat=stat, decision=decision,
                          notes=scope_notes(variants, decision))
    text = report.read_text()
    assert f"Decision: pick: {expected} (int8)" in text and text.count("Decision:") == 1  # said once
    line = records[0]["device"]["measured_on"]
    assert f"Measured on: {line}" in text  # the same line as the records' device block
    if cpuinfo is EPYC_CPUINFO:
        assert "AMD EPYC 7B12 (x86_64); AVX2, no AVX-512 VNNI, no AMX; 2 cores; load 0.30" == line
    else:
        assert "AVX2, AVX-512 VNNI, no AMX" in line
    largest_note = "b3 is the largest of the variants this sweep considered"
    assert (largest_note in text) == (expected == "b3")


def test_the_quickstart_budget_is_a_plain_budget():
    # --budget-ms keeps its meaning: a fixed number of milliseconds, the same on every machine.
    budget_ms, stat, variants = quickstart()
    assert (budget_ms, stat, [v.name for v in variants]) == (50.0, "p50", ["b0", "b1", "b2", "b3"])
    assert BenchParams().threads == 1 and SWEEP_BENCH.threads == 1
