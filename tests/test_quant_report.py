"""quant-report, bias correction and the accuracy budget on real conversions of the tiny variant."""

from __future__ import annotations

import json

import numpy as np
import pytest

pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def tiny_models(tiny_int8):
    """(Keras model, float bytes, plain int8 bytes, calibration, held-out) for the tiny variant on real photos."""
    return tiny_int8

def _damage(data: bytes, name: str, factor: float = 32.0) -> bytes:
    """Force activation ``name``'s range ``factor`` times too narrow (its scale shrinks)."""
    from tensorflow.lite.tools import flatbuffer_utils

    model = flatbuffer_utils.convert_bytearray_to_object(bytearray(data))
    (target,) = [t for t in model.subgraphs[0].tensors if t.name.decode() == name]
    target.quantization.scale = np.asarray(target.quantization.scale, dtype=np.float32) / factor
    return bytes(flatbuffer_utils.convert_object_to_bytearray(model))


def test_report_ranks_a_deliberately_damaged_tensor_first(tiny_models):
    from edgenet.quant.report import measure_report

    _, float_bytes, int8_bytes, _, held = tiny_models
    plain = measure_report(float_bytes, int8_bytes, held)
    # A healthy mid-graph convolution output: the projection of block 3a.
    (damaged,) = [t.name for t in plain.tensors if t.layer == "block3a_project_conv" and t.op == "CONV_2D"]
    report = measure_report(float_bytes, _damage(int8_bytes, damaged), held)
    worst = report.ranked()[0]
    assert worst.name == damaged
    assert worst.layer == "block3a_project_conv" and worst.block == "block3a"
    assert worst.clipped_fraction > 0.01
    assert plain.ranked()[0].name != damaged
    assert report.output["sqnr_db"] < plain.output["sqnr_db"]
    # The same tensor, undamaged, was measured in the plain model: every report covers every matched tensor.
    assert {t.name for t in plain.tensors} == {t.name for t in report.tensors}
    assert len(plain.tensors) > 50 and plain.unmatched == 0


def _shift_biases(data: bytes, steps: float) -> bytes:
    """Every convolution's int32 bias moved by ``steps`` of its output's quantization step: a known mean shift."""
    from tensorflow.lite.tools import flatbuffer_utils

    model = flatbuffer_utils.convert_bytearray_to_object(bytearray(data))
    graph = model.subgraphs[0]
    codes = {i: flatbuffer_utils.opcode_to_name(model, i) for i in range(len(model.operatorCodes))}
    moved: set[int] = set()
    for op in graph.operators:
        if codes[op.opcodeIndex] not in ("CONV_2D", "DEPTHWISE_CONV_2D") or len(op.inputs) < 3 or op.inputs[2] < 0:
            continue
        bias = graph.tensors[op.inputs[2]]
        if bias.buffer in moved:  # a buffer shared by two tensors is moved once
            continue
        out_scale = float(np.asarray(graph.tensors[op.outputs[0]].quantization.scale).ravel()[0])
        bias_scale = np.asarray(bias.quantization.scale, dtype=np.float64)
        values = np.frombuffer(bytes(model.buffers[bias.buffer].data), dtype=np.int32).copy()
        values += np.round(steps * out_scale / bias_scale).astype(np.int32)
        model.buffers[bias.buffer].data = np.frombuffer(values.tobytes(), dtype=np.uint8)
        moved.add(bias.buffer)
    return bytes(flatbuffer_utils.convert_object_to_bytearray(model))


def test_bias_correction_removes_a_known_mean_shift(tiny_models):
    """Plain int8's own mean shift is near the rounding floor (about 0.1 output steps on three samples), too small
    to show a gain; a known shift of 2 steps on every convolution is measured and folded back into the biases."""
    from edgenet.convert.bias import correct_bias
    from edgenet.convert.worker import float_ops
    from edgenet.runtime.tflite_graph import read_graph

    _, float_bytes, int8_bytes, calib, _ = tiny_models
    _, plain = correct_bias(float_bytes, int8_bytes, calib)
    shifted = _shift_biases(int8_bytes, 2.0)
    corrected, first = correct_bias(float_bytes, shifted, calib)
    _, again = correct_bias(float_bytes, corrected, calib)
    assert first.ops >= 5 and first.channels > 100
    # The shift is seen (about 2 steps, far above plain int8's own ~0.1) and, corrected, mostly gone (measured:
    # 2.63 steps before, 0.21 after, on this fixture).
    assert first.mean_abs_shift_steps > 1.0 > 5 * plain.mean_abs_shift_steps
    assert again.mean_abs_shift_steps < 0.2 * first.mean_abs_shift_steps
    # Same graph: same operators, still full-integer.
    before, after = read_graph(int8_bytes), read_graph(corrected)
    assert [op.opcode for op in before.operators] == [op.opcode for op in after.operators]
    assert float_ops(corrected) == []


