"""Child-process entry for one conversion: ``python -m edgenet.convert.worker REQUEST.json``.

Why a child process: TensorFlow's converter and calibrator are C++ that can take the whole
process down (TF 2.21 segfaults on NaN/Inf calibration data instead of raising), and a
large variant's conversion holds gigabytes that are only reliably returned to the system
when the process ends. :mod:`edgenet.convert.api` runs one child per variant, so a crash is
one error line for that variant and the run goes on; ``ru_maxrss`` of the child is the
conversion's own peak memory.

The Keras 3 -> TFLite path (pinned, tensorflow-cpu 2.21 / keras 3.15)
---------------------------------------------------------------------
``tf.function(lambda x: model(x, training=False))`` with a fixed input signature
``(1, res, res, 3) float32`` (batch 1 static by default: edge runtimes and the Edge TPU
want static shapes), then ``TFLiteConverter.from_concrete_functions([fn], trackable)``
where ``trackable`` is a ``tf.Module`` that owns the tf.function. Measured alternatives
(tiny variant / B0, 20 calibration samples, int8):

* ``model.export()`` + ``from_saved_model``: ~6x slower on the tiny variant (17 s vs 3 s),
  and the exported serving signature keeps a dynamic batch, which leaves
  ``SHAPE/STRIDED_SLICE/PACK/RESHAPE`` chains around every squeeze-excitation block (7 extra
  op groups in the tiny model): poison for the Edge TPU compiler.
* ``from_keras_model``: works, but goes through the same saved-model export (~9 s tiny).
* ``from_concrete_functions([fn], keras_model)``: the calibrator fails with
  ``READ_VARIABLE ... variable != nullptr`` (Keras 3 variables are not frozen on this path).
* ``from_concrete_functions([fn])`` without a trackable: works but TF warns it is the
  deprecated path.

The chosen path gives a model of the same size as the deprecated one (6 061 872 bytes for B0
int8), exactly the ops of the Keras graph, and no saved-model round trip on disk.

Test hook: the environment variable ``EDGENET_TEST_CRASH_AFTER_CALIBRATION`` set to ``1``
(or to one variant's name, to crash only that one) makes this process send itself SIGSEGV
right after the converter has consumed the last calibration sample, i.e. in the middle of
a conversion, as a real converter crash would. Only the test-suite sets it; it exists to
prove that a crash leaves no partial output and that the run goes on.
"""

from __future__ import annotations

import json
import os
import resource
import signal
import sys
import time
import traceback
import warnings
from collections.abc import Callable
from pathlib import Path

import numpy as np

from ..errors import one_line
from .modes import CALIBRATED_MODES

CRASH_ENV = "EDGENET_TEST_CRASH_AFTER_CALIBRATION"

#: Quantization mode -> the dtype the model's input/output must have for each ``--io``.
IO_DTYPES = {"float": "float32", "int8": "int8", "uint8": "uint8"}


def _configure(converter, tf, quant: str, io: str, representative) -> None:
    """Converter settings per quantization mode (the table: :mod:`edgenet.convert.modes`)."""
    if quant == "fp32":
        return
    converter.optimizations = [tf.lite.Optimize.DEFAULT]
    if quant == "fp16":
        converter.target_spec.supported_types = [tf.float16]
    elif quant == "dynamic":
        pass  # int8 weights, float activations: no calibration
    elif quant == "int8":
        converter.representative_dataset = representative
        # Only int8 builtins, so an op the quantizer cannot handle should fail instead of
        # silently staying float (an Edge TPU would run it on the CPU, or refuse). TF 2.21
        # does not fully keep that promise (see float_ops), so keras_to_tflite also checks
        # the written graph.
        converter.target_spec.supported_ops = [tf.lite.OpsSet.TFLITE_BUILTINS_INT8]
        io_type = {"float": tf.float32, "int8": tf.int8, "uint8": tf.uint8}[io]
        converter.inference_input_type = io_type
        converter.inference_output_type = io_type
    elif quant == "int16x8":
        converter.representative_dataset = representative
        converter.target_spec.supported_ops = [
            tf.lite.OpsSet.EXPERIMENTAL_TFLITE_BUILTINS_ACTIVATIONS_INT16_WEIGHTS_INT8
        ]
    else:  # pragma: no cover - validated by the parent
        raise ValueError(f"unknown quantization mode {quant!r}")


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
    ``[]``; a model with float fallback lists the ops that compute in float (read from the bytes, not
    from what was asked).
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


