"""edgenet's streamed calibrator: chunk planning and the tensors' true ranges, on a real model."""

from __future__ import annotations

import numpy as np
import pytest

pytestmark = pytest.mark.filterwarnings("ignore:.*tf.lite.Interpreter is deprecated:UserWarning")

SAMPLES = 6
THREADS = 2  # the same in the reference: a kernel's float summation order may depend on it


@pytest.fixture(scope="module")
def float_model(tiny_variant):
    """The tiny variant as a float .tflite flatbuffer object, and real photos in its contract."""
    from tensorflow.lite.tools import flatbuffer_utils

    from edgenet._tf import keras
    from edgenet.convert.calibration import load_calibration
    from edgenet.convert.worker import keras_to_tflite
    from edgenet.family.model import build_model

    keras.utils.set_random_seed(0)
    data, _ = keras_to_tflite(build_model(tiny_variant, batch_size=1), "fp32")
    calib = load_calibration("default", tiny_variant.contract, SAMPLES, 0).array
    return data, flatbuffer_utils.convert_bytearray_to_object(data), [[calib[i : i + 1]] for i in range(SAMPLES)]


def _activations(model) -> set[int]:
    """The graph's inputs and every tensor an operator writes."""
    graph = model.subgraphs[0]
    return {int(i) for i in graph.inputs} | {int(t) for op in graph.operators for t in op.outputs}


def _preserve_all_ranges(data: bytes, activations: set[int], samples) -> dict[int, tuple[float, float]]:
    """The reference: one interpreter that keeps every tensor, read after each invoke."""
    from edgenet._tf import tf

    # The same interpreter and kernels the calibrator uses, so the ranges must match bit for bit.
    interpreter = tf.lite.Interpreter(
        model_content=data, num_threads=THREADS, experimental_preserve_all_tensors=True,
        experimental_op_resolver_type=tf.lite.experimental.OpResolverType.BUILTIN_WITHOUT_DEFAULT_DELEGATES)
    interpreter.allocate_tensors()
    ranges: dict[int, tuple[float, float]] = {}
    for sample in samples:
        interpreter.set_tensor(interpreter.get_input_details()[0]["index"], sample[0])
        interpreter.invoke()
        for t in activations:
            value = interpreter.get_tensor(t)
            low, high = float(value.min()), float(value.max())
            if t in ranges:
                low, high = min(low, ranges[t][0]), max(high, ranges[t][1])
            ranges[t] = (low, high)
    return ranges


def test_chunks_cover_the_graph_in_order_and_respect_the_budget(float_model):
    from edgenet.convert.calibrator import _tensor_bytes, plan_chunks

    _, model, _ = float_model
    graph = model.subgraphs[0]
    n_ops = len(graph.operators)
    whole = plan_chunks(model, 10**12)
    assert len(whole) == 1 and (whole[0].start, whole[0].stop) == (0, n_ops)
    assert whole[0].inputs == tuple(int(i) for i in graph.inputs)
    assert set(whole[0].outputs) == {int(i) for i in graph.outputs}

    budget = whole[0].bytes // 5
    chunks = plan_chunks(model, budget)
    assert len(chunks) >= 5
    assert [c.start for c in chunks[1:]] == [c.stop for c in chunks[:-1]] and chunks[-1].stop == n_ops
    produced_before: set[int] = {int(i) for i in graph.inputs}
    for chunk in chunks:
        assert chunk.bytes <= budget or chunk.stop - chunk.start == 1
        assert chunk.bytes == sum(_tensor_bytes(graph.tensors[t]) for t in chunk.produced)
        # A chunk reads only activations that exist when it starts (never a weight, never later ones).
        assert set(chunk.inputs) <= produced_before
        produced_before |= set(chunk.produced)
    # One operator per chunk when nothing fits.
    assert len(plan_chunks(model, 1)) == n_ops


