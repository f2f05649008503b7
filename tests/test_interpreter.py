"""edgenet.runtime.interpreter against a real interpreter and real tiny models."""

from __future__ import annotations

import numpy as np
import pytest
from fixtures_tflite import tiny_tflite_models, with_unused_edgetpu_op_code

from edgenet.errors import EdgenetError, InputFileError
from edgenet.runtime.interpreter import (
    DelegateError,
    ModelLoadError,
    QuantParams,
    TFLiteModel,
    is_edgetpu_compiled,
    load_runtime,
    make_interpreter,
)


@pytest.fixture(scope="session")
def tiny():
    return tiny_tflite_models()


def test_runtime_prefers_ai_edge_litert():
    runtime = load_runtime()
    assert runtime.info.name == "ai_edge_litert"
    assert runtime.info.version and runtime.info.version[0].isdigit()


def test_runtime_falls_back_past_missing_module():
    # tflite_runtime is not installed here: the fallback must skip it and report ai_edge_litert
    runtime = load_runtime(("tflite_runtime", "ai_edge_litert"))
    assert runtime.info.name == "ai_edge_litert"
    assert runtime.info.to_dict()["version"] == load_runtime().info.version


def test_unknown_runtime_name_is_one_line_error():
    with pytest.raises(EdgenetError, match="unknown runtime"):
        load_runtime(("nope",))


def test_make_interpreter_sets_threads_and_xnnpack_switch(tiny):
    data = tiny.fp32.read_bytes()
    x = np.random.default_rng(1).uniform(0, 255, (1, tiny.resolution, tiny.resolution, 3)).astype(np.float32)
    outputs = []
    for xnnpack in (True, False):
        interp = make_interpreter(data, threads=2, xnnpack=xnnpack)
        interp.set_tensor(interp.get_input_details()[0]["index"], x)
        interp.invoke()
        outputs.append(interp.get_tensor(interp.get_output_details()[0]["index"]).copy())
    # the builtin kernels and XNNPACK compute the same function
    np.testing.assert_allclose(outputs[0], outputs[1], rtol=1e-4, atol=1e-4)
    with pytest.raises(EdgenetError, match="threads"):
        make_interpreter(data, threads=0)


def test_tflite_model_int8_quantization_round_trip(tiny):
    fp32 = TFLiteModel.from_path(tiny.fp32)
    int8 = TFLiteModel.from_path(tiny.int8)
    q = int8.input_quant
    assert q.quantized and q.dtype == np.int8
    assert not fp32.input_quant.quantized
    rng = np.random.default_rng(0)
    batch = rng.uniform(0, 255, (3, tiny.resolution, tiny.resolution, 3)).astype(np.float32)
    # quantize -> dequantize stays within half a step of the input (inside the representable range)
    from edgenet.runtime.interpreter import _dequantize

    back = _dequantize(int8.quantize_input(batch), q)
    lo, hi = (np.iinfo(np.int8).min - q.zero_point) * q.scale, (np.iinfo(np.int8).max - q.zero_point) * q.scale
    inside = (batch >= lo) & (batch <= hi)
    assert np.all(np.abs(back - batch)[inside] <= q.scale / 2 + 1e-6)
    # batch of 3 on a batch-1 model: one invoke per image, float outputs close to the float model
    out_q, out_f = int8.run(batch), fp32.run(batch)
    assert out_q.shape == out_f.shape == (3, 10) and out_q.dtype == np.float32
    scale = int8.output_quant[0].scale
    assert np.max(np.abs(out_q - out_f)) < 20 * scale + 0.05 * np.max(np.abs(out_f))
    # one image at a time gives the same answer as the batch
    np.testing.assert_array_equal(int8.run(batch[1]), out_q[1:2])


def test_quant_params_from_details():
    q = QuantParams.from_details({"dtype": np.uint8, "quantization": (0.5, 3)})
    assert q.quantized and q.scale == 0.5 and q.zero_point == 3
    assert not QuantParams.from_details({"dtype": np.float32, "quantization": (0.0, 0)}).quantized


def test_missing_corrupt_truncated_files_are_one_line(tmp_path, tiny):
    with pytest.raises(InputFileError, match="no such file") as info:
        TFLiteModel.from_path(tmp_path / "absent.tflite")
    assert "\n" not in str(info.value)
    garbage = tmp_path / "garbage.tflite"
    garbage.write_bytes(np.random.default_rng(0).bytes(4096))
    truncated = tmp_path / "truncated.tflite"
    truncated.write_bytes(tiny.int8.read_bytes()[:1500])
    for path in (garbage, truncated):
        with pytest.raises(InputFileError) as info:
            TFLiteModel.from_path(path)
        assert str(path) in str(info.value) and "\n" not in str(info.value)
    with pytest.raises(ModelLoadError):
        make_interpreter(garbage.read_bytes(), threads=1)


def test_edgetpu_detection_and_delegate_errors(tiny):
    plain = tiny.int8.read_bytes()
    marked = with_unused_edgetpu_op_code(plain)
    assert not is_edgetpu_compiled(plain)
    assert is_edgetpu_compiled(marked)
    with pytest.raises(DelegateError, match="not compiled for the Edge TPU"):
        make_interpreter(plain, threads=1, delegate="edgetpu")
    with pytest.raises(DelegateError, match="libedgetpu-missing.so.1") as info:
        make_interpreter(marked, threads=1, delegate="edgetpu", edgetpu_lib="libedgetpu-missing.so.1")
    assert "\n" not in str(info.value)
    # the CPU path still accepts the marked model: the extra op code is unused
    make_interpreter(marked, threads=1)
