"""Static Edge TPU compatibility check of a ``.tflite`` model, op by op.

Encodes the rules Coral documents for the Edge TPU compiler (coral.ai/docs/edgetpu/
models-intro, "Model requirements" and "Supported operations"):

* every tensor an op touches is 8-bit quantized (int8/uint8; int32 biases, axes and
  shapes are fine) - the Edge TPU has only integer arithmetic;
* tensor sizes are constant at compile time (no ``-1`` in ``shape_signature``) - the
  compiler lays out memory statically;
* model parameters (weights, biases) are constant at compile time - they are cached in
  the chip's parameter memory;
* tensors are at most 3-D in effect: only the 3 innermost dimensions may be larger
  than 1, which also means batch 1;
* the operator is in the supported list, within its per-op limits (``SUPPORTED_OPS``).

The compiler maps ops in execution order until the first op that cannot map and hands
everything after that to the CPU (without ``-a``/``-d`` it builds exactly one Edge TPU
subgraph; later ops that could map are reported as "More than one subgraph is not
supported"). The check reproduces that cut. Quantize ops on a float model input and
dequantize ops on a float model output run on the CPU but do not cut the graph.

This is an estimate from documentation, not the compiler: a few limits are not
documented precisely ("certain reshapes might not be mapped for large tensor sizes",
resize ops that would lose precision) and are reported as mapping.
"""

from __future__ import annotations

import os
from collections.abc import Callable
from dataclasses import asdict, dataclass

from ..runtime.tflite_graph import Graph, Operator, Tensor, axes_of, macs_of, read_graph

#: Nominal on-chip SRAM for caching parameters. The compiler reports a little less in
#: practice (it also keeps instructions and activations there), so the on-chip figure
#: here is an upper bound and the off-chip figure a lower bound.
ON_CHIP_CACHE_BYTES = 8 * 1024 * 1024

_EIGHT_BIT = ("int8", "uint8")
_SOFTMAX_MAX_ELEMENTS = 16_000
_CONSTANT_PARAM_INPUTS = {  # op -> input positions that hold model parameters
    "CONV_2D": (1, 2),
    "DEPTHWISE_CONV_2D": (1, 2),
    "FULLY_CONNECTED": (1, 2),
    "TRANSPOSE_CONV": (1, 3),
    "PRELU": (1,),
}
_ALLOWED_FUSED = (None, "NONE", "RELU", "RELU6", "RELU_N1_TO_1")

Check = Callable[[Graph, Operator], "str | None"]


# --- per-op limits: each returns None when the op maps, else the reason -----------------

def _ok(graph: Graph, op: Operator) -> str | None:
    return None


def _no_fused_activation(graph: Graph, op: Operator) -> str | None:
    act = op.options.get("fused_activation")
    if act not in (None, "NONE"):
        return f"fused activation {act} is not supported on this op"
    return None


def _fused_activation_supported(graph: Graph, op: Operator) -> str | None:
    act = op.options.get("fused_activation")
    if act not in _ALLOWED_FUSED:
        return f"fused activation {act} is not supported"
    return None


def _same_dilation(graph: Graph, op: Operator) -> str | None:
    h, w = op.options.get("dilation_h_factor", 1), op.options.get("dilation_w_factor", 1)
    if h != w:
        return f"dilation must be the same in x and y (got {h}x{w})"
    return _fused_activation_supported(graph, op)


def _innermost_only(tensor: Tensor) -> bool:
    return all(d == 1 for d in tensor.shape[:-1])


def _fully_connected(graph: Graph, op: Operator) -> str | None:
    if op.options.get("weights_format", 0) != 0:
        return "only the default fully-connected weights format is supported"
    out = graph.op_outputs(op)[0]
    if not _innermost_only(out):
        return f"output must be one-dimensional (got shape {list(out.shape)})"
    return _fused_activation_supported(graph, op)


def _spatial_axes(rank: int) -> set[int]:
    # NHWC: x and y are the two dimensions before the channels.
    return {rank - 3, rank - 2} if rank >= 3 else set()


