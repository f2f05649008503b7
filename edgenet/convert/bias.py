"""Empirical bias correction: fold each convolution's mean quantization error into its int32 bias.

Quantizing weights and activations shifts the *mean* of a convolution's output per channel
(Nagel et al., "Data-Free Quantization Through Weight Equalization and Bias Correction", 2019;
depthwise convolutions with few taps suffer most). That shift is biased error that rounding
noise downstream does not average away. Here it is measured, not modelled: the quantized model
runs on calibration samples with every tensor kept, and for each CONV_2D, DEPTHWISE_CONV_2D and
FULLY_CONNECTED the float operator alone (a one-operator model cut from the float graph) runs on
the quantized model's own dequantized inputs. The per-channel mean of ``quantized - float`` is
the error this operator adds (upstream errors are in both and cancel, so corrections do not
double count), and ``round(shift / bias_scale)`` is subtracted from its int32 bias, whose scale
per channel is ``input_scale * weight_scale``. The graph, its operators and its shapes are
unchanged: the model stays full-integer and runs exactly as fast; only bias values move.

Calibration samples only, never the fidelity check's held-out images. Needs TensorFlow
(flatbuffer editing) and a runtime.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

CORRECTED_OPS = ("CONV_2D", "DEPTHWISE_CONV_2D", "FULLY_CONNECTED")
#: Calibration samples used to measure the shifts (means over pixels converge fast).
DEFAULT_BIAS_SAMPLES = 32


@dataclass(frozen=True)
class BiasCorrection:
    """What bias correction changed."""

    ops: int  # operators whose bias moved
    channels: int  # bias values changed
    samples: int
    mean_abs_shift_steps: float  # mean |shift| in output quantization steps, before correction

    def to_dict(self) -> dict:
        return {"ops": self.ops, "channels": self.channels, "samples": self.samples,
                "mean_abs_shift_steps": round(self.mean_abs_shift_steps, 4)}


def correct_bias(float_bytes: bytes, quant_bytes: bytes, samples: np.ndarray, *,
                 threads: int | None = None) -> tuple[bytes, BiasCorrection]:
    """Return ``quant_bytes`` with corrected int32 biases (see the module docstring)."""
    from tensorflow.lite.tools import flatbuffer_utils

    from ..runtime.activations import dequantizer, feed, preserving_interpreter
    from ..runtime.tflite_graph import read_graph
    from .calibrator import single_op_bytes

    fgraph, qgraph = read_graph(float_bytes), read_graph(quant_bytes)
    float_by_name = {t.name: t.index for t in fgraph.tensors if not t.is_constant}
    float_producer = {t: k for k, op in enumerate(fgraph.operators) for t in op.outputs if t >= 0}
    quant_by_name = {t.name: t.index for t in qgraph.tensors if not t.is_constant}
    fmodel = flatbuffer_utils.convert_bytearray_to_object(bytearray(float_bytes))
    buffer_users: dict[int, int] = {}  # the converter shares identical constant buffers between tensors
    qmodel = flatbuffer_utils.convert_bytearray_to_object(bytearray(quant_bytes))
    qtensors = qmodel.subgraphs[0].tensors
    for t in qtensors:
        buffer_users[t.buffer] = buffer_users.get(t.buffer, 0) + 1

    jobs = []  # (quant output index, bias tensor index, float op interpreter, [(float in, quant in)], float out)
    for op in qgraph.operators:
        if op.opcode not in CORRECTED_OPS or len(op.inputs) < 3 or op.inputs[2] < 0:
            continue
        out, bias = op.outputs[0], op.inputs[2]
        bias_tensor = qgraph.tensors[bias]
        if bias_tensor.dtype != "int32" or not bias_tensor.quantization.scale:
            continue
        name = qgraph.tensors[out].name
        if name not in float_by_name or float_by_name[name] not in float_producer:
            continue
        k = float_producer[float_by_name[name]]
        pairs = []
        for i in fgraph.operators[k].inputs:
            if i >= 0 and not fgraph.tensors[i].is_constant:
                pairs.append((i, quant_by_name.get(fgraph.tensors[i].name, -1)))
        if not pairs or any(q < 0 for _, q in pairs):
            continue
        jobs.append((out, bias, preserving_interpreter(single_op_bytes(fmodel, k), 1), pairs,
                     float_by_name[name]))

    qi = preserving_interpreter(quant_bytes, threads)
    value = dequantizer(qi)
    sums: dict[int, np.ndarray] = {}
    counts: dict[int, int] = {}
    used = np.asarray(samples, dtype=np.float32)
    for x in used:
        feed(qi, x[None])
        qi.invoke()
        for out, _, op_interpreter, pairs, float_out in jobs:
            for float_in, quant_in in pairs:
                op_interpreter.set_tensor(float_in, value(quant_in))
            op_interpreter.invoke()
            reference = np.asarray(op_interpreter.get_tensor(float_out), dtype=np.float64)
            diff = value(out).astype(np.float64) - reference
            channels = diff.shape[-1]
            sums[out] = sums.get(out, 0.0) + diff.reshape(-1, channels).sum(axis=0)
            counts[out] = counts.get(out, 0) + diff.size // channels

    ops = changed = 0
    shifts_in_steps = []
    for out, bias, _, _, _ in jobs:
        if out not in sums:
            continue
        shift = sums[out] / counts[out]
        out_scale = qgraph.tensors[out].quantization.scale[0]
        shifts_in_steps.extend(np.abs(shift) / out_scale)
        tensor = qtensors[bias]
        scales = np.asarray(tensor.quantization.scale, dtype=np.float64)
        buffer = qmodel.buffers[tensor.buffer]
        values = np.frombuffer(bytes(bytearray(buffer.data)), dtype="<i4").copy()
        if buffer_users.get(tensor.buffer, 0) > 1:
            # The converter shares identical constants (e.g. all-zero biases): give this one its own buffer.
            from tensorflow.lite.python import schema_py_generated as schema

            buffer_users[tensor.buffer] -= 1
            buffer = schema.BufferT()
            qmodel.buffers.append(buffer)
            tensor.buffer = len(qmodel.buffers) - 1
            buffer_users[tensor.buffer] = 1
        if scales.size not in (1, values.size) or shift.size != values.size:
            continue
        step = np.round(shift / scales).astype(np.int64)
        if not np.any(step):
            continue
        corrected = np.clip(values.astype(np.int64) - step, np.iinfo(np.int32).min, np.iinfo(np.int32).max)
        buffer.data = np.frombuffer(corrected.astype("<i4").tobytes(), dtype=np.uint8)
        ops += 1
        changed += int(np.count_nonzero(step))
    data = bytes(flatbuffer_utils.convert_object_to_bytearray(qmodel))
    mean_steps = float(np.mean(shifts_in_steps)) if shifts_in_steps else 0.0
    return data, BiasCorrection(ops=ops, channels=changed, samples=int(len(used)), mean_abs_shift_steps=mean_steps)
