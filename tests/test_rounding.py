"""Error-compensating weight rounding (edgenet.convert.rounding) on real conversions of the tiny variant."""

from __future__ import annotations

import numpy as np
import pytest

pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def tiny_rounded(tiny_int8):
    """(model, float bytes, plain int8 bytes, re-rounded bytes, summary, calibration, held-out) for the tiny variant."""
    from edgenet.convert.rounding import round_weights

    model, float_bytes, plain, calib, held = tiny_int8
    rounded, summary = round_weights(float_bytes, plain, calib)
    return model, float_bytes, plain, rounded, summary, calib, held

def _weights_of(data: bytes) -> dict[int, np.ndarray]:
    """Constant tensor index -> its stored values, for every constant tensor of the model."""
    from tensorflow.lite.tools import flatbuffer_utils

    from edgenet.runtime.tflite_graph import read_graph

    graph = read_graph(data)
    model = flatbuffer_utils.convert_bytearray_to_object(bytearray(data))
    out = {}
    for t in graph.tensors:
        buf = model.buffers[model.subgraphs[0].tensors[t.index].buffer].data
        if t.is_constant and buf is not None:
            out[t.index] = np.frombuffer(bytes(bytearray(buf)), dtype=np.dtype(t.dtype)).reshape(t.shape)
    return out


def test_same_graph_scales_and_biases_only_weight_values_move(tiny_rounded):
    from edgenet.convert.worker import float_ops
    from edgenet.runtime.interpreter import TFLiteModel
    from edgenet.runtime.tflite_graph import read_graph

    _, _, plain, rounded, summary, _, held = tiny_rounded
    before, after = read_graph(plain), read_graph(rounded)
    assert [(op.opcode, op.inputs, op.outputs, op.options) for op in before.operators] == \
        [(op.opcode, op.inputs, op.outputs, op.options) for op in after.operators]
    assert [(t.name, t.shape, t.dtype, t.quantization) for t in before.tensors] == \
        [(t.name, t.shape, t.dtype, t.quantization) for t in after.tensors]
    assert float_ops(rounded) == []
    w0, w1 = _weights_of(plain), _weights_of(rounded)
    weight_inputs = {op.inputs[1] for op in before.operators
                     if op.opcode in ("CONV_2D", "DEPTHWISE_CONV_2D", "FULLY_CONNECTED")}
    moved = {i for i in w0 if not np.array_equal(w0[i], w1[i])}
    assert moved and moved <= weight_inputs  # biases and every other constant untouched
    assert summary.ops == len(moved) and summary.ops >= 10
    assert summary.weights_changed == sum(int(np.count_nonzero(w0[i] != w1[i])) for i in moved)
    for i in moved:
        assert w1[i].dtype == np.int8 and w1[i].min() >= -127
        # Error compensation moves a weight by a step or two, never far from its own nearest value.
        assert np.max(np.abs(w1[i].astype(int) - w0[i].astype(int))) <= 8
    out = TFLiteModel(rounded).run(held[:1])
    assert out.shape == (1, 1000) and np.all(np.isfinite(out))


