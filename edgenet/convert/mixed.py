"""Mixed int8/int16: 16-bit activations for the few worst tensors of an int8 model (CPU targets only).

The last full-integer rung of the accuracy budget (:mod:`edgenet.convert.quality`) can give chosen
activation tensors 16 bits (int16 activations, int8 weights, int64 biases: TFLite's "16x8" kernels)
while the rest of the model stays int8. TF 2.21's converter only knows whole-model precision
(``--quant int8`` or ``--quant int16x8``), so the per-op precision comes from Google's
``ai-edge-quantizer`` (AEQ, LiteRT team; optional extra ``mixed``), which quantizes a float
.tflite by per-op recipes.

What AEQ is given, and why
--------------------------
* **edgenet's ranges, not AEQ's calibration.** AEQ's calibrator keeps a *moving average*
  (smoothing 0.95) of each tensor's per-sample min/max, so its ranges are 11 % narrower than the
  true min/max in the median and up to 45 % narrower for the projection convs and residual adds
  (measured on Lite0, 100 calibration samples): its own static int8 reaches only 64.4 % top-1
  agreement with float on Lite0, against 98.1 % for edgenet's int8. Fed edgenet's ranges
  (:func:`edgenet.convert.calibrator.tensor_ranges`, the true min/max over the samples, or the
  ranges a ``--ranges`` method chose), AEQ's int8 is on par: 97.1 % / 19.19 dB against 98.1 % /
  19.16 dB (one image of 104 apart). AEQ's calibration pass is therefore never run here: the
  calibration result it consumes (``{tensor name: {"min", "max"}}``) is written from those ranges.
* **A tensor is 16-bit when its producer writes it in int16 and every consumer reads it in
  int16.** Giving int16 to the producing op alone is useless: AEQ requantizes the op's int8
  input up to int16 (no information gained) and its int16 output straight back to int8 for the
  int8 consumer (the precision is thrown away at once); measured on Lite0, the four worst ops
  alone gave 96.2 % / 18.97 dB, no better than int8. So :func:`int16_scopes` picks the producer and
  all consumers of each named tensor; requantizing QUANTIZE ops (int8 <-> int16, supported by
  LiteRT's QUANTIZE kernel) sit at the borders of the int16 region.
* **Symmetric int16 activations** (zero point 0), as TFLite's 16x8 kernels require; int8
  activations asymmetric, int8 weights symmetric per channel: what TF's converter writes too.

Which tensors: :func:`rank_by_output_gain` scores each candidate by the logits SQNR it gains alone
in int16 on calibration samples; the quant report's local SQNR ranking is usable from this layer
too (:mod:`edgenet.convert.tensor_errors`); :func:`int16_candidates` filters any ranking.

What it buys, measured (README "Quantization quality", ``benchmarks/mixed_int16.py``): nothing on
the Lite nets, whose error is in the int8 weights (int8 weights with float activations are
already as bad as whole-model int16x8); a little on the swish+SE digits net. The cost is
latency: XNNPACK has no int16 kernels, so each int16 op runs on TFLite's reference 16x8 kernels
and splits the XNNPACK graph (Lite0: 6-30x plain int8 for 1-8 tensors).

Input and output: AEQ quantizes the graph input and output tensors in place (int8 io);
``io="float"`` or ``"uint8"`` adds the QUANTIZE/DEQUANTIZE pair TF's converter adds for the same
``--io``. TensorFlow (flatbuffer_utils) and ai-edge-quantizer are imported lazily: this module
imports without them.
"""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass

import numpy as np

from ..errors import EdgenetError

__all__ = ["IO_TYPES", "MixedPlan", "activation_dtypes", "add_signature", "int16_candidates", "int16_scopes",
           "rank_by_output_gain", "ranges_by_name", "upgrade_to_int16"]

#: ``io`` choices of :func:`upgrade_to_int16` (the same as ``edgenet convert --io`` for int8).
IO_TYPES = ("int8", "float", "uint8")

#: Signature key AEQ addresses the model by (edgenet's converter path writes no signature).
_SIGNATURE = "serving_default"


@dataclass(frozen=True)
class MixedPlan:
    """What gets 16 bits: the named tensors, and the ops (by their first output's name) computing in int16."""

    tensors: tuple[str, ...]
    ops: tuple[str, ...]


def _aeq():
    try:
        from ai_edge_quantizer import qtyping, quantizer, recipe
    except ImportError as exc:
        raise EdgenetError(f"mixed int8/int16 needs ai-edge-quantizer (pip install 'edgenet[mixed]'): {exc}") from None
    return qtyping, quantizer, recipe