class _FloatNodes:
    """Keep the named ops in float while the rest is quantized (``mlir_quantize``'s ``denylisted_nodes``).

    TF's converter quantizes the calibrated model with ``lite._mlir_quantize``; TF's own
    QuantizationDebugger passes ``denylisted_nodes`` (op output tensor names) to the same function
    to leave chosen ops in float. This wraps it for the duration of one conversion in this child
    process. The model's int8/uint8 input and output stay as asked.
    """

    def __init__(self, names):
        self.names = list(names)

    def __enter__(self):
        from tensorflow.lite.python import lite

        self.lite, self.original = lite, lite._mlir_quantize
        names = self.names

        def quantize(*args, **kwargs):
            kwargs["denylisted_nodes"] = names
            return self.original(*args, **kwargs)

        if names:
            lite._mlir_quantize = quantize
        return self

    def __exit__(self, *exc):
        self.lite._mlir_quantize = self.original
        return False


def _release_memory() -> None:
    """Hand the converter's freed memory back to the OS before the read-back and fidelity check.

    The converter's buffers are freed when it returns, but glibc keeps them in its heap, so
    the interpreter and the float reference run would stack on top of them: measured on B7
    int8, the peak went from 5.6 GB after conversion to 8.2 GB at the end without this.
    """
    import contextlib
    import ctypes
    import gc

    gc.collect()
    with contextlib.suppress(OSError, AttributeError):  # not glibc (musl, macOS): nothing to trim
        ctypes.CDLL("libc.so.6").malloc_trim(0)


def _tensor_info(details: dict) -> dict:
    scale, zero_point = details.get("quantization", (0.0, 0))
    return {
        "name": details.get("name"),
        "dtype": np.dtype(details["dtype"]).name,
        "shape": [int(d) for d in details["shape"]],
        # -1 marks a dynamic dimension (--batch-size none); "shape" then shows 1.
        "shape_signature": [int(d) for d in details.get("shape_signature", details["shape"])],
        "scale": float(scale) if scale else None,
        "zero_point": int(zero_point) if scale else None,
    }


def _expected_dtype(quant: str, io: str) -> str:
    return IO_DTYPES[io] if quant == "int8" else "float32"


#: This child's calibration statistics, kept between conversions of the same model (the budget
#: mode converts again with other ranges without re-running the calibration pass).
_CALIBRATION_CACHE: dict = {}


def edgenet_calibrate(self, dataset_gen, on_step=None, ranges_method: str = "minmax", record: dict | None = None,
                      keep_histograms: bool = False):
    """Stand-in for ``tensorflow.lite...Calibrator.calibrate``: the same min/max statistics, faster.

    TF's calibrator sees only the first sample, to lay out the min/max fields exactly where
    the quantizer expects them; then :func:`edgenet.convert.calibrator.tensor_ranges` runs every
    sample through a multi-threaded interpreter, chunk by chunk, and each field gets its
    tensor's min/max over all samples, which is what the quantizer consumes. Why, and what it
    measures against TF's calibrator: :mod:`edgenet.convert.calibrator`.
    """
    from tensorflow.lite.tools import flatbuffer_utils

    from ..errors import EdgenetError
    from .calibrator import tensor_ranges

    samples = list(dataset_gen())
    float_model = flatbuffer_utils.convert_bytearray_to_object(self._model_content)
    names = [t.name for t in float_model.subgraphs[0].tensors]
    # Histograms cost time on every activation: only kept when a range method (now or, in the budget
    # mode, on a later rung) needs them.
    need_histograms = keep_histograms or ranges_method != "minmax"
    key = (bytes(self._model_content), len(samples))
    cached = _CALIBRATION_CACHE.get(key)
    if cached is not None and (cached[1] is not None or not need_histograms):
        ranges, histograms = cached
    else:
        histograms = {} if need_histograms else None
        ranges = tensor_ranges(float_model, samples, on_step=on_step, histograms=histograms)
        _CALIBRATION_CACHE.clear()
        _CALIBRATION_CACHE[key] = (ranges, histograms)
    if ranges_method != "minmax":
        from .ranges import choose_ranges

        graph0 = float_model.subgraphs[0]
        io = {int(i) for i in graph0.inputs} | {int(i) for i in graph0.outputs}
        chosen = choose_ranges(histograms, ranges_method, keep_minmax=io)
        ranges = {**ranges, **{i: r for i, (r, _) in chosen.items()}}
        if record is not None:
            methods: dict[str, int] = {}
            for _, m in chosen.values():
                methods[m] = methods.get(m, 0) + 1
            record["range_methods"] = dict(sorted(methods.items()))
    del float_model
    self._feed_tensors(lambda: iter(samples[:1]), resize_input=True)
    calibrated = flatbuffer_utils.convert_bytearray_to_object(self._calibrator.Calibrate())
    graph = calibrated.subgraphs[0]  # EfficientNets have one subgraph; others keep TF's statistics
    if [t.name for t in graph.tensors] != names:
        raise EdgenetError("edgenet calibrator: TF's calibration model and the float model differ in their "
                           "tensors; convert with --calibrator tflite")
    for i, tensor in enumerate(graph.tensors):
        q = tensor.quantization
        if q is not None and q.min is not None and len(q.min) == 1 and i in ranges:
            q.min, q.max = [ranges[i][0]], [ranges[i][1]]
    return bytes(flatbuffer_utils.convert_object_to_bytearray(calibrated))


