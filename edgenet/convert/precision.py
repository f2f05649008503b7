"""Which operators of a converted model compute above int8: read from the bytes, never from what was asked.

Used by the worker (the full-integer check of every int8/int16x8 conversion, the budget's precision
rungs) and by :mod:`edgenet.convert.mixed` (the int16 upgrade): one module below both, so neither
imports the other.
"""

from __future__ import annotations

__all__ = ["float_ops", "precision_ops"]


def float_ops(data: bytes) -> list[str]:
    """Operators of a converted model that compute in float outside the model's own io.

    TF 2.21's MLIR quantizer does *not* fail when an op has no int8 kernel, even with only
    ``TFLITE_BUILTINS_INT8`` allowed: it wraps the op in DEQUANTIZE -> float op -> QUANTIZE
    (measured with SIN, COS, FLOOR_MOD, ATAN2; only ops with no TFLite kernel at all, such as
    Erf, fail). So the full-integer promise is checked on the written graph: a float tensor
    may only be the model's input or output (``--io float``), i.e. the QUANTIZE right after
    the input and the DEQUANTIZE right before the output.
    """
    from ..runtime.tflite_graph import read_graph

    graph = read_graph(data)
    io = set(graph.inputs) | set(graph.outputs)
    bad = []
    for op in graph.operators:
        tensors = graph.op_inputs(op) + graph.op_outputs(op)
        if any(t.is_float and t.index not in io for t in tensors):
            bad.append(op.opcode)
    compute = [name for name in bad if name not in ("QUANTIZE", "DEQUANTIZE")]
    return sorted(set(compute or bad))


def precision_ops(data: bytes) -> list[dict]:
    """Compute operators whose output is neither int8 nor uint8: what a precision rung of the budget changed.

    One entry per operator (QUANTIZE/DEQUANTIZE excluded), ``{"op", "tensor", "dtype"}`` with the
    tensor named as in the float model (``.../block2b_project_conv/...``). A full-integer model gives
    ``[]``; a model with float fallback lists the ops that compute in float.
    """
    from ..runtime.tflite_graph import read_graph

    graph = read_graph(data)
    out = []
    for op in graph.operators:
        if op.opcode in ("QUANTIZE", "DEQUANTIZE"):
            continue
        for t in graph.op_outputs(op):
            if t.dtype not in ("int8", "uint8", "int32", "bool"):
                out.append({"op": op.opcode, "tensor": t.name, "dtype": t.dtype})
    return out
