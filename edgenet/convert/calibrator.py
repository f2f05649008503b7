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
:func:`edgenet.convert.tf_patches.edgenet_calibrate`). Requires TensorFlow (``flatbuffer_utils``).
"""

from __future__ import annotations

import os
import warnings
from collections.abc import Callable, Sequence
from typing import Any

import numpy as np

# The graph cutting lives in edgenet.runtime.subgraphs (shared with the profiler).
from ..runtime.subgraphs import Chunk, _ints, _is_constant, chunk_model_bytes, plan_chunks
from ..runtime.subgraphs import tensor_bytes as _tensor_bytes  # noqa: F401 - kept importable from here

__all__ = ["CALIBRATORS", "Chunk", "plan_chunks", "tensor_ranges"]

#: ``--calibrator`` choices: edgenet's streamed ranges (the default) or TF's own calibrator.
CALIBRATORS = ("edgenet", "tflite")
#: Default chunk size: tensors a chunk keeps alive at once (float32 bytes, batch 1).
DEFAULT_BUDGET_BYTES = 768 * 2**20
#: Default size of the boundary store: tensors kept between chunks, over a group of samples.
DEFAULT_STORE_BYTES = 512 * 2**20


def _chunk_bytes(model, chunk: Chunk, graph_index: int) -> bytes:
    """One chunk as a model of its own; every tensor it produces is an output (its range is read)."""
    return chunk_model_bytes(model, chunk, graph_index, keep_all=True)


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
                  histograms: dict | None = None,
                  interpreter_factory: Callable[[bytes, int | None], Any] | None = None,
                  ) -> dict[int, tuple[float, float]]:
    """``{tensor index: (min, max)}`` over ``samples`` for every activation tensor of the graph.

    ``model`` is a flatbuffer ``ModelT`` of a float model; ``samples`` are lists of arrays in
    the order of the graph's inputs. Graph inputs get the range of the samples themselves.
    Samples go through the chunks in groups small enough that the tensors kept between chunks
    fit ``store_bytes``. ``on_step(done, total)`` is called after each sample has run through
    each chunk (progress; ``total`` is samples times chunks). ``histograms``, when given, is filled
    with one :class:`edgenet.convert.ranges.Histogram` per tensor (samples alternate between its two
    folds), for range methods beyond min/max. ``interpreter_factory(model_content, num_threads)``
    replaces TF's builtin-kernel interpreter (``benchmarks/calibrator_runtime.py`` times LiteRT's).
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
            interpreter = (interpreter_factory(chunk_models[c], num_threads) if interpreter_factory is not None
                           else _interpreter(tf, chunk_models[c], num_threads))
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