def _single_op_runner(float_bytes: bytes, plain: bytes, samples: np.ndarray):
    """``run(k, op, weights, source)``: the float model's operator ``k`` run alone with TFLite's float kernels, with
    ``weights`` (int8, dequantized with the quantized op's scales; None: its float weights), on each sample's
    inputs of that op as the quantized model (``source="quant"``) or the float model (``"float"``) computes them."""
    from tensorflow.lite.tools import flatbuffer_utils

    from edgenet.convert.calibrator import single_op_bytes
    from edgenet.runtime.activations import dequantizer, feed, preserving_interpreter
    from edgenet.runtime.tflite_graph import read_graph

    fgraph, qgraph = read_graph(float_bytes), read_graph(plain)
    inputs = {}
    for source, data, graph in (("quant", plain, qgraph), ("float", float_bytes, fgraph)):
        interp = preserving_interpreter(data, 1)
        value = dequantizer(interp)
        inputs[source] = []
        for x in samples:
            feed(interp, x[None])
            interp.invoke()
            inputs[source].append({graph.tensors[op.outputs[0]].name: value(op.inputs[0]) for op in graph.operators})

    def run(k: int, op, weights: np.ndarray | None, source: str = "quant") -> np.ndarray:
        model = flatbuffer_utils.convert_bytearray_to_object(bytearray(float_bytes))
        fop = fgraph.operators[k]
        if weights is not None:
            scale = np.asarray(qgraph.tensors[op.inputs[1]].quantization.scale, np.float32)
            axis = 3 if op.opcode == "DEPTHWISE_CONV_2D" else 0
            w = weights.astype(np.float32) * scale.reshape([-1 if a == axis else 1 for a in range(weights.ndim)])
            model.buffers[model.subgraphs[0].tensors[fop.inputs[1]].buffer].data = np.frombuffer(
                w.astype("<f4").tobytes(), np.uint8)
        interp = preserving_interpreter(single_op_bytes(model, k), 1)
        outs = []
        for sample in inputs[source]:
            interp.set_tensor(fop.inputs[0], sample[qgraph.tensors[op.outputs[0]].name])
            interp.invoke()
            outs.append(interp.get_tensor(fop.outputs[0]).astype(np.float64))
        return np.stack(outs)

    producer = {fgraph.tensors[t].name: k for k, op in enumerate(fgraph.operators) for t in op.outputs}
    return run, producer, qgraph


def _moved_ops(qgraph, plain: bytes, rounded: bytes):
    w_plain, w_round = _weights_of(plain), _weights_of(rounded)
    return [(op, w_plain[op.inputs[1]], w_round[op.inputs[1]]) for op in qgraph.operators
            if op.inputs[1:2] and op.inputs[1] in w_plain
            and not np.array_equal(w_plain[op.inputs[1]], w_round[op.inputs[1]])]


def test_each_ops_output_error_on_calibration_inputs_is_lower(tiny_rounded):
    """Measured with TFLite's own float kernels, independently of the module's im2col: each re-rounded op, run
    alone in float with its dequantized int8 weights on the quantized model's own inputs, against the same op
    with its float weights."""
    _, float_bytes, plain, rounded, summary, calib, _ = tiny_rounded
    run, producer, qgraph = _single_op_runner(float_bytes, plain, calib)
    better = measured = 0
    kinds = set()
    for op, w_plain, w_round in _moved_ops(qgraph, plain, rounded):
        k = producer[qgraph.tensors[op.outputs[0]].name]
        reference = run(k, op, None)
        e_plain = np.mean((run(k, op, w_plain) - reference) ** 2)
        e_round = np.mean((run(k, op, w_round) - reference) ** 2)
        measured += 1
        better += e_round < e_plain
        kinds.add(op.opcode)
    assert measured == summary.ops and {"CONV_2D", "DEPTHWISE_CONV_2D"} <= kinds
    assert better >= 0.8 * measured, (better, measured)
    assert summary.error_ratio < 0.9


def test_float_output_target_lowers_each_ops_error_against_the_float_models_output(tiny_rounded):
    """target="float_output": the error that counts is against the float op on the float model's inputs; each
    re-rounded op (TFLite float kernels, dequantized int8 weights, the quantized model's inputs) must come closer
    to it than round-to-nearest does, though its own float weights are no longer the target."""
    from edgenet.convert.rounding import round_weights

    _, float_bytes, plain, default_rounded, _, calib, _ = tiny_rounded
    rounded, summary = round_weights(float_bytes, plain, calib, target="float_output")
    assert summary.ops >= 10 and summary.error_ratio < 0.9
    assert rounded != default_rounded  # a different target, different integers
    run, producer, qgraph = _single_op_runner(float_bytes, plain, calib)
    better = measured = 0
    for op, w_plain, w_round in _moved_ops(qgraph, plain, rounded):
        k = producer[qgraph.tensors[op.outputs[0]].name]
        reference = run(k, op, None, source="float")
        e_plain = np.mean((run(k, op, w_plain) - reference) ** 2)
        e_round = np.mean((run(k, op, w_round) - reference) ** 2)
        measured += 1
        better += e_round < e_plain
        assert np.all(w_round >= -127)
    assert measured == summary.ops
    assert better >= 0.8 * measured, (better, measured)
    with pytest.raises(ValueError, match="float_output"):
        round_weights(float_bytes, plain, calib, target="outputs")


