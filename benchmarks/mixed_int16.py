"""Mixed int8/int16 activations (16 bits for the K worst tensors) against edgenet's int8, on a real network.

The budget mode's last full-integer rung would give 16-bit activations to the few worst tensors
(CPU targets only): :func:`edgenet.convert.mixed.upgrade_to_int16` (ai-edge-quantizer fed edgenet's
ranges; why, in its module docstring). This script measures, on the same images as
``benchmarks/quant_quality.py`` (never the calibration images):

Networks: the real Lite nets (``--nets``) and, with ``--digits``, the swish+squeeze-excitation
network of the test suite trained on scikit-learn digits (B-family traits; 539 test digits,
calibrated on training digits).

* ``edgenet int8``: TF's converter, edgenet's calibrator, min/max (the baseline);
* ``AEQ int8, own calibration``: ai-edge-quantizer's ``static_wi8_ai8`` with its own calibration
  pass (moving-average min/max), which is why it once looked unusable;
* ``AEQ int8, edgenet ranges`` = mixed with K = 0;
* ``mixed, K worst tensors``: the K worst tensors stored in int16 (their producers and consumers
  compute in 16x8), ranked on 16 calibration samples (never the evaluation images) two ways: by
  edgenet's quant report (local SQNR) and by :func:`edgenet.convert.mixed.rank_by_output_gain`
  (logits SQNR gained by that tensor alone in int16);
* ``AEQ, int16 on the K worst producers only`` (``--producer-only``): the naive per-op recipe
  (input requantized up, output straight back down to int8), for the record;
* ``whole-model int16x8``: TF's converter ``--quant int16x8``, the same edgenet calibration;
* ``ceiling``: the float model with its weights rounded to int8 (float activations): what int8
  weights alone cost, hence the best any activation precision can reach.

For each: top-1 agreement with the float Keras model, logits SQNR, top-1 accuracy on the labelled
photos, and latency against edgenet's int8 (single thread, default XNNPACK, invokes interleaved:
median over ``--reps`` rounds of the ratio of medians of ``--runs`` invokes; for models with int16 ops
also both without XNNPACK, on TFLite's builtin kernels, which isolates the cost of the int16 kernels). ai-edge-quantizer is
the optional extra ``mixed``.

    .venv/bin/python benchmarks/mixed_int16.py [--nets lite0,lite1] [--digits] [--worst 0,1,2,4,8] [--producer-only 4]
"""

from __future__ import annotations

import argparse
import json
import sys
import time
import warnings
from pathlib import Path

import numpy as np

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))

from quant_quality import _eval_set, _photos, _weights  # noqa: E402

RESULTS = HERE / "results" / "mixed_int16.json"


def latency(plain: bytes, other: bytes, reps: int, runs: int, xnnpack: bool = True) -> dict:
    """Invokes of ``plain`` and ``other`` interleaved, 1 thread: median over ``reps`` rounds of the ratio of
    medians of ``runs`` invokes, and each model's median invoke time over all rounds (ms)."""
    from edgenet.runtime.interpreter import TFLiteModel

    a, b = TFLiteModel(plain, threads=1, xnnpack=xnnpack), TFLiteModel(other, threads=1, xnnpack=xnnpack)
    x = np.zeros(a.input_shape, dtype=np.float32)
    a.run(x)
    b.run(x)
    ratios, times = [], ([], [])
    for _ in range(reps):
        start = len(times[0])
        for _ in range(runs):
            for k, model in enumerate((a, b)):
                t0 = time.perf_counter()
                model.interpreter.invoke()
                times[k].append(1e3 * (time.perf_counter() - t0))
        ratios.append(float(np.median(times[1][start:]) / np.median(times[0][start:])))
    return {"ratio": round(float(np.median(ratios)), 2), "int8_p50_ms": round(float(np.median(times[0])), 2),
            "p50_ms": round(float(np.median(times[1])), 2)}


