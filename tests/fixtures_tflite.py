"""Build tiny but real .tflite models with TensorFlow for the runtime and bench tests.

Import the helper from a test module (``from fixtures_tflite import tiny_tflite_models``) and wrap
it in a session-scoped fixture there. The build is cached per process so several test modules share
one conversion (a few seconds) instead of repeating it.
"""

from __future__ import annotations

import tempfile
from dataclasses import dataclass
from pathlib import Path

import numpy as np

_CACHE: dict[str, TinyModels] = {}


@dataclass(frozen=True)
class TinyModels:
    """Paths of the tiny models: float32 in/out, and full-int8 (int8 input and output tensors)."""

    fp32: Path
    int8: Path
    resolution: int


def _build_keras(resolution: int):
    import keras

    keras.utils.set_random_seed(0)
    inputs = keras.Input((resolution, resolution, 3), batch_size=1, name="image")
    x = keras.layers.Rescaling(1.0 / 127.5, offset=-1.0)(inputs)
    x = keras.layers.Conv2D(8, 3, strides=2, padding="same", activation="relu")(x)
    x = keras.layers.DepthwiseConv2D(3, padding="same", activation="relu")(x)
    x = keras.layers.Conv2D(16, 1, activation="relu")(x)
    x = keras.layers.GlobalAveragePooling2D()(x)
    outputs = keras.layers.Dense(10, name="logits")(x)
    return keras.Model(inputs, outputs)


def build_tiny_tflite_models(folder: Path, resolution: int = 32) -> TinyModels:
    """Convert a small conv net to fp32 and to full-int8 .tflite files in ``folder``."""
    from edgenet.convert.worker import keras_to_tflite

    folder.mkdir(parents=True, exist_ok=True)
    model = _build_keras(resolution)
    # edgenet's own pinned conversion path; a dynamic batch, so tests can feed several images.
    fp32 = folder / "tiny_fp32.tflite"
    fp32.write_bytes(keras_to_tflite(model, "fp32", batch_size=None)[0])
    calib = np.random.default_rng(0).uniform(0, 255, (16, resolution, resolution, 3)).astype(np.float32)
    int8 = folder / "tiny_int8.tflite"
    int8.write_bytes(keras_to_tflite(model, "int8", "int8", calib, batch_size=None)[0])
    return TinyModels(fp32=fp32, int8=int8, resolution=resolution)


def tiny_tflite_models() -> TinyModels:
    """The tiny models, built once per test process into a temporary folder."""
    if "models" not in _CACHE:
        folder = Path(tempfile.mkdtemp(prefix="edgenet-tiny-tflite-"))
        _CACHE["models"] = build_tiny_tflite_models(folder)
    return _CACHE["models"]


def with_unused_edgetpu_op_code(model_bytes: bytes) -> bytes:
    """Add an (unused) ``edgetpu-custom-op`` operator code, so the model *looks* Edge TPU-compiled.

    The graph is unchanged and still runs on the CPU; this lets tests reach the delegate-loading
    path without ``edgetpu_compiler`` (which is x86-only and not installed here).
    """
    from ai_edge_litert import schema_py_generated as schema
    from ai_edge_litert.tools import flatbuffer_utils

    model = flatbuffer_utils.convert_bytearray_to_object(bytearray(model_bytes))
    custom = schema.BuiltinOperator.CUSTOM
    model.operatorCodes.append(
        schema.OperatorCodeT(deprecatedBuiltinCode=custom, builtinCode=custom, customCode="edgetpu-custom-op")
    )
    return bytes(flatbuffer_utils.convert_object_to_bytearray(model))


def crashing_tflite_models(model_bytes: bytes, folder: Path) -> list[Path]:
    """.tflite files that pass the flatbuffer verifier but crash the interpreter in native code.

    ``while_ring<n>``: n copies of the graph whose WHILE operators call each other in a ring
    (graph i: condition i+1, body i+2); preparing them recurses until the stack overflows
    (SIGSEGV) in LiteRT 2.x.
    """
    import copy

    from ai_edge_litert import schema_py_generated as schema
    from ai_edge_litert.tools import flatbuffer_utils

    folder.mkdir(parents=True, exist_ok=True)
    paths = []
    for ring in (3, 5):
        model = flatbuffer_utils.convert_bytearray_to_object(bytearray(model_bytes))
        code = schema.OperatorCodeT()
        code.builtinCode = code.deprecatedBuiltinCode = schema.BuiltinOperator.WHILE
        code.version = 1
        model.operatorCodes.append(code)
        index = len(model.operatorCodes) - 1
        first = model.subgraphs[0]
        model.subgraphs += [copy.deepcopy(first) for _ in range(ring - 1)]
        for i, graph in enumerate(model.subgraphs):
            op = schema.OperatorT()
            op.opcodeIndex, op.inputs, op.outputs = index, [graph.inputs[0]], [graph.outputs[0]]
            op.builtinOptionsType = schema.BuiltinOptions.WhileOptions
            op.builtinOptions = schema.WhileOptionsT()
            op.builtinOptions.condSubgraphIndex, op.builtinOptions.bodySubgraphIndex = (i + 1) % ring, (i + 2) % ring
            graph.operators.insert(0, op)
        path = folder / f"while_ring{ring}.tflite"
        path.write_bytes(bytes(flatbuffer_utils.convert_object_to_bytearray(model)))
        paths.append(path)
    return paths