def test_sequential_rounding_fits_each_op_on_the_inputs_it_ends_up_with(tiny_rounded):
    """sequential=True: op k's inputs are measured after ops 0..k-1 are re-rounded, and ops after k do not change
    them, so in the final model each re-rounded op sees exactly the inputs it was fitted on. There (TFLite float
    kernels, dequantized int8 weights) each must beat round-to-nearest's weights."""
    from edgenet.convert.rounding import round_weights

    _, float_bytes, plain, one_shot, _, calib, _ = tiny_rounded
    rounded, summary = round_weights(float_bytes, plain, calib, sequential=True)
    assert summary.ops >= 10 and summary.error_ratio < 0.9 and rounded != one_shot
    run, producer, qgraph = _single_op_runner(float_bytes, rounded, calib)  # the inputs of the final model
    w_nearest = _weights_of(plain)
    better = measured = 0
    for op, _, w_round in _moved_ops(qgraph, plain, rounded):
        k = producer[qgraph.tensors[op.outputs[0]].name]
        reference = run(k, op, None)
        e_nearest = np.mean((run(k, op, w_nearest[op.inputs[1]]) - reference) ** 2)
        e_round = np.mean((run(k, op, w_round) - reference) ** 2)
        measured += 1
        better += e_round < e_nearest
    assert measured == summary.ops
    assert better >= 0.8 * measured, (better, measured)


def test_weight_rounding_rungs_follow_the_integer_ladder(tiny_rounded):
    from conftest import repair_parts

    from edgenet.convert.quality import LADDER, ROUNDING_LADDER, RepairPlan, repair
    from edgenet.convert.rounding import round_weights
    from edgenet.convert.worker import float_ops, keras_to_tflite

    model, float_bytes, plain, _, _, calib, held = tiny_rounded
    fidelity, correct = repair_parts(model, float_bytes, calib, held)
    cache: dict[str, bytes] = {"minmax": plain}

    def convert(method):
        if method not in cache:
            cache[method] = keras_to_tflite(model, "int8", "int8", calib, calibrator="edgenet", ranges=method,
                                            keep_histograms=True)[0]
        return cache[method]

    def rounder(data):
        fixed, summary = round_weights(float_bytes, data, calib)
        return fixed, summary.to_dict()

    # An unreachable budget (over 100 %) climbs every integer rung: the re-rounded ones last, recorded as such.
    data, _, record = repair(RepairPlan(convert, correct, fidelity, min_agreement_pct=101.0, round_weights=rounder))
    steps = record["budget"]["steps"]
    assert not record["budget"]["met"] and len(steps) == len(LADDER) + len(ROUNDING_LADDER)
    assert [s["weight_rounding"] for s in steps] == [False] * len(LADDER) + [True] * len(ROUNDING_LADDER)
    assert [(s["ranges"], s["bias_correction"]) for s in steps[len(LADDER):]] == list(ROUNDING_LADDER)
    assert float_ops(data) == [] and record["budget"]["full_integer"]
    # Missed: plain int8 is kept unless a rung beats it on paired flips (McNemar); then the most agreement wins.
    beaten = [s for s in steps[1:] if s["vs_plain_int8"]["b_better"]]
    kept = max(beaten, key=lambda s: (s["top1_agreement"], s["expected_agreement"], s["sqnr_db"])) if beaten \
        else steps[0]
    assert all(s["expected_agreement"] is not None for s in steps)
    assert record["budget"]["expected_pct"] == round(100.0 * kept["expected_agreement"], 3)
    assert (record["ranges"], bool(record["bias_correction"]), "weight_rounding" in record) == \
        (kept["ranges"], kept["bias_correction"], kept["weight_rounding"])
    # Without a weight rounder (int16x8, or a caller that has none) the ladder is the plain integer one.
    _, _, record = repair(RepairPlan(convert, correct, fidelity, min_agreement_pct=101.0))
    assert len(record["budget"]["steps"]) == len(LADDER)
    # Asked outright (no budget): rounding, then bias correction, both recorded.
    _, _, record = repair(RepairPlan(convert, correct, fidelity, weight_rounding=True, bias_correction=True,
                                     round_weights=rounder))
    assert record["weight_rounding"]["ops"] >= 10 and record["bias_correction"]["ops"] >= 5