def _mean(graph: Graph, op: Operator) -> str | None:
    axes = axes_of(graph, op)
    if axes is None:
        return "reduction axes are not a compile-time constant"
    rank = len(graph.op_inputs(op)[0].shape)
    if rank == 4 and 0 in axes:
        return "no reduction in the batch dimension"
    if not set(axes) <= _spatial_axes(rank):
        return f"reduction only along x and/or y is supported (axes {list(axes)} of a {rank}-D tensor)"
    return None


def _not_batch_axis_reduce(graph: Graph, op: Operator) -> str | None:
    axes = axes_of(graph, op)
    if axes is None:
        return "reduction axes are not a compile-time constant"
    if len(graph.op_inputs(op)[0].shape) == 4 and 0 in axes:
        return "cannot operate on the batch dimension"
    return None


def _pack(graph: Graph, op: Operator) -> str | None:
    out = graph.op_outputs(op)[0]
    if len(out.shape) == 4 and op.options.get("axis", 0) % 4 == 0:
        return "no packing in the batch dimension"
    return None


def _pad(graph: Graph, op: Operator) -> str | None:
    pads_t = graph.tensor(op.inputs[1]) if len(op.inputs) > 1 else None
    pads = graph.constant_values(pads_t) if pads_t is not None else None
    if pads is None:
        return "paddings are not a compile-time constant"
    pads = pads.reshape(-1, 2)
    rank = pads.shape[0]
    for dim in range(rank):
        if dim not in _spatial_axes(rank) and (pads[dim] != 0).any():
            return f"padding only along x and/or y is supported (dimension {dim} is padded)"
    return None


def _prelu(graph: Graph, op: Operator) -> str | None:
    alpha = graph.tensor(op.inputs[1])
    if alpha is not None and not _innermost_only(alpha):
        return f"alpha must be 1-dimensional (got shape {list(alpha.shape)})"
    return None


def _softmax(graph: Graph, op: Operator) -> str | None:
    x = graph.op_inputs(op)[0]
    if not _innermost_only(x):
        return f"only a 1-D input is supported (got shape {list(x.shape)})"
    if x.shape and x.shape[-1] > _SOFTMAX_MAX_ELEMENTS:
        return f"at most {_SOFTMAX_MAX_ELEMENTS:,} elements (got {x.shape[-1]:,})"
    return None


def _split(graph: Graph, op: Operator) -> str | None:
    axis_t = graph.tensor(op.inputs[0])
    values = graph.constant_values(axis_t) if axis_t is not None else None
    data = graph.tensor(op.inputs[1])
    if values is None or data is None:
        return "split axis is not a compile-time constant"
    if len(data.shape) == 4 and int(values.reshape(-1)[0]) % 4 == 0:
        return "no splitting in the batch dimension"
    return None


def _strided_slice(graph: Graph, op: Operator) -> str | None:
    strides_t = graph.tensor(op.inputs[3]) if len(op.inputs) > 3 else None
    strides = graph.constant_values(strides_t) if strides_t is not None else None
    if strides is None or (strides != 1).any():
        return "only strides of 1 are supported"
    if op.options.get("ellipsis_mask", 0) or op.options.get("new_axis_mask", 0):
        return "ellipsis and new-axis masks are not supported"
    return None


def _concatenation(graph: Graph, op: Operator) -> str | None:
    reason = _no_fused_activation(graph, op)
    if reason:
        return reason
    consts = [t for t in graph.op_inputs(op) if t.is_constant]
    if consts:
        if len(op.inputs) != 2:
            return "a constant input is only supported with exactly 2 inputs (zero padding)"
        values = graph.constant_values(consts[0])
        zero = consts[0].quantization.zero_point[0] if consts[0].quantization.zero_point else 0
        if values is None or (values != zero).any():
            return "a constant input must be all zeros (effectively zero padding)"
    return None


