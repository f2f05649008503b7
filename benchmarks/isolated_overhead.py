"""What running a user's .tflite in a child process costs ``predict``/``eval``.

Issue 11 moved the interpreter of ``predict`` and ``eval`` into a child process
(:mod:`edgenet.runtime.isolated`) so a model that crashes native code costs one line. This measures
the price, side by side and interleaved (A B A B ...): opening the model (in-process
``TFLiteModel.from_path`` vs ``IsolatedTFLiteModel``: the child's start-up) and classifying one
preprocessed image (a call vs a round trip over the pipes). Reported: medians of each side and the
median of the per-repetition ratios.

    .venv/bin/python benchmarks/isolated_overhead.py [--model M.tflite] [--reps 7]

Without ``--model`` the tests' tiny int8 conv net (32 px, built by tests/fixtures_tflite.py)
is built once. Writes benchmarks/results/isolated_overhead.json.
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

from edgenet.fsutil import atomic_write_text
from edgenet.runtime.interpreter import TFLiteModel
from edgenet.runtime.isolated import IsolatedTFLiteModel

RESULTS = Path(__file__).resolve().parent / "results" / "isolated_overhead.json"


def _model(path: str | None) -> Path:
    if path:
        return Path(path)
    sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "tests"))
    from fixtures_tflite import build_tiny_tflite_models

    return build_tiny_tflite_models(Path(tempfile.mkdtemp(prefix="edgenet-iso-"))).int8


def _measure(kind: str, path: Path, batch: np.ndarray, runs: int) -> tuple[float, float]:
    t0 = time.perf_counter()
    model = TFLiteModel.from_path(path) if kind == "in-process" else IsolatedTFLiteModel(path)
    open_ms = (time.perf_counter() - t0) * 1e3
    model.run(batch)  # warm-up
    t0 = time.perf_counter()
    for _ in range(runs):
        model.run(batch)
    run_ms = (time.perf_counter() - t0) * 1e3 / runs
    if kind == "child":
        model.close()
    return open_ms, run_ms


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--model", default=None)
    parser.add_argument("--reps", type=int, default=7)
    parser.add_argument("--runs", type=int, default=20, help="classifications per repetition")
    args = parser.parse_args()
    path = _model(args.model)
    probe = TFLiteModel.from_path(path)
    batch = np.random.default_rng(0).uniform(0, 255, (1, *probe.input_shape[1:])).astype(np.float32)
    rows = {"in-process": [], "child": []}
    for _ in range(args.reps):
        for kind in ("in-process", "child"):
            rows[kind].append(_measure(kind, path, batch, args.runs))
    summary = {"model": path.name, "input_shape": list(probe.input_shape), "reps": args.reps, "runs": args.runs}
    for i, name in enumerate(("open_ms", "run_ms")):
        a = [r[i] for r in rows["in-process"]]
        b = [r[i] for r in rows["child"]]
        summary[name] = {"in_process_median": round(statistics.median(a), 3), "child_median": round(statistics.median(b), 3),
                         "child_over_in_process_median_ratio": round(statistics.median(y / x for x, y in zip(a, b, strict=True)), 2),
                         "extra_ms_median": round(statistics.median(y - x for x, y in zip(a, b, strict=True)), 3)}
    atomic_write_text(RESULTS, json.dumps(summary, indent=2) + "\n")
    print(json.dumps(summary, indent=2))


if __name__ == "__main__":
    main()