def test_convert_weight_rounding_flag_records_it_and_stays_full_integer(tmp_path, calib_and_holdout):
    import json

    from click.testing import CliRunner
    from conftest import TINY_SPEC

    from edgenet.cli import main
    from edgenet.convert.worker import float_ops

    calib, held = calib_and_holdout
    args = ["convert", TINY_SPEC, "--calib", str(calib), "--samples", "8", "--holdout", str(held), "--quiet"]
    result = CliRunner().invoke(main, [*args, "--calibrator", "edgenet", "--weight-rounding", "--bias-correction",
                                       "--target", "edgetpu", "-o", str(tmp_path / "out"), "--json"])
    assert result.exit_code == 0, result.output
    (row,) = json.loads(result.stdout)
    manifest = json.loads(open(row["manifest_path"]).read())
    quality = manifest["quality"]
    assert manifest["inputs"]["weight_rounding"] is True
    assert quality["weight_rounding"]["ops"] >= 10 and quality["weight_rounding"]["samples"] == 8
    assert quality["bias_correction"]["ops"] >= 5
    assert "int8 weights re-rounded" in result.stderr and "bias correction" in result.stderr
    assert float_ops(open(row["model_path"], "rb").read()) == []
    # Only for int8, and only with edgenet's calibrator: one line, no traceback.
    for extra, why in ((["--quant", "int16x8", "--calibrator", "edgenet"], "--quant int8"),
                       (["--calibrator", "tflite"], "--calibrator edgenet")):
        bad = CliRunner().invoke(main, [*args, "--weight-rounding", *extra, "-o", str(tmp_path / "bad")])
        assert bad.exit_code != 0 and "Traceback" not in bad.output
        assert "--weight-rounding" in bad.output and why in bad.output


def test_adaround_learns_roundings_that_lower_each_ops_error_and_keep_the_int8_graph(tiny_rounded):
    """method="adaround": each weight's up/down choice learnt by Adam on a soft rounding variable. On the tiny
    variant (convolutions only, to keep the test short) each re-rounded op, run alone with TFLite's float kernels on
    the quantized model's inputs, comes closer to its float self than round-to-nearest, the logits on the held-out
    views come closer to the float model's, and the model is the same full-integer graph with the same scales."""
    from edgenet.convert.rounding import ADAROUND_ITERATIONS, round_weights
    from edgenet.convert.worker import float_ops
    from edgenet.runtime.interpreter import TFLiteModel
    from edgenet.runtime.tflite_graph import read_graph

    _, float_bytes, plain, _, _, calib, held = tiny_rounded
    rounded, summary = round_weights(float_bytes, plain, calib, method="adaround", ops=("CONV_2D", "DEPTHWISE_CONV_2D"))
    assert summary.to_dict()["method"] == "adaround" and ADAROUND_ITERATIONS >= 1
    assert summary.ops >= 10 and summary.error_ratio < 0.9
    before, after = read_graph(plain), read_graph(rounded)
    assert [(t.name, t.shape, t.dtype, t.quantization) for t in before.tensors] == \
        [(t.name, t.shape, t.dtype, t.quantization) for t in after.tensors]
    assert float_ops(rounded) == []
    run, producer, qgraph = _single_op_runner(float_bytes, plain, calib)
    better = measured = 0
    for op, w_plain, w_round in _moved_ops(qgraph, plain, rounded):
        assert op.opcode != "FULLY_CONNECTED" and w_round.dtype == np.int8 and w_round.min() >= -127
        # AdaRound only chooses between the two neighbours of each float weight.
        assert np.max(np.abs(w_round.astype(int) - w_plain.astype(int))) <= 1
        k = producer[qgraph.tensors[op.outputs[0]].name]
        reference = run(k, op, None)
        measured += 1
        better += np.mean((run(k, op, w_round) - reference) ** 2) < np.mean((run(k, op, w_plain) - reference) ** 2)
    assert measured == summary.ops and better >= 0.8 * measured, (better, measured)
    reference = np.concatenate([TFLiteModel(float_bytes).run(x[None]) for x in held])

    def logits_error(data):
        return np.mean((np.concatenate([TFLiteModel(data).run(x[None]) for x in held]) - reference) ** 2)

    assert logits_error(rounded) < logits_error(plain)


