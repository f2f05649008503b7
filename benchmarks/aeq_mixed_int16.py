"""Evaluate Google's ai-edge-quantizer for mixed int8/int16 activations against edgenet's int8.

The budget mode's last rung would give 16-bit activations to the few worst tensors (CPU targets
only). TF 2.21's converter has no per-tensor precision, so the candidate route is
``ai-edge-quantizer`` (LiteRT team; per-op recipes on a float .tflite; 0.10.0 installs beside
ai-edge-litert 2.3.0 and tensorflow-cpu 2.21 without changing them). This script measures, on the
same images as ``benchmarks/quant_quality.py``:

* edgenet's plain int8 (edgenet calibrator, min/max);
* ai-edge-quantizer static int8 (``static_wi8_ai8``, min/max), same calibration tensors;
* the same with int16 activations for the K worst layers of edgenet's quant report (on
  calibration samples, never the evaluation images), K in ``--worst``;

top-1 agreement with the float Keras model, logits SQNR and latency against edgenet's int8
(interleaved invokes, single thread). Not a dependency of edgenet: install it to run this.

    .venv/bin/python benchmarks/aeq_mixed_int16.py [--net lite0] [--worst 0,4,8]
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

from quant_quality import _eval_set, _latency_ratio, _weights  # noqa: E402


def add_signature(data: bytes) -> bytes:
    """ai-edge-quantizer needs a signature; edgenet's concrete-function path writes none."""
    from tensorflow.lite.python import schema_py_generated as schema
    from tensorflow.lite.tools import flatbuffer_utils

    model = flatbuffer_utils.convert_bytearray_to_object(bytearray(data))
    graph = model.subgraphs[0]
    signature = schema.SignatureDefT()
    signature.signatureKey, signature.subgraphIndex = "serving_default", 0

    def tensor_map(name, index):
        t = schema.TensorMapT()
        t.name, t.tensorIndex = name, int(index)
        return t

    signature.inputs = [tensor_map("input", graph.inputs[0])]
    signature.outputs = [tensor_map("output", graph.outputs[0])]
    model.signatureDefs = [signature]
    return bytes(flatbuffer_utils.convert_object_to_bytearray(model))


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--net", default="lite0")
    parser.add_argument("--worst", default="0,4")
    parser.add_argument("--samples", type=int, default=100)
    args = parser.parse_args(argv)
    warnings.filterwarnings("ignore")
    from ai_edge_quantizer import qtyping, quantizer, recipe

    from edgenet.convert.calibration import load_calibration
    from edgenet.convert.fidelity import fidelity_metrics
    from edgenet.convert.worker import keras_to_tflite
    from edgenet.family.model import build_model
    from edgenet.family.variants import parse_variant
    from edgenet.quant.report import measure_report
    from edgenet.runtime.interpreter import TFLiteModel
    from edgenet.weights.keras_files import load_weights

    variant = parse_variant(args.net)
    model = build_model(variant, batch_size=1)
    load_weights(model, variant, _weights(args.net))
    calib = load_calibration("default", variant.contract, args.samples, 0, progress=False).array
    xs, _, _ = _eval_set(variant.contract)
    reference = np.concatenate([model(xs[i : i + 1], training=False).numpy() for i in range(len(xs))])
    float_bytes = keras_to_tflite(model, "fp32")[0]
    plain = keras_to_tflite(model, "int8", "int8", calib, calibrator="edgenet")[0]
    ranked = measure_report(float_bytes, plain, calib[:16]).ranked()

    def evaluate(data):
        tfl = TFLiteModel(data)
        return fidelity_metrics(reference, np.concatenate([tfl.run(xs[i : i + 1]) for i in range(len(xs))]))

    signed = add_signature(float_bytes)
    int16 = qtyping.OpQuantizationConfig(
        activation_tensor_config=qtyping.TensorQuantizationConfig(num_bits=16, symmetric=True),
        weight_tensor_config=qtyping.TensorQuantizationConfig(
            num_bits=8, symmetric=True, granularity=qtyping.QuantGranularity.CHANNELWISE),
        compute_precision=qtyping.ComputePrecision.INTEGER, explicit_dequantize=False)

    def aeq(layers):
        qt = quantizer.Quantizer(bytearray(signed))
        qt.load_quantization_recipe(recipe.static_wi8_ai8())
        for name in layers:
            qt.update_quantization_recipe(regex=f".*/{name}_1/.*", operation_name="*", op_config=int16)
        calibration = qt.calibrate({"serving_default": [{"input": calib[i : i + 1]} for i in range(len(calib))]})
        return bytes(qt.quantize(calibration, enable_progress_bar=False, enable_progress_report=False).quantized_model)

    rows = []
    f = evaluate(plain)
    rows.append({"setting": "edgenet int8 (min/max)", "top1_agreement_pct": round(100 * f.top1_agreement, 2),
                 "sqnr_db": round(f.sqnr_db, 2), "latency_vs_edgenet_int8": 1.0})
    print(json.dumps(rows[-1]), flush=True)
    for k in [int(v) for v in args.worst.split(",")]:
        layers: list[str] = []
        for t in ranked:
            if len(layers) >= k:
                break
            if t.layer not in layers:
                layers.append(t.layer)
        t0 = time.perf_counter()
        data = aeq(layers)
        f = evaluate(data)
        rows.append({"setting": f"ai-edge-quantizer int8, int16 for {k} worst layers", "layers": layers,
                     "top1_agreement_pct": round(100 * f.top1_agreement, 2), "sqnr_db": round(f.sqnr_db, 2),
                     "latency_vs_edgenet_int8": round(_latency_ratio(plain, data, 3, 10), 2),
                     "quantize_s": round(time.perf_counter() - t0, 1)})
        print(json.dumps(rows[-1]), flush=True)
    out = HERE / "results" / "aeq_mixed_int16.json"
    out.write_text(json.dumps({"net": args.net, "samples": len(xs), "rows": rows}, indent=1), encoding="utf-8")
    return 0


if __name__ == "__main__":
    sys.exit(main())
