"""The pick and the alternatives offered for budgets 5, 10, 20, 40 ms, and whether each alternative holds.

For each budget, ``edgenet sweep`` (the Python API, one run folder shared by every budget, so a model is
converted and measured once and each budget decides on the same measurements) over B0, Lite0 and B1 int8,
1 thread, the sweep's own measuring protocol. Where nothing fits, the sweep measures its alternatives
(other thread counts, the Lite variant of the same size, fp16/fp32, a smaller phi, the runtime's engines).

Then every measured alternative is measured again, ``--reps`` times, interleaved (each repetition walks the
alternatives in turn, the order reversed every other repetition, so they share the machine's state), with
the same bench child and settings. An alternative "holds" when the median of its re-measured p50s lies
inside its first measurement's 95 % interval, and its verdict against each budget is the same when judged
on the re-measured median. The machine is shared: its load average is recorded before and after.

    .venv/bin/python benchmarks/pick_alternatives.py [--budgets 5,10,20,40] [--variants b0,lite0,b1] [--reps 5]

Results: ``benchmarks/results/pick_alternatives.json``.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import sys
from dataclasses import replace
from pathlib import Path

HERE = Path(__file__).resolve().parent
RESULTS = HERE / "results"


def machine() -> dict:
    """The machine, by the library's own reading (the same fields every bench record's device block holds)."""
    from edgenet.runtime.envinfo import cpu_model, isa_features, load_average

    isa = isa_features() or {}
    return {"cpu_model": cpu_model(), "isa": sorted(k for k, v in isa.items() if v), "cores": os.cpu_count(),
            "load_before": load_average()}


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--budgets", default="5,10,20,40")
    parser.add_argument("--variants", default="b0,lite0,b1")
    parser.add_argument("--reps", type=int, default=5)
    parser.add_argument("--rundir", default=str(HERE / "models" / "pick_alternatives"))
    parser.add_argument("--out", default=str(RESULTS / "pick_alternatives.json"))
    args = parser.parse_args()

    from edgenet.bench.runner import run_in_child
    from edgenet.family.variants import parse_variant_list
    from edgenet.sweep import SweepParams, run_sweep

    report: dict = {"machine": machine(), "command": " ".join(["benchmarks/pick_alternatives.py", *sys.argv[1:]]),
                    "budgets": []}
    variants = tuple(parse_variant_list([args.variants]))
    tried: dict[tuple, dict] = {}  # (model path, bench settings) -> the first measurement
    for budget in (float(b) for b in args.budgets.split(",")):
        print(f"budget {budget:g} ms", file=sys.stderr)
        params = SweepParams(budget_ms=budget, variants=variants, remeasure_rounds=0)
        (outcome,) = run_sweep(params, args.rundir, log=lambda m: print(f"  {m}", file=sys.stderr),
                               progress=False).devices
        d = outcome.decision
        entry = {"budget_ms": budget, "pick": None if d is None or d.pick is None else
                 f"{d.pick.candidate.variant}/{d.pick.candidate.quant}", "message": d.message if d else None,
                 "candidates": [{"candidate": a.key, "p50_ms": a.candidate.latency_ms, "verdict": a.verdict,
                                 "interval": a.interval.describe() if a.interval else None}
                                for a in (d.assessments if d else ())],
                 "alternatives": [a.to_dict() | {"line": a.line("p50")} for a in outcome.alternatives]}
        report["budgets"].append(entry)
        for a in outcome.alternatives:
            if a.how != "measured":
                continue
            path = _model_of(args.rundir, a)
            if path is not None:
                bench = replace(params.bench, **a.proposal.bench)
                tried.setdefault((str(path), json.dumps(bench.to_dict(), sort_keys=True)),
                                 {"alternative": a.proposal.key, "model": str(path), "bench": bench,
                                  "p50_ms": a.latency_ms, "low_ms": a.low_ms, "high_ms": a.high_ms})
    # re-measure every measured alternative, interleaved
    items = list(tried.values())
    for item in items:
        item["remeasured_p50_ms"] = []
    for rep in range(args.reps):
        for item in (items if rep % 2 == 0 else items[::-1]):
            result = run_in_child(item["model"], item["bench"])
            item["remeasured_p50_ms"].append(result.latency.p50 if result.ok else None)
            print(f"  rep {rep + 1} {item['alternative']}: {item['remeasured_p50_ms'][-1]}", file=sys.stderr)
    held = []
    for item in items:
        values = [v for v in item["remeasured_p50_ms"] if v is not None]
        median = statistics.median(values) if values else None
        inside = (median is not None and (item["low_ms"] is None or item["low_ms"] <= median)
                  and (item["high_ms"] is None or median <= item["high_ms"]))
        verdicts = {}
        for b in report["budgets"]:
            first = "fits" if item["high_ms"] is not None and item["high_ms"] <= b["budget_ms"] else (
                "does not fit" if item["low_ms"] is not None and item["low_ms"] > b["budget_ms"] else "too close")
            again = None if median is None else ("fits" if median <= b["budget_ms"] else "does not fit")
            verdicts[f"{b['budget_ms']:g}"] = {"first": first, "remeasured_median_says": again,
                                               "holds": first == "too close" or first == again}
        held.append({"alternative": item["alternative"], "model": Path(item["model"]).name,
                     "settings": item["bench"].label(), "p50_ms": item["p50_ms"],
                     "interval_ms": [item["low_ms"], item["high_ms"]], "remeasured_p50_ms": item["remeasured_p50_ms"],
                     "remeasured_median_ms": median,
                     "ratio_remeasured_over_first": None if median is None else median / item["p50_ms"],
                     "median_inside_first_interval": inside, "verdicts": verdicts,
                     "verdict_holds_at_every_budget": all(v["holds"] for v in verdicts.values())})
    report["remeasured"] = held
    report["machine"]["load_after"] = os.getloadavg()[0]
    RESULTS.mkdir(exist_ok=True)
    Path(args.out).write_text(json.dumps(report, indent=2, default=str) + "\n")
    for b in report["budgets"]:
        print(f"{b['budget_ms']:g} ms: {b['message']}")
        for a in b["alternatives"]:
            print(f"  {a['line']}")
    for h in held:
        print(f"{h['alternative']}: first {h['p50_ms']:.2f} ms, re-measured median "
              f"{h['remeasured_median_ms']} ms, inside interval: {h['median_inside_first_interval']}, "
              f"verdicts hold: {h['verdict_holds_at_every_budget']}")
    return 0


def _model_of(rundir: str, alternative) -> Path | None:
    """The model file an alternative measured (models/<variant name>-<quant>.tflite)."""
    from edgenet.family.variants import parse_variant

    path = Path(rundir) / "models" / f"{parse_variant(alternative.proposal.variant).name}-{alternative.proposal.quant}.tflite"
    return path if path.is_file() else None


if __name__ == "__main__":
    sys.exit(main())