#: Operators the Edge TPU supports, with their documented limits (Coral "Supported
#: operations" table). Anything missing here - HARD_SWISH, GELU, DEQUANTIZE, DIV, EXP,
#: CUMSUM, ATAN2, custom ops - cannot map.
SUPPORTED_OPS: dict[str, Check] = {
    "ADD": _fused_activation_supported,
    "AVERAGE_POOL_2D": _no_fused_activation,
    "CONCATENATION": _concatenation,
    "CONV_2D": _same_dilation,
    "DEPTHWISE_CONV_2D": _same_dilation,
    "EXPAND_DIMS": _ok,
    "FULLY_CONNECTED": _fully_connected,
    "L2_NORMALIZATION": _ok,
    "LOGISTIC": _ok,
    "LSTM": _ok,
    "UNIDIRECTIONAL_SEQUENCE_LSTM": _ok,
    "MAXIMUM": _ok,
    "MAX_POOL_2D": _no_fused_activation,
    "MEAN": _mean,
    "MINIMUM": _ok,
    "MUL": _fused_activation_supported,
    "PACK": _pack,
    "PAD": _pad,
    "PRELU": _prelu,
    "QUANTIZE": _ok,
    "REDUCE_MAX": _not_batch_axis_reduce,
    "REDUCE_MIN": _not_batch_axis_reduce,
    "RELU": _ok,
    "RELU6": _ok,
    "RELU_N1_TO_1": _ok,
    "RESHAPE": _ok,  # "certain reshapes might not be mapped for large tensor sizes": undocumented bound
    "RESIZE_BILINEAR": _ok,  # 3-D in/out is enforced by the general dimension rule
    "RESIZE_NEAREST_NEIGHBOR": _ok,
    "RSQRT": _ok,
    "SLICE": _ok,
    "SOFTMAX": _softmax,
    "SPACE_TO_DEPTH": _ok,
    "SPLIT": _split,
    "SQUARED_DIFFERENCE": _ok,
    "SQUEEZE": _ok,
    "STRIDED_SLICE": _strided_slice,
    "SUB": _fused_activation_supported,
    "SUM": _not_batch_axis_reduce,
    "TANH": _ok,
    "TRANSPOSE": _ok,
    "TRANSPOSE_CONV": _ok,
}


# --- results ---------------------------------------------------------------------------

@dataclass(frozen=True)
class OpCheck:
    """The verdict for one operator."""

    index: int
    op: str
    output: str  # name of the first output tensor
    maps: bool  # the op itself satisfies the Edge TPU rules
    on_tpu: bool  # it lands in the Edge TPU subgraph (maps and comes before the cut)
    reason: str  # why it does not map / runs on the CPU ("" when on the TPU)
    macs: int
    param_bytes: int  # constant tensor bytes first used by this op


