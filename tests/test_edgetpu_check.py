"""Static Edge TPU check on real converted models: what maps, where the graph is cut, and the CLI."""

from __future__ import annotations

import json
import warnings

import numpy as np
import pytest
from click.testing import CliRunner
from conftest import TINY_LITE_SPEC, TINY_SPEC

from edgenet.cli.edgetpu import edgetpu
from edgenet.edgetpu.check import ON_CHIP_CACHE_BYTES, check_model
from edgenet.runtime.tflite_graph import read_graph


def _convert(model, *, io=None, quantize=True) -> bytes:
    """Full-integer conversion (random calibration: only the graph matters here)."""
    import tensorflow as tf

    converter = tf.lite.TFLiteConverter.from_keras_model(model)
    if quantize:
        shape = [1] + [int(d) for d in model.inputs[0].shape[1:]]
        rng = np.random.default_rng(0)

        def representative():
            for _ in range(2):
                yield [rng.uniform(0, 255, shape).astype(np.float32)]

        converter.optimizations = [tf.lite.Optimize.DEFAULT]
        converter.representative_dataset = representative
        converter.target_spec.supported_ops = [tf.lite.OpsSet.TFLITE_BUILTINS_INT8]
        if io is not None:
            converter.inference_input_type = io
            converter.inference_output_type = io
    with warnings.catch_warnings():
        # Integer io always triggers this benign notice (the input range comes from the data).
        warnings.filterwarnings("ignore", message="Statistics for quantized inputs were expected")
        return converter.convert()


def _small(head, *, batch_size=1, shape=(16, 16, 3)):
    import keras

    keras.utils.set_random_seed(0)
    inputs = keras.Input(shape, batch_size=batch_size)
    return keras.Model(inputs, head(inputs))


@pytest.fixture(scope="module")
def models(tmp_path_factory):
    import keras
    import tensorflow as tf
    from keras import layers

    from edgenet.family.model import build_model
    from edgenet.family.variants import parse_variant

    folder = tmp_path_factory.mktemp("edgetpu_models")
    tiny_b = build_model(parse_variant(TINY_SPEC), batch_size=1)
    tiny_lite = build_model(parse_variant(TINY_LITE_SPEC), batch_size=1)

    def hard_swish_net(x):
        x = layers.Conv2D(8, 3, padding="same")(x)
        x = layers.Activation("hard_swish")(x)
        x = layers.Conv2D(8, 3)(x)
        x = layers.GlobalAveragePooling2D()(x)
        return layers.Dense(4)(x)

    def channel_mean_net(x):
        x = layers.Conv2D(8, 3, padding="same")(x)
        x = layers.Lambda(lambda v: tf.reduce_mean(v, axis=-1, keepdims=True))(x)
        return layers.Conv2D(4, 3)(x)

    def plain_net(x):
        x = layers.Conv2D(8, 3, padding="same", activation="relu")(x)
        x = layers.GlobalAveragePooling2D()(x)
        return layers.Dense(4)(x)

    def big_softmax_net(x):
        return layers.Softmax()(layers.Dense(16_001)(x))

    specs = {
        "b_tiny_uint8": (tiny_b, dict(io=tf.uint8)),
        "lite_tiny_int8": (tiny_lite, dict(io=tf.int8)),
        "lite_tiny_float_io": (tiny_lite, dict()),
        "hard_swish": (_small(hard_swish_net), dict(io=tf.int8)),
        "channel_mean": (_small(channel_mean_net), dict(io=tf.int8)),
        "float": (tiny_lite, dict(quantize=False)),
        "dynamic_batch": (_small(plain_net, batch_size=None), dict(io=tf.int8)),
        "batch2": (_small(plain_net, batch_size=2), dict(io=tf.int8)),
        "big_softmax": (_small(big_softmax_net, shape=(8,)), dict(io=tf.int8)),
    }
    paths = {}
    for name, (model, kwargs) in specs.items():
        paths[name] = folder / f"{name}.tflite"
        paths[name].write_bytes(_convert(model, **kwargs))
    keras.backend.clear_session()
    return paths


def test_efficientnet_with_se_and_swish_maps_fully(models):
    report = check_model(models["b_tiny_uint8"])
    ops = [o.op for o in report.ops]
    # Swish lowers to LOGISTIC + MUL and squeeze-excitation to MEAN -> CONV -> LOGISTIC -> MUL: all supported.
    assert {"CONV_2D", "DEPTHWISE_CONV_2D", "LOGISTIC", "MUL", "MEAN", "ADD", "FULLY_CONNECTED"} <= set(ops)
    assert ops[0] == ops[-1] == "QUANTIZE"  # uint8 <-> int8 at the edges, which the Edge TPU maps
    assert report.first_unsupported is None
    assert report.fully_mapped and report.ops_tpu == report.ops_total == len(ops)
    assert report.macs_tpu_share == 1.0 and report.macs_total > 0
    graph = read_graph(models["b_tiny_uint8"])
    assert report.param_bytes_tpu == sum(t.buffer_size_bytes for t in graph.tensors if t.is_constant)
    assert report.param_bytes_on_chip == report.param_bytes_tpu < ON_CHIP_CACHE_BYTES
    assert report.param_bytes_off_chip == 0


def test_lite_maps_fully(models):
    report = check_model(models["lite_tiny_int8"])
    ops = [o.op for o in report.ops]
    assert "LOGISTIC" not in ops and ops.count("MEAN") == 1  # ReLU6, no SE: only the head's pooling
    assert report.fully_mapped and report.input_dtypes == ("int8",)