def weights_only(float_bytes: bytes) -> bytes:
    """The float model with its conv/FC weights rounded to int8 as TF's converter quantizes them (symmetric,
    per output channel, [-127, 127]) and kept in float: the error of int8 weights alone, with float
    activations, i.e. the best any activation precision (int16 anywhere) can reach."""
    from tensorflow.lite.python import schema_py_generated as schema
    from tensorflow.lite.tools import flatbuffer_utils

    model = flatbuffer_utils.convert_bytearray_to_object(bytearray(float_bytes))
    graph = model.subgraphs[0]
    builtin = schema.BuiltinOperator
    codes = [max(c.builtinCode, c.deprecatedBuiltinCode) for c in model.operatorCodes]
    for op in graph.operators:
        code = codes[op.opcodeIndex]
        if code not in (builtin.CONV_2D, builtin.DEPTHWISE_CONV_2D, builtin.FULLY_CONNECTED):
            continue
        tensor = graph.tensors[op.inputs[1]]
        buffer = model.buffers[tensor.buffer]
        w = np.frombuffer(bytes(buffer.data), np.float32).reshape(tensor.shape)
        axis = 3 if code == builtin.DEPTHWISE_CONV_2D else 0
        scale = np.max(np.abs(w), axis=tuple(i for i in range(w.ndim) if i != axis), keepdims=True) / 127.0
        scale[scale == 0] = 1.0
        rounded = (np.clip(np.round(w / scale), -127, 127) * scale).astype(np.float32)
        buffer.data = np.frombuffer(rounded.tobytes(), np.uint8)
    return bytes(flatbuffer_utils.convert_object_to_bytearray(model))


def with_weights_of(float_bytes: bytes, quant_bytes: bytes) -> bytes:
    """The float model with the conv/FC weights of the int8 model ``quant_bytes`` (dequantized, matched by output
    tensor name) and float activations: what those integer weights alone cost (not deployable)."""
    from tensorflow.lite.tools import flatbuffer_utils

    from edgenet.runtime.tflite_graph import read_graph

    ops = ("CONV_2D", "DEPTHWISE_CONV_2D", "FULLY_CONNECTED")
    fgraph, qgraph = read_graph(float_bytes), read_graph(quant_bytes)
    quant_op = {qgraph.tensors[op.outputs[0]].name: op for op in qgraph.operators if op.opcode in ops}
    model = flatbuffer_utils.convert_bytearray_to_object(bytearray(float_bytes))
    qmodel = flatbuffer_utils.convert_bytearray_to_object(bytearray(quant_bytes))
    for op in fgraph.operators:
        qop = quant_op.get(fgraph.tensors[op.outputs[0]].name) if op.opcode in ops else None
        if qop is None:
            continue
        weight = qgraph.tensors[qop.inputs[1]]
        data = qmodel.buffers[qmodel.subgraphs[0].tensors[qop.inputs[1]].buffer].data
        q = np.frombuffer(bytes(bytearray(data)), np.int8).reshape(weight.shape)
        axis = 3 if op.opcode == "DEPTHWISE_CONV_2D" else 0
        scale = np.asarray(weight.quantization.scale).reshape([-1 if k == axis else 1 for k in range(q.ndim)])
        tensor = model.subgraphs[0].tensors[op.inputs[1]]
        model.buffers[tensor.buffer].data = np.frombuffer((q * scale).astype(np.float32).tobytes(), np.uint8)
    return bytes(flatbuffer_utils.convert_object_to_bytearray(model))


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--nets", default="lite0")
    parser.add_argument("--worst", default="0,1,2,4,8")
    parser.add_argument("--producer-only", default="4", help="K for the naive producer-only recipe ('' = skip)")
    parser.add_argument("--samples", type=int, default=100)
    parser.add_argument("--reps", type=int, default=3)
    parser.add_argument("--runs", type=int, default=10)
    parser.add_argument("--no-int16x8", action="store_true")
    parser.add_argument("--digits", action="store_true", help="also the swish+SE digits network (trains it)")
    args = parser.parse_args(argv)
    warnings.filterwarnings("ignore")
    nets = {net: measure(net, args, *imagenet_net(net, args.samples)) for net in args.nets.split(",") if net}
    if args.digits:
        import tempfile

        with tempfile.TemporaryDirectory() as tmp:
            nets["digits"] = measure("digits", args, *digits_net(Path(tmp), args.samples))
    RESULTS.write_text(json.dumps({
        "distinct_imagenet_photos": len(_photos()),
        "calibration_samples": args.samples, "ranked_on": "16 calibration samples (quant report, local SQNR)",
        "latency": f"threads=1, XNNPACK default, interleaved, median of {args.reps} x ratio of medians of "
                   f"{args.runs} invokes", "nets": nets}, indent=1), encoding="utf-8")
    return 0


