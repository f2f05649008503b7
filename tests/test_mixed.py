"""Mixed int8/int16 (edgenet.convert.mixed) on real conversions of the tiny variant, run by the real interpreter."""

from __future__ import annotations

import numpy as np
import pytest

pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def tiny(tiny_int8):
    """(float bytes, edgenet int8 bytes, calibration, held-out views, the 2 worst tensors on the calibration)."""
    from edgenet.quant.report import measure_report

    _, float_bytes, int8_bytes, calib, held = tiny_int8
    worst = [t.name for t in measure_report(float_bytes, int8_bytes, calib).ranked()[:2]]
    return float_bytes, int8_bytes, calib, held, worst

def _sqnr_db(reference: np.ndarray, other: np.ndarray) -> float:
    return float(10 * np.log10(np.sum(reference**2) / np.sum((reference - other) ** 2)))


def test_named_tensors_come_out_int16_the_rest_int8_and_the_model_stays_close(tiny):
    from edgenet.convert.mixed import activation_dtypes, int16_scopes, upgrade_to_int16
    from edgenet.convert.worker import float_ops
    from edgenet.runtime.interpreter import TFLiteModel
    from edgenet.runtime.tflite_graph import read_graph

    float_bytes, int8_bytes, calib, held, worst = tiny
    plan = int16_scopes(float_bytes, worst)
    mixed = upgrade_to_int16(float_bytes, worst, calib=calib)
    dtypes = activation_dtypes(mixed)
    assert [dtypes[n] for n in worst] == ["int16", "int16"]
    graph = read_graph(mixed)
    assert float_ops(mixed) == []
    compute16, compute8 = [], []
    for op in graph.operators:
        if op.opcode == "QUANTIZE":  # the int8 <-> int16 requantizations at the region's borders
            continue
        kinds = {t.dtype for t in graph.op_outputs(op)}
        (compute16 if kinds == {"int16"} else compute8).append(op)
        assert kinds in ({"int16"}, {"int8"}), (op.opcode, kinds)
    # Exactly the planned ops (producers and consumers of the named tensors) compute in int16.
    assert sorted(graph.op_outputs(op)[0].name for op in compute16) == sorted(plan.ops)
    assert len(compute8) > 5 * len(compute16)
    for name in worst:  # 16x8 kernels: symmetric int16 activations
        (tensor,) = [t for t in graph.tensors if t.name == name]
        assert tensor.quantization.zero_point == (0,)
    assert [graph.tensors[i].dtype for i in graph.inputs + graph.outputs] == ["int8", "int8"]
    reference = np.concatenate([TFLiteModel(float_bytes).run(held[i : i + 1]) for i in range(len(held))])
    q8 = TFLiteModel(int8_bytes)
    q16 = TFLiteModel(mixed)
    out8 = np.concatenate([q8.run(held[i : i + 1]) for i in range(len(held))])
    out16 = np.concatenate([q16.run(held[i : i + 1]) for i in range(len(held))])
    assert q16.input_details[0]["dtype"] == np.int8
    assert _sqnr_db(out8, out16) > 10.0
    assert _sqnr_db(reference, out16) > _sqnr_db(reference, out8) - 3.0


def test_float_and_uint8_io_wrap_the_same_integer_model(tiny):
    from edgenet.convert.mixed import activation_dtypes, upgrade_to_int16
    from edgenet.convert.worker import float_ops
    from edgenet.runtime.interpreter import TFLiteModel

    float_bytes, _, calib, held, worst = tiny
    from edgenet.convert.mixed import ranges_by_name

    ranges = ranges_by_name(float_bytes, calib)
    outputs = {}
    for io, dtype in (("int8", np.int8), ("float", np.float32), ("uint8", np.uint8)):
        data = upgrade_to_int16(float_bytes, worst[:1], ranges=ranges, io=io)
        model = TFLiteModel(data)
        assert model.input_details[0]["dtype"] == dtype and model.output_details[0]["dtype"] == dtype
        assert activation_dtypes(data)[worst[0]] == "int16"
        assert float_ops(data) == []
        outputs[io] = np.concatenate([model.run(held[i : i + 1]) for i in range(len(held))])
    scale = float(np.abs(outputs["int8"]).max())
    # float io quantizes the input the same way and dequantizes the same int8 output.
    np.testing.assert_allclose(outputs["float"], outputs["int8"], atol=1e-6 * scale)
    np.testing.assert_allclose(outputs["uint8"], outputs["int8"], atol=1e-6 * scale)


def test_no_named_tensor_gives_plain_int8_and_bad_names_fail_in_one_line(tiny):
    from edgenet.convert.mixed import activation_dtypes, int16_candidates, upgrade_to_int16
    from edgenet.errors import EdgenetError
    from edgenet.runtime.tflite_graph import read_graph

    float_bytes, _, calib, _, worst = tiny
    plain = upgrade_to_int16(float_bytes, [], calib=calib)
    assert "int16" not in set(activation_dtypes(plain).values())
    with pytest.raises(EdgenetError, match="no activation tensor") as err:
        upgrade_to_int16(float_bytes, ["no_such_tensor"], calib=calib)
    assert "\n" not in str(err.value)
    with pytest.raises(EdgenetError, match="input or output"):
        upgrade_to_int16(float_bytes, [read_graph(float_bytes).tensors[read_graph(float_bytes).outputs[0]].name],
                         calib=calib)
    assert int16_candidates(float_bytes, ["no_such_tensor", *worst, "x"], 1) == worst[:1]
    with pytest.raises(EdgenetError, match="io must be one of"):
        upgrade_to_int16(float_bytes, worst, calib=calib, io="int4")
    with pytest.raises(EdgenetError, match="calibration data or ranges"):
        upgrade_to_int16(float_bytes, worst)


def test_module_imports_without_tensorflow_or_the_quantizer():
    import subprocess
    import sys

    code = ("import sys, edgenet.convert.mixed; "
            "print(sorted(m for m in ('tensorflow', 'ai_edge_quantizer', 'keras') if m in sys.modules))")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
    assert out.strip() == "[]"


def test_output_gain_ranking_finds_a_tensor_whose_int8_range_is_far_too_wide(tiny):
    from edgenet.convert.mixed import int16_candidates, ranges_by_name, rank_by_output_gain
    from edgenet.runtime.tflite_graph import read_graph

    float_bytes, _, calib, _, _ = tiny
    ranges = ranges_by_name(float_bytes, calib)
    graph = read_graph(float_bytes)
    # Main-path conv outputs: their range is free (LOGISTIC outputs have a fixed int8 scale the quantizer keeps)
    # and the answer depends on them (squeeze-excitation convs feed saturated sigmoids).
    convs = [graph.op_outputs(op)[0].name for op in graph.operators if op.opcode == "CONV_2D"]
    project = int16_candidates(float_bytes, [n for n in convs if "_project_conv" in n], len(convs))
    expand = int16_candidates(float_bytes, [n for n in convs if "_expand_conv" in n], len(convs))
    damaged, others = project[len(project) // 2], [expand[0], expand[-1]]
    low, high = ranges[damaged]
    ranges[damaged] = (64 * low, 64 * high)  # int8 steps 64x too coarse; int16 steps still finer than a sane int8
    scored = rank_by_output_gain(float_bytes, calib, ranges=ranges, candidates=[*others, damaged], samples=3)
    assert [name for name, _ in scored][0] == damaged
    assert scored[0][1] > 3.0 and scored[0][1] > scored[1][1] + 3.0
