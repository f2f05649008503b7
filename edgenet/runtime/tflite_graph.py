"""Read a ``.tflite`` flatbuffer into plain Python objects, without TensorFlow.

The Edge TPU check and other graph reports run on hosts (a Raspberry Pi, a Coral Dev
Board) where TensorFlow is not installed, so this module reads the file with the
generated schema that ships with ``ai-edge-litert`` and the ``flatbuffers`` runtime,
both part of the core install and imported only when a file is read.

Only the primary subgraph (index 0) is described: that is the graph the interpreter
runs and the one the Edge TPU compiler partitions. Operators are listed in the order
the file stores them, which is the interpreter's execution order.
"""

from __future__ import annotations

import os
from dataclasses import dataclass, field
from functools import lru_cache
from typing import Any

from ..errors import InputFileError
from ..fsutil import read_input_bytes

FILE_IDENTIFIER = b"TFL3"

#: TensorType enum value -> (numpy-style name, bytes per element). Sub-byte and
#: exotic types get a fractional/nominal size; they never reach the Edge TPU anyway.
_DTYPES = {
    0: ("float32", 4), 1: ("float16", 2), 2: ("int32", 4), 3: ("uint8", 1), 4: ("int64", 8),
    5: ("string", 1), 6: ("bool", 1), 7: ("int16", 2), 8: ("complex64", 8), 9: ("int8", 1),
    10: ("float64", 8), 11: ("complex128", 16), 12: ("uint64", 8), 13: ("resource", 0),
    14: ("variant", 0), 15: ("uint32", 4), 16: ("uint16", 2), 17: ("int4", 0.5),
    18: ("bfloat16", 2), 19: ("int2", 0.25), 20: ("uint4", 0.5),
}


@dataclass(frozen=True)
class Quantization:
    """Affine quantization of a tensor: real = scale * (q - zero_point).

    Per-channel quantization (convolution weights) has one scale per output channel
    along ``axis``; per-tensor quantization has a single scale.
    """

    scale: tuple[float, ...] = ()
    zero_point: tuple[int, ...] = ()
    axis: int = 0

    @property
    def is_quantized(self) -> bool:
        return len(self.scale) > 0


@dataclass(frozen=True)
class Tensor:
    index: int
    name: str
    shape: tuple[int, ...]
    shape_signature: tuple[int, ...]  # -1 marks a dynamic dimension
    dtype: str
    quantization: Quantization
    buffer_size_bytes: int  # bytes of constant data stored in the file (0 for activations)

    @property
    def is_constant(self) -> bool:
        """A tensor whose values are stored in the file (weights, biases, axes, shapes)."""
        return self.buffer_size_bytes > 0

    @property
    def is_dynamic(self) -> bool:
        return any(d < 0 for d in self.shape_signature)

    @property
    def num_elements(self) -> int:
        n = 1
        for d in self.shape:
            n *= int(d)
        return n

    @property
    def is_float(self) -> bool:
        return self.dtype in ("float32", "float16", "float64", "bfloat16")


@dataclass(frozen=True)
class Operator:
    index: int
    opcode: str  # BuiltinOperator name (e.g. "CONV_2D") or the custom code of a CUSTOM op
    is_custom: bool
    version: int
    inputs: tuple[int, ...]  # tensor indices; -1 is an omitted optional input
    outputs: tuple[int, ...]
    options: dict[str, Any] = field(default_factory=dict, compare=False)


@dataclass(frozen=True)
class Graph:
    path: str | None
    tensors: tuple[Tensor, ...]
    operators: tuple[Operator, ...]
    inputs: tuple[int, ...]
    outputs: tuple[int, ...]
    subgraph_count: int
    description: str = ""
    constants: dict = field(default_factory=dict, repr=False, compare=False)  # small constants by tensor index

    def tensor(self, index: int) -> Tensor | None:
        return self.tensors[index] if 0 <= index < len(self.tensors) else None

    def op_inputs(self, op: Operator) -> list[Tensor]:
        return [self.tensors[i] for i in op.inputs if i >= 0]

    def op_outputs(self, op: Operator) -> list[Tensor]:
        return [self.tensors[i] for i in op.outputs if i >= 0]

    def constant_values(self, tensor: Tensor):
        """The numpy array of a small constant tensor (axes, shapes, paddings); ``None`` otherwise."""
        return self.constants.get(tensor.index)

    def macs_of(self, op: Operator) -> int:
        """Multiply-accumulates of ``op`` (see :func:`macs_of`)."""
        return macs_of(self, op)


