"""Edge TPU compatibility of every EfficientNet variant, from the static check.

Converts B0-B7 and Lite0-4 exactly as ``edgenet convert --quant int8`` does (full-integer,
int8 input and output, static batch 1, 100 samples of the embedded calibration set, random
weights: weights do not change the op graph or the parameter bytes), runs
:func:`edgenet.edgetpu.check.check_model` on each and writes
``benchmarks/results/edgetpu_check.json`` and ``benchmarks/results/edgetpu_check.md``.
Converted files are shared with the other benchmarks in ``benchmarks/models/convert/``
(git-ignored); an up-to-date model is not converted again.

Usage::

    .venv/bin/python benchmarks/edgetpu_check_table.py            # convert missing, check all
    .venv/bin/python benchmarks/edgetpu_check_table.py b0 lite0 --check-only
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

from edgenet.convert.api import ConvertRequest, convert_variants, output_stem, resolve_io
from edgenet.family.variants import VARIANTS

ROOT = Path(__file__).resolve().parent
MODELS_DIR = ROOT / "models" / "convert"
RESULTS_DIR = ROOT / "results"
ALL_VARIANTS = [f"b{i}" for i in range(8)] + [f"lite{i}" for i in range(5)]


def model_path(name: str) -> Path:
    return MODELS_DIR / f"{output_stem(VARIANTS[name], 'int8', resolve_io('int8', None))}.tflite"


def convert(names: list[str]) -> None:
    results = convert_variants([VARIANTS[n] for n in names], ConvertRequest(quant="int8", samples=100,
                                                                           out_dir=MODELS_DIR))
    failed = [r for r in results if not r.ok]
    if failed:
        raise SystemExit("; ".join(r.error or r.variant for r in failed))


def check_all(names: list[str]) -> list[dict]:
    from edgenet.edgetpu.check import check_model

    rows = []
    for name in names:
        path = model_path(name)
        if not path.exists():
            rows.append({"variant": name, "error": f"not converted: {path.name} missing"})
            continue
        report = check_model(path)
        row = {"variant": name, "source": f"edgenet convert {name} --quant int8 --samples 100"}
        row.update(report.to_dict(include_ops=False))
        if "path" in row:  # relative to the repository: results files carry no machine's folders
            row["path"] = str(path.relative_to(ROOT.parent))
        rows.append(row)
    return rows


def markdown(rows: list[dict]) -> str:
    lines = [
        "| variant | ops | ops on TPU % | MACs on TPU % | first unsupported op | params MiB | on-chip MiB | off-chip MiB |",
        "|---|---|---|---|---|---|---|---|",
    ]
    mib = 1 << 20
    for r in rows:
        if r.get("error"):
            lines.append(f"| {r['variant']} | – | – | – | {r['error']} | – | – | – |")
            continue
        first = r["first_unsupported"]
        first_text = "none" if first is None else f"#{first['index']} {first['op']}: {first['reason']}"
        lines.append(
            f"| {r['variant']} | {r['ops_total']} | {100 * r['ops_tpu_share']:.1f} | {100 * r['macs_tpu_share']:.1f} "
            f"| {first_text} | {r['param_bytes_tpu'] / mib:.2f} | {r['param_bytes_on_chip'] / mib:.2f} "
            f"| {r['param_bytes_off_chip'] / mib:.2f} |"
        )
    return "\n".join(lines) + "\n"


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("variants", nargs="*", default=ALL_VARIANTS)
    parser.add_argument("--convert-only", action="store_true", help="convert, do not check")
    parser.add_argument("--check-only", action="store_true", help="check already converted models only")
    args = parser.parse_args(argv)
    unknown = sorted(set(args.variants) - set(ALL_VARIANTS))
    if unknown:
        parser.error(f"unknown variants: {', '.join(unknown)}")
    if not args.check_only:
        convert(args.variants)
    if args.convert_only:
        return 0
    rows = check_all(args.variants)
    from edgenet.fsutil import atomic_write_text

    atomic_write_text(RESULTS_DIR / "edgetpu_check.json", json.dumps(rows, indent=2) + "\n")
    table = markdown(rows)
    atomic_write_text(RESULTS_DIR / "edgetpu_check.md", table)
    sys.stdout.write(table)
    return 0


if __name__ == "__main__":
    sys.exit(main())