def imagenet_net(net: str, samples: int):
    """(Keras model, calibration, eval images, labelled indices, labels) of a real Lite net."""
    from edgenet.convert.calibration import load_calibration
    from edgenet.family.model import build_model
    from edgenet.family.variants import parse_variant
    from edgenet.weights.keras_files import load_weights

    variant = parse_variant(net)
    model = build_model(variant, batch_size=1)
    load_weights(model, variant, _weights(net))
    calib = load_calibration("default", variant.contract, samples, 0, progress=False).array
    return (model, calib, *_eval_set(variant.contract))


def digits_net(tmp: Path, samples: int):
    """The swish+SE network of the test suite trained on scikit-learn digits; its 539 test digits."""
    sys.path.insert(0, str(HERE.parent / "tests"))
    from digits import DIGITS_SPEC, load_split, train_digits

    from edgenet.family.model import build_model
    from edgenet.family.variants import parse_variant
    from edgenet.weights.keras_files import load_weights

    trained = train_digits(tmp)
    variant = parse_variant(DIGITS_SPEC)
    model = build_model(variant, batch_size=1, num_classes=10)
    load_weights(model, variant, trained.weights)
    x_train, _ = load_split(trained.data.train_dir, variant.contract)
    x_test, y_test = load_split(trained.data.test_dir, variant.contract)
    calib = x_train[np.random.default_rng(0).choice(len(x_train), samples, replace=False)]
    return model, calib, x_test, np.arange(len(x_test)), y_test