def test_budget_stops_as_soon_as_met_and_stays_full_integer(tiny_models):
    from conftest import repair_parts

    from edgenet.convert.quality import LADDER, RepairPlan, repair
    from edgenet.convert.worker import float_ops, keras_to_tflite

    model, float_bytes, _, calib, held = tiny_models
    fidelity, correct = repair_parts(model, float_bytes, calib, held)
    converted = []

    def convert(method):
        converted.append(method)
        return keras_to_tflite(model, "int8", "int8", calib, calibrator="edgenet", ranges=method,
                               keep_histograms=True)[0]

    _, fid, record = repair(RepairPlan(convert, correct, fidelity, min_agreement_pct=1.0))
    assert record["budget"]["met"] and len(record["budget"]["steps"]) == 1 and converted == ["minmax"]
    assert record["ranges"] == "minmax" and record["bias_correction"] is None

    data, fid, record = repair(RepairPlan(convert, correct, fidelity, min_agreement_pct=100.0))
    steps = record["budget"]["steps"]
    # 100 % is never met by an interval's lower bound on a handful of views: every rung is tried.
    assert len(steps) == len(LADDER) and not record["budget"]["met"]
    assert float_ops(data) == []


def test_cli_quant_report_writes_markdown_json_and_png(tiny_models, tmp_path, photos):
    from click.testing import CliRunner

    from edgenet.cli import main

    _, float_bytes, int8_bytes, _, _ = tiny_models
    (tmp_path / "f.tflite").write_bytes(float_bytes)
    (tmp_path / "q.tflite").write_bytes(int8_bytes)
    images = tmp_path / "held"
    images.mkdir()
    (images / "rocket.png").write_bytes(photos["rocket"].read_bytes())
    md, png = tmp_path / "r.md", tmp_path / "r.png"
    result = CliRunner().invoke(main, ["quant-report", str(tmp_path / "f.tflite"), str(tmp_path / "q.tflite"),
                                       "--images", str(images), "--json", "--md", str(md), "--png", str(png)])
    assert result.exit_code == 0, result.output
    data = json.loads(result.stdout)
    assert data["images"] == 1 and data["samples"] == 8  # one photo, eight fixed crops/flips
    # The output's agreement interval knows the eight views are one photo.
    assert data["output"]["ci_method"].startswith(("Wilson on 1 image,", "cluster bootstrap over 1 image,"))
    assert "views of 1 image, 95 % CI" in md.read_text()
    assert data["ranked"][0] in {t["name"] for t in data["tensors"]}
    assert md.read_text().startswith("# Quantization report") and "| rank | layer |" in md.read_text()
    assert png.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    # A float model as MODEL is refused with one line.
    bad = CliRunner().invoke(main, ["quant-report", str(tmp_path / "f.tflite"), str(tmp_path / "f.tflite")])
    assert bad.exit_code == 1 and "not a quantized model" in bad.output and "Traceback" not in bad.output


def test_convert_with_a_budget_for_edgetpu_reports_the_verdict_and_stays_full_integer(tmp_path, calib_and_holdout):
    from click.testing import CliRunner
    from conftest import TINY_SPEC

    from edgenet.cli import main
    from edgenet.convert.worker import float_ops

    calib, held = calib_and_holdout
    result = CliRunner().invoke(main, ["convert", TINY_SPEC, "--target", "edgetpu", "--min-agreement", "1",
                                       "--calib", str(calib), "--samples", "8", "--holdout", str(held),
                                       "-o", str(tmp_path / "out"), "--quiet", "--json"])
    assert result.exit_code == 0, result.output
    (record,) = json.loads(result.stdout)
    manifest = json.loads(open(record["manifest_path"]).read())
    budget = manifest["quality"]["budget"]
    # Met at the first rung (plain int8): nothing else is converted or changed.
    assert budget["full_integer"] and budget["met"] and len(budget["steps"]) == 1
    assert budget["steps"][0] == {**budget["steps"][0], "ranges": "minmax", "bias_correction": False}
    assert "accuracy budget 1 % top-1 agreement: met" in result.stderr
    assert manifest["inputs"]["min_agreement"] == 1.0
    # The verdict carries the agreement's interval over the held-out photo and says whether its lower bound meets it.
    low, high = budget["reached_ci95_pct"]
    assert [low, high] == [round(100 * x, 3) for x in manifest["fidelity"]["top1_agreement_ci95"]]
    assert low <= budget["reached_pct"] <= high and low >= 1.0 and budget["met_at_ci_lower_bound"]
    assert f"95 % CI {low:.1f}-{high:.1f} %" in result.stderr
    assert f"{low:.1f}-{high:.1f} %" in budget["note"]
    assert budget["expected_pct"] == round(100 * manifest["fidelity"]["expected_agreement"], 3)
    assert f"expected {budget['expected_pct']:.1f} %" in result.stderr
    data = open(record["model_path"], "rb").read()
    assert float_ops(data) == []  # the Edge TPU model never leaves full-integer
    assert manifest["io"] == "uint8"