def _model_object(data: bytes):
    """The flatbuffer object of a model; buffers stored after the flatbuffer (by offset, as AEQ writes
    them) are read into the object, so that writing it back keeps them."""
    from tensorflow.lite.tools import flatbuffer_utils

    model = flatbuffer_utils.convert_bytearray_to_object(bytearray(data))
    for buffer in model.buffers or []:
        if getattr(buffer, "offset", 0) > 1:
            buffer.data = np.frombuffer(data, np.uint8, int(buffer.size), int(buffer.offset)).copy()
            buffer.offset = buffer.size = 0
    return model


def _to_bytes(model) -> bytes:
    from tensorflow.lite.tools import flatbuffer_utils

    return bytes(flatbuffer_utils.convert_object_to_bytearray(model))


def _name(tensor) -> str:
    return tensor.name.decode() if isinstance(tensor.name, bytes) else str(tensor.name)


def ranges_by_name(float_bytes: bytes, calib: np.ndarray) -> dict[str, tuple[float, float]]:
    """Every activation tensor's (min, max) over ``calib`` (N, H, W, C) by edgenet's calibrator, by tensor name."""
    from .calibrator import tensor_ranges

    model = _model_object(float_bytes)
    names = [_name(t) for t in model.subgraphs[0].tensors]
    samples = [[np.ascontiguousarray(calib[i : i + 1], dtype=np.float32)] for i in range(len(calib))]
    return {names[i]: (float(lo), float(hi)) for i, (lo, hi) in tensor_ranges(model, samples).items()}


def int16_scopes(float_bytes: bytes, tensor_names: Sequence[str], *, consumers: bool = True) -> MixedPlan:
    """The ops that must compute in int16 for ``tensor_names`` to be stored in 16 bits: producer and consumers.

    Ops are named by their first output tensor (AEQ's op scope). A name that is no activation
    tensor of the float model raises :class:`EdgenetError`. ``consumers=False`` keeps the
    producers only (their int16 output is requantized to int8 at once: measured useless, kept for
    the comparison in ``benchmarks/mixed_int16.py``).
    """
    from ..runtime.tflite_graph import read_graph

    graph = read_graph(float_bytes)
    by_name = {t.name: t for t in graph.tensors}
    io = set(graph.inputs) | set(graph.outputs)
    ops: list[str] = []
    for name in tensor_names:
        tensor = by_name.get(name)
        if tensor is None or tensor.is_constant:
            raise EdgenetError(f"mixed int8/int16: {name!r} is no activation tensor of the float model")
        if tensor.index in io:
            raise EdgenetError(f"mixed int8/int16: {name!r} is the model's input or output, whose type is --io's")
        for op in graph.operators:
            outputs = graph.op_outputs(op)
            touches = any(t.index == tensor.index for t in outputs + (graph.op_inputs(op) if consumers else []))
            if touches and outputs and outputs[0].name not in ops:
                ops.append(outputs[0].name)
    return MixedPlan(tuple(tensor_names), tuple(ops))


def int16_candidates(float_bytes: bytes, ranked_names: Sequence[str], k: int) -> list[str]:
    """The first ``k`` of ``ranked_names`` (worst first, e.g. the quant report's ranking) that can be made 16-bit:
    activation tensors of the float model other than its input and output (whose type ``io`` sets)."""
    from ..runtime.tflite_graph import read_graph

    graph = read_graph(float_bytes)
    io = set(graph.inputs) | set(graph.outputs)
    allowed = {t.name for t in graph.tensors if t.is_float and not t.is_constant and t.index not in io}
    return [name for name in ranked_names if name in allowed][:k]


def add_signature(float_bytes: bytes) -> bytes:
    """The model with a ``serving_default`` signature (input ``input``), unless it has one.

    AEQ addresses inputs by signature; edgenet's concrete-function conversion writes none."""
    from tensorflow.lite.python import schema_py_generated as schema

    model = _model_object(float_bytes)
    graph = model.subgraphs[0]
    if model.signatureDefs:
        return float_bytes
    if len(graph.inputs) != 1:
        raise EdgenetError("mixed int8/int16: only single-input models are supported")

    def tensor_map(name: str, index: int):
        entry = schema.TensorMapT()
        entry.name, entry.tensorIndex = name, int(index)
        return entry

    signature = schema.SignatureDefT()
    signature.signatureKey, signature.subgraphIndex = _SIGNATURE, 0
    signature.inputs = [tensor_map("input", graph.inputs[0])]
    signature.outputs = [tensor_map(f"output_{k}", i) for k, i in enumerate(graph.outputs)]
    model.signatureDefs = [signature]
    return _to_bytes(model)


