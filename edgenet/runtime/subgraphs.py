"""Cut a .tflite graph into sub-models that run on their own: the calibrator and the profiler.

A *chunk* is a contiguous range of operators in execution order (the order the file stores
them, which is the order TFLite runs them) together with the activation tensors that cross its
borders. :func:`chunk_model_bytes` writes one chunk as a small TFLite model of its own, with only
the weights its operators read; tensor indices stay the model's own, so a tensor is addressed the
same way in the whole model and in every chunk.

Two ways to choose the cuts: :func:`plan_chunks` grows chunks to a memory budget and moves each
cut to the narrowest point nearby (the streamed calibrator, :mod:`edgenet.convert.calibrator`);
:func:`chunks_at` takes the cuts it is given (the profiler, :mod:`edgenet.bench.profile`, cuts at
block boundaries).

Works on a flatbuffer ``ModelT`` from either ``ai_edge_litert.tools.flatbuffer_utils`` (core
install: the profiler runs on a Raspberry Pi without TensorFlow) or TensorFlow's copy of it.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

__all__ = ["Chunk", "chunk_model_bytes", "chunks_at", "liveness", "model_object", "plan_chunks", "tensor_bytes"]

# TFLite TensorType -> bytes per element (float models; int8/uint8 activations; int32 shape tensors).
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


def tensor_bytes(tensor) -> int:
    shape = [max(int(d), 1) for d in (tensor.shape if tensor.shape is not None else [])]
    return int(np.prod(shape, dtype=np.int64)) * _ITEM_BYTES.get(int(tensor.type), 4)


def _is_constant(model, tensor) -> bool:
    buffer = model.buffers[tensor.buffer] if 0 <= tensor.buffer < len(model.buffers) else None
    return buffer is not None and ((buffer.data is not None and len(buffer.data) > 0) or bool(buffer.size))


def _ints(values) -> list[int]:
    return [int(v) for v in (values if values is not None else [])]


def model_object(data: bytes):
    """The mutable flatbuffer ``ModelT`` of a .tflite file's bytes (LiteRT's reader, else TF's)."""
    return _flatbuffer_utils().convert_bytearray_to_object(bytearray(data))


def _flatbuffer_utils():
    try:
        from ai_edge_litert.tools import flatbuffer_utils
    except ImportError:  # tflite_runtime images: TensorFlow's copy
        from tensorflow.lite.tools import flatbuffer_utils
    return flatbuffer_utils


def _schema():
    try:
        from ai_edge_litert import schema_py_generated as schema
    except ImportError:
        from tensorflow.lite.python import schema_py_generated as schema
    return schema


def liveness(model, graph_index: int = 0) -> tuple[dict[int, int], dict[int, int], list[int]]:
    """``(producer, last_use, live)`` of subgraph ``graph_index``.

    ``producer[t]``: index of the operator writing tensor ``t`` (-1 for graph inputs);
    ``last_use[t]``: last operator reading it (``n`` for graph outputs); ``live[p]``: bytes of
    activations produced before operator ``p`` and read at ``p`` or later (what crosses a cut
    in front of ``p``).
    """
    graph = model.subgraphs[graph_index]
    ops = graph.operators or []
    n = len(ops)
    graph_inputs = _ints(graph.inputs)
    producer: dict[int, int] = {t: -1 for t in graph_inputs}
    last_use: dict[int, int] = {}
    for k, op in enumerate(ops):
        for t in _ints(op.outputs):
            producer[t] = k
        for t in _ints(op.inputs):
            if t >= 0:
                last_use[t] = k
    for t in _ints(graph.outputs):
        last_use[t] = n
    live = [0] * (n + 1)
    for t, k in producer.items():
        if t in last_use and not _is_constant(model, graph.tensors[t]):
            for p in range(k + 1, min(last_use[t], n) + 1):
                live[p] += tensor_bytes(graph.tensors[t])
    return producer, last_use, live


def chunks_at(model, bounds, graph_index: int = 0) -> list[Chunk]:
    """The chunks ``[(start, stop), ...]`` of subgraph ``graph_index``, with their border tensors."""
    graph = model.subgraphs[graph_index]
    ops = graph.operators or []
    n = len(ops)
    producer, last_use, live = liveness(model, graph_index)
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
                            sum(tensor_bytes(graph.tensors[t]) for t in produced), live[stop] if stop < n else 0))
    return chunks


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
    _, _, live = liveness(model, graph_index)
    op_bytes = [sum(tensor_bytes(graph.tensors[t]) for t in _ints(op.outputs)) for op in ops]
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
    return chunks_at(model, bounds, graph_index)


def chunk_model_bytes(model, chunk: Chunk, graph_index: int = 0, *, keep_all: bool = True) -> bytes:
    """The flatbuffer of one chunk: its slice of the operators and only the weights they read.

    ``keep_all=True`` makes every produced tensor an output (the arena then keeps each one until
    it is read: what the calibrator needs); ``False`` keeps only the tensors read after the chunk,
    so the chunk runs as it does inside the whole model (a delegate may fuse its operators).
    """
    schema = _schema()
    graph = model.subgraphs[graph_index]
    operators = graph.operators[chunk.start : chunk.stop]
    used = {graph.tensors[t].buffer for op in operators for t in _ints(op.inputs) if t >= 0}
    saved = (graph.operators, graph.inputs, graph.outputs, model.signatureDefs, model.buffers)
    try:
        graph.operators = operators
        graph.inputs = np.asarray(chunk.inputs, dtype=np.int32)
        graph.outputs = np.asarray(chunk.produced if keep_all else chunk.outputs, dtype=np.int32)
        model.signatureDefs = None
        model.buffers = [b if i in used or i == 0 else schema.BufferT() for i, b in enumerate(saved[4])]
        return bytes(_flatbuffer_utils().convert_object_to_bytearray(model))
    finally:
        graph.operators, graph.inputs, graph.outputs, model.signatureDefs, model.buffers = saved