def keras_to_tflite(model, quant: str, io: str = "float", calib=None, *, batch_size: int | None = 1,
                    name: str = "model", progress_file=None, quiet: bool = True,
                    crash_after_calibration: bool = False, calibrator: str = "tflite", ranges: str = "minmax",
                    record: dict | None = None, keep_histograms: bool = False,
                    float_nodes: tuple[str, ...] = ()) -> tuple[bytes, float]:
    """Convert a Keras model taking (batch, H, W, 3) float32 to TFLite bytes by the pinned path.

    Returns ``(bytes, seconds spent in TFLiteConverter.convert())``. ``calib`` (N, H, W, 3)
    float32 is required for int8/int16x8. Any converter failure (for int8: an op that has no
    int8 kernel) raises :class:`EdgenetError` with one line. ``ranges`` other than ``minmax``
    (:mod:`edgenet.convert.ranges`) needs edgenet's calibrator; ``record`` receives what was chosen.
    ``float_nodes`` (int8 only; op output tensor names, as the quant report names them) stay in float
    (the budget's float rung); the full-integer check is then skipped and :func:`precision_ops` tells
    which ops the result computes in float.
    """
    from tqdm import tqdm

    from .._tf import tf
    from ..errors import EdgenetError

    if quant in CALIBRATED_MODES and (calib is None or len(calib) == 0):
        raise EdgenetError(f"{name}: {quant} needs calibration data")
    if ranges != "minmax" and calibrator != "edgenet":
        raise EdgenetError(f"{name}: --ranges {ranges} needs --calibrator edgenet (TF's calibrator keeps min/max only)")
    height, width, channels = (int(d) for d in model.input_shape[1:])
    spec = tf.TensorSpec((batch_size, height, width, channels), tf.float32, name="input")
    serve = tf.function(lambda x: model(x, training=False), input_signature=[spec])
    concrete = serve.get_concrete_function()
    holder = tf.Module()  # owns the tf.function: keeps the non-deprecated converter path
    holder.serve = serve

    def calibration_bar():
        return tqdm(total=len(calib), desc=f"calibrating {name}", unit="img", file=progress_file or sys.stderr,
                    leave=False, position=1, disable=quiet)

    def representative():
        # TF's calibrator consumes the samples as it runs them: the bar follows the generator.
        # edgenet's takes them all at once and reports each sample it has run instead.
        bar = calibration_bar() if calibrator == "tflite" else None
        for i in range(len(calib)):
            yield [np.ascontiguousarray(calib[i : i + 1], dtype=np.float32)]
            if bar is not None:
                bar.update(1)
        if bar is not None:
            bar.close()
        if crash_after_calibration:
            os.kill(os.getpid(), signal.SIGSEGV)

    converter = tf.lite.TFLiteConverter.from_concrete_functions([concrete], holder)
    _configure(converter, tf, quant, io, representative)
    if float_nodes and quant != "int8":
        raise EdgenetError(f"{name}: float fallback for chosen ops applies to int8 only")
    t0 = time.perf_counter()
    try:
        with warnings.catch_warnings(), _FloatNodes(float_nodes):
            # Integer io always triggers this benign notice: the input statistics come from
            # the representative dataset, not from user-given mean/std.
            warnings.filterwarnings("ignore", message="Statistics for quantized inputs were expected")
            if calibrator == "edgenet" and quant in CALIBRATED_MODES:
                from tensorflow.lite.python.optimize import calibrator as tf_calibrator

                original = tf_calibrator.Calibrator.calibrate
                with calibration_bar() as bar:

                    def step(done: int, total: int) -> None:
                        # Steps are samples times chunks of the graph; shown in whole samples.
                        bar.update(done * len(calib) // total - bar.n)

                    def calibrate(self, dataset_gen):
                        return edgenet_calibrate(self, dataset_gen, on_step=step, ranges_method=ranges,
                                                 record=record, keep_histograms=keep_histograms)

                    tf_calibrator.Calibrator.calibrate = calibrate  # this child process only
                    try:
                        data = converter.convert()
                    finally:
                        tf_calibrator.Calibrator.calibrate = original
            else:
                data = converter.convert()
    except Exception as exc:  # ConverterError and friends: long multi-line messages
        raise EdgenetError(f"{name}: TFLite converter failed ({quant}): {one_line(exc, 400, pick='error')}") from None
    seconds = time.perf_counter() - t0
    # With float_nodes, what ends up in float is read back by the caller (precision_ops) and the budget
    # records what the bytes hold beside what was asked. They can differ in name: an asked output op
    # (Lite0's classifier, tensor "Identity") computes into "Identity1" and a QUANTIZE writes "Identity".
    if quant in CALIBRATED_MODES and not float_nodes:
        left = float_ops(data)
        if left:
            raise EdgenetError(
                f"{name}: {quant} conversion left {', '.join(left)} computing in float (no {quant} kernel); "
                f"a full-integer model must not contain float ops (int8-only accelerators such as the Edge TPU "
                f"cannot run them)"
            )
    return data, seconds


#: Calibration samples the budget's precision rungs rank ops on (never the held-out images).
RANKING_SAMPLES = 16


def float_rung(convert, correct, origin: dict, rounder=None):
    """The budget's float rung (a :data:`edgenet.convert.quality.PrecisionRung`).

    The converter cannot take an int8 model back to float, so the rung re-quantizes from the cached
    calibration with the base rung's own recipe (``origin[base]``: its range method, whether bias
    correction was applied and whether the weights were re-rounded), leaving the named ops in float:
    every other op is quantized as in the base.
    """

    def rung(base: bytes, names) -> bytes:
        method, bias, *rounded = origin[base]
        data = convert(method, tuple(names))
        if rounded and rounded[0] and rounder is not None:
            data = rounder(data)[0]
        if bias:
            data = correct(data)[0]
        return data

    return rung


def _int16_rung(float_model: Callable[[], bytes], calib, io: str):
    """The budget's int16 rung (a :data:`edgenet.convert.quality.PrecisionRung`), by :mod:`edgenet.convert.mixed`.

    The named tensors that can be 16-bit (producer and every consumer in int16) get int16 activations,
    the rest int8, from the float model and edgenet's own min/max ranges (measured once, on the
    calibration samples); the base rung's bytes only decided the ranking.
    """
    ranges: dict = {}

    def rung(base: bytes, names) -> bytes:
        from .mixed import int16_candidates, ranges_by_name, upgrade_to_int16

        float_bytes = float_model()
        if not ranges:
            ranges.update(ranges_by_name(float_bytes, np.asarray(calib, dtype=np.float32)))
        chosen = int16_candidates(float_bytes, list(names), len(names))
        return upgrade_to_int16(float_bytes, chosen, ranges=ranges, io=io)

    return rung


def run(request: dict, progress_file) -> dict:
    """Do one conversion described by ``request``; return the result (raises on failure)."""
    from .._version import __version__
    from ..errors import EdgenetError
    from ..family.variants import parse_variant
    from ..runtime.interpreter import TFLiteModel
    from .calibration import check_calibration_array

    variant = parse_variant(request["variant_spec"])
    quant, io = request["quant"], request["io"]
    calib = np.load(request["calib_npy"], mmap_mode="r") if request.get("calib_npy") else None
    if calib is not None:
        # The parent checked too; checked again here because a NaN reaching the
        # converter kills the process instead of raising.
        check_calibration_array(np.asarray(calib), [f"calibration sample {i + 1}" for i in range(len(calib))],
                                variant.contract)

    from .._tf import keras, tf
    from ..family.counts import variant_counts
    from ..family.model import build_model
    from ..weights.keras_files import classifier_classes, load_weights

    started = time.perf_counter()
    batch = request.get("batch_size")
    # Build with the class count the weights carry (a 10-class fine-tune converts as 10 classes).
    classes = (request.get("weights") and classifier_classes(request["weights"])) or 1000
    if not request.get("weights"):
        # Random weights: seeded, so the same command gives the same model (and the same numbers).
        keras.utils.set_random_seed(int(request.get("seed") or 0))
    model = build_model(variant, batch_size=batch, num_classes=classes)
    weights_info = None
    if request.get("weights"):
        weights_info = load_weights(model, variant, request["weights"])

    res = variant.resolution
    crash = os.environ.get(CRASH_ENV) in ("1", variant.name)
    conversion_seconds = [0.0]
    ranges_record: dict = {}
    origin: dict[bytes, tuple] = {}  # integer rung bytes -> (range method, bias corrected[, weights re-rounded])

    def convert(ranges: str, float_nodes: tuple[str, ...] = ()) -> bytes:
        data, seconds = keras_to_tflite(
            model, quant, io, calib, batch_size=batch, name=variant.name, progress_file=progress_file,
            quiet=request.get("quiet", False), crash_after_calibration=crash,
            calibrator=request.get("calibrator", "tflite"), ranges=ranges, record=ranges_record,
            keep_histograms=request.get("min_agreement") is not None, float_nodes=float_nodes)
        conversion_seconds[0] += seconds
        if not float_nodes:
            origin[data] = (ranges, False)
        return data

    holdout = None
    if request.get("holdout_npy") and quant in CALIBRATED_MODES:
        from .fidelity import HoldoutSet

        arr = np.load(request["holdout_npy"])
        groups = request.get("holdout_groups")  # image id per row: the views of one photo share one
        holdout = HoldoutSet(arr, int(request["holdout_images"]), request["holdout_source"], "",
                             None if groups is None else np.asarray(groups, dtype=np.int64))
    reference_logits: list = []

    def fidelity_of(data: bytes) -> dict | None:
        from .fidelity import fidelity_metrics

        if holdout is None:
            return None
        if not reference_logits:
            reference_logits.append(np.concatenate(
                [model(holdout.array[i : i + 1], training=False).numpy() for i in range(len(holdout.array))]))
        tfl_check = TFLiteModel(data, threads=max(1, os.cpu_count() or 1), source=f"{variant.name}-{quant}")
        quant_logits = np.concatenate([tfl_check.run(holdout.array[i : i + 1]) for i in range(len(holdout.array))])
        return fidelity_metrics(reference_logits[0], quant_logits, images=holdout.images,
                                source=holdout.source, groups=holdout.groups).to_dict()

    float_bytes: list = []

    def float_model() -> bytes:
        """The float .tflite of the model, converted once (bias correction, rounding, ranking, int16 need it)."""
        if not float_bytes:
            float_bytes.append(keras_to_tflite(model, "fp32", batch_size=batch, name=variant.name)[0])
        return float_bytes[0]

    def correct(data: bytes) -> tuple[bytes, dict]:
        from .bias import DEFAULT_BIAS_SAMPLES, correct_bias

        fixed, summary = correct_bias(float_model(), data, np.asarray(calib[:DEFAULT_BIAS_SAMPLES]))
        if data in origin:
            origin[fixed] = (origin[data][0], True, *origin[data][2:])
        return fixed, summary.to_dict()

    def rounder(data: bytes) -> tuple[bytes, dict]:
        from .rounding import DEFAULT_ROUNDING_SAMPLES, round_weights

        fixed, summary = round_weights(float_model(), data, np.asarray(calib[:DEFAULT_ROUNDING_SAMPLES]))
        if data in origin:
            origin[fixed] = (origin[data][0], origin[data][1], True)
        return fixed, summary.to_dict()

    from .quality import DEFAULT_MAX_LATENCY_COST_PCT, repair

    precision = []
    if request.get("allow_int16") and quant == "int8":  # full-integer still: tried before any float
        precision.append(("int16", _int16_rung(float_model, calib, io)))
    if request.get("allow_float") and quant == "int8":
        precision.append(("float", float_rung(convert, correct, origin, rounder)))

    def rank(data: bytes) -> list[str]:
        from .tensor_errors import measure_report

        samples = np.asarray(calib[:RANKING_SAMPLES], dtype=np.float32)
        report = measure_report(float_model(), data, samples, model=variant.name, source="calibration samples")
        return [t.name for t in report.ranked() if t.op not in ("INPUT", "QUANTIZE", "DEQUANTIZE")]

    def latency(plain: bytes, candidate: bytes) -> dict:
        from .paired_latency import paired_latency

        return paired_latency(plain, candidate)

    ranges_method = request.get("ranges", "minmax")
    try:
        data, fidelity, quality = repair(convert, correct, fidelity_of, ranges=ranges_method,
                                         bias_correction=bool(request.get("bias_correction")),
                                         min_agreement_pct=request.get("min_agreement"), precision=precision,
                                         rank=rank, upgraded=lambda d: [o["tensor"] for o in precision_ops(d)],
                                         latency=latency, max_latency_cost_pct=float(
                                             request.get("max_latency_cost") or DEFAULT_MAX_LATENCY_COST_PCT),
                                         round_weights=rounder if quant == "int8" else None,
                                         weight_rounding=bool(request.get("weight_rounding")))
    except ValueError as exc:
        raise EdgenetError(f"{variant.name}: {exc}") from None
    if quality["ranges"] != "minmax":
        quality["range_methods"] = ranges_record.get("range_methods")
    conversion_time_s = conversion_seconds[0]

    peak_after_convert_mb = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024.0
    _release_memory()
    # Read back with the runtime the model will meet on the device and check what was asked.
    tfl = TFLiteModel(data, threads=max(1, os.cpu_count() or 1), source=f"{variant.name}-{quant}")
    inputs = [_tensor_info(d) for d in tfl.input_details]
    outputs = [_tensor_info(d) for d in tfl.output_details]
    want = _expected_dtype(quant, io)
    for kind, infos in (("input", inputs), ("output", outputs)):
        for info in infos:
            if info["dtype"] != want:
                raise EdgenetError(
                    f"{variant.name}: converted {quant} model has {kind} dtype {info['dtype']}, "
                    f"expected {want} (--io {io})"
                )

    macs = variant_counts(variant, num_classes=classes).macs  # baselines: published (Keras applications)

    out = Path(request["model_out"])
    try:
        with open(out, "wb") as fh:
            fh.write(data)
            fh.flush()
            os.fsync(fh.fileno())
    except OSError as exc:  # a full disk: one line naming the output the user asked for
        from ..fsutil import write_error

        raise write_error(request.get("model_path") or out, exc) from None

    return {
        "ok": True,
        "params": int(model.count_params()),
        "macs": macs,
        "input": inputs[0],
        "output": outputs[0],
        "inputs": inputs,
        "outputs": outputs,
        "fidelity": fidelity,
        "quality": quality if quant in CALIBRATED_MODES else None,
        "weights_info": weights_info,
        "conversion_time_s": round(conversion_time_s, 3),
        "worker_time_s": round(time.perf_counter() - started, 3),
        "peak_memory_mb": round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024.0, 1),
        "peak_memory_after_convert_mb": round(peak_after_convert_mb, 1),
        "versions": {
            "edgenet": __version__,
            "tensorflow": tf.__version__,
            "keras": keras.__version__,
            "runtime": {"name": tfl.runtime.info.name, "version": tfl.runtime.info.version},
        },
        "converter_path": (f"tf.function(input ({batch or 'None'}, {res}, {res}, 3) float32) -> "
                           "TFLiteConverter.from_concrete_functions([fn], tf.Module)"),
    }


