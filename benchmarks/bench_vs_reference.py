"""Does edgenet's harness agree with LiteRT's own benchmark tool and with a bare invoke loop?

Three measurements of the same model at the same thread count, interleaved to cancel drift
(rep 0: edgenet, litert-benchmark, bare; rep 1: bare, litert-benchmark, edgenet; ...):

* edgenet: ``edgenet.bench.run_in_child`` (the harness exactly as ``edgenet bench`` runs it), p50;
* litert-benchmark: the console script shipped with ai-edge-litert (CompiledModel API, XNNPACK CPU),
  its "Inference (median)" line (its "avg" is recorded too);
* bare: ``for _ in range(n): t0; interpreter.invoke(); t1`` in this process, p50.

Each figure is the median over the repetitions. Models: EfficientNet-B0 converted to fp32 and int8
by ``edgenet convert`` (random weights: they do not change the op graph's cost), shared with the
other benchmarks in benchmarks/models/convert/; conversions run in child processes, so TensorFlow
is never loaded in the measuring process.

    .venv/bin/python benchmarks/bench_vs_reference.py --threads 1,2 --reps 3
"""

from __future__ import annotations

import argparse
import json
import re
import shutil
import statistics
import subprocess
import sys
import time
from pathlib import Path

import numpy as np

HERE = Path(__file__).resolve().parent
MODELS = HERE / "models" / "convert"
RESULTS = HERE / "results"
RESOLUTION = 224


def build_models() -> None:
    """Convert B0 to fp32 and int8 exactly as ``edgenet convert`` does (child processes: this
    process never loads TensorFlow). Up-to-date models are reused."""
    from edgenet.convert.api import ConvertRequest, convert_variants
    from edgenet.family.variants import parse_variant

    for quant in ("fp32", "int8"):
        (result,) = convert_variants([parse_variant("b0")], ConvertRequest(quant=quant, samples=100, out_dir=MODELS))
        if not result.ok:
            raise SystemExit(result.error)


def litert_benchmark_exe() -> str:
    local = Path(sys.executable).with_name("litert-benchmark")
    return str(local) if local.exists() else (shutil.which("litert-benchmark") or "litert-benchmark")


_LINE = re.compile(r"Inference \((median|avg)\):\s+([0-9.]+) ms")


def run_litert(model: Path, threads: int, runs: int, warmup_runs: int) -> dict:
    cmd = [
        litert_benchmark_exe(),
        f"--model={model}",
        f"--num_threads={threads}",
        f"--num_runs={runs}",
        f"--warmup_runs={warmup_runs}",
    ]
    proc = subprocess.run(cmd, capture_output=True, text=True, check=True)
    found = dict((k, float(v)) for k, v in _LINE.findall(proc.stdout))
    if "median" in found:
        return {"value_ms": found["median"], "stat": "median", "avg_ms": found.get("avg")}
    return {"value_ms": found["avg"], "stat": "avg", "avg_ms": found.get("avg")}


