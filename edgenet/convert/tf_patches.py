"""The TensorFlow internals edgenet patches, in one guarded place (conversion child process only).

Two hooks, both installed once (:func:`install`, idempotent) and active only inside a ``with``:

* :func:`calibration` swaps ``Calibrator.calibrate`` (``tensorflow.lite.python.optimize.calibrator``)
  for :func:`edgenet_calibrate`: edgenet's streamed, multi-threaded min/max (and histogram) pass
  (why: :mod:`edgenet.convert.calibrator`);
* :func:`float_nodes` passes ``denylisted_nodes`` to ``tensorflow.lite.python.lite._mlir_quantize``
  (the argument TF's own QuantizationDebugger uses) so the named ops stay float: the budget's float rung.

Both are private TensorFlow APIs (pinned: tensorflow-cpu 2.21). :func:`install` checks that each
attribute and argument it relies on exists and fails in one line naming the TensorFlow version and
the missing piece, instead of an AttributeError deep inside a conversion. Outside a ``with`` the
installed hooks call TensorFlow's originals unchanged.
"""

from __future__ import annotations

import contextlib
import hashlib
import inspect
import threading
from collections.abc import Callable, Iterator

import numpy as np

from ..errors import EdgenetError

__all__ = ["calibration", "edgenet_calibrate", "float_nodes", "install"]

_STATE = threading.local()  # the active hooks of this thread (the worker converts on one thread)
_INSTALLED: dict[str, Callable] = {}  # what was patched -> TensorFlow's original


def _missing(what: str) -> EdgenetError:
    import tensorflow as tf

    return EdgenetError(f"TensorFlow {tf.__version__} has no {what}, which edgenet's converter patches "
                        "(pinned to tensorflow-cpu 2.21); install the pinned version or convert with "
                        "--calibrator tflite and no --allow-float")


def install() -> None:
    """Patch TensorFlow once (a second call does nothing); one line if an internal it needs is absent."""
    if _INSTALLED:
        return
    from tensorflow.lite.python import lite
    from tensorflow.lite.python.optimize import calibrator as tf_calibrator

    cls = getattr(tf_calibrator, "Calibrator", None)
    for attr in ("calibrate", "_feed_tensors"):
        if not callable(getattr(cls, attr, None)):
            raise _missing(f"tensorflow.lite.python.optimize.calibrator.Calibrator.{attr}")
    quantize = getattr(lite, "_mlir_quantize", None)
    if not callable(quantize) or "denylisted_nodes" not in inspect.signature(quantize).parameters:
        raise _missing("tensorflow.lite.python.lite._mlir_quantize(denylisted_nodes=...)")
    original_calibrate = cls.calibrate

    def calibrate(self, dataset_gen, *args, **kwargs):
        hook = getattr(_STATE, "calibrate", None)
        if hook is None:
            return original_calibrate(self, dataset_gen, *args, **kwargs)
        return hook(self, dataset_gen)

    def mlir_quantize(*args, **kwargs):
        names = getattr(_STATE, "float_nodes", ())
        if names:
            kwargs["denylisted_nodes"] = list(names)
        return quantize(*args, **kwargs)

    cls.calibrate = calibrate
    lite._mlir_quantize = mlir_quantize
    _INSTALLED.update(calibrate=original_calibrate, mlir_quantize=quantize)


@contextlib.contextmanager
def _active(name: str, value) -> Iterator[None]:
    install()
    previous = getattr(_STATE, name, None)
    setattr(_STATE, name, value)
    try:
        yield
    finally:
        setattr(_STATE, name, previous)


def calibration(hook: Callable) -> contextlib.AbstractContextManager:
    """Within the ``with``, TF's calibrator calls ``hook(calibrator, dataset_gen)`` (see :func:`edgenet_calibrate`)."""
    return _active("calibrate", hook)


def float_nodes(names) -> contextlib.AbstractContextManager:
    """Within the ``with``, the quantizer leaves the ops writing ``names`` (tensor names) in float."""
    return _active("float_nodes", tuple(names))


#: This child's calibration statistics, kept between conversions of the same model (the budget
#: mode converts again with other ranges without re-running the calibration pass).
_CALIBRATION_CACHE: dict = {}


def edgenet_calibrate(self, dataset_gen, on_step=None, ranges_method: str = "minmax", record: dict | None = None,
                      keep_histograms: bool = False):
    """Stand-in for ``Calibrator.calibrate``: the same min/max statistics, faster.

    TF's calibrator sees only the first sample, to lay out the min/max fields exactly where
    the quantizer expects them; then :func:`edgenet.convert.calibrator.tensor_ranges` runs every
    sample through a multi-threaded interpreter, chunk by chunk, and each field gets its
    tensor's min/max over all samples, which is what the quantizer consumes. Why, and what it
    measures against TF's calibrator: :mod:`edgenet.convert.calibrator`.
    """
    from tensorflow.lite.tools import flatbuffer_utils

    from .calibrator import tensor_ranges

    samples = list(dataset_gen())
    float_model = flatbuffer_utils.convert_bytearray_to_object(self._model_content)
    names = [t.name for t in float_model.subgraphs[0].tensors]
    # Histograms cost time on every activation: only kept when a range method (now or, in the budget
    # mode, on a later rung) needs them.
    need_histograms = keep_histograms or ranges_method != "minmax"
    # The samples' own bytes are in the key: the same model calibrated on other data of the same count (a second
    # calibration set in one process) must not get the first set's ranges.
    digest = hashlib.sha256()
    for sample in samples:
        for array in sample:
            digest.update(np.ascontiguousarray(array).tobytes())
    key = (hashlib.sha256(bytes(self._model_content)).hexdigest(), digest.hexdigest())
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
