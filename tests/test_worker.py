"""The conversion worker (edgenet/convert/worker.py) on its own: the pinned Keras -> TFLite path per
quantization mode, the float-op check of the written graph, and the child's one-line failures."""

from __future__ import annotations

import json
import subprocess
import sys

import numpy as np
import pytest

from edgenet.convert.modes import CALIBRATED_MODES, QUANT_MODES
from edgenet.convert.worker import float_ops, keras_to_tflite
from edgenet.errors import EdgenetError
from edgenet.runtime.interpreter import make_interpreter
from edgenet.runtime.tflite_graph import read_graph


@pytest.fixture(scope="module")
def tiny_model(tiny_variant):
    from edgenet._tf import keras
    from edgenet.family.model import build_model

    keras.utils.set_random_seed(0)
    return build_model(tiny_variant, num_classes=10)


@pytest.fixture(scope="module")
def calib(tiny_variant):
    rng = np.random.default_rng(0)
    res = tiny_variant.resolution
    return rng.uniform(0, 255, (8, res, res, 3)).astype(np.float32)


@pytest.mark.parametrize("quant", ["fp32", "int8"])
def test_each_mode_gives_a_model_the_interpreter_runs_with_the_expected_io(tiny_model, calib, quant):
    data, seconds = keras_to_tflite(tiny_model, quant, "int8" if quant == "int8" else "float",
                                    calib if quant in CALIBRATED_MODES else None, name="tiny")
    assert seconds > 0 and data[4:8] == b"TFL3"
    interpreter = make_interpreter(data, threads=1)
    (inp,) = interpreter.get_input_details()
    assert np.dtype(inp["dtype"]) == (np.int8 if quant == "int8" else np.float32)
    assert tuple(inp["shape"]) == (1, *tiny_model.input_shape[1:])
    ops = {op.opcode for op in read_graph(data).operators}
    if quant == "int8":
        assert float_ops(data) == []  # full-integer: nothing computes in float
        assert "CONV_2D" in ops and "DEQUANTIZE" not in ops
    else:
        assert {"CONV_2D", "DEPTHWISE_CONV_2D"} <= set(float_ops(data))


def test_a_calibrated_mode_without_calibration_is_one_line(tiny_model):
    for quant in CALIBRATED_MODES:
        with pytest.raises(EdgenetError, match=f"tiny: {quant} needs calibration data"):
            keras_to_tflite(tiny_model, quant, "float", None, name="tiny")
    assert set(CALIBRATED_MODES) < set(QUANT_MODES)


def test_the_child_reports_a_bad_request_in_one_line(tmp_path):
    """Run as the parent runs it (python -m edgenet.convert.worker REQUEST): a bad variant becomes
    ``ok: false`` with one line in the result file and exit code 1, the traceback-free way."""
    result_out = tmp_path / "result.json"
    request = tmp_path / "request.json"
    request.write_text(json.dumps({"variant_spec": "b99", "quant": "int8", "io": "int8",
                                   "result_out": str(result_out), "log_path": str(tmp_path / "worker.log")}))
    proc = subprocess.run([sys.executable, "-m", "edgenet.convert.worker", str(request)], capture_output=True,
                          text=True, timeout=300)
    assert proc.returncode == 1
    result = json.loads(result_out.read_text())
    assert result["ok"] is False and "b99" in result["error"] and "\n" not in result["error"]
    assert "Traceback" not in proc.stderr