@dataclass(frozen=True)
class CheckReport:
    path: str
    ops: tuple[OpCheck, ...]
    first_unsupported: OpCheck | None
    input_dtypes: tuple[str, ...]
    output_dtypes: tuple[str, ...]
    on_chip_cache_bytes: int = ON_CHIP_CACHE_BYTES

    @property
    def ops_total(self) -> int:
        return len(self.ops)

    @property
    def ops_tpu(self) -> int:
        return sum(o.on_tpu for o in self.ops)

    @property
    def ops_cpu(self) -> int:
        return self.ops_total - self.ops_tpu

    @property
    def ops_tpu_share(self) -> float:
        return self.ops_tpu / self.ops_total if self.ops_total else 0.0

    @property
    def macs_total(self) -> int:
        return sum(o.macs for o in self.ops)

    @property
    def macs_tpu(self) -> int:
        return sum(o.macs for o in self.ops if o.on_tpu)

    @property
    def macs_tpu_share(self) -> float:
        return self.macs_tpu / self.macs_total if self.macs_total else 0.0

    @property
    def param_bytes_total(self) -> int:
        return sum(o.param_bytes for o in self.ops)

    @property
    def param_bytes_tpu(self) -> int:
        return sum(o.param_bytes for o in self.ops if o.on_tpu)

    @property
    def param_bytes_on_chip(self) -> int:
        """Estimated parameter bytes cached on chip (nominal cache size, an upper bound)."""
        return min(self.param_bytes_tpu, self.on_chip_cache_bytes)

    @property
    def param_bytes_off_chip(self) -> int:
        """Estimated parameter bytes streamed from host memory on every inference."""
        return self.param_bytes_tpu - self.param_bytes_on_chip

    @property
    def fully_mapped(self) -> bool:
        return self.first_unsupported is None and self.ops_cpu == 0

    @property
    def unmapped(self) -> tuple[OpCheck, ...]:
        """Ops that fail a rule themselves (not those merely after the cut)."""
        return tuple(o for o in self.ops if not o.maps)

    def to_dict(self, include_ops: bool = True) -> dict:
        first = self.first_unsupported
        out = {
            "path": self.path,
            "input_dtypes": list(self.input_dtypes),
            "output_dtypes": list(self.output_dtypes),
            "ops_total": self.ops_total,
            "ops_tpu": self.ops_tpu,
            "ops_cpu": self.ops_cpu,
            "ops_tpu_share": round(self.ops_tpu_share, 6),
            "macs_total": self.macs_total,
            "macs_tpu": self.macs_tpu,
            "macs_tpu_share": round(self.macs_tpu_share, 6),
            "first_unsupported": None if first is None else
            {"index": first.index, "op": first.op, "output": first.output, "reason": first.reason},
            "param_bytes_total": self.param_bytes_total,
            "param_bytes_tpu": self.param_bytes_tpu,
            "on_chip_cache_bytes": self.on_chip_cache_bytes,
            "param_bytes_on_chip": self.param_bytes_on_chip,
            "param_bytes_off_chip": self.param_bytes_off_chip,
            "fully_mapped": self.fully_mapped,
            "unmapped_by_reason": self.unmapped_by_reason(),
        }
        if include_ops:
            out["ops"] = [asdict(o) for o in self.ops]
        return out

    def unmapped_by_reason(self) -> list[dict]:
        """Counts of (op, reason) among the ops that fail a rule, like the compiler's table."""
        counts: dict[tuple[str, str], int] = {}
        for o in self.unmapped:
            counts[(o.op, o.reason)] = counts.get((o.op, o.reason), 0) + 1
        return [{"op": op, "count": n, "reason": reason} for (op, reason), n in counts.items()]


# --- the check ---------------------------------------------------------------------------

def _is_boundary(graph: Graph, op: Operator) -> bool:
    """A float<->int8 conversion at the model's edge: runs on the CPU without cutting the graph."""
    if op.opcode == "QUANTIZE":
        src = graph.op_inputs(op)[0]
        return src.is_float and src.index in graph.inputs
    if op.opcode == "DEQUANTIZE":
        dst = graph.op_outputs(op)[0]
        return dst.index in graph.outputs and not graph.op_inputs(op)[0].is_constant
    return False


def _general_reason(graph: Graph, op: Operator) -> str | None:
    """Rules every op must meet: 8-bit tensors, static shapes, <=3 non-unit dims, constant params."""
    tensors = graph.op_inputs(op) + graph.op_outputs(op)
    for t in tensors:
        if t.is_float:
            return f"not quantized: tensor '{t.name}' is {t.dtype}"
        if t.is_constant and t.dtype == "int32":
            continue  # biases (int32 by design), axes, shapes, paddings
        if t.dtype not in _EIGHT_BIT:
            return f"not quantized to 8 bits: tensor '{t.name}' is {t.dtype}"
    for t in tensors:
        if t.is_dynamic:
            return f"dynamic shape: tensor '{t.name}' has shape signature {list(t.shape_signature)}"
    for t in tensors:
        if t.is_constant:
            continue  # weights are laid out by the compiler; the rule is about activations
        if len(t.shape) == 4 and t.shape[0] != 1:
            return f"batch size {t.shape[0]} (only batch 1 is supported): tensor '{t.name}'"
        if any(d != 1 for d in t.shape[:-3]):
            return f"more than 3 dimensions larger than 1: tensor '{t.name}' has shape {list(t.shape)}"
    for pos in _CONSTANT_PARAM_INPUTS.get(op.opcode, ()):
        if pos < len(op.inputs) and op.inputs[pos] >= 0 and not graph.tensors[op.inputs[pos]].is_constant:
            return f"parameters not constant: '{graph.tensors[op.inputs[pos]].name}' is computed at run time"
    return None