@lru_cache(maxsize=1)
def _schema():
    try:
        from ai_edge_litert import schema_py_generated as schema
    except ImportError as exc:  # pragma: no cover - ai-edge-litert is a core dependency
        from ..errors import MissingDependencyError

        raise MissingDependencyError("ai-edge-litert", "core", "Reading .tflite files") from exc
    return schema


@lru_cache(maxsize=1)
def _enum_names(enum_name: str) -> dict[int, str]:
    enum = getattr(_schema(), enum_name)
    return {v: k for k, v in vars(enum).items() if not k.startswith("_") and isinstance(v, int)}


def builtin_name(code: int) -> str:
    return _enum_names("BuiltinOperator").get(code, f"BUILTIN_{code}")


def _decode(value):
    if isinstance(value, bytes):
        return value.decode("utf-8", "replace")
    return value


def _options(schema, raw_op) -> dict[str, Any]:
    """Builtin options of an operator as a plain dict with snake_case keys."""
    opt_type = raw_op.BuiltinOptionsType()
    table = raw_op.BuiltinOptions()
    if not opt_type or table is None:
        return {}
    obj = schema.BuiltinOptionsCreator(opt_type, table)
    if obj is None:
        return {}
    out = {}
    for key, value in vars(obj).items():
        snake = "".join("_" + c.lower() if c.isupper() else c for c in key).lstrip("_")
        if hasattr(value, "tolist"):
            value = value.tolist()
        out[snake] = value
    out["padding_name"] = _enum_names("Padding").get(out["padding"]) if "padding" in out else None
    if "fused_activation_function" in out:
        out["fused_activation"] = _enum_names("ActivationFunctionType").get(out["fused_activation_function"])
    if out.get("padding_name") is None:
        out.pop("padding_name")
    return out


def read_graph(path_or_bytes: str | os.PathLike | bytes | bytearray | memoryview) -> Graph:
    """Parse a TFLite model file (or its bytes) into a :class:`Graph`.

    Raises :class:`~edgenet.errors.InputFileError` with a one-line cause for a missing,
    truncated or non-TFLite file.
    """
    if isinstance(path_or_bytes, (bytes, bytearray, memoryview)):
        data, label = bytes(path_or_bytes), "<bytes>"
        path_text = None
    else:
        label = path_text = str(path_or_bytes)
        data = read_input_bytes(path_or_bytes, "a .tflite file")
    if len(data) < 8 or data[4:8] != FILE_IDENTIFIER:
        raise InputFileError(label, "not a TFLite model (missing the 'TFL3' flatbuffer identifier)")
    schema = _schema()
    try:
        return _parse(schema, data, path_text)
    except InputFileError:
        raise
    except Exception as exc:  # flatbuffers raises assorted errors on damaged offsets
        raise InputFileError(label, f"corrupt TFLite flatbuffer ({type(exc).__name__})") from None


