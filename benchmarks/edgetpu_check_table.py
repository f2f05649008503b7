"""Edge TPU compatibility of every EfficientNet variant, from the static check.

Converts B0-B7 and Lite0-4 to full-integer int8 TFLite (int8 input and output),
runs :func:`edgenet.edgetpu.check.check_model` on each and writes
``benchmarks/results/edgetpu_check.json`` and ``benchmarks/results/edgetpu_check.md``.

Only the graph matters here (which ops, which shapes, how many parameter bytes), so
the weights are random and calibration uses random pixels: the activation ranges are
meaningless but the op list and the tensor sizes are exactly those of a trained model.

The models come from ``edgenet.model.build_model`` when the lead's builder exists;
otherwise B variants come from Keras applications (``weights=None``) and Lite variants
from a small builder below that reads :func:`edgenet.architecture.architecture`.
Converted files are cached under ``benchmarks/models/`` (git-ignored; B7 alone is
about 66 MB and takes minutes to convert on 2 cores).

Usage::

    .venv/bin/python benchmarks/edgetpu_check_table.py --convert-only b0 b1 lite0
    .venv/bin/python benchmarks/edgetpu_check_table.py            # convert missing, check all
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent
MODELS_DIR = ROOT / "models"
RESULTS_DIR = ROOT / "results"
ALL_VARIANTS = [f"b{i}" for i in range(8)] + [f"lite{i}" for i in range(5)]
CALIBRATION_SAMPLES = 2  # random data: more samples would not make the graph any different


def model_path(name: str) -> Path:
    return MODELS_DIR / f"efficientnet_{name}_int8.tflite"


def _lite_from_architecture(variant):
    """EfficientNet-Lite built from the shared block plan (used only when edgenet.model is absent).

    ReLU6 everywhere and no squeeze-excitation: that is what the Lite family changes
    for integer accelerators (bounded activations quantize well; SE's global pooling and
    sigmoid gate are poorly supported on many edge devices).
    """
    import keras
    from keras import layers

    from edgenet.architecture import architecture

    arch = architecture(variant)
    res = arch.resolution
    inp = keras.Input((res, res, 3), batch_size=1, name="input")
    x = layers.Rescaling(1 / 128.0, offset=-127 / 128.0, name="rescaling")(inp)
    x = layers.Conv2D(arch.stem_filters, 3, strides=2, padding="same", use_bias=False, name="stem_conv")(x)
    x = layers.BatchNormalization(name="stem_bn")(x)
    x = layers.ReLU(6.0, name="stem_activation")(x)
    for b in arch.blocks:
        shortcut = x
        if b.expand_ratio != 1:
            x = layers.Conv2D(b.expanded, 1, padding="same", use_bias=False, name=f"{b.name}_expand_conv")(x)
            x = layers.BatchNormalization(name=f"{b.name}_expand_bn")(x)
            x = layers.ReLU(6.0, name=f"{b.name}_expand_activation")(x)
        x = layers.DepthwiseConv2D(b.kernel_size, strides=b.strides, padding="same", use_bias=False,
                                   name=f"{b.name}_dwconv")(x)
        x = layers.BatchNormalization(name=f"{b.name}_bn")(x)
        x = layers.ReLU(6.0, name=f"{b.name}_activation")(x)
        x = layers.Conv2D(b.filters_out, 1, padding="same", use_bias=False, name=f"{b.name}_project_conv")(x)
        x = layers.BatchNormalization(name=f"{b.name}_project_bn")(x)
        if b.skip:
            x = layers.Add(name=f"{b.name}_add")([x, shortcut])
    x = layers.Conv2D(arch.head_filters, 1, padding="same", use_bias=False, name="top_conv")(x)
    x = layers.BatchNormalization(name="top_bn")(x)
    x = layers.ReLU(6.0, name="top_activation")(x)
    x = layers.GlobalAveragePooling2D(name="avg_pool")(x)
    x = layers.Dense(arch.num_classes, name="predictions")(x)
    return keras.Model(inp, x, name=f"efficientnet_{variant.name}")


def build(name: str):
    """Return (keras model, source description) for a variant name."""
    from edgenet.variants import VARIANTS

    variant = VARIANTS[name]
    try:
        from edgenet.model import build_model
    except ImportError:
        build_model = None
    if build_model is not None:
        return build_model(variant), "edgenet.model.build_model"
    if variant.family == "lite":
        return _lite_from_architecture(variant), "architecture-plan Lite builder (benchmarks script)"
    import keras

    cls = getattr(keras.applications, f"EfficientNet{name.upper()}")
    res = variant.resolution
    model = cls(weights=None, input_shape=(res, res, 3), classifier_activation=None)
    return model, f"keras.applications.EfficientNet{name.upper()}(weights=None)"


def convert(name: str) -> Path:
    """Full-integer int8 conversion with int8 input/output; cached on disk."""
    out = model_path(name)
    if out.exists():
        return out
    import numpy as np
    import tensorflow as tf

    from edgenet.fsutil import atomic_write_bytes

    started = time.perf_counter()
    model, source = build(name)
    res = int(model.inputs[0].shape[1])
    rng = np.random.default_rng(0)

    def representative():
        for _ in range(CALIBRATION_SAMPLES):
            yield [rng.uniform(0, 255, (1, res, res, 3)).astype(np.float32)]

    # A batch-1 input keeps every shape static (no -1 in shape_signature), as the Edge TPU needs.
    import keras

    inp = keras.Input((res, res, 3), batch_size=1, name="input")
    fixed = keras.Model(inp, model(inp), name=model.name)
    converter = tf.lite.TFLiteConverter.from_keras_model(fixed)
    converter.optimizations = [tf.lite.Optimize.DEFAULT]
    converter.representative_dataset = representative
    converter.target_spec.supported_ops = [tf.lite.OpsSet.TFLITE_BUILTINS_INT8]
    converter.inference_input_type = tf.int8
    converter.inference_output_type = tf.int8
    data = converter.convert()
    atomic_write_bytes(out, data)
    atomic_write_bytes(out.with_suffix(".source.json"), (json.dumps({"source": source}) + "\n").encode())
    print(f"{name}: converted in {time.perf_counter() - started:.0f} s from {source} -> {out.name}", flush=True)
    return out


def check_all(names: list[str]) -> list[dict]:
    from edgenet.edgetpu.check import check_model

    rows = []
    for name in names:
        path = model_path(name)
        if not path.exists():
            rows.append({"variant": name, "error": f"not converted: {path.name} missing"})
            continue
        report = check_model(path)
        src = path.with_suffix(".source.json")
        row = {"variant": name, "source": json.loads(src.read_text())["source"] if src.exists() else None}
        row.update(report.to_dict(include_ops=False))
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
        for name in args.variants:
            convert(name)
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