def test_rounding_options_fail_in_one_line(tiny_int8):
    from edgenet.convert.rounding import round_weights

    _, float_bytes, plain, calib, _ = tiny_int8
    for kwargs, line in (({"method": "bitflip"}, "unknown rounding method 'bitflip': one of gptq, adaround, brecq, "
                                                 "qdrop"),
                         ({"method": "qdrop", "ridge": 0.1}, "layer-wise options: method 'qdrop'"),
                         ({"method": "adaround", "iterations": 0}, "rounding iterations must be a whole number >= 1"),
                         ({"method": "brecq", "iterations": 0}, "rounding iterations must be a whole number >= 1"),
                         ({"iterations": 10}, "need method 'adaround', 'brecq' or 'qdrop', got 10 with 'gptq'"),
                         ({"method": "brecq", "target": "float_output"}, "layer-wise options: method 'brecq'"),
                         ({"method": "brecq", "sequential": True}, "layer-wise options: method 'brecq'")):
        with pytest.raises(ValueError, match=line) as info:
            round_weights(float_bytes, plain, calib, **kwargs)
        assert "\n" not in str(info.value)


#: Adam steps per block in the tests (the default, BRECQ_ITERATIONS, is for real networks): enough to beat
#: round-to-nearest on every block of the tiny variant, ~1.5 s a block on 2 cores.
BRECQ_TEST_ITERATIONS = 40


@pytest.fixture(scope="module")
def tiny_brecq(tiny_int8):
    """(float bytes, plain int8 bytes, brecq bytes, summary, calibration, held-out) for the tiny variant."""
    from edgenet.convert.rounding import round_weights

    _, float_bytes, plain, calib, held = tiny_int8
    rounded, summary = round_weights(float_bytes, plain, calib, method="brecq", iterations=BRECQ_TEST_ITERATIONS)
    return float_bytes, plain, rounded, summary, calib, held


def test_blocks_cut_the_graph_into_mbconv_blocks_in_order(tiny_int8):
    """Every op in exactly one block, in execution order; each block's input is the previous block's output; every
    block but the head holds one depthwise conv and ends at its project conv or residual ADD."""
    from edgenet.convert.rounding import blocks
    from edgenet.runtime.tflite_graph import read_graph

    graph = read_graph(tiny_int8[2])
    parts = blocks(graph)
    assert [op.index for _, ops, _ in parts for op in ops] == list(range(len(graph.operators)))
    assert parts[0][0] == graph.inputs[0] and parts[-1][2] == graph.outputs[0]
    assert all(a[2] == b[0] for a, b in zip(parts, parts[1:], strict=False))
    assert all(ops[-1].outputs[0] == end for _, ops, end in parts)
    depthwise = sum(1 for op in graph.operators if op.opcode == "DEPTHWISE_CONV_2D")
    assert len(parts) == depthwise + 1  # one per MBConv block, then the head
    for _, ops, _ in parts[:-1]:
        assert [op.opcode for op in ops].count("DEPTHWISE_CONV_2D") == 1 and ops[-1].opcode in ("CONV_2D", "ADD")
    assert [op.opcode for op in parts[-1][1]][-1] == "FULLY_CONNECTED"