def _calibration_result(float_bytes: bytes, ranges: Mapping[str, tuple[float, float]]) -> dict:
    """AEQ's calibration result (``{name: {"min", "max"}}``, keepdims-shaped) written from edgenet's ranges."""
    from ..runtime.tflite_graph import read_graph

    result = {}
    for tensor in read_graph(float_bytes).tensors:
        if tensor.name in ranges and not tensor.is_constant:
            low, high = ranges[tensor.name]
            shape = (1,) * max(1, len(tensor.shape))
            result[tensor.name] = {"min": np.full(shape, low, np.float32), "max": np.full(shape, high, np.float32)}
    return result


def _opcode_index(model, builtin: int) -> int:
    from tensorflow.lite.python import schema_py_generated as schema

    for k, code in enumerate(model.operatorCodes):
        if max(code.builtinCode, code.deprecatedBuiltinCode) == builtin:
            return k
    code = schema.OperatorCodeT()
    code.builtinCode, code.deprecatedBuiltinCode, code.version = builtin, min(builtin, 127), 1
    model.operatorCodes.append(code)
    return len(model.operatorCodes) - 1


def _adapt_io(data: bytes, io: str) -> bytes:
    """Give an int8-io model float or uint8 io: QUANTIZE (and DEQUANTIZE) ops at the borders, as TF's converter."""
    import copy

    from tensorflow.lite.python import schema_py_generated as schema

    if io == "int8":
        return data
    model = _model_object(data)
    graph = model.subgraphs[0]
    builtin = schema.BuiltinOperator
    outer_type = {"float": schema.TensorType.FLOAT32, "uint8": schema.TensorType.UINT8}[io]

    def outer(index: int) -> int:
        inner = graph.tensors[index]
        tensor = copy.deepcopy(inner)
        tensor.type, tensor.buffer = outer_type, 0
        tensor.name = _name(inner) + f"_{io}"
        if io == "float":
            tensor.quantization = None
        else:  # the same real values in uint8: zero point shifted by 128
            tensor.quantization.zeroPoint = [int(z) + 128 for z in inner.quantization.zeroPoint]
        graph.tensors.append(tensor)
        return len(graph.tensors) - 1

    def op(opcode: int, source: int, target: int):
        new = schema.OperatorT()
        new.opcodeIndex, new.inputs, new.outputs = _opcode_index(model, opcode), [source], [target]
        return new

    remap: dict[int, int] = {}
    firsts, lasts = [], []
    for index in [int(i) for i in graph.inputs]:
        remap[index] = outer(index)
        firsts.append(op(builtin.QUANTIZE, remap[index], index))
    for index in [int(i) for i in graph.outputs]:
        remap[index] = outer(index)
        lasts.append(op(builtin.DEQUANTIZE if io == "float" else builtin.QUANTIZE, index, remap[index]))
    graph.operators = firsts + list(graph.operators) + lasts
    graph.inputs = [remap[int(i)] for i in graph.inputs]
    graph.outputs = [remap[int(i)] for i in graph.outputs]
    for signature in model.signatureDefs or []:
        for entry in list(signature.inputs or []) + list(signature.outputs or []):
            entry.tensorIndex = remap.get(int(entry.tensorIndex), entry.tensorIndex)
    return _to_bytes(model)


