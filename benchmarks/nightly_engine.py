"""Does ``ai-edge-litert-nightly`` run B0 int8 with outputs identical to ``ai-edge-litert``, and how fast?

The nightly lives in its own virtual environment (never in the project's, which everyone shares):

    python3 -m venv /path/venv-nightly && /path/venv-nightly/bin/pip install ai-edge-litert-nightly numpy
    .venv/bin/python benchmarks/nightly_engine.py --nightly-python /path/venv-nightly/bin/python [--reps 5]

1. B0 int8 is converted once (``edgenet convert``'s path, embedded calibration, random weights: the op
   graph's cost does not depend on them) into ``benchmarks/models/nightly/``.
2. Outputs: 16 seeded inputs run through :class:`edgenet.runtime.interpreter.TFLiteModel` in each
   environment (the same edgenet code, only the runtime differs); bit-identical or the largest difference.
3. Speed: the same bench child (``python -m edgenet.bench.child``) under each environment's python,
   interleaved A-B, B-A, ... ``--reps`` times, default Interpreter + XNNPACK, 1 thread; per-pair ratios
   nightly/stable of p50 and min, their medians and minima. Where the nightly's CompiledModel has YNNPACK,
   ``compiled/ynnpack`` is measured the same way (its absence is one line).

Results: ``benchmarks/results/nightly_engine.json``. The nightly engine is optional: without
``--nightly-python`` (or when it cannot start) the result file says so in one line.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
from pathlib import Path

import numpy as np

HERE = Path(__file__).resolve().parent
ROOT = HERE.parent
MODELS = HERE / "models" / "nightly"
RESULTS = HERE / "results"

_OUTPUTS = """
import json, sys
import numpy as np
from edgenet.runtime.interpreter import TFLiteModel
model = TFLiteModel.from_path(sys.argv[1], threads=1)
inputs = np.load(sys.argv[2])
out = np.concatenate([model.run(inputs[i:i + 1]) for i in range(len(inputs))])
np.save(sys.argv[3], out)
print(json.dumps(model.runtime.info.to_dict()))
"""


def machine() -> dict:
    """The machine, by the library's own reading (the same fields every bench record's device block holds)."""
    from edgenet.runtime.envinfo import cpu_model, isa_features, load_average

    isa = isa_features() or {}
    return {"cpu_model": cpu_model(), "isa": sorted(k for k, v in isa.items() if v), "cores": os.cpu_count(),
            "load_before": load_average()}


def convert_b0() -> Path:
    from edgenet.convert.api import ConvertRequest, convert_variants
    from edgenet.family.variants import parse_variant

    MODELS.mkdir(parents=True, exist_ok=True)
    (result,) = convert_variants([parse_variant("b0")], ConvertRequest(quant="int8", samples=32, out_dir=MODELS,
                                                                       progress=False))
    if not result.ok:
        raise SystemExit(f"b0 conversion failed: {result.error}")
    return Path(result.model_path)


def env() -> dict:
    return {**os.environ, "PYTHONPATH": str(ROOT)}


def outputs(python: str, model: Path, inputs: Path, out: Path) -> dict:
    proc = subprocess.run([python, "-c", _OUTPUTS, str(model), str(inputs), str(out)], env=env(), text=True,
                          capture_output=True, timeout=600)
    if proc.returncode != 0:
        raise RuntimeError(" ".join(proc.stderr.strip().splitlines()[-1:]) or f"exit {proc.returncode}")
    return json.loads(proc.stdout.strip().splitlines()[-1])


def bench(python: str, model: Path, params) -> dict:
    from edgenet.bench.runner import run_in_child

    result = run_in_child(model, params, python=python, env=env())
    if not result.ok:
        return {"error": result.error}
    return {"p50_ms": result.latency.p50, "min_ms": result.latency.min, "runs": result.runs,
            "runtime": result.runtime}


def interleaved(pythons: dict[str, str], model: Path, params, reps: int) -> dict:
    rows: dict[str, list[dict]] = {name: [] for name in pythons}
    names = list(pythons)
    for rep in range(reps):
        for name in (names if rep % 2 == 0 else names[::-1]):
            rows[name].append(bench(pythons[name], model, params))
            print(f"  rep {rep + 1} {name}: {rows[name][-1]}", file=sys.stderr)
    out: dict = {"reps": rows}
    ok = all("error" not in r for rs in rows.values() for r in rs)
    if ok and len(names) == 2:
        a, b = names
        for stat in ("p50_ms", "min_ms"):
            ratios = [y[stat] / x[stat] for x, y in zip(rows[a], rows[b], strict=True)]
            out[f"ratio_{b}_over_{a}_{stat}"] = {"median": statistics.median(ratios), "min": min(ratios),
                                                 "max": max(ratios)}
        for name in names:
            out[f"{name}_p50_ms_median"] = statistics.median(r["p50_ms"] for r in rows[name])
            out[f"{name}_min_ms_min"] = min(r["min_ms"] for r in rows[name])
    return out


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--nightly-python", default=None)
    parser.add_argument("--reps", type=int, default=5)
    parser.add_argument("--out", default=str(RESULTS / "nightly_engine.json"))
    args = parser.parse_args()
    from dataclasses import replace

    from edgenet.bench import BenchParams

    report: dict = {"machine": machine(), "command": " ".join(["benchmarks/nightly_engine.py", *sys.argv[1:]])}
    stable = sys.executable
    nightly = args.nightly_python
    if nightly is None or not Path(nightly).exists():
        report["nightly"] = "absent: no --nightly-python (ai-edge-litert-nightly in its own venv); nothing compared"
        print(report["nightly"])
        Path(args.out).write_text(json.dumps(report, indent=2) + "\n")
        return 0
    model = convert_b0()
    report["model"] = {"path": str(model.relative_to(ROOT)), "size_bytes": model.stat().st_size}
    with tempfile.TemporaryDirectory() as tmp:
        from edgenet.runtime.interpreter import TFLiteModel

        shape = tuple(int(d) for d in TFLiteModel.from_path(model).input_details[0]["shape"])[1:]
        inputs = np.random.default_rng(0).uniform(0, 255, size=(16, *shape)).astype(np.float32)
        np.save(Path(tmp) / "in.npy", inputs)
        found = {}
        for name, python in (("stable", stable), ("nightly", nightly)):
            try:
                report[f"{name}_runtime"] = outputs(python, model, Path(tmp) / "in.npy", Path(tmp) / f"{name}.npy")
                found[name] = np.load(Path(tmp) / f"{name}.npy")
            except (RuntimeError, subprocess.TimeoutExpired) as exc:
                report[f"{name}_runtime"] = {"error": str(exc)}
        if len(found) == 2:
            a, b = found["stable"], found["nightly"]
            report["outputs"] = {"inputs": len(inputs), "identical": bool(np.array_equal(a, b)),
                                 "max_abs_difference": float(np.max(np.abs(a.astype(np.float64) - b))),
                                 "top1_agreement": float(np.mean(a.argmax(1) == b.argmax(1)))}
    pythons = {"stable": stable, "nightly": nightly}
    base = BenchParams(warmup_s=0.5, min_runs=50, min_s=1.0, max_s=10.0)
    print("interpreter/xnnpack, 1 thread", file=sys.stderr)
    report["interpreter_xnnpack_t1"] = interleaved(pythons, model, base, args.reps)
    ynn = replace(base, api="compiled", ynnpack=True)
    print("compiled/ynnpack, 1 thread", file=sys.stderr)
    report["compiled_ynnpack_t1"] = {name: bench(python, model, ynn) for name, python in pythons.items()}
    if "error" not in report["compiled_ynnpack_t1"]["nightly"]:
        report["nightly_ynnpack_vs_xnnpack"] = _pair(nightly, model, replace(base, api="compiled"), ynn, args.reps)
    report["machine"]["load_after"] = os.getloadavg()[0]
    RESULTS.mkdir(exist_ok=True)
    Path(args.out).write_text(json.dumps(report, indent=2) + "\n")
    print(json.dumps({k: v for k, v in report.items() if k in ("outputs", "nightly_runtime")}, indent=1))
    return 0


def _pair(python: str, model: Path, a, b, reps: int) -> dict:
    """compiled/xnnpack against compiled/ynnpack in one environment, interleaved."""
    rows = {"xnnpack": [], "ynnpack": []}
    for rep in range(reps):
        for name, params in ((("xnnpack", a), ("ynnpack", b)) if rep % 2 == 0 else (("ynnpack", b), ("xnnpack", a))):
            rows[name].append(bench(python, model, params))
    ok = all("error" not in r for rs in rows.values() for r in rs)
    out: dict = {"reps": rows}
    if ok:
        ratios = [y["p50_ms"] / x["p50_ms"] for x, y in zip(rows["xnnpack"], rows["ynnpack"], strict=True)]
        out["ratio_ynnpack_over_xnnpack_p50"] = {"median": statistics.median(ratios), "min": min(ratios)}
    return out


if __name__ == "__main__":
    sys.exit(main())