def run_bare(model: Path, threads: int, runs: int, warmup_runs: int) -> float:
    """A plain timing loop around invoke(), nothing else."""
    from ai_edge_litert.interpreter import Interpreter

    interpreter = Interpreter(model_content=model.read_bytes(), num_threads=threads)
    interpreter.allocate_tensors()
    detail = interpreter.get_input_details()[0]
    dtype = np.dtype(detail["dtype"])
    rng = np.random.default_rng(0)
    if np.issubdtype(dtype, np.integer):
        data = rng.integers(-128, 127, size=detail["shape"], endpoint=True).astype(dtype)
    else:
        data = rng.uniform(0, 255, size=detail["shape"]).astype(dtype)
    interpreter.set_tensor(detail["index"], data)
    for _ in range(warmup_runs):
        interpreter.invoke()
    samples = []
    for _ in range(runs):
        t0 = time.perf_counter_ns()
        interpreter.invoke()
        samples.append((time.perf_counter_ns() - t0) / 1e6)
    del interpreter
    return float(np.percentile(samples, 50, method="linear"))


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--threads", default="1,2")
    parser.add_argument("--reps", type=int, default=3)
    parser.add_argument("--runs", type=int, default=100, help="timed runs per measurement (all three methods)")
    parser.add_argument("--warmup-runs", type=int, default=10)
    parser.add_argument("--build-only", action="store_true")
    parser.add_argument("--models", default="b0-fp32,b0-int8")
    args = parser.parse_args()
    names = args.models.split(",")
    build_models()
    if args.build_only:
        return 0

    from edgenet import results
    from edgenet.bench import BenchParams, run_in_child
    from edgenet.runtime.envinfo import device_info

    threads_list = [int(t) for t in args.threads.split(",")]
    rows, records = [], []
    for name in names:
        model = MODELS / f"{name}.tflite"
        for threads in threads_list:
            # warm-up of the harness by time ~ the reference's warm-up runs; min_s=0 so the run count matches
            params = BenchParams(threads=threads, warmup_s=1.0, min_runs=args.runs, min_s=0.0, max_s=120.0)
            values: dict[str, list[float]] = {"edgenet": [], "litert": [], "bare": [], "litert_avg": []}
            stat = None
            for rep in range(args.reps):
                order = ["edgenet", "litert", "bare"] if rep % 2 == 0 else ["bare", "litert", "edgenet"]
                for method in order:
                    if method == "edgenet":
                        result = run_in_child(model, params)
                        if result.error:
                            raise SystemExit(f"edgenet failed: {result.error}")
                        values["edgenet"].append(result.latency.p50)
                        records.append(result.with_device(device_info(label="bench_vs_reference",
                                                                      runtime=result.runtime)).to_record())
                    elif method == "litert":
                        out = run_litert(model, threads, args.runs, args.warmup_runs)
                        stat = out["stat"]
                        values["litert"].append(out["value_ms"])
                        if out["avg_ms"] is not None:
                            values["litert_avg"].append(out["avg_ms"])
                    else:
                        values["bare"].append(run_bare(model, threads, args.runs, args.warmup_runs))
                print(f"{name} t={threads} rep {rep}: " + ", ".join(f"{k}={v[-1]:.3f}" for k, v in values.items()
                                                                    if v), file=sys.stderr)
            med = {k: statistics.median(v) if v else None for k, v in values.items()}
            rows.append({
                "model": name,
                "threads": threads,
                "edgenet_p50_ms": med["edgenet"],
                "litert_benchmark_ms": med["litert"],
                "litert_benchmark_stat": stat,
                "litert_benchmark_avg_ms": med["litert_avg"],
                "bare_p50_ms": med["bare"],
                "ratio_vs_litert": med["edgenet"] / med["litert"],
                "ratio_vs_bare": med["edgenet"] / med["bare"],
                # neighbouring measurements of one repetition share the machine's state: their ratio
                # cancels slow drift better than a ratio of medians
                "paired_ratio_vs_litert": statistics.median(
                    e / r for e, r in zip(values["edgenet"], values["litert"], strict=True)),
                "paired_ratio_vs_bare": statistics.median(
                    e / b for e, b in zip(values["edgenet"], values["bare"], strict=True)),
                "per_rep": values,
            })
    RESULTS.mkdir(parents=True, exist_ok=True)
    from edgenet.fsutil import atomic_write_text

    summary = {
        "command": " ".join([Path(sys.executable).name, *sys.argv]),
        "reps": args.reps,
        "runs": args.runs,
        "warmup_runs": args.warmup_runs,
        "device": device_info(label="bench_vs_reference"),
        "model_source": "edgenet convert b0 --quant fp32|int8 --samples 100 (random weights)",
        "rows": rows,
    }
    atomic_write_text(RESULTS / "bench_vs_reference.json", json.dumps(summary, indent=2) + "\n")
    results.append_records(RESULTS / "bench_vs_reference.jsonl", records)

    print("| model | threads | edgenet p50 ms | litert-benchmark ms (stat) | bare-loop p50 ms | edgenet/litert "
          "(paired) | edgenet/bare (paired) |")
    print("|---|---|---|---|---|---|---|")
    for r in rows:
        print(f"| {r['model']} | {r['threads']} | {r['edgenet_p50_ms']:.3f} | {r['litert_benchmark_ms']:.3f} "
              f"({r['litert_benchmark_stat']}) | {r['bare_p50_ms']:.3f} | {r['ratio_vs_litert']:.3f} "
              f"({r['paired_ratio_vs_litert']:.3f}) | {r['ratio_vs_bare']:.3f} ({r['paired_ratio_vs_bare']:.3f}) |")
    return 0


if __name__ == "__main__":
    sys.exit(main())