def _parse(schema, data: bytes, path_text: str | None) -> Graph:
    import numpy as np

    model = schema.Model.GetRootAs(data, 0)
    if model.SubgraphsLength() < 1:
        raise InputFileError(path_text or "<bytes>", "TFLite model has no subgraph")
    sub = model.Subgraphs(0)

    buffer_sizes: dict[int, int] = {}
    constants: dict[int, Any] = {}

    def buffer_bytes(buf_index: int) -> int:
        if buf_index <= 0 or buf_index >= model.BuffersLength():
            return 0
        if buf_index not in buffer_sizes:
            buf = model.Buffers(buf_index)
            size = buf.DataLength()
            if size == 0 and buf.Offset() > 1:  # large models keep data after the flatbuffer
                size = int(buf.Size())
            buffer_sizes[buf_index] = int(size)
        return buffer_sizes[buf_index]

    tensors = []
    for i in range(sub.TensorsLength()):
        t = sub.Tensors(i)
        shape = tuple(int(d) for d in t.ShapeAsNumpy()) if t.ShapeLength() else ()
        sig = tuple(int(d) for d in t.ShapeSignatureAsNumpy()) if t.ShapeSignatureLength() else shape
        q = t.Quantization()
        quant = Quantization()
        if q is not None and q.ScaleLength():
            quant = Quantization(
                scale=tuple(float(s) for s in q.ScaleAsNumpy()),
                zero_point=tuple(int(z) for z in q.ZeroPointAsNumpy()) if q.ZeroPointLength() else (),
                axis=int(q.QuantizedDimension()),
            )
        dtype = _DTYPES.get(t.Type(), (f"type{t.Type()}", 0))[0]
        size = buffer_bytes(t.Buffer())
        tensors.append(Tensor(i, _decode(t.Name()) or f"tensor{i}", shape, sig, dtype, quant, size))
        if 0 < size <= 4096 and model.Buffers(t.Buffer()).DataLength():
            # Small constants (axes, shapes, paddings) are what op limits depend on.
            raw = model.Buffers(t.Buffer()).DataAsNumpy().tobytes()
            np_dtype = {"int32": np.int32, "int64": np.int64, "int8": np.int8, "uint8": np.uint8,
                        "float32": np.float32, "int16": np.int16}.get(dtype)
            if np_dtype is not None and len(raw) % np.dtype(np_dtype).itemsize == 0:
                arr = np.frombuffer(raw, dtype=np_dtype)
                constants[i] = arr.reshape(shape) if arr.size == int(np.prod(shape)) else arr

    codes = []
    for i in range(model.OperatorCodesLength()):
        oc = model.OperatorCodes(i)
        code = max(int(oc.BuiltinCode()), int(oc.DeprecatedBuiltinCode()))
        name = builtin_name(code)
        custom = name == "CUSTOM"
        if custom:
            name = _decode(oc.CustomCode()) or "CUSTOM"
        codes.append((name, custom, int(oc.Version())))

    operators = []
    for i in range(sub.OperatorsLength()):
        raw = sub.Operators(i)
        name, custom, version = codes[raw.OpcodeIndex()]
        ins = tuple(int(x) for x in raw.InputsAsNumpy()) if raw.InputsLength() else ()
        outs = tuple(int(x) for x in raw.OutputsAsNumpy()) if raw.OutputsLength() else ()
        operators.append(Operator(i, name, custom, version, ins, outs, _options(schema, raw)))

    return Graph(
        path=path_text,
        tensors=tuple(tensors),
        operators=tuple(operators),
        inputs=tuple(int(x) for x in sub.InputsAsNumpy()) if sub.InputsLength() else (),
        outputs=tuple(int(x) for x in sub.OutputsAsNumpy()) if sub.OutputsLength() else (),
        subgraph_count=int(model.SubgraphsLength()),
        description=_decode(model.Description()) or "",
        constants=constants,
    )


def axes_of(graph: Graph, op: Operator) -> tuple[int, ...] | None:
    """Normalised (non-negative) reduction axes of MEAN/SUM/REDUCE_* from the constant axis input."""
    if len(op.inputs) < 2:
        return None
    data, axis_t = graph.tensor(op.inputs[0]), graph.tensor(op.inputs[1])
    values = graph.constant_values(axis_t) if axis_t is not None else None
    if values is None or data is None:
        return None
    rank = len(data.shape)
    return tuple(sorted({int(a) % rank if rank else int(a) for a in values.reshape(-1)}))


def macs_of(graph: Graph, op: Operator) -> int:
    """Multiply-accumulates of one operator from its tensor shapes (0 for non-MAC ops).

    Counted: CONV_2D (out H*W*C_out * k_h*k_w*C_in), DEPTHWISE_CONV_2D (out H*W*C_out *
    k_h*k_w), FULLY_CONNECTED (batch * units * input depth) and TRANSPOSE_CONV (input
    H*W*C_in * k_h*k_w*C_out). Batch is included.
    """
    name = op.opcode
    ins = [graph.tensor(i) if i >= 0 else None for i in op.inputs]
    outs = [graph.tensor(i) for i in op.outputs if i >= 0]
    if not outs:
        return 0
    out = outs[0]
    if name == "CONV_2D" and len(ins) >= 2 and ins[1] is not None:
        o, kh, kw, cin = ins[1].shape  # OHWI
        return out.num_elements * kh * kw * cin
    if name == "DEPTHWISE_CONV_2D" and len(ins) >= 2 and ins[1] is not None:
        _, kh, kw, _ = ins[1].shape  # 1HW(C*multiplier)
        return out.num_elements * kh * kw
    if name == "FULLY_CONNECTED" and len(ins) >= 2 and ins[1] is not None:
        units, depth = ins[1].shape[0], ins[1].shape[-1]
        rows = out.num_elements // max(1, units)
        return rows * units * depth
    if name == "TRANSPOSE_CONV" and len(ins) >= 3 and ins[1] is not None and ins[2] is not None:
        # inputs: output_shape, weights (O H W I), data
        o, kh, kw, _ = ins[1].shape
        return ins[2].num_elements * kh * kw * o
    return 0
