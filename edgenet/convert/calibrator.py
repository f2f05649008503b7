"""edgenet's calibrator: every tensor's min/max over the calibration samples, streamed.

Post-training int8 quantization needs, for each float tensor of the model, the range it takes
on real inputs. TF's calibrator (``tensorflow.lite.python.optimize.calibrator``) measures it by
running the float model through logging kernels on one core, which costs B7 about 7 s per
image, and it logs an op's inputs *after* the op ran, so for a buffer the arena shares with an
in-place consumer it records the consumer's output (a LOGISTIC output logged with swish's
negative values, a projection conv logged with the residual ADD's range): wider ranges than
the tensors ever take.

Here the float model runs in an ordinary multi-threaded interpreter and every tensor is read
after the whole chunk it belongs to has run, so each range is the tensor's own. Keeping every
tensor of a large model alive at once is what costs memory (B7 at 600x600: several GB), so the
graph is cut, in execution order, into chunks whose tensors fit ``budget_bytes``; each chunk is a
small TFLite model of its own (with only its own weights) whose inputs are the tensors earlier
chunks produced. Each cut is moved to where the fewest activation bytes cross it, which in a
network of blocks is a block boundary (B7: six chunks, at most 4.1 MB per sample crossing a
cut). A group of samples goes through chunk 1, the tensors that later chunks read are kept (one
copy per sample, as float32), then chunk 2 runs, and so on; groups are as large as the kept
tensors allow within ``store_bytes``. Memory is one chunk's tensors plus the kept boundary, not
the whole network (B7 conversion peak 6.0 GB instead of 9.9 GB when every tensor was kept), and
the ranges are bit-identical to those of an interpreter that keeps every tensor.

The tensors that get ranges and the file that carries them are TF's own: this module only fills
the ``min``/``max`` fields of a model TF's calibrator laid out (see
:func:`edgenet.convert.worker.edgenet_calibrate`). Requires TensorFlow (``flatbuffer_utils``).
"""

from __future__ import annotations

import os
import warnings
from collections.abc import Callable, Sequence
from dataclasses import dataclass

import numpy as np

#: ``--calibrator`` choices: edgenet's streamed ranges (the default) or TF's own calibrator.
CALIBRATORS = ("edgenet", "tflite")
#: Default chunk size: tensors a chunk keeps alive at once (float32 bytes, batch 1).
DEFAULT_BUDGET_BYTES = 768 * 2**20
#: Default size of the boundary store: tensors kept between chunks, over a group of samples.
DEFAULT_STORE_BYTES = 512 * 2**20

# TFLite TensorType -> bytes per element (the calibration model is float; int32 shape tensors).
_ITEM_BYTES = {0: 4, 1: 2, 2: 4, 3: 1, 4: 8, 6: 1, 7: 2, 9: 1, 10: 8, 11: 16}


@dataclass(frozen=True)
class Chunk:
    """Operators ``[start, stop)`` of the graph, with the tensors crossing its borders."""

    start: int
    stop: int
    inputs: tuple[int, ...]  # activation tensors read here, produced before (or graph inputs)
    produced: tuple[int, ...]  # tensors the chunk's operators write
    outputs: tuple[int, ...]  # produced tensors read after the chunk (or graph outputs)
    bytes: int  # what the chunk's produced tensors take, per sample
    live_after_bytes: int  # activations alive at the cut after this chunk, per sample


def _tensor_bytes(tensor) -> int:
    shape = [max(int(d), 1) for d in (tensor.shape if tensor.shape is not None else [])]
    return int(np.prod(shape, dtype=np.int64)) * _ITEM_BYTES.get(int(tensor.type), 4)


def _is_constant(model, tensor) -> bool:
    buffer = model.buffers[tensor.buffer] if 0 <= tensor.buffer < len(model.buffers) else None
    return buffer is not None and ((buffer.data is not None and len(buffer.data) > 0) or bool(buffer.size))


def _ints(values) -> list[int]:
    return [int(v) for v in (values if values is not None else [])]