def op_reason(graph: Graph, op: Operator) -> str | None:
    """Why ``op`` cannot map to the Edge TPU, or ``None`` when it can (ignoring the cut)."""
    reason = _general_reason(graph, op)
    if reason:
        return reason
    if op.is_custom:
        return f"custom operator {op.opcode} is not supported by the Edge TPU"
    limit = SUPPORTED_OPS.get(op.opcode)
    if limit is None:
        return f"operation {op.opcode} is not supported by the Edge TPU"
    return limit(graph, op)


def check_graph(graph: Graph, path: str = "<bytes>") -> CheckReport:
    """Apply the Edge TPU rules and the single-subgraph cut to a parsed graph."""
    seen_constants: set[int] = set()
    results: list[OpCheck] = []
    first: OpCheck | None = None
    for op in graph.operators:
        new_params = 0
        for t in graph.op_inputs(op):
            if t.is_constant and t.index not in seen_constants:
                seen_constants.add(t.index)
                new_params += t.buffer_size_bytes
        outputs = graph.op_outputs(op)
        output_name = outputs[0].name if outputs else ""
        macs = macs_of(graph, op)
        if _is_boundary(graph, op):
            reason = f"{op.opcode.lower()} of a float model {'input' if op.opcode == 'QUANTIZE' else 'output'}" \
                     " runs on the CPU (at the boundary, does not cut the graph)"
            results.append(OpCheck(op.index, op.opcode, output_name, False, False, reason, macs, new_params))
            continue
        own = op_reason(graph, op)
        maps = own is None
        if first is None and not maps:
            on_tpu, reason = False, own
        elif first is not None:
            on_tpu = False
            reason = own or f"after the graph cut at op #{first.index} {first.op}: runs on the CPU"
        else:
            on_tpu, reason = True, ""
        check = OpCheck(op.index, op.opcode, output_name, maps, on_tpu, reason, macs, new_params)
        if first is None and not maps:
            first = check
        results.append(check)
    return CheckReport(
        path=path,
        ops=tuple(results),
        first_unsupported=first,
        input_dtypes=tuple(graph.tensors[i].dtype for i in graph.inputs),
        output_dtypes=tuple(graph.tensors[i].dtype for i in graph.outputs),
    )


def check_model(path: str | os.PathLike) -> CheckReport:
    """Static Edge TPU check of one ``.tflite`` file (see the module docstring for the rules)."""
    return check_graph(read_graph(path), str(path))


def _short(name: str, limit: int = 48) -> str:
    """Fused TFLite tensor names join every source op with ';': keep the first, capped in length."""
    first = name.split(";")[0]
    return first if len(first) <= limit else "..." + first[-(limit - 3):]


def format_report(report: CheckReport) -> str:
    """A short human summary and the table of ops that do not map."""
    from tabulate import tabulate

    mib = 1024 * 1024
    first = report.first_unsupported
    lines = [
        f"{report.path}",
        f"  ops on Edge TPU: {report.ops_tpu}/{report.ops_total} ({100 * report.ops_tpu_share:.1f}%), "
        f"MACs on Edge TPU: {100 * report.macs_tpu_share:.1f}% of {report.macs_total / 1e6:.1f} M",
        "  first unsupported op: " + ("none (fully mapped)" if first is None else
                                      f"#{first.index} {first.op} ({_short(first.output)}): {first.reason}"),
        f"  parameters on Edge TPU: {report.param_bytes_tpu / mib:.2f} MiB -> on-chip ~{report.param_bytes_on_chip / mib:.2f}"
        f" MiB, streamed off-chip ~{report.param_bytes_off_chip / mib:.2f} MiB"
        f" (cache {report.on_chip_cache_bytes / mib:.0f} MiB)",
    ]
    unmapped = report.unmapped
    if unmapped:
        rows = [[o.index, o.op, _short(o.output), o.reason] for o in unmapped]
        lines.append(tabulate(rows, headers=["#", "op", "output tensor", "reason"], tablefmt="github"))
        after = sum(1 for o in report.ops if o.maps and not o.on_tpu)
        if after:
            lines.append(f"  + {after} supported ops after the cut also run on the CPU")
    return "\n".join(lines)
