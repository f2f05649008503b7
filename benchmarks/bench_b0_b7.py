"""Latency of EfficientNet-B0..B7 on this machine: fp32 vs int8, 1 and 2 threads.

Models come from ``edgenet convert`` (random weights: weights do not change latency; 100
calibration samples from the embedded set for int8), cached in benchmarks/models/convert/
by benchmarks/convert_b0_b7.py or converted here when missing. Every setting is measured by
``edgenet bench``'s own harness (one child process per setting). fp32 and int8 of the same
variant and thread count are measured side by side, alternating ``--reps`` times (ABAB...),
and the median p50 of the repetitions is reported, so slow drift of a shared machine hits
both sides alike; the int8 speed-up is the median of the per-repetition ratios.

    .venv/bin/python benchmarks/bench_b0_b7.py [--variants b0-b7] [--threads 1,2] [--reps 2]

Writes benchmarks/results/bench_b0_b7.jsonl (edgenet.result/1 records),
benchmarks/results/bench_b0_b7.json (the summary) and prints a Markdown table.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
from pathlib import Path

from edgenet.bench import BenchParams
from edgenet.bench.runner import run_settings
from edgenet.convert.api import ConvertRequest, convert_variants, output_stem, resolve_io
from edgenet.family.variants import parse_variant_list
from edgenet.fsutil import atomic_write_text
from edgenet.results import append_records

HERE = Path(__file__).resolve().parent
MODELS = HERE / "models" / "convert"
RESULTS = HERE / "results"


def model_path(variant, quant: str) -> Path:
    return MODELS / f"{output_stem(variant, quant, resolve_io(quant, None))}.tflite"


def ensure_models(variants, quants) -> None:
    for quant in quants:
        missing = [v for v in variants if not model_path(v, quant).is_file()]
        if missing:
            convert_variants(missing, ConvertRequest(quant=quant, samples=100, out_dir=MODELS))


def params_for(threads: int, variant_name: str) -> BenchParams:
    # Big variants take close to a second per inference on 2 cores: fewer runs, same protocol.
    heavy = variant_name in ("b5", "b6", "b7")
    return BenchParams(threads=threads, warmup_s=1.0, min_runs=10 if heavy else 50, min_s=3.0, max_s=30.0)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--variants", default="b0-b7")
    parser.add_argument("--threads", default="1,2")
    parser.add_argument("--reps", type=int, default=2)
    args = parser.parse_args()
    variants = parse_variant_list([args.variants])
    threads = [int(t) for t in args.threads.split(",")]
    ensure_models(variants, ("fp32", "int8"))

    rows, records = [], []
    load_start = os.getloadavg()
    for variant in variants:
        for t in threads:
            p50 = {"fp32": [], "int8": []}
            for rep in range(args.reps):
                order = ("fp32", "int8") if rep % 2 == 0 else ("int8", "fp32")
                for quant in order:
                    (result,) = run_settings([model_path(variant, quant)], [params_for(t, variant.name)])
                    record = result.to_record()
                    record["samples_ms"] = None  # keep the committed file small; stats stay
                    records.append(record)
                    if result.error:
                        raise SystemExit(f"{variant.name} {quant} threads={t}: {result.error}")
                    p50[quant].append(result.latency.p50)
            ratios = [f / i for f, i in zip(p50["fp32"], p50["int8"], strict=True)]
            rows.append({
                "variant": variant.name, "threads": t,
                "fp32_p50_ms": statistics.median(p50["fp32"]), "int8_p50_ms": statistics.median(p50["int8"]),
                "int8_speedup": statistics.median(ratios),
                "fp32_size_mb": model_path(variant, "fp32").stat().st_size / 1e6,
                "int8_size_mb": model_path(variant, "int8").stat().st_size / 1e6,
                "reps_fp32_ms": p50["fp32"], "reps_int8_ms": p50["int8"],
            })
            print(f"{variant.name} threads={t}: fp32 {rows[-1]['fp32_p50_ms']:.2f} ms, "
                  f"int8 {rows[-1]['int8_p50_ms']:.2f} ms, x{rows[-1]['int8_speedup']:.2f}", flush=True)
    RESULTS.mkdir(parents=True, exist_ok=True)
    jsonl = RESULTS / "bench_b0_b7.jsonl"
    if jsonl.exists():
        jsonl.unlink()
    append_records(jsonl, records)
    summary = {"rows": rows, "loadavg_start": load_start, "loadavg_end": os.getloadavg(),
               "cpu": records[0]["device"].get("cpu_model") if records else None}
    atomic_write_text(RESULTS / "bench_b0_b7.json", json.dumps(summary, indent=2))
    print()
    print("| variant | threads | fp32 p50 ms | int8 p50 ms | int8 speed-up | fp32 MB | int8 MB |")
    print("|---|---:|---:|---:|---:|---:|---:|")
    for r in rows:
        print(f"| {r['variant']} | {r['threads']} | {r['fp32_p50_ms']:.2f} | {r['int8_p50_ms']:.2f} | "
              f"{r['int8_speedup']:.2f}x | {r['fp32_size_mb']:.1f} | {r['int8_size_mb']:.1f} |")


if __name__ == "__main__":
    main()