def upgrade_to_int16(float_bytes: bytes, tensor_names: Sequence[str], *, calib: np.ndarray | None = None,
                     ranges: Mapping[str, tuple[float, float]] | None = None, io: str = "int8",
                     consumers: bool = True) -> bytes:
    """A full-integer model of ``float_bytes``: ``tensor_names`` in int16, every other activation int8.

    ``float_bytes`` is the float .tflite of the same graph the int8 model came from (edgenet's
    ``keras_to_tflite(model, "fp32")``); ``tensor_names`` are activation tensor names as the
    quant report ranks them (:meth:`edgenet.quant.report.QuantReport.ranked`; the int8 model's
    names are the float model's; or :func:`rank_by_output_gain`'s). Ranges: ``ranges`` by tensor name (reuse the conversion's
    calibration, or a ``--ranges`` method's choice), else measured on ``calib`` by edgenet's
    calibrator. An empty ``tensor_names`` gives AEQ's plain int8 of the same ranges.
    ``io``: ``int8`` (AEQ's own), ``float`` or ``uint8``. ``consumers``: see :func:`int16_scopes`. Raises :class:`EdgenetError` on a
    missing dependency, an unknown tensor name or a quantizer failure.
    """
    if io not in IO_TYPES:
        raise EdgenetError(f"mixed int8/int16: io must be one of {', '.join(IO_TYPES)}, not {io!r}")
    qtyping, quantizer, recipe = _aeq()
    if ranges is None:
        if calib is None or len(calib) == 0:
            raise EdgenetError("mixed int8/int16 needs calibration data or ranges")
        ranges = ranges_by_name(float_bytes, calib)
    plan = int16_scopes(float_bytes, tensor_names, consumers=consumers)
    int16 = qtyping.OpQuantizationConfig(
        activation_tensor_config=qtyping.TensorQuantizationConfig(num_bits=16, symmetric=True),
        weight_tensor_config=qtyping.TensorQuantizationConfig(
            num_bits=8, symmetric=True, granularity=qtyping.QuantGranularity.CHANNELWISE),
        compute_precision=qtyping.ComputePrecision.INTEGER, explicit_dequantize=False)
    signed = add_signature(float_bytes)
    try:
        qt = quantizer.Quantizer(bytearray(signed))
        qt.load_quantization_recipe(recipe.static_wi8_ai8())
        for scope in plan.ops:
            # AEQ's op scope is its output names joined by ";" with a trailing ";".
            qt.update_quantization_recipe(regex="^" + re.escape(scope) + ";", operation_name="*", op_config=int16)
        result = qt.quantize(_calibration_result(float_bytes, ranges), enable_progress_bar=False,
                             enable_progress_report=False)
    except (ValueError, RuntimeError, KeyError, NotImplementedError) as exc:
        raise EdgenetError(f"mixed int8/int16: ai-edge-quantizer failed: {str(exc).splitlines()[0][:300]}") from None
    data = bytes(result.quantized_model)
    from .precision import float_ops

    left = float_ops(data)
    if left:
        raise EdgenetError(f"mixed int8/int16: {', '.join(left)} left computing in float")
    return _adapt_io(data, io)


def activation_dtypes(data: bytes) -> dict[str, str]:
    """Dtype of every activation tensor (not constant) of a model, by name: how to check what is 16-bit."""
    from ..runtime.tflite_graph import read_graph

    return {t.name: t.dtype for t in read_graph(data).tensors if not t.is_constant}


def rank_by_output_gain(float_bytes: bytes, calib: np.ndarray, *, ranges: Mapping[str, tuple[float, float]] | None = None,
                        candidates: Sequence[str] | None = None, samples: int = 16) -> list[tuple[str, float]]:
    """Candidate tensors ranked by what 16 bits for that tensor alone gain at the output, best first.

    For each candidate (default: every eligible activation), the model with only that tensor in
    int16 runs ``calib[:samples]``; the score is its logits SQNR against the float model minus that
    of the all-int8 model (dB). Unlike the quant report's local SQNR
    (:mod:`edgenet.convert.tensor_errors`), this measures the effect on the answer directly, at the price of one
    quantization and ``samples`` invokes per candidate (Lite0: 61 candidates, ~1 min).
    """
    from ..runtime.interpreter import TFLiteModel
    from ..runtime.tflite_graph import read_graph
    from .fidelity import fidelity_metrics

    xs = np.asarray(calib[:samples], dtype=np.float32)
    if ranges is None:
        ranges = ranges_by_name(float_bytes, calib)
    if candidates is None:
        graph = read_graph(float_bytes)
        candidates = int16_candidates(float_bytes, [t.name for t in graph.tensors], len(graph.tensors))

    def outputs(data: bytes) -> np.ndarray:
        model = TFLiteModel(data)
        return np.concatenate([model.run(xs[i : i + 1]) for i in range(len(xs))])

    reference = outputs(float_bytes)
    base = fidelity_metrics(reference, outputs(upgrade_to_int16(float_bytes, [], ranges=ranges, io="float"))).sqnr_db
    scored = []
    for name in candidates:
        data = upgrade_to_int16(float_bytes, [name], ranges=ranges, io="float")
        scored.append((name, float(fidelity_metrics(reference, outputs(data)).sqnr_db - base)))
    return sorted(scored, key=lambda item: -item[1])