def test_float_io_quantize_at_the_boundary_does_not_cut(models):
    report = check_model(models["lite_tiny_float_io"])
    first, last = report.ops[0], report.ops[-1]
    assert (first.op, last.op) == ("QUANTIZE", "DEQUANTIZE")
    assert not first.on_tpu and not last.on_tpu and "boundary" in first.reason and "boundary" in last.reason
    assert report.first_unsupported is None
    assert all(o.on_tpu for o in report.ops[1:-1])
    assert report.ops_cpu == 2 and not report.fully_mapped


def test_hard_swish_cuts_the_graph(models):
    report = check_model(models["hard_swish"])
    assert [o.op for o in report.ops] == ["CONV_2D", "HARD_SWISH", "CONV_2D", "MEAN", "FULLY_CONNECTED"]
    cut = report.first_unsupported
    assert (cut.index, cut.op) == (1, "HARD_SWISH")
    assert "not supported" in cut.reason
    assert [o.on_tpu for o in report.ops] == [True, False, False, False, False]
    assert [o.maps for o in report.ops] == [True, False, True, True, True]
    assert all("after the graph cut at op #1" in o.reason for o in report.ops[2:])
    assert (report.ops_tpu, report.ops_cpu) == (1, 4)
    assert report.macs_tpu == report.ops[0].macs == 16 * 16 * 8 * 27
    assert report.macs_tpu_share == pytest.approx(report.ops[0].macs / report.macs_total)
    assert report.unmapped_by_reason() == [{"op": "HARD_SWISH", "count": 1, "reason": cut.reason}]


def test_mean_over_channels_does_not_map(models):
    report = check_model(models["channel_mean"])
    cut = report.first_unsupported
    assert (cut.index, cut.op) == (1, "MEAN")
    assert "x and/or y" in cut.reason and "[3]" in cut.reason
    assert [o.on_tpu for o in report.ops] == [True, False, False]


def test_float_model_runs_entirely_on_cpu(models):
    report = check_model(models["float"])
    assert report.ops_tpu == 0 and report.first_unsupported.index == 0
    assert all(not o.maps and o.reason.startswith("not quantized") for o in report.ops)
    assert report.param_bytes_tpu == 0


def test_dynamic_batch_is_reported(models):
    graph = read_graph(models["dynamic_batch"])
    assert graph.tensors[graph.inputs[0]].shape_signature[0] == -1
    report = check_model(models["dynamic_batch"])
    assert report.first_unsupported.index == 0
    assert all(o.reason.startswith("dynamic shape") for o in report.ops)


def test_batch_two_is_reported(models):
    report = check_model(models["batch2"])
    assert report.first_unsupported.index == 0
    assert report.first_unsupported.reason.startswith("batch size 2")


def test_softmax_over_16000_elements_does_not_map(models):
    report = check_model(models["big_softmax"])
    assert [o.op for o in report.ops] == ["FULLY_CONNECTED", "SOFTMAX"]
    assert report.ops[0].on_tpu
    assert report.first_unsupported.op == "SOFTMAX" and "16,000" in report.first_unsupported.reason


def test_cli_check_text_and_json(models):
    runner = CliRunner()
    result = runner.invoke(edgetpu, ["check", str(models["hard_swish"]), str(models["lite_tiny_int8"])])
    assert result.exit_code == 0, result.output
    assert "#1 HARD_SWISH" in result.stdout and "fully mapped" in result.stdout
    result = runner.invoke(edgetpu, ["check", "--json", str(models["hard_swish"])])
    assert result.exit_code == 0
    payload = json.loads(result.stdout)
    assert payload["first_unsupported"]["op"] == "HARD_SWISH" and payload["ops_tpu"] == 1
    assert len(payload["ops"]) == 5 and payload["ops"][1]["maps"] is False


def test_cli_corrupt_file_is_one_line(tmp_path):
    bad = tmp_path / "broken.tflite"
    bad.write_bytes(b"\x00" * 64)
    result = CliRunner().invoke(edgetpu, ["check", str(bad)])
    assert result.exit_code == 1
    lines = [line for line in result.stderr.splitlines() if line.strip()]
    assert len(lines) == 1 and "broken.tflite" in lines[0] and "Traceback" not in result.output


def test_cli_compile_falls_back_to_the_static_check(models, tmp_path):
    from edgenet.edgetpu.compiler import compiler_available

    available, _ = compiler_available()
    assert not available  # this machine has no edgetpu_compiler (see test_edgetpu_compiler)
    runner = CliRunner()
    result = runner.invoke(edgetpu, ["compile", str(models["hard_swish"]), "-o", str(tmp_path / "out")])
    assert result.exit_code == 0
    assert "apt-get install edgetpu-compiler" in result.stderr and "static check" in result.stderr
    assert "#1 HARD_SWISH" in result.stdout
    result = runner.invoke(edgetpu, ["compile", "--json", str(models["hard_swish"])])
    payload = json.loads(result.stdout)
    assert payload[0]["compiled"] is False and payload[0]["static_check"]["ops_tpu"] == 1
    result = runner.invoke(edgetpu, ["compile", "--require-compiler", str(models["hard_swish"])])
    assert result.exit_code == 1 and "edgetpu-compiler" in result.stderr
