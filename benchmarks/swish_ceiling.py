"""How much could a fused int8 swish (or squeeze-excitation) save on B0? Measured, side by side.

Issue 16 asks for B0 int8 at <= 0.9x the stock recipe's latency. edgenet's graph already equals the
stock one in work (``benchmarks/b0_vs_stock.py``: 0.98x); what is left is element-wise work, chiefly
swish, which int8 TFLite spells LOGISTIC + MUL (no SiLU builtin). This script measures:

1. **The ceiling on the whole model.** edgenet's B0 int8 against the same B0 with ReLU instead of
   swish (XNNPACK fuses ReLU into the convolution: swish for free), without squeeze-excitation, and
   both, and the stock recipe's B0, interleaved ``--reps`` times in fresh ``litert-benchmark``
   processes (1 thread). These variants compute something else; they only bound what any exact
   swish/SE fusion could save.
2. **The one single-op substitute TFLite has.** int8 GELU is the only builtin unary op close to
   swish (``swish(x) ~= 1.702 * gelu(x / 1.702)``, an approximation): a conv -> act -> depthwise
   block at B0's largest swish tensor (112x112x96), with LOGISTIC + MUL, GELU, and no activation,
   interleaved invokes in one process; whether XNNPACK takes the op (delegate partitions); and the
   substitution's own error, which alone would disqualify it ("graph changes that keep the numbers").
3. **The squeeze-excitation's MEAN as a global AVERAGE_POOL_2D** (the other builtin spelling of the same
   average): a depthwise -> swish -> SE -> project block at B0's block 2b shape (56x56x144), both spellings and
   no SE, interleaved; delegate partitions and the largest output difference between the two spellings.

    .venv/bin/python benchmarks/swish_ceiling.py [--reps 9] [--runs 50] [--parts micro,se,whole]

Parts not run keep their earlier results in the results file.
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import math
import statistics
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))

from b0_vs_stock import SAMPLES, litert_benchmark, load, stock_model  # noqa: E402

OUT = HERE / "results" / "swish_ceiling.json"


def b0_variants(folder: Path) -> dict[str, Path]:
    """edgenet B0 int8 and its swish-free / SE-free relatives (same seed, same calibration samples)."""
    import keras

    from edgenet.convert.calibration import load_calibration
    from edgenet.convert.worker import keras_to_tflite
    from edgenet.family.model import build_model
    from edgenet.family.variants import parse_variant

    b0 = parse_variant("b0")
    calib = load_calibration("default", b0.contract, samples=SAMPLES, seed=0, progress=False).array
    kinds = {
        "edgenet_b0": b0,
        "b0_relu": dataclasses.replace(b0, activation="relu"),
        "b0_no_se": dataclasses.replace(b0, se=False),
        "b0_relu_no_se": dataclasses.replace(b0, activation="relu", se=False),
    }
    paths = {}
    for label, variant in kinds.items():
        keras.utils.set_random_seed(0)
        data, _ = keras_to_tflite(build_model(variant, batch_size=1), "int8", "int8", calib,
                                  calibrator="edgenet", name=label)
        paths[label] = folder / f"{label}.tflite"
        paths[label].write_bytes(data)
        print(f"converted {label}", file=sys.stderr)
    return paths


def whole_model(paths: dict[str, Path], reps: int, runs: int) -> dict:
    labels = list(paths)
    per_rep = []
    for rep in range(reps):
        order = labels if rep % 2 == 0 else labels[::-1]
        row = {"load_before": load()}
        for label in order:
            row[label] = litert_benchmark(paths[label], 1, runs)
        per_rep.append(row)
        print(f"rep {rep + 1}/{reps}: " + " | ".join(f"{k} {row[k]['min_ms']:.3f}" for k in labels)
              + f" (load {row['load_before']})", file=sys.stderr)
    out: dict = {"reps": reps, "runs": runs, "threads": 1, "per_rep": per_rep, "vs_edgenet_b0": {}, "vs_stock": {}}
    for ref_key, ref in (("vs_edgenet_b0", "edgenet_b0"), ("vs_stock", "stock_b0")):
        for label in labels:
            ratios = [r[label]["min_ms"] / r[ref]["min_ms"] for r in per_rep]
            out[ref_key][label] = {"ratio_median": round(statistics.median(ratios), 3),
                                   "ratio_min": round(min(ratios), 3),
                                   "ratio_of_minima": round(min(r[label]["min_ms"] for r in per_rep)
                                                            / min(r[ref]["min_ms"] for r in per_rep), 3)}
    out["min_ms"] = {label: min(r[label]["min_ms"] for r in per_rep) for label in labels}
    return out


def interleaved_minima_ms(models: dict, reps: int, runs: int) -> dict[str, list[float]]:
    """Per repetition, each model's fastest of ``runs`` invokes (ms); the order reverses every other repetition."""
    times: dict[str, list[float]] = {k: [] for k in models}
    for rep in range(reps):
        for key in (list(models) if rep % 2 == 0 else list(models)[::-1]):
            best = float("inf")
            for _ in range(runs):
                t0 = time.perf_counter()
                models[key].interpreter.invoke()
                best = min(best, time.perf_counter() - t0)
            times[key].append(best * 1e3)
    return times


