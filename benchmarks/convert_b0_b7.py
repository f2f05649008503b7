"""Conversion cost of EfficientNet-B0..B7: time, peak memory and file size, fp32 vs int8.

Each conversion runs exactly as ``edgenet convert`` runs it (one child process per variant,
:func:`edgenet.convert.api.convert_variants`), at 100 calibration samples from the embedded
default set, random weights (weights do not change conversion cost or file size), static
batch 1, ``--force`` so nothing is skipped. Recorded per variant and mode:

* ``parent_wall_s`` ("total s" in the table): everything, as a user waits for it (loading the
  calibration images, the child's TF import, build, trace, convert, read-back, fidelity check);
* ``wall_s``: the child after its imports (build, trace, convert, read-back, fidelity check);
* ``convert_s``: ``TFLiteConverter.convert()`` alone (int8: includes calibration);
* ``peak_mb``: the child's ``ru_maxrss``;
* ``size_bytes`` of the .tflite.

Targets on the 2-core reference machine: B0 int8 <= 45 s, all of B0-B7 int8 <= 15 min,
B7 peak < 8 GiB. The machine is shared (other test runs may be using the cores), so times are
upper bounds; the load average at start and end is recorded.

    .venv/bin/python benchmarks/convert_b0_b7.py [--variants b0-b7] [--modes int8,fp32] [--calibrator tflite]
    .venv/bin/python benchmarks/convert_b0_b7.py --merge RUN1.json RUN2.json   # later rows win

Writes benchmarks/results/convert_b0_b7.json (with ``--calibrator tflite``, TF's own calibrator
instead of edgenet's default: convert_b0_b7_tflite_calibrator.json) and prints a Markdown table.
Models go to benchmarks/models/convert/ (git-ignored).
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import time
from pathlib import Path

from edgenet.convert.api import ConvertRequest, convert_variants
from edgenet.convert.calibrator import CALIBRATORS
from edgenet.family.variants import parse_variant_list

HERE = Path(__file__).resolve().parent
MODELS = HERE / "models" / "convert"
RESULTS = HERE / "results" / "convert_b0_b7.json"
TARGETS = {"b0_int8_wall_s": 45.0, "all_int8_wall_s": 15 * 60.0, "b7_peak_mb": 8 * 1024.0}


def _markdown(rows: list[dict]) -> str:
    by_variant: dict[str, dict] = {}
    for r in rows:
        by_variant.setdefault(r["variant"], {})[r["quant"]] = r
    lines = [
        "| variant | int8 total s | int8 convert s | int8 peak MB | fp32 total s | fp32 peak MB | fp32 MB | int8 MB "
        "| fp32/int8 |",
        "|---|---:|---:|---:|---:|---:|---:|---:|---:|",
    ]

    def g(row, key, fmt="{:.1f}", scale=1.0):
        if not row or row.get(key) is None:
            return "-"
        return fmt.format(row[key] / scale)

    for name, modes in by_variant.items():
        i8, f32 = modes.get("int8"), modes.get("fp32")
        ratio = "-"
        if i8 and f32 and i8.get("size_bytes") and f32.get("size_bytes"):
            ratio = f"{f32['size_bytes'] / i8['size_bytes']:.2f}x"
        lines.append(
            f"| {name} | {g(i8, 'parent_wall_s')} | {g(i8, 'convert_s')} | {g(i8, 'peak_mb', '{:.0f}')} "
            f"| {g(f32, 'parent_wall_s')} | {g(f32, 'peak_mb', '{:.0f}')} | {g(f32, 'size_bytes', scale=1e6)} "
            f"| {g(i8, 'size_bytes', scale=1e6)} | {ratio} |"
        )
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--variants", default="b0-b7")
    parser.add_argument("--modes", default="int8,fp32")
    parser.add_argument("--samples", type=int, default=100)
    parser.add_argument("--calibrator", choices=CALIBRATORS, default=CALIBRATORS[0])
    parser.add_argument("--results", type=Path, default=None,
                        help="JSON file to write (default: results/convert_b0_b7.json, or "
                             "convert_b0_b7_tflite_calibrator.json with --calibrator tflite).")
    parser.add_argument("--merge", nargs="+", type=Path, default=None,
                        help="Convert nothing: merge the rows of these result files into --results.")
    args = parser.parse_args(argv)
    if args.results is None:
        suffix = "" if args.calibrator == "edgenet" else f"_{args.calibrator}_calibrator"
        args.results = RESULTS.with_name(f"{RESULTS.stem}{suffix}.json")

    started = time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime())
    load_before = os.getloadavg()
    if args.merge:
        merged: dict[tuple[str, str], dict] = {}
        first = json.loads(args.merge[0].read_text())
        started, load_before = first.get("started_utc", started), first.get("load_avg_before", load_before)
        for path in args.merge:
            for row in json.loads(path.read_text())["rows"]:
                merged[(row["variant"], row["quant"])] = row
        order = [f"b{i}" for i in range(8)]
        rows = sorted(merged.values(), key=lambda r: (r["quant"], order.index(r["variant"])
                                                      if r["variant"] in order else 99))
        return _finish(rows, args, started, load_before)

    variants = parse_variant_list([args.variants])
    rows: list[dict] = []
    for quant in args.modes.split(","):
        out = MODELS if args.calibrator == "edgenet" else MODELS.with_name(f"convert-{args.calibrator}")
        options = ConvertRequest(quant=quant, samples=args.samples, out_dir=out, force=True, progress=True,
                                 calibrator=args.calibrator)
        for variant in variants:
            t0 = time.perf_counter()
            (result,) = convert_variants([variant], options)
            row = {
                "variant": variant.name,
                "quant": quant,
                "status": result.status,
                "error": result.error,
                "wall_s": round(result.worker_time_s or (time.perf_counter() - t0), 2),
                "parent_wall_s": round(time.perf_counter() - t0, 2),
                "convert_s": result.conversion_time_s,
                "peak_mb": result.peak_memory_mb,
                "size_bytes": result.size_bytes,
                "load_avg_1m": round(os.getloadavg()[0], 2),
            }
            rows.append(row)
            print(json.dumps(row), file=sys.stderr, flush=True)
            _write(rows, args, started, load_before)
    return _finish(rows, args, started, load_before)


def _finish(rows, args, started, load_before) -> int:
    int8 = [r for r in rows if r["quant"] == "int8"]
    summary = {
        "b0_int8_wall_s": next((r["parent_wall_s"] for r in int8 if r["variant"] == "b0"), None),
        "all_int8_wall_s": round(sum(r["parent_wall_s"] for r in int8), 1) if int8 else None,
        "b7_peak_mb": max((r["peak_mb"] or 0 for r in rows if r["variant"] == "b7"), default=None),
    }
    _write(rows, args, started, load_before, summary)
    print(_markdown(rows))
    print()
    for key, value in summary.items():
        target = TARGETS[key]
        verdict = "n/a" if value is None else ("meets" if value <= target else "MISSES")
        print(f"- {key}: {value} (target <= {target:g}) {verdict}")
    return 0 if all(r["status"] != "failed" for r in rows) else 1


def _write(rows, args, started, load_before, summary=None) -> None:
    from edgenet.fsutil import atomic_write_text

    payload = {
        "benchmark": "convert_b0_b7",
        "started_utc": started,
        "samples": args.samples,
        "calibration": "default",
        "calibrator": args.calibrator,
        "weights": None,
        "cores": os.cpu_count(),
        "load_avg_before": [round(x, 2) for x in load_before],
        "load_avg_after": [round(x, 2) for x in os.getloadavg()],
        "targets": TARGETS,
        "summary": summary,
        "rows": rows,
    }
    atomic_write_text(args.results, json.dumps(payload, indent=2) + "\n")


if __name__ == "__main__":
    sys.exit(main())
