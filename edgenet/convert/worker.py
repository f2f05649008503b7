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

import contextlib
import functools
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

from ..errors import EdgenetError, one_line
from . import tf_patches
from .modes import CALIBRATED_MODES
from .precision import float_ops, precision_ops
from .request import QualityReport, TensorInfo, WorkerJob, WorkerResult

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


def _tensor_info(details: dict) -> TensorInfo:
    scale, zero_point = details.get("quantization", (0.0, 0))
    return TensorInfo(
        name=details.get("name"),
        dtype=np.dtype(details["dtype"]).name,
        shape=tuple(int(d) for d in details["shape"]),
        # -1 marks a dynamic dimension (--batch-size none); "shape" then shows 1.
        shape_signature=tuple(int(d) for d in details.get("shape_signature", details["shape"])),
        scale=float(scale) if scale else None,
        zero_point=int(zero_point) if scale else None,
    )


def _expected_dtype(quant: str, io: str) -> str:
    return IO_DTYPES[io] if quant == "int8" else "float32"


def traced(model, batch_size: int | None = 1):
    """``model`` as one ``tf.function`` of (batch_size, H, W, 3) float32 pixels: the graph the converter converts
    and the float reference the fidelity check runs (eager calls cost a Python dispatch per layer)."""
    from .._tf import tf

    height, width, channels = (int(d) for d in model.input_shape[1:])
    spec = tf.TensorSpec((batch_size, height, width, channels), tf.float32, name="input")
    return tf.function(lambda x: model(x, training=False), input_signature=[spec])