def _block_errors(graph, float_bytes: bytes, data: bytes, samples: np.ndarray) -> np.ndarray:
    """Per block (:func:`edgenet.convert.rounding.blocks`): the mean squared error of the block's output as the
    int8 model ``data`` computes it in the TFLite interpreter (dequantized) against the float model's same tensor."""
    from edgenet.convert.rounding import blocks
    from edgenet.runtime.activations import dequantizer, feed, preserving_interpreter
    from edgenet.runtime.tflite_graph import read_graph

    float_index = {t.name: t.index for t in read_graph(float_bytes).tensors}
    qi, fi = preserving_interpreter(data, 1), preserving_interpreter(float_bytes, 1)
    qvalue, fvalue = dequantizer(qi), dequantizer(fi)
    ends = [end for _, _, end in blocks(graph)]
    errors = np.zeros(len(ends))
    for x in samples:
        for interpreter in (qi, fi):
            feed(interpreter, x[None])
            interpreter.invoke()
        for k, end in enumerate(ends):
            errors[k] += np.mean((qvalue(end) - fvalue(float_index[graph.tensors[end].name])) ** 2)
    return errors / len(samples)


def test_brecq_lowers_each_blocks_output_error_and_keeps_the_int8_graph(tiny_brecq):
    """method="brecq": block by block, the rounding learnt with the block's activation quantization in the loop.
    In the TFLite interpreter, on the calibration samples, every block's output comes closer to the float model's
    than round-to-nearest's does (the first blocks' errors are mostly activation rounding: no worse there); the
    graph, scales and dtypes are plain int8's, only int8 weight values move, each by at most one step."""
    from edgenet.convert.rounding import blocks
    from edgenet.convert.worker import float_ops
    from edgenet.runtime.interpreter import TFLiteModel
    from edgenet.runtime.tflite_graph import read_graph

    float_bytes, plain, rounded, summary, calib, held = tiny_brecq
    before, after = read_graph(plain), read_graph(rounded)
    record = summary.to_dict()
    assert record["method"] == "brecq" and record["layerwise_adaround_ops"] == 0 and summary.layerwise == ()
    assert record["blocks"] == len(blocks(before)) == len(summary.per_op)
    assert [(op.opcode, op.inputs, op.outputs, op.options) for op in before.operators] == \
        [(op.opcode, op.inputs, op.outputs, op.options) for op in after.operators]
    assert [(t.name, t.shape, t.dtype, t.quantization) for t in before.tensors] == \
        [(t.name, t.shape, t.dtype, t.quantization) for t in after.tensors]
    assert float_ops(rounded) == [] and len(rounded) == len(plain)
    w0, w1 = _weights_of(plain), _weights_of(rounded)
    weight_inputs = {op.inputs[1] for op in before.operators
                     if op.opcode in ("CONV_2D", "DEPTHWISE_CONV_2D", "FULLY_CONNECTED")}
    moved = {i for i in w0 if not np.array_equal(w0[i], w1[i])}
    assert moved and moved <= weight_inputs and summary.ops >= len(moved) >= 10
    assert summary.weights_changed == sum(int(np.count_nonzero(w0[i] != w1[i])) for i in moved)
    for i in moved:
        assert w1[i].dtype == np.int8 and w1[i].min() >= -127
        assert np.max(np.abs(w1[i].astype(int) - w0[i].astype(int))) <= 1  # floor or ceil of the float weight
    e_plain = _block_errors(before, float_bytes, plain, calib)
    e_brecq = _block_errors(before, float_bytes, rounded, calib)
    assert np.all(e_brecq <= e_plain * 1.001), (e_brecq, e_plain)
    assert np.sum(e_brecq < 0.98 * e_plain) >= 0.7 * len(e_plain), (e_brecq, e_plain)
    assert e_brecq[-1] < 0.8 * e_plain[-1] and summary.error_ratio < 0.9
    out = TFLiteModel(rounded).run(held[:1])
    assert out.shape == (1, 1000) and np.all(np.isfinite(out))