def micro(folder: Path, reps: int, runs: int) -> dict:
    import keras
    import tensorflow as tf

    from edgenet.convert.worker import keras_to_tflite
    from edgenet.runtime.interpreter import TFLiteModel

    def block(act: str):
        x = keras.Input((112, 112, 32), batch_size=1)
        y = keras.layers.Conv2D(96, 1)(x)
        if act == "swish":
            y = keras.layers.Activation("swish")(y)
        elif act == "gelu":
            y = keras.layers.Activation(lambda t: tf.nn.gelu(t, approximate=False))(y)
        y = keras.layers.DepthwiseConv2D(3, padding="same")(y)
        return keras.Model(x, y)

    rng = np.random.default_rng(0)
    calib = rng.normal(size=(8, 112, 112, 32)).astype(np.float32)
    models = {}
    for act in ("swish", "gelu", "none"):
        keras.utils.set_random_seed(0)
        data, _ = keras_to_tflite(block(act), "int8", "int8", calib, name=act)
        models[act] = TFLiteModel(data, threads=1, source=f"{act}.tflite")
    x = rng.integers(-128, 127, size=(1, 112, 112, 32), dtype=np.int8)
    partitions, ops = {}, {}
    for act, m in models.items():
        m.interpreter.set_tensor(m.input_details[0]["index"], x)
        m.interpreter.invoke()
        names = [o["op_name"] for o in m.interpreter._get_ops_details()]
        partitions[act] = names.count("DELEGATE")
        ops[act] = [n for n in names if n != "DELEGATE"]
    times = interleaved_minima_ms(models, reps, runs)
    grid = np.linspace(-8, 8, 16001)
    swish = grid / (1 + np.exp(-grid))
    u = grid / 1.702
    gelu = 0.5 * u * (1 + np.vectorize(math.erf)(u / np.sqrt(2)))
    return {
        "shape": "conv1x1 32->96 -> act -> depthwise 3x3, 112x112, int8, 1 thread",
        "ops": ops, "xnnpack_partitions": partitions,
        "min_ms": {a: round(min(v), 4) for a, v in times.items()},
        "vs_swish": {a: {"ratio_median": round(statistics.median(np.array(v) / np.array(times["swish"])), 3),
                         "ratio_min": round(float(min(np.array(v) / np.array(times["swish"]))), 3)}
                     for a, v in times.items()},
        "gelu_substitute_max_abs_error_on_[-8,8]": round(float(np.max(np.abs(1.702 * gelu - swish))), 4),
    }