def measure(net: str, args, model, calib, xs, labelled, labels) -> dict:
    from ai_edge_quantizer import quantizer, recipe

    from edgenet.convert.fidelity import fidelity_metrics
    from edgenet.convert.mixed import (
        activation_dtypes,
        add_signature,
        int16_candidates,
        int16_scopes,
        ranges_by_name,
        rank_by_output_gain,
        upgrade_to_int16,
    )
    from edgenet.convert.worker import keras_to_tflite
    from edgenet.quant.report import measure_report
    from edgenet.runtime.interpreter import TFLiteModel
    from edgenet.runtime.tflite_graph import read_graph

    reference = np.concatenate([model(xs[i : i + 1], training=False).numpy() for i in range(len(xs))])
    float_bytes = keras_to_tflite(model, "fp32")[0]
    plain = keras_to_tflite(model, "int8", "int8", calib, calibrator="edgenet")[0]
    # Ranked on calibration samples, never on the evaluation images.
    ranked = [t.name for t in measure_report(float_bytes, plain, calib[:16]).ranked()]
    ranges = ranges_by_name(float_bytes, calib)

    def top1_pct(logits):
        return round(100 * float(np.mean(np.argmax(logits[labelled], axis=1) == labels)), 1)

    def row(setting: str, data: bytes, **extra) -> dict:
        tfl = TFLiteModel(data)
        out = np.concatenate([tfl.run(xs[i : i + 1]) for i in range(len(xs))])
        f = fidelity_metrics(reference, out)
        graph = read_graph(data)
        int16_ops = sum(1 for op in graph.operators if op.opcode != "QUANTIZE"
                        and any(t.dtype == "int16" for t in graph.op_outputs(op)))
        result = {"setting": setting, "top1_agreement_pct": round(100 * f.top1_agreement, 2),
                  "sqnr_db": round(f.sqnr_db, 2), "top1_labelled_pct": top1_pct(out), "int16_ops": int16_ops,
                  "requantize_ops": sum(1 for op in graph.operators if op.opcode == "QUANTIZE"
                                        and {t.dtype for t in graph.op_inputs(op) + graph.op_outputs(op)}
                                        == {"int8", "int16"}),
                  **extra}
        if data is not plain:
            timing = latency(plain, data, args.reps, args.runs)
            result.update(latency_vs_edgenet_int8=timing["ratio"], p50_ms=timing["p50_ms"],
                          edgenet_int8_p50_ms=timing["int8_p50_ms"])
            if result["int16_ops"]:  # both on TFLite's builtin kernels: the cost of the int16 kernels alone
                timing = latency(plain, data, args.reps, args.runs, xnnpack=False)
                result.update(latency_vs_edgenet_int8_builtin_kernels=timing["ratio"], builtin_p50_ms=timing["p50_ms"],
                              edgenet_int8_builtin_p50_ms=timing["int8_p50_ms"])
        print(net, json.dumps(result), flush=True)
        return result

    rows = [row("edgenet int8 (TF converter, min/max)", plain, latency_vs_edgenet_int8=1.0)]
    rows[0]["top1_labelled_float_pct"] = top1_pct(reference)
    rows.append(row("ceiling: int8 weights only, float activations (not deployable)", weights_only(float_bytes)))

    signed = add_signature(float_bytes)
    t0 = time.perf_counter()
    qt = quantizer.Quantizer(bytearray(signed))
    qt.load_quantization_recipe(recipe.static_wi8_ai8())
    own = qt.calibrate({"serving_default": [{"input": calib[i : i + 1]} for i in range(len(calib))]})
    aeq_own = bytes(qt.quantize(own, enable_progress_bar=False, enable_progress_report=False).quantized_model)
    widths = [(float(np.max(v["max"]) - np.min(v["min"]))) / (ranges[k][1] - ranges[k][0])
              for k, v in own.items() if k in ranges and ranges[k][1] > ranges[k][0]]
    rows.append(row("AEQ int8, own calibration (moving-average min/max)", aeq_own,
                    quantize_s=round(time.perf_counter() - t0, 1),
                    range_width_vs_edgenet={"median": round(float(np.median(widths)), 3),
                                            "min": round(float(np.min(widths)), 3), "tensors": len(widths)}))
    t0 = time.perf_counter()
    by_gain = [name for name, _ in rank_by_output_gain(float_bytes, calib, ranges=ranges, samples=16)]
    gain_ranking_s = round(time.perf_counter() - t0, 1)
    for ranking, names in (("report", int16_candidates(float_bytes, ranked, len(ranked))), ("output gain", by_gain)):
        for k in [int(v) for v in args.worst.split(",") if v != ""]:
            if k == 0 and ranking != "report":
                continue
            t0 = time.perf_counter()
            data = upgrade_to_int16(float_bytes, names[:k], ranges=ranges)
            seconds = round(time.perf_counter() - t0, 1)
            dtypes = activation_dtypes(data)
            assert all(dtypes[n] == "int16" for n in names[:k])
            setting = ("AEQ int8, edgenet ranges (mixed, K=0)" if k == 0
                       else f"mixed: {k} worst tensors int16 ({ranking} ranking)")
            extra = {"ranking_s": gain_ranking_s} if ranking != "report" else {}
            rows.append(row(setting, data, k=k, ranking=ranking, tensors=names[:k],
                            ops=list(int16_scopes(float_bytes, names[:k]).ops), quantize_s=seconds, **extra))
    if args.producer_only:
        k = int(args.producer_only)
        data = upgrade_to_int16(float_bytes, ranked[:k], ranges=ranges, consumers=False)
        rows.append(row(f"AEQ, int16 on the {k} worst producers only (requantized to int8 at once)", data,
                        k=k, ops=list(int16_scopes(float_bytes, ranked[:k], consumers=False).ops)))
    if not args.no_int16x8:
        t0 = time.perf_counter()
        whole = keras_to_tflite(model, "int16x8", "float", calib, calibrator="edgenet")[0]
        rows.append(row("whole-model int16x8 (TF converter, edgenet calibrator)", whole,
                        quantize_s=round(time.perf_counter() - t0, 1)))
    return {"samples": len(xs), "labelled_photos": int(len(labelled)), "rows": rows}


if __name__ == "__main__":
    sys.exit(main())