def keras_to_tflite(model, quant: str, io: str = "float", calib=None, *, batch_size: int | None = 1,
                    name: str = "model", progress_file=None, quiet: bool = True,
                    crash_after_calibration: bool = False, calibrator: str = "tflite", ranges: str = "minmax",
                    record: dict | None = None, keep_histograms: bool = False,
                    float_nodes: tuple[str, ...] = (), serve=None) -> tuple[bytes, float]:
    """Convert a Keras model taking (batch, H, W, 3) float32 to TFLite bytes by the pinned path.

    Returns ``(bytes, seconds spent in TFLiteConverter.convert())``. ``calib`` (N, H, W, 3)
    float32 is required for int8/int16x8. Any converter failure (for int8: an op that has no
    int8 kernel) raises :class:`EdgenetError` with one line. ``ranges`` other than ``minmax``
    (:mod:`edgenet.convert.ranges`) needs edgenet's calibrator; ``record`` receives what was chosen.
    ``float_nodes`` (int8 only; op output tensor names, as the quant report names them) stay in float
    (the budget's float rung); the full-integer check is then skipped and :func:`precision_ops` tells
    which ops the result computes in float. ``serve``: ``model`` already traced by :func:`traced` with this
    ``batch_size`` (a conversion converting one model several times traces it once).
    """
    from tqdm import tqdm

    from .._tf import tf

    if quant in CALIBRATED_MODES and (calib is None or len(calib) == 0):
        raise EdgenetError(f"{name}: {quant} needs calibration data")
    if ranges != "minmax" and calibrator != "edgenet":
        raise EdgenetError(f"{name}: --ranges {ranges} needs --calibrator edgenet (TF's calibrator keeps min/max only)")
    serve = traced(model, batch_size) if serve is None else serve
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
        with contextlib.ExitStack() as stack:
            stack.enter_context(warnings.catch_warnings())
            # Integer io always triggers this benign notice: the input statistics come from
            # the representative dataset, not from user-given mean/std.
            warnings.filterwarnings("ignore", message="Statistics for quantized inputs were expected")
            if float_nodes:
                stack.enter_context(tf_patches.float_nodes(float_nodes))
            if calibrator == "edgenet" and quant in CALIBRATED_MODES:
                bar = stack.enter_context(calibration_bar())

                def step(done: int, total: int) -> None:
                    # Steps are samples times chunks of the graph; shown in whole samples.
                    bar.update(done * len(calib) // total - bar.n)

                stack.enter_context(tf_patches.calibration(functools.partial(
                    tf_patches.edgenet_calibrate, on_step=step, ranges_method=ranges, record=record,
                    keep_histograms=keep_histograms)))
            data = converter.convert()
    except EdgenetError:
        raise
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
#: Rows per call of the float reference (:meth:`Conversion.logits`) at 224 x 224 pixels; fewer at higher
#: resolutions (same pixels per call), so B7's 600 x 600 activations stay a few hundred MB.
LOGITS_BATCH = 32


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


class Conversion:
    """One variant's conversion in this child: its model and inputs, and the steps :func:`run` takes in order.

    The budget's ladder (:func:`edgenet.convert.quality.repair`) calls back into :meth:`convert`,
    :meth:`correct`, :meth:`round`, :meth:`fidelity`, :meth:`rank` and :meth:`latency`; what they share
    (the float model, the reference logits, which recipe made which bytes) is kept here, by name.
    """

    def __init__(self, job: WorkerJob, progress_file=None):
        from ..family.variants import parse_variant

        self.job, self.request = job, job.request
        self.variant = parse_variant(job.variant_spec)
        self.progress_file = progress_file
        self.started = time.perf_counter()
        self.conversion_s = 0.0  # TFLiteConverter.convert() alone, summed over the ladder's rungs
        self.range_record: dict = {}  # what --ranges chose (edgenet_calibrate fills it)
        self.origin: dict[bytes, tuple] = {}  # integer rung bytes -> (range method, bias corrected[, re-rounded])
        self._float_bytes: bytes | None = None
        self._reference: dict = {}  # id(held-out set) -> the Keras model's logits on it
        self._serve = None  # the Keras model as one traced graph (:attr:`serve`)
        self._batched = None  # and traced without a static batch, for the float reference (:meth:`logits`)
        self.calib = self._calibration()
        self.holdout = self._holdout()
        self.model, self.classes, self.weights_format = self._build()

    # ---- inputs
    def _calibration(self):
        from .calibration import check_calibration_array

        if not self.job.calib_npy:
            return None
        calib = np.load(self.job.calib_npy, mmap_mode="r")
        # The parent checked too; checked again here because a NaN reaching the converter kills the
        # process instead of raising.
        check_calibration_array(np.asarray(calib), [f"calibration sample {i + 1}" for i in range(len(calib))],
                                self.variant.contract)
        return calib

    def _holdout(self):
        from .fidelity import HoldoutSet

        job = self.job
        if not job.holdout_npy or not self.request.calibrated:
            return None
        groups = None if job.holdout_groups is None else np.asarray(job.holdout_groups, dtype=np.int64)
        return HoldoutSet(np.load(job.holdout_npy), job.holdout_images, job.holdout_source, "", groups)

    def _build(self):
        from .._tf import keras
        from ..family.model import build_model
        from ..weights.keras_files import classifier_classes, load_weights

        weights = self.request.weights
        # Build with the class count the weights carry (a 10-class fine-tune converts as 10 classes).
        classes = (weights and classifier_classes(str(weights))) or 1000
        if weights is None:
            # Random weights: seeded, so the same command gives the same model (and the same numbers).
            keras.utils.set_random_seed(self.request.seed)
        model = build_model(self.variant, batch_size=self.request.batch_size, num_classes=classes)
        info = load_weights(model, self.variant, str(weights)) if weights is not None else None
        return model, classes, (info or {}).get("format")

    # ---- the ladder's callbacks
    def convert(self, ranges: str, float_nodes: tuple[str, ...] = ()) -> bytes:
        r = self.request
        data, seconds = keras_to_tflite(
            self.model, r.quant, r.io, self.calib, batch_size=r.batch_size, name=self.variant.name,
            progress_file=self.progress_file, quiet=not r.progress,
            crash_after_calibration=os.environ.get(CRASH_ENV) in ("1", self.variant.name),
            calibrator=r.calibrator, ranges=ranges, record=self.range_record,
            keep_histograms=r.min_agreement is not None, float_nodes=float_nodes, serve=self.serve)
        self.conversion_s += seconds
        if not float_nodes:
            self.origin[data] = (ranges, False)
        return data

    def float_model(self) -> bytes:
        """The float .tflite of the model, converted once (bias correction, rounding, ranking, int16 need it)."""
        if self._float_bytes is None:
            self._float_bytes = keras_to_tflite(self.model, "fp32", batch_size=self.request.batch_size,
                                                name=self.variant.name, serve=self.serve)[0]
        return self._float_bytes

    def correct(self, data: bytes) -> tuple[bytes, dict]:
        from .bias import DEFAULT_BIAS_SAMPLES, correct_bias

        fixed, summary = correct_bias(self.float_model(), data, np.asarray(self.calib[:DEFAULT_BIAS_SAMPLES]))
        if data in self.origin:
            self.origin[fixed] = (self.origin[data][0], True, *self.origin[data][2:])
        return fixed, summary.to_dict()

    def round(self, data: bytes) -> tuple[bytes, dict]:
        from .rounding import DEFAULT_ROUNDING_SAMPLES, round_weights

        fixed, summary = round_weights(self.float_model(), data, np.asarray(self.calib[:DEFAULT_ROUNDING_SAMPLES]),
                                       method=self.request.rounding_method)
        if data in self.origin:
            self.origin[fixed] = (self.origin[data][0], self.origin[data][1], True)
        return fixed, summary.to_dict()

    def fidelity(self, data: bytes, hold=None) -> dict | None:
        """The fidelity on ``hold`` (default: the whole held-out set; the budget passes its choice/report halves)."""
        from ..runtime.interpreter import TFLiteModel
        from .fidelity import fidelity_metrics

        hold = self.holdout if hold is None else hold
        if hold is None:
            return None
        rows = range(len(hold.array))
        if id(hold) not in self._reference:
            self._reference[id(hold)] = self.logits(hold.array)
        check = TFLiteModel(data, threads=max(1, os.cpu_count() or 1), source=self.name)
        quantized = np.concatenate([check.run(hold.array[i : i + 1]) for i in rows])
        return fidelity_metrics(self._reference[id(hold)], quantized, images=hold.images, source=hold.source,
                                groups=hold.groups).to_dict()

    @property
    def serve(self):
        """The Keras model traced once (:func:`traced`): every conversion of it and its float logits use it."""
        if self._serve is None:
            self._serve = traced(self.model, self.request.batch_size)
        return self._serve

    def logits(self, array) -> np.ndarray:
        """The Keras model's logits on ``array``, through a traced graph, many rows a call.

        Eager calls cost a Python dispatch per layer (512 held-out views of a tiny model took a minute that way), and
        one call per row of a traced graph a graph dispatch per row: with the converter's static batch of 1, the
        reference uses a second trace of the same model without a static batch (``benchmarks/reference_logits.py``).
        """
        if self.request.batch_size is None:
            serve = self.serve
        else:
            if self._batched is None:
                self._batched = traced(self.model, None)
            serve = self._batched
        height, width = (int(d) for d in self.model.input_shape[1:3])
        step = max(1, LOGITS_BATCH * 224 * 224 // (height * width))
        return np.concatenate([serve(np.asarray(array[i : i + step], dtype=np.float32)).numpy()
                               for i in range(0, len(array), step)])

    def rank(self, data: bytes) -> list[str]:
        from .tensor_errors import measure_report

        samples = np.asarray(self.calib[:RANKING_SAMPLES], dtype=np.float32)
        report = measure_report(self.float_model(), data, samples, model=self.variant.name,
                                source="calibration samples")
        return [t.name for t in report.ranked() if t.op not in ("INPUT", "QUANTIZE", "DEQUANTIZE")]

    @staticmethod
    def latency(plain: bytes, candidate: bytes) -> dict:
        from .paired_latency import paired_latency

        return paired_latency(plain, candidate)

    def precision_rungs(self) -> list:
        """The budget's precision rungs the request allows (int8 only), full-integer int16 before any float."""
        r = self.request
        rungs = []
        if r.allow_int16:
            rungs.append(("int16", _int16_rung(self.float_model, self.calib, r.io)))
        if r.allow_float:
            rungs.append(("float", float_rung(self.convert, self.correct, self.origin, self.round)))
        return rungs

    # ---- the steps
    @property
    def name(self) -> str:
        return f"{self.variant.name}-{self.request.quant}"

    def quantize(self) -> tuple[bytes, dict | None, QualityReport | None]:
        """Convert, with the repairs and the budget's ladder the request asks: (bytes, fidelity, quality)."""
        from .quality import RepairPlan, repair

        r = self.request
        # The budget chooses its rung on one half of the held-out photos and reports on the other (never fitted).
        choose, report = self.holdout.split() if self.holdout is not None and r.min_agreement is not None \
            else (self.holdout, None)
        try:
            data, fidelity, record = repair(RepairPlan(
                self.convert, self.correct, lambda d: self.fidelity(d, choose),
                report=None if report is None else (lambda d: self.fidelity(d, report)), ranges=r.ranges,
                bias_correction=r.bias_correction, min_agreement_pct=r.min_agreement,
                precision=tuple(self.precision_rungs()), rank=self.rank,
                upgraded=lambda d: [o["tensor"] for o in precision_ops(d)], latency=self.latency,
                max_latency_cost_pct=r.max_latency_cost, round_weights=self.round if r.quant == "int8" else None,
                weight_rounding=r.weight_rounding))
        except ValueError as exc:
            raise EdgenetError(f"{self.variant.name}: {exc}") from None
        if not r.calibrated:
            return data, fidelity, None
        if record["ranges"] != "minmax":
            record["range_methods"] = self.range_record.get("range_methods")
        return data, fidelity, QualityReport.from_dict(record)

    def read_back(self, data: bytes):
        """The model as the device's runtime reads it: (runtime, inputs, outputs), io dtypes checked."""
        from ..runtime.interpreter import TFLiteModel

        r = self.request
        tfl = TFLiteModel(data, threads=max(1, os.cpu_count() or 1), source=self.name)
        inputs = tuple(_tensor_info(d) for d in tfl.input_details)
        outputs = tuple(_tensor_info(d) for d in tfl.output_details)
        want = _expected_dtype(r.quant, r.io)
        for kind, infos in (("input", inputs), ("output", outputs)):
            for info in infos:
                if info.dtype != want:
                    raise EdgenetError(f"{self.variant.name}: converted {r.quant} model has {kind} dtype "
                                       f"{info.dtype}, expected {want} (--io {r.io})")
        return tfl.runtime.info, inputs, outputs

    def write(self, data: bytes) -> None:
        """The staging file, fsynced (the parent renames it into place); a full disk names the user's output."""
        from ..fsutil import write_error

        try:
            with open(self.job.model_out, "wb") as fh:
                fh.write(data)
                fh.flush()
                os.fsync(fh.fileno())
        except OSError as exc:
            raise write_error(self.job.model_path, exc) from None


def _peak_mb() -> float:
    return round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024.0, 1)


def run(job: WorkerJob, progress_file=None) -> WorkerResult:
    """Do one conversion described by ``job``; return its typed result (raises :class:`EdgenetError`)."""
    from .._tf import keras, tf
    from .._version import __version__
    from ..family.counts import variant_counts
    from .request import _fidelity

    conversion = Conversion(job, progress_file)
    data, fidelity, quality = conversion.quantize()
    peak_after_convert_mb = _peak_mb()
    _release_memory()
    runtime, inputs, outputs = conversion.read_back(data)
    conversion.write(data)
    variant, batch, res = conversion.variant, job.request.batch_size, conversion.variant.resolution
    return WorkerResult(
        params=int(conversion.model.count_params()),
        macs=variant_counts(variant, num_classes=conversion.classes).macs,  # baselines: published (Keras apps)
        inputs=inputs,
        outputs=outputs,
        fidelity=None if fidelity is None else _fidelity(fidelity),
        quality=quality,
        weights_format=conversion.weights_format,
        conversion_time_s=round(conversion.conversion_s, 3),
        worker_time_s=round(time.perf_counter() - conversion.started, 3),
        peak_memory_mb=_peak_mb(),
        peak_memory_after_convert_mb=peak_after_convert_mb,
        versions={"edgenet": __version__, "tensorflow": tf.__version__, "keras": keras.__version__,
                  "runtime": {"name": runtime.name, "version": runtime.version}},
        converter_path=(f"tf.function(input ({batch or 'None'}, {res}, {res}, 3) float32) -> "
                        "TFLiteConverter.from_concrete_functions([fn], tf.Module)"),
    )


#: Packages Keras imports at start-up whenever they are installed (its scikit-learn wrappers, its plotting) and no
#: conversion uses. The worker is a fresh process that only converts, so it keeps them out: Keras treats them as
#: absent, and TensorFlow's import takes about a third less (``benchmarks/worker_startup.py``).
UNUSED_BY_CONVERSION: tuple[str, ...] = ("sklearn", "matplotlib")


def skip_unused_imports() -> None:
    """Make :data:`UNUSED_BY_CONVERSION` unimportable in this process (only the worker's ``main`` calls this)."""
    for name in UNUSED_BY_CONVERSION:
        sys.modules.setdefault(name, None)


def main(argv: list[str] | None = None) -> int:
    """``python -m edgenet.convert.worker JOB.json``: writes ``{"ok": true, "result": ...}`` or one error line."""
    import json

    skip_unused_imports()
    argv = sys.argv[1:] if argv is None else argv
    try:
        job = WorkerJob.from_json(Path(argv[0]).read_text(encoding="utf-8"))
    except (OSError, EdgenetError) as exc:  # nowhere to write a result: one line on stderr
        print(f"error: {argv[0]}: {exc}", file=sys.stderr)
        return 2
    # No core files: a crashed conversion of a large variant would dump gigabytes.
    resource.setrlimit(resource.RLIMIT_CORE, (0, 0))
    # TensorFlow's C++ chatter (and absl warnings) go to a log file; progress bars go to the
    # real stderr, kept on a duplicate descriptor.
    progress_file = os.fdopen(os.dup(2), "w", buffering=1)
    if job.log_path:
        log_fd = os.open(job.log_path, os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o600)
        os.dup2(log_fd, 1)
        os.dup2(log_fd, 2)
        os.close(log_fd)
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
    try:
        out, code = {"ok": True, "result": run(job, progress_file).to_dict()}, 0
    except EdgenetError as exc:
        out, code = {"ok": False, "error": str(exc)}, 1
    except MemoryError:
        out, code = {"ok": False, "error": "out of memory during conversion"}, 1
    except Exception as exc:  # unexpected: one line for the user, the traceback in the log
        traceback.print_exc()
        out, code = {"ok": False, "error": f"{type(exc).__name__}: {one_line(exc, 400, pick='error')}"}, 1
    Path(job.result_out).write_text(json.dumps(out), encoding="utf-8")
    progress_file.flush()
    return code


if __name__ == "__main__":
    sys.exit(main())