def test_streamed_ranges_equal_every_tensors_true_range(float_model):
    """Per-operator chunks, a few chunks and one chunk all give the ranges a keep-everything run sees."""
    from edgenet.convert.calibrator import plan_chunks, tensor_ranges

    data, model, samples = float_model
    reference = _preserve_all_ranges(data, _activations(model), samples)
    whole_bytes = plan_chunks(model, 10**12)[0].bytes
    for budget in (1, whole_bytes // 4, 10**12):
        ranges = tensor_ranges(model, samples, budget_bytes=budget, num_threads=THREADS)
        assert ranges == reference, f"budget {budget}"
    # The input's range is the photos' own pixel range.
    (index,) = (int(i) for i in model.subgraphs[0].inputs)
    pixels = np.concatenate([s[0] for s in samples])
    assert ranges[index] == (float(pixels.min()), float(pixels.max()))


def test_sample_groups_bound_the_store_and_change_nothing(float_model):
    """A store too small for more than one sample at a time: the same ranges, progress per step."""
    from edgenet.convert.calibrator import plan_chunks, tensor_ranges

    _, model, samples = float_model
    budget = plan_chunks(model, 10**12)[0].bytes // 4
    assert max(c.live_after_bytes for c in plan_chunks(model, budget)) > 0
    calls = []
    one_at_a_time = tensor_ranges(model, samples, budget_bytes=budget, store_bytes=1, num_threads=THREADS,
                                  on_step=lambda done, total: calls.append((done, total)))
    steps = len(samples) * len(plan_chunks(model, budget))
    assert calls == [(k, steps) for k in range(1, steps + 1)]
    assert one_at_a_time == tensor_ranges(model, samples, budget_bytes=budget, num_threads=THREADS)


def test_another_interpreter_can_run_the_chunks(float_model):
    """``interpreter_factory`` runs every chunk (LiteRT's builtin kernels here, as
    benchmarks/calibrator_runtime.py times them) and gives the same ranges up to float summation order."""
    from edgenet.convert.calibrator import plan_chunks, tensor_ranges
    from edgenet.runtime.interpreter import load_runtime

    data, model, samples = float_model
    runtime = load_runtime(("ai_edge_litert",))
    made = []

    def litert(content: bytes, threads: int | None):
        made.append(len(content))
        return runtime.Interpreter(model_content=content, num_threads=threads,
                                   experimental_op_resolver_type=runtime.op_resolver_type.BUILTIN_WITHOUT_DEFAULT_DELEGATES)

    budget = plan_chunks(model, 10**12)[0].bytes // 4
    ranges = tensor_ranges(model, samples, budget_bytes=budget, num_threads=THREADS, interpreter_factory=litert)
    assert len(made) == len(plan_chunks(model, budget))
    reference = _preserve_all_ranges(data, _activations(model), samples)
    assert ranges.keys() == reference.keys()
    for t, (low, high) in reference.items():
        assert ranges[t] == pytest.approx((low, high), rel=1e-4, abs=1e-4), t


def test_same_model_on_other_samples_gets_their_ranges(tiny_variant):
    """One process converting one model on two calibration sets of the same size (quant_quality.py's --calib A
    --calib B): the second conversion gets its own ranges, not the first set's from the in-process cache, and
    converting on the first set again still gives the first model."""
    from edgenet._tf import keras
    from edgenet.convert.calibration import load_calibration
    from edgenet.convert.worker import keras_to_tflite
    from edgenet.family.model import build_model
    from edgenet.runtime.tflite_graph import read_graph

    keras.utils.set_random_seed(0)
    model = build_model(tiny_variant, batch_size=1)
    first, second = (load_calibration("default", tiny_variant.contract, SAMPLES, seed).array for seed in (0, 1))
    assert not np.array_equal(first, second)

    def convert(calib):
        return keras_to_tflite(model, "int8", "int8", calib, calibrator="edgenet")[0]

    a, b, a_again = convert(first), convert(second), convert(first)
    assert a == a_again
    scales = [[t.quantization.scale for t in read_graph(data).tensors if t.quantization.scale] for data in (a, b)]
    assert len(scales[0]) == len(scales[1]) and scales[0] != scales[1]  # other samples, other activation scales