def main(argv: list[str] | None = None) -> int:
    argv = sys.argv[1:] if argv is None else argv
    request = json.loads(Path(argv[0]).read_text(encoding="utf-8"))
    result_path = Path(request["result_out"])
    # No core files: a crashed conversion of a large variant would dump gigabytes.
    resource.setrlimit(resource.RLIMIT_CORE, (0, 0))
    # TensorFlow's C++ chatter (and absl warnings) go to a log file; progress bars go to the
    # real stderr, kept on a duplicate descriptor.
    progress_file = os.fdopen(os.dup(2), "w", buffering=1)
    log_path = request.get("log_path")
    if log_path:
        log_fd = os.open(log_path, os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o600)
        os.dup2(log_fd, 1)
        os.dup2(log_fd, 2)
        os.close(log_fd)
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
    from ..errors import EdgenetError

    try:
        result = run(request, progress_file)
        code = 0
    except EdgenetError as exc:
        result, code = {"ok": False, "error": str(exc)}, 1
    except MemoryError:
        result, code = {"ok": False, "error": "out of memory during conversion"}, 1
    except Exception as exc:  # unexpected: one line for the user, the traceback in the log
        traceback.print_exc()
        result, code = {"ok": False, "error": f"{type(exc).__name__}: {one_line(exc, 400, pick='error')}"}, 1
    result_path.write_text(json.dumps(result), encoding="utf-8")
    progress_file.flush()
    return code


if __name__ == "__main__":
    sys.exit(main())
