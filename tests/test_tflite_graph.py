"""The TensorFlow-free .tflite reader, checked against real converted models and the real interpreter."""

from __future__ import annotations

import numpy as np
import pytest
from fixtures_tflite import tiny_tflite_models

from edgenet.errors import InputFileError
from edgenet.runtime.tflite_graph import read_graph


def _options_model_bytes() -> bytes:
    """A small int8 model exercising VALID conv, transpose conv, reshape and softmax options."""
    import keras

    from edgenet.convert.worker import keras_to_tflite

    keras.utils.set_random_seed(1)
    inputs = keras.Input((12, 12, 3), batch_size=1)
    x = keras.layers.Conv2D(4, 3, strides=1, padding="valid", activation="relu6")(inputs)  # 10x10x4
    x = keras.layers.Conv2DTranspose(6, 3, strides=2, padding="same")(x)  # 20x20x6
    x = keras.layers.Reshape((20 * 20 * 6,))(x)
    x = keras.layers.Dense(5)(x)
    outputs = keras.layers.Softmax()(x)
    model = keras.Model(inputs, outputs)
    calib = np.random.default_rng(0).uniform(0, 255, (4, 12, 12, 3)).astype(np.float32)
    return keras_to_tflite(model, "int8", "int8", calib)[0]


@pytest.fixture(scope="module")
def options_model(tmp_path_factory):
    path = tmp_path_factory.mktemp("graph") / "options_int8.tflite"
    path.write_bytes(_options_model_bytes())
    return path


def test_int8_graph_matches_the_interpreter():
    from ai_edge_litert.interpreter import Interpreter

    path = tiny_tflite_models().int8
    graph = read_graph(path)
    interp = Interpreter(model_path=str(path))
    details = {d["index"]: d for d in interp.get_tensor_details()}
    assert len(graph.tensors) == len(details)
    for t in graph.tensors:
        d = details[t.index]
        assert t.name == d["name"]
        assert list(t.shape) == list(d["shape"])
        assert list(t.shape_signature) == list(d["shape_signature"])
        assert t.dtype == np.dtype(d["dtype"]).name
        scales = d["quantization_parameters"]["scales"]
        assert np.allclose(t.quantization.scale, scales)
        assert list(t.quantization.zero_point) == list(d["quantization_parameters"]["zero_points"])
    # Operators in execution order, named like the interpreter's op details.
    ops = [op.opcode for op in graph.operators]
    assert ops == [d["op_name"] for d in interp._get_ops_details()]
    assert ops[-2:] == ["MEAN", "FULLY_CONNECTED"]
    assert graph.tensors[graph.inputs[0]].dtype == "int8"
    assert graph.tensors[graph.outputs[0]].shape == (1, 10)


def test_conv_options_constants_and_macs():
    graph = read_graph(tiny_tflite_models().int8)
    convs = [op for op in graph.operators if op.opcode == "CONV_2D"]
    stem = convs[0]
    assert stem.options["stride_h"] == stem.options["stride_w"] == 2
    assert stem.options["padding_name"] == "SAME"
    assert stem.options["fused_activation"] == "RELU"
    weights = graph.tensors[stem.inputs[1]]
    assert weights.is_constant and weights.buffer_size_bytes == 8 * 3 * 3 * 3  # int8 OHWI
    assert len(weights.quantization.scale) == 8  # per-output-channel scales
    assert not graph.tensors[stem.outputs[0]].is_constant
    # 32x32 input, stride 2 -> 16x16x8 outputs, each 3*3*3 MACs.
    assert graph.macs_of(stem) == 16 * 16 * 8 * 27
    dw = next(op for op in graph.operators if op.opcode == "DEPTHWISE_CONV_2D")
    assert graph.macs_of(dw) == 16 * 16 * 8 * 9
    assert graph.macs_of(convs[1]) == 16 * 16 * 16 * 8
    mean = next(op for op in graph.operators if op.opcode == "MEAN")
    assert mean.options["keep_dims"] is False
    axes = graph.constant_values(graph.tensors[mean.inputs[1]])
    assert sorted(axes.tolist()) == [1, 2]
    fc = graph.operators[-1]
    assert graph.macs_of(fc) == 16 * 10
    assert graph.macs_of(mean) == 0


def test_reshape_softmax_transpose_conv(options_model):
    graph = read_graph(options_model)
    by_name = {op.opcode: op for op in graph.operators}
    assert {"CONV_2D", "TRANSPOSE_CONV", "RESHAPE", "FULLY_CONNECTED", "SOFTMAX"} <= set(by_name)
    conv = by_name["CONV_2D"]
    assert conv.options["padding_name"] == "VALID" and conv.options["fused_activation"] == "RELU6"
    assert graph.macs_of(conv) == 10 * 10 * 4 * 3 * 3 * 3
    tconv = by_name["TRANSPOSE_CONV"]
    assert tconv.options["stride_h"] == 2
    assert graph.macs_of(tconv) == 10 * 10 * 4 * 3 * 3 * 6
    reshape = by_name["RESHAPE"]
    assert graph.tensors[reshape.outputs[0]].shape == (1, 2400)
    assert by_name["SOFTMAX"].options["beta"] == pytest.approx(1.0)
    assert graph.macs_of(by_name["FULLY_CONNECTED"]) == 2400 * 5


def test_float_model_and_bytes_input():
    path = tiny_tflite_models().fp32
    graph = read_graph(path.read_bytes())
    assert graph.path is None
    assert all(t.dtype in ("float32", "int32") for t in graph.tensors)
    assert not any(t.quantization.is_quantized for t in graph.tensors)


def test_bad_files_are_one_line_errors(tmp_path):
    good = tiny_tflite_models().int8.read_bytes()
    cases = {
        "missing.tflite": None,
        "text.tflite": b"this is not a model at all",
        "empty.tflite": b"",
        "truncated.tflite": good[:200],
        "zeroed.tflite": good[:8] + bytes(len(good) - 8),
    }
    for name, data in cases.items():
        path = tmp_path / name
        if data is not None:
            path.write_bytes(data)
        with pytest.raises(InputFileError) as info:
            read_graph(path)
        message = str(info.value)
        assert "\n" not in message and name in message, message
    with pytest.raises(InputFileError, match="directory"):
        read_graph(tmp_path)
