"""Which interpreter should edgenet's calibrator run: TF's ``tf.lite`` or LiteRT's? Side by side.

The calibrator (:func:`edgenet.convert.calibrator.tensor_ranges`) runs in the converter's child
process, where TensorFlow is loaded anyway, with builtin kernels only (no XNNPACK, which would
hide intermediate tensors). Both interpreters run the same float model, the same chunks and the
same calibration samples, alternating, ``--reps`` times each; the best time of each is kept.

    .venv/bin/python benchmarks/calibrator_runtime.py [--variant b4] [--samples 30] [--reps 2]

Writes benchmarks/results/calibrator_runtime.json and prints the ratio.
"""

from __future__ import annotations

import argparse
import json
import os
import time
from pathlib import Path

import numpy as np

from edgenet.convert.api import ConvertRequest, convert_variants
from edgenet.convert.calibration import load_calibration
from edgenet.convert.calibrator import tensor_ranges
from edgenet.family.variants import parse_variant
from edgenet.fsutil import atomic_write_text

HERE = Path(__file__).resolve().parent
RESULTS = HERE / "results" / "calibrator_runtime.json"


def _litert_interpreter(model_content: bytes, num_threads: int | None):
    from edgenet.runtime.interpreter import load_runtime

    runtime = load_runtime(("ai_edge_litert",))
    return runtime.Interpreter(model_content=model_content, num_threads=num_threads or os.cpu_count() or 1,
                               experimental_op_resolver_type=runtime.op_resolver_type.BUILTIN_WITHOUT_DEFAULT_DELEGATES)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--variant", default="b4")
    parser.add_argument("--samples", type=int, default=30)
    parser.add_argument("--reps", type=int, default=2)
    args = parser.parse_args(argv)

    from tensorflow.lite.tools import flatbuffer_utils

    variant = parse_variant(args.variant)
    (fp32,) = convert_variants([variant], ConvertRequest(quant="fp32", out_dir=HERE / "models" / "convert",
                                                         progress=False))
    model = flatbuffer_utils.convert_bytearray_to_object(Path(fp32.model_path).read_bytes())
    calib = load_calibration("default", variant.contract, args.samples, 0).array
    samples = [[np.ascontiguousarray(calib[i : i + 1])] for i in range(len(calib))]
    interpreters = {"tf.lite": None, "ai_edge_litert": _litert_interpreter}  # None: the calibrator's own
    times: dict[str, list[float]] = {name: [] for name in interpreters}
    ranges = {}
    for _ in range(args.reps):
        for name, factory in interpreters.items():
            t0 = time.perf_counter()
            ranges[name] = tensor_ranges(model, samples, interpreter_factory=factory)
            times[name].append(round(time.perf_counter() - t0, 3))
    worst = max(abs(a - b) / max(abs(a), abs(b), 1e-12)
                for t in ranges["tf.lite"] for a, b in zip(ranges["tf.lite"][t], ranges["ai_edge_litert"][t], strict=True))
    best = {name: min(ts) for name, ts in times.items()}
    payload = {"benchmark": "calibrator_runtime", "variant": variant.name, "samples": len(samples),
               "threads": os.cpu_count(), "times_s": times, "best_s": best,
               "litert_over_tflite": round(best["ai_edge_litert"] / best["tf.lite"], 3),
               "max_relative_range_difference": worst, "load_avg": [round(x, 2) for x in os.getloadavg()]}
    atomic_write_text(RESULTS, json.dumps(payload, indent=2) + "\n")
    print(json.dumps(payload, indent=2))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