def se_pool(reps: int, runs: int) -> dict:
    import keras

    from edgenet.convert.worker import keras_to_tflite
    from edgenet.runtime.interpreter import TFLiteModel

    size, channels = 56, 144

    def block(kind: str):
        x = keras.Input((size, size, channels), batch_size=1)
        y = keras.layers.Activation("swish")(keras.layers.DepthwiseConv2D(3, padding="same")(x))
        if kind != "no_se":
            if kind == "mean":
                s = keras.layers.GlobalAveragePooling2D(keepdims=True)(y)
            else:
                s = keras.layers.AveragePooling2D(pool_size=(size, size))(y)
            s = keras.layers.Conv2D(6, 1, activation="swish")(s)
            s = keras.layers.Conv2D(channels, 1, activation="sigmoid")(s)
            y = keras.layers.Multiply()([y, s])
        return keras.Model(x, keras.layers.Conv2D(24, 1)(y))

    rng = np.random.default_rng(0)
    calib = rng.normal(size=(8, size, size, channels)).astype(np.float32)
    x = rng.integers(-128, 127, size=(1, size, size, channels), dtype=np.int8)
    models, partitions, outputs = {}, {}, {}
    for kind in ("mean", "avg_pool", "no_se"):
        keras.utils.set_random_seed(0)
        data, _ = keras_to_tflite(block(kind), "int8", "int8", calib, name=kind)
        m = models[kind] = TFLiteModel(data, threads=1, source=f"{kind}.tflite")
        m.interpreter.set_tensor(m.input_details[0]["index"], x)
        m.interpreter.invoke()
        partitions[kind] = [o["op_name"] for o in m.interpreter._get_ops_details()].count("DELEGATE")
        outputs[kind] = m.interpreter.get_tensor(m.output_details[0]["index"]).astype(np.int32)
    times = interleaved_minima_ms(models, reps, runs)
    return {
        "shape": "depthwise 3x3 -> swish -> SE -> conv1x1 144->24, 56x56x144, int8, 1 thread",
        "xnnpack_partitions": partitions,
        "mean_vs_avg_pool_max_abs_diff_int8": int(np.max(np.abs(outputs["mean"] - outputs["avg_pool"]))),
        "min_ms": {k: round(min(v), 4) for k, v in times.items()},
        "vs_mean": {k: {"ratio_median": round(statistics.median(np.array(v) / np.array(times["mean"])), 3),
                        "ratio_min": round(float(min(np.array(v) / np.array(times["mean"]))), 3)}
                    for k, v in times.items()},
    }


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--reps", type=int, default=9)
    parser.add_argument("--runs", type=int, default=50)
    parser.add_argument("--parts", default="micro,se,whole")
    args = parser.parse_args(argv)
    parts = set(args.parts.split(","))
    from edgenet.fsutil import atomic_write_text

    result = json.loads(OUT.read_text()) if OUT.exists() else {}  # parts not run keep their results
    with tempfile.TemporaryDirectory() as tmp:
        folder = Path(tmp)
        if "micro" in parts:
            result["micro"] = dict(micro(folder, args.reps, args.runs * 2), load=load())
            print(json.dumps(result["micro"]), file=sys.stderr)
        if "se" in parts:
            result["se_pool"] = dict(se_pool(args.reps, args.runs), load=load())
            print(json.dumps(result["se_pool"]), file=sys.stderr)
        if "whole" in parts:
            load_start = load()
            paths = {**b0_variants(folder), "stock_b0": stock_model("b0")}
            result["whole_model"] = dict(whole_model(paths, args.reps, args.runs), load_start=load_start,
                                         load_end=load())
    atomic_write_text(OUT, json.dumps(result, indent=1) + "\n")
    print(json.dumps({k: result[k].get(r) for k, r in (("micro", "vs_swish"), ("se_pool", "vs_mean"),
                                                        ("whole_model", "vs_stock")) if k in result}, indent=1))
    return 0


if __name__ == "__main__":
    sys.exit(main())