def test_brecq_falls_back_to_layerwise_adaround_for_blocks_it_cannot_simulate(tiny_int8):
    """A block holding an operator the simulator does not run (TANH here, a real int8 kernel) is not refused: its
    ops are re-rounded by layer-wise AdaRound, the other blocks by block reconstruction, and the result says which."""
    from edgenet._tf import keras
    from edgenet.convert import rounding
    from edgenet.convert.worker import keras_to_tflite
    from edgenet.runtime.tflite_graph import read_graph

    _, _, _, calib, _ = tiny_int8
    assert "TANH" not in rounding.BLOCK_OPS
    keras.utils.set_random_seed(3)
    x = inputs = keras.Input(calib.shape[1:], batch_size=1)
    x = keras.layers.Rescaling(1 / 127.5, offset=-1)(x)
    for filters in (8, 16):  # two MBConv-like blocks: expand, depthwise, project
        x = keras.layers.Conv2D(filters * 2, 1, activation="relu6")(x)
        x = keras.layers.DepthwiseConv2D(3, padding="same", activation="relu6")(x)
        x = keras.layers.Conv2D(filters, 1)(x)
    x = keras.layers.Activation("tanh")(x)  # the head holds an op the block simulator does not run
    x = keras.layers.GlobalAveragePooling2D()(x)
    model = keras.Model(inputs, keras.layers.Dense(10)(x))
    float_bytes = keras_to_tflite(model, "fp32")[0]
    plain = keras_to_tflite(model, "int8", "int8", calib, calibrator="edgenet")[0]
    graph = read_graph(plain)
    parts = rounding.blocks(graph)
    unsupported = [b for b in parts if any(op.opcode not in rounding.BLOCK_OPS for op in b[1])]
    assert len(unsupported) == 1 and len(parts) > 1  # only the head block holds TANH

    rounded, summary = rounding.round_weights(float_bytes, plain, calib, method="brecq", iterations=10)
    record = summary.to_dict()
    head_ops = {graph.tensors[op.outputs[0]].name for op in unsupported[0][1] if op.opcode in rounding.ROUNDED_OPS}
    assert set(summary.layerwise) == head_ops and record["layerwise_adaround_ops"] == len(head_ops) >= 1
    assert record["blocks"] >= 1  # the others were reconstructed as blocks
    assert rounded != plain and read_graph(rounded).tensors[0].dtype == graph.tensors[0].dtype


def test_qdrop_learns_under_dropped_activation_quantization_and_keeps_the_int8_graph(tiny_brecq):
    """method="qdrop": BRECQ's engine with half of each op's fake-quantized outputs left in float at random in every
    learning step. The dropping changes what is learnt (other weights than BRECQ's from the same seed and steps);
    the result is still plain int8's graph, no block's output is further from the float model's than
    round-to-nearest's in TFLite, and the manifest record names the method and its blocks."""
    from edgenet.convert.rounding import blocks, round_weights
    from edgenet.convert.worker import float_ops
    from edgenet.runtime.tflite_graph import read_graph

    float_bytes, plain, brecq, _, calib, _ = tiny_brecq
    rounded, summary = round_weights(float_bytes, plain, calib, method="qdrop", iterations=BRECQ_TEST_ITERATIONS)
    record = summary.to_dict()
    before = read_graph(plain)
    assert record["method"] == "qdrop" and record["blocks"] == len(blocks(before)) and summary.layerwise == ()
    assert rounded != brecq and rounded != plain and len(rounded) == len(plain) and float_ops(rounded) == []
    assert [(t.name, t.shape, t.dtype, t.quantization) for t in before.tensors] == \
        [(t.name, t.shape, t.dtype, t.quantization) for t in read_graph(rounded).tensors]
    e_plain = _block_errors(before, float_bytes, plain, calib)
    e_qdrop = _block_errors(before, float_bytes, rounded, calib)
    assert np.all(e_qdrop <= e_plain * 1.001), (e_qdrop, e_plain)
    assert e_qdrop[-1] < e_plain[-1] and summary.error_ratio < 1.0