def plan_chunks(model, budget_bytes: int, graph_index: int = 0) -> list[Chunk]:
    """Cut subgraph ``graph_index`` of a flatbuffer ``ModelT`` into chunks of at most ``budget_bytes``.

    Pure: reads only the graph's structure. Cuts follow the order the operators are stored in,
    which is the order TFLite executes them. Each chunk is grown to the budget, then cut back
    (by at most half) to where the fewest activation bytes cross the cut, which in a network
    of blocks is a block boundary: the tensors kept between chunks stay small. A chunk always
    holds at least one operator, so an operator larger than the budget is a chunk of its own.
    """
    graph = model.subgraphs[graph_index]
    ops = graph.operators or []
    n = len(ops)
    graph_inputs = _ints(graph.inputs)
    graph_outputs = set(_ints(graph.outputs))
    producer: dict[int, int] = {t: -1 for t in graph_inputs}
    last_use: dict[int, int] = {}
    for k, op in enumerate(ops):
        for t in _ints(op.outputs):
            producer[t] = k
        for t in _ints(op.inputs):
            if t >= 0:
                last_use[t] = k
    for t in graph_outputs:
        last_use[t] = n
    op_bytes = [sum(_tensor_bytes(graph.tensors[t]) for t in _ints(op.outputs)) for op in ops]
    # live[p]: bytes of activations produced before operator p and read at p or later.
    live = [0] * (n + 1)
    for t, k in producer.items():
        if t in last_use and not _is_constant(model, graph.tensors[t]):
            for p in range(k + 1, min(last_use[t], n) + 1):
                live[p] += _tensor_bytes(graph.tensors[t])

    bounds: list[tuple[int, int]] = []
    start = 0
    while start < n:
        stop, size = start + 1, op_bytes[start]
        while stop < n and size + op_bytes[stop] <= budget_bytes:
            size += op_bytes[stop]
            stop += 1
        if stop < n:
            earliest = start + max(1, (stop - start) // 2)
            stop = min(range(earliest, stop + 1), key=lambda p: (live[p], -p))
        bounds.append((start, stop))
        start = stop

    chunks = []
    for start, stop in bounds:
        produced = [t for op in ops[start:stop] for t in _ints(op.outputs)]
        produced_set = set(produced)
        inputs: list[int] = []
        for op in ops[start:stop]:
            for t in _ints(op.inputs):
                if t < 0 or t in produced_set or t in inputs or t not in producer:
                    continue
                if producer[t] < start and not _is_constant(model, graph.tensors[t]):
                    inputs.append(t)
        outputs = tuple(t for t in produced if last_use.get(t, -1) >= stop)
        chunks.append(Chunk(start, stop, tuple(inputs), tuple(produced), outputs,
                            sum(_tensor_bytes(graph.tensors[t]) for t in produced), live[stop] if stop < n else 0))
    return chunks


def _chunk_bytes(model, chunk: Chunk, graph_index: int) -> bytes:
    """The flatbuffer of one chunk: its slice of the operators and only the weights they read.

    Tensor indices are the model's own, so a tensor is addressed the same way in every chunk.
    """
    from tensorflow.lite.python import schema_py_generated as schema
    from tensorflow.lite.tools import flatbuffer_utils

    graph = model.subgraphs[graph_index]
    operators = graph.operators[chunk.start : chunk.stop]
    used = {graph.tensors[t].buffer for op in operators for t in _ints(op.inputs) if t >= 0}
    saved = (graph.operators, graph.inputs, graph.outputs, model.signatureDefs, model.buffers)
    try:
        graph.operators = operators
        graph.inputs = np.asarray(chunk.inputs, dtype=np.int32)
        # Every produced tensor is an output: the arena then keeps each one until it is read.
        graph.outputs = np.asarray(chunk.produced, dtype=np.int32)
        model.signatureDefs = None
        model.buffers = [b if i in used or i == 0 else schema.BufferT() for i, b in enumerate(saved[4])]
        return bytes(flatbuffer_utils.convert_object_to_bytearray(model))
    finally:
        graph.operators, graph.inputs, graph.outputs, model.signatureDefs, model.buffers = saved


def single_op_bytes(model, op_index: int, graph_index: int = 0) -> bytes:
    """A TFLite model of operator ``op_index`` alone (with only its weights); its activation inputs are the
    model's inputs, with the original tensor indices. Used to run one float operator on chosen inputs
    (:mod:`edgenet.quant.report` feeds it the quantized model's dequantized activations)."""
    graph = model.subgraphs[graph_index]
    op = graph.operators[op_index]
    inputs = tuple(t for t in _ints(op.inputs) if t >= 0 and not _is_constant(model, graph.tensors[t]))
    produced = tuple(t for t in _ints(op.outputs) if t >= 0)
    chunk = Chunk(op_index, op_index + 1, inputs, produced, produced, 0, 0)
    return _chunk_bytes(model, chunk, graph_index)


def _interpreter(tf, model_content: bytes, num_threads: int | None):
    """TF's own interpreter, builtin kernels only (a delegate such as XNNPACK fuses operators and
    hides their outputs). TF's rather than LiteRT's: its float kernels run this pass 1.4x faster
    (``python benchmarks/calibrator_runtime.py``), and TF is loaded here anyway."""
    with warnings.catch_warnings():
        warnings.filterwarnings("ignore", message=".*tf.lite.Interpreter is deprecated")
        return tf.lite.Interpreter(
            model_content=model_content, num_threads=num_threads or os.cpu_count() or 1,
            experimental_op_resolver_type=tf.lite.experimental.OpResolverType.BUILTIN_WITHOUT_DEFAULT_DELEGATES)


def tensor_ranges(model, samples: Sequence[Sequence[np.ndarray]], *, budget_bytes: int = DEFAULT_BUDGET_BYTES,
                  store_bytes: int = DEFAULT_STORE_BYTES, num_threads: int | None = None, graph_index: int = 0,
                  on_step: Callable[[int, int], None] | None = None,
                  histograms: dict | None = None) -> dict[int, tuple[float, float]]:
    """``{tensor index: (min, max)}`` over ``samples`` for every activation tensor of the graph.

    ``model`` is a flatbuffer ``ModelT`` of a float model; ``samples`` are lists of arrays in
    the order of the graph's inputs. Graph inputs get the range of the samples themselves.
    Samples go through the chunks in groups small enough that the tensors kept between chunks
    fit ``store_bytes``. ``on_step(done, total)`` is called after each sample has run through
    each chunk (progress; ``total`` is samples times chunks). ``histograms``, when given, is filled
    with one :class:`edgenet.convert.ranges.Histogram` per tensor (samples alternate between its two
    folds), for range methods beyond min/max.
    """
    from .._tf import tf

    graph = model.subgraphs[graph_index]
    chunks = plan_chunks(model, budget_bytes, graph_index)
    chunk_models = [_chunk_bytes(model, chunk, graph_index) for chunk in chunks]
    graph_inputs = _ints(graph.inputs)
    needed_after = [{t for later in chunks[c + 1 :] for t in later.inputs} for c in range(len(chunks))]
    widest = max((chunk.live_after_bytes for chunk in chunks), default=0)
    group = len(samples) if widest == 0 else max(1, min(len(samples), store_bytes // widest))
    ranges: dict[int, tuple[float, float]] = {}
    done, total = 0, len(samples) * len(chunks)

    if histograms is not None:
        from .ranges import Histogram

    def update(index: int, value: np.ndarray, sample: int) -> None:
        if value.size == 0:
            return
        if histograms is not None and value.dtype.kind == "f":
            histograms.setdefault(index, Histogram()).add(value, sample % 2)
        low, high = float(np.min(value)), float(np.max(value))
        if index in ranges:
            old_low, old_high = ranges[index]
            low, high = min(low, old_low), max(high, old_high)
        ranges[index] = (low, high)

    for first in range(0, len(samples), group):
        batch = samples[first : first + group]
        # Boundary store: tensor index -> one array per sample of the group.
        store: dict[int, list[np.ndarray]] = {}
        for k, index in enumerate(graph_inputs):
            store[index] = [np.ascontiguousarray(sample[k], dtype=np.float32) for sample in batch]
            for s, value in enumerate(store[index]):
                update(index, value, first + s)
        for c, chunk in enumerate(chunks):
            interpreter = _interpreter(tf, chunk_models[c], num_threads)
            interpreter.allocate_tensors()
            for s in range(len(batch)):
                for t in chunk.inputs:
                    interpreter.set_tensor(t, store[t][s])
                interpreter.invoke()
                for t in chunk.produced:
                    value = interpreter.get_tensor(t)  # a copy
                    update(t, value, first + s)
                    if t in needed_after[c]:
                        store.setdefault(t, []).append(value)
                done += 1
                if on_step is not None:
                    on_step(done, total)
            del interpreter
            for t in [t for t in store if t not in needed_after[c]]:
                del store[t]
    return ranges
