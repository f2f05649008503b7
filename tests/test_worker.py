"""The conversion worker (edgenet/convert/worker.py) on its own: the pinned Keras -> TFLite path per
quantization mode, the float-op check of the written graph, a whole job with its typed result, and the
child's one-line failures."""

from __future__ import annotations

import json
import subprocess
import sys

import numpy as np
import pytest

from edgenet.convert.fidelity import Fidelity
from edgenet.convert.modes import CALIBRATED_MODES, QUANT_MODES
from edgenet.convert.precision import float_ops
from edgenet.convert.request import ConvertRequest, QualityReport, TensorInfo, WorkerJob, WorkerResult
from edgenet.convert.worker import keras_to_tflite, run
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


def test_a_float_model_the_interpreter_runs_with_the_expected_io(tiny_model):
    data, seconds = keras_to_tflite(tiny_model, "fp32", "float", None, name="tiny")
    assert seconds > 0 and data[4:8] == b"TFL3"
    interpreter = make_interpreter(data, threads=1)
    (inp,) = interpreter.get_input_details()
    assert np.dtype(inp["dtype"]) == np.float32
    assert tuple(inp["shape"]) == (1, *tiny_model.input_shape[1:])
    assert {"CONV_2D", "DEPTHWISE_CONV_2D"} <= set(float_ops(data))


def test_a_job_gives_a_full_integer_model_and_a_typed_result(tiny_variant, calib, tmp_path):
    """The worker's whole path in this process: the request in, the staged int8 model and a typed result out
    (tensors, fidelity and quality report as types, not free dicts), and the result survives JSON."""
    np.save(tmp_path / "calib.npy", calib)
    np.save(tmp_path / "held.npy", calib[:4])  # two "photos", two views each
    job = WorkerJob(ConvertRequest(quant="int8", bias_correction=True, progress=False), tiny_variant.spec,
                    model_out=str(tmp_path / "staged"), model_path=str(tmp_path / "m.tflite"),
                    result_out=str(tmp_path / "result.json"), calib_npy=str(tmp_path / "calib.npy"),
                    holdout_npy=str(tmp_path / "held.npy"), holdout_images=2, holdout_source="noise",
                    holdout_groups=(0, 0, 1, 1))
    result = run(job)
    assert isinstance(result, WorkerResult)
    data = (tmp_path / "staged").read_bytes()
    assert float_ops(data) == []  # full-integer: nothing computes in float
    ops = {op.opcode for op in read_graph(data).operators}
    assert "CONV_2D" in ops and "DEQUANTIZE" not in ops
    assert isinstance(result.input, TensorInfo) and result.input.dtype == result.output.dtype == "int8"
    assert result.input.shape == (1, 64, 64, 3) and result.input.scale > 0
    assert isinstance(result.fidelity, Fidelity) and result.fidelity.images == 2 and result.fidelity.samples == 4
    assert isinstance(result.quality, QualityReport) and result.quality.ranges == "minmax"
    assert result.quality.bias_correction["ops"] > 0 and result.quality.budget is None
    assert result.params > 0 and result.conversion_time_s > 0 and result.versions["tensorflow"].startswith("2.")
    assert WorkerResult.from_dict(json.loads(result.to_json())) == result


def test_the_worker_converts_without_the_packages_no_conversion_uses(tiny_variant, calib, tmp_path):
    """The worker's main in a fresh process, as the parent runs it: scikit-learn and matplotlib (installed here, the
    tests use them) are kept out of it, Keras starts without them and the int8 conversion succeeds."""
    import matplotlib  # noqa: F401  (both installed: the assertion below means something)
    import sklearn  # noqa: F401

    np.save(tmp_path / "calib.npy", calib)
    job = WorkerJob(ConvertRequest(quant="int8", progress=False), tiny_variant.spec,
                    model_out=str(tmp_path / "staged"), model_path=str(tmp_path / "m.tflite"),
                    result_out=str(tmp_path / "result.json"), calib_npy=str(tmp_path / "calib.npy"))
    (tmp_path / "job.json").write_text(job.to_json())
    code = ("import sys; from edgenet.convert import worker; rc = worker.main([sys.argv[1]]); "
            "print(rc, *sorted(m for m in worker.UNUSED_BY_CONVERSION if sys.modules.get(m) is not None))")
    proc = subprocess.run([sys.executable, "-c", code, str(tmp_path / "job.json")], capture_output=True, text=True,
                          timeout=300)
    assert proc.stdout.split() == ["0"], proc.stderr[-2000:]
    assert json.loads((tmp_path / "result.json").read_text())["ok"] is True
    assert float_ops((tmp_path / "staged").read_bytes()) == []


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
    request.write_text(WorkerJob(ConvertRequest(), "b99", model_out=str(tmp_path / "m"), model_path="m.tflite",
                                 result_out=str(result_out), log_path=str(tmp_path / "worker.log")).to_json())
    proc = subprocess.run([sys.executable, "-m", "edgenet.convert.worker", str(request)], capture_output=True,
                          text=True, timeout=300)
    assert proc.returncode == 1
    result = json.loads(result_out.read_text())
    assert result["ok"] is False and "b99" in result["error"] and "\n" not in result["error"]
    assert "Traceback" not in proc.stderr


def test_a_job_the_child_cannot_read_is_one_line(tmp_path):
    """A job file that is not a valid request (an option rule broken) has no result file to go to: one line."""
    job = json.loads(WorkerJob(ConvertRequest(), "b0", model_out="m", model_path="m", result_out="r").to_json())
    job["request"]["samples"] = 0
    (tmp_path / "job.json").write_text(json.dumps(job))
    proc = subprocess.run([sys.executable, "-m", "edgenet.convert.worker", str(tmp_path / "job.json")],
                          capture_output=True, text=True, timeout=300)
    assert proc.returncode == 2
    assert proc.stderr.strip() == f"error: {tmp_path / 'job.json'}: --samples must be at least 1, got 0"
