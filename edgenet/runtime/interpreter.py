"""The TFLite interpreter, wherever it comes from, and a small model wrapper.

Runtime choice: ``ai_edge_litert`` (the maintained LiteRT wheel, also on aarch64 Raspberry Pi OS),
else ``tflite_runtime`` (older Pi/Coral images), else ``tensorflow.lite`` (only imported as the last
resort, because TensorFlow is heavy and absent on edge devices). The choice and its version are
recorded so every latency figure says what produced it.

Models are always handed to the interpreter as bytes (``model_content=``): the bytes path runs the
flatbuffer verifier, so a corrupt or truncated file fails with an error instead of reading out of
bounds. The thread count is always set explicitly: the default is implementation-defined and would
make results from different machines incomparable.

Quantizing inputs and dequantizing outputs uses the model's own parameters through
``edgenet.pixels.preprocess.quantize_input``/``dequantize`` (one rounding rule for the whole project).
"""

from __future__ import annotations

import ctypes
import importlib
import os
from dataclasses import dataclass
from pathlib import Path
from types import ModuleType
from typing import Any

import numpy as np

from ..errors import EdgenetError, InputFileError, one_line
from ..logs import native_stderr_filtered
from .delegates import DELEGATES, EDGETPU_LIBRARY

__all__ = [
    "RUNTIME_MODULES",
    "EDGETPU_CUSTOM_OP",
    "DelegateError",
    "ModelLoadError",
    "QuantParams",
    "Runtime",
    "RuntimeInfo",
    "TFLiteModel",
    "is_edgetpu_compiled",
    "load_runtime",
    "make_interpreter",
]

#: Interpreter modules in order of preference: (record name, import path).
RUNTIME_MODULES: tuple[tuple[str, str], ...] = (
    ("ai_edge_litert", "ai_edge_litert.interpreter"),
    ("tflite_runtime", "tflite_runtime.interpreter"),
    ("tensorflow", "tensorflow.lite"),
)

#: The custom operator edgetpu_compiler puts in a model for the part mapped to the Edge TPU.
EDGETPU_CUSTOM_OP = b"edgetpu-custom-op"


class ModelLoadError(EdgenetError):
    """The interpreter rejected a model (not a valid flatbuffer, unsupported op, allocation failure)."""


class DelegateError(EdgenetError):
    """A delegate could not be used: library missing, no device, or a model not compiled for it."""


@dataclass(frozen=True)
class RuntimeInfo:
    """Which interpreter package runs the models, and its version."""

    name: str
    version: str | None

    def to_dict(self) -> dict:
        return {"name": self.name, "version": self.version}


@dataclass(frozen=True)
class Runtime:
    """A loaded interpreter module with the pieces edgenet uses."""

    info: RuntimeInfo
    module: ModuleType

    @property
    def Interpreter(self):  # noqa: N802 - mirrors the runtime's class name
        return self.module.Interpreter

    def load_delegate(self, library: str, options: dict | None = None):
        return self.module.load_delegate(library, options)

    @property
    def op_resolver_type(self):
        """``OpResolverType`` enum, or None when the runtime predates it."""
        return getattr(self.module, "OpResolverType", None) or getattr(
            getattr(self.module, "experimental", None), "OpResolverType", None
        )


_RUNTIME_CACHE: dict[tuple[str, ...], Runtime] = {}


def _package_version(dist: str, module: ModuleType) -> str | None:
    from importlib.metadata import PackageNotFoundError, version

    for name in (dist, dist.replace("_", "-"), "tensorflow-cpu" if dist == "tensorflow" else dist):
        try:
            return version(name)
        except PackageNotFoundError:
            continue
    return getattr(module, "__version__", None)


def load_runtime(preferred: tuple[str, ...] | None = None) -> Runtime:
    """Import the first available interpreter module.

    ``preferred`` lists record names from :data:`RUNTIME_MODULES` to try, in order (default: all).
    Raises :class:`~edgenet.errors.MissingDependencyError` when none is installed.
    """
    names = tuple(preferred) if preferred else tuple(name for name, _ in RUNTIME_MODULES)
    if names in _RUNTIME_CACHE:
        return _RUNTIME_CACHE[names]
    paths = dict(RUNTIME_MODULES)
    unknown = [n for n in names if n not in paths]
    if unknown:
        raise EdgenetError(f"unknown runtime {unknown[0]!r}; choose from {', '.join(paths)}")
    for name in names:
        try:
            with native_stderr_filtered():  # the tf.lite fallback imports TensorFlow: its start-up chatter
                module = importlib.import_module(paths[name])
        except ImportError:
            continue
        if name == "tensorflow":  # tf.lite exposes Interpreter; load_delegate lives in tf.lite.experimental
            module = _TFLiteShim(module)
        runtime = Runtime(RuntimeInfo(name, _package_version(name, importlib.import_module(name))), module)
        _RUNTIME_CACHE[names] = runtime
        return runtime
    from ..errors import MissingDependencyError

    raise MissingDependencyError("ai-edge-litert", "tflite", "running a .tflite model")


class _TFLiteShim(ModuleType):
    """Gives ``tensorflow.lite`` the same surface as the standalone interpreter modules."""

    def __init__(self, lite):
        super().__init__("tensorflow.lite")
        self.Interpreter = lite.Interpreter
        self.load_delegate = lite.experimental.load_delegate
        self.OpResolverType = lite.experimental.OpResolverType


def is_edgetpu_compiled(model_bytes: bytes) -> bool:
    """True when the model contains the ``edgetpu-custom-op`` that ``edgetpu_compiler`` inserts.

    Reads the operator codes with the flatbuffer schema when ``ai_edge_litert`` ships it; otherwise
    (``tflite_runtime`` has no schema module) falls back to a byte scan, which cannot miss the op
    because custom op names are stored verbatim.
    """
    try:
        from ai_edge_litert import schema_py_generated as schema
    except ImportError:
        return EDGETPU_CUSTOM_OP in model_bytes
    try:
        model = schema.Model.GetRootAsModel(model_bytes, 0)
        codes = [model.OperatorCodes(i) for i in range(model.OperatorCodesLength())]
        return any(code is not None and code.CustomCode() == EDGETPU_CUSTOM_OP for code in codes)
    except Exception:  # noqa: BLE001 - unparsable buffer: the verifier will reject it later
        return EDGETPU_CUSTOM_OP in model_bytes


def make_interpreter(
    model_bytes: bytes,
    threads: int,
    xnnpack: bool = True,
    delegate: str | None = None,
    edgetpu_lib: str = EDGETPU_LIBRARY,
    *,
    source: str = "<model bytes>",
    runtime: Runtime | None = None,
    xnnpack_latest: bool = False,
):
    """Create an interpreter for ``model_bytes`` and allocate its tensors.

    ``xnnpack_latest=True`` lets the default XNNPACK delegate use all its flag-protected features
    (``experimental_default_delegate_latest_features``); runtimes without that switch raise.
    ``xnnpack=False`` selects the builtin kernels without default delegates (XNNPACK is applied by
    default in LiteRT; switching it off shows the plain-kernel latency older runtimes give).
    ``delegate="edgetpu"`` requires an Edge TPU-compiled model and a working ``edgetpu_lib``;
    anything else raises :class:`DelegateError` rather than silently running on the CPU, so a CPU
    figure can never be reported under an Edge TPU label. ``source`` names the model in errors.
    """
    if not isinstance(threads, int) or threads < 1:
        raise EdgenetError(f"threads must be a positive integer, got {threads!r}")
    delegate = None if delegate in (None, "cpu") else delegate
    if delegate not in (None, "edgetpu"):
        raise EdgenetError(f"unknown delegate {delegate!r}; choose from {', '.join(DELEGATES)}")
    runtime = runtime or load_runtime()
    kwargs: dict[str, Any] = {"model_content": bytes(model_bytes), "num_threads": threads}
    if not xnnpack:
        resolver = runtime.op_resolver_type
        if resolver is None:
            raise EdgenetError(f"{runtime.info.name} {runtime.info.version} cannot switch XNNPACK off")
        kwargs["experimental_op_resolver_type"] = resolver.BUILTIN_WITHOUT_DEFAULT_DELEGATES
    if xnnpack_latest:
        import inspect

        if "experimental_default_delegate_latest_features" not in inspect.signature(runtime.Interpreter).parameters:
            raise EdgenetError(f"{runtime.info.name} {runtime.info.version} has no XNNPACK latest-features switch")
        kwargs["experimental_default_delegate_latest_features"] = True
    if delegate == "edgetpu":
        if not is_edgetpu_compiled(model_bytes):
            raise DelegateError(
                f"{source}: not compiled for the Edge TPU (no {EDGETPU_CUSTOM_OP.decode()}); "
                "run edgetpu_compiler on the int8 model first"
            )
        try:
            # Load the library first: when it is missing, the runtime's Delegate would fail in its
            # constructor and then raise again from __del__ at garbage collection.
            ctypes.CDLL(edgetpu_lib)
            kwargs["experimental_delegates"] = [runtime.load_delegate(edgetpu_lib)]
        except (OSError, ValueError, RuntimeError) as exc:
            why = one_line(exc, empty=type(exc).__name__)
            raise DelegateError(
                f"Edge TPU delegate {edgetpu_lib} unavailable (library missing or no device): {why}"
            ) from None
    try:
        with native_stderr_filtered():  # LiteRT's "INFO: Created ... XNNPACK delegate" line (--verbose shows it)
            interpreter = runtime.Interpreter(**kwargs)
            interpreter.allocate_tensors()
    except (ValueError, RuntimeError) as exc:
        why = one_line(exc, empty=type(exc).__name__)
        if delegate == "edgetpu":
            raise DelegateError(f"{source}: Edge TPU delegate failed: {why}") from None
        raise ModelLoadError(f"{source}: interpreter rejected the model: {why}") from None
    return interpreter


@dataclass(frozen=True)
class QuantParams:
    """Affine quantization of a tensor: ``real = scale * (q - zero_point)``; scale 0 = not quantized."""

    scale: float
    zero_point: int
    dtype: np.dtype

    @property
    def quantized(self) -> bool:
        return self.scale != 0.0 and np.issubdtype(self.dtype, np.integer)

    @classmethod
    def from_details(cls, details: dict) -> QuantParams:
        scale, zero_point = details.get("quantization", (0.0, 0))
        return cls(float(scale), int(zero_point), np.dtype(details["dtype"]))


def _quantize(x: np.ndarray, q: QuantParams) -> np.ndarray:
    """Float -> the model's input dtype with its own scale/zero point (edgenet.pixels.preprocess rule)."""
    if not q.quantized:
        return np.asarray(x, dtype=q.dtype)
    from ..pixels.preprocess import quantize_input  # lazy: pulls in pillow, not needed for float models

    return quantize_input(x, q.scale, q.zero_point, q.dtype)


def _dequantize(x: np.ndarray, q: QuantParams) -> np.ndarray:
    if not q.quantized:
        return np.asarray(x, dtype=np.float32)
    from ..pixels.preprocess import dequantize

    return dequantize(x, q.scale, q.zero_point)


class TFLiteModel:
    """A .tflite file loaded into an interpreter, run on float pixels, returning float outputs."""

    def __init__(
        self,
        model_bytes: bytes,
        *,
        threads: int = 1,
        xnnpack: bool = True,
        delegate: str | None = None,
        edgetpu_lib: str = EDGETPU_LIBRARY,
        source: str = "<model bytes>",
    ):
        self.source = source
        self.model_bytes = model_bytes
        self.runtime = load_runtime()
        self.interpreter = make_interpreter(
            model_bytes, threads, xnnpack, delegate, edgetpu_lib, source=source, runtime=self.runtime
        )
        self.input_details = self.interpreter.get_input_details()
        self.output_details = self.interpreter.get_output_details()
        if len(self.input_details) != 1:
            raise ModelLoadError(f"{source}: expected one input tensor, found {len(self.input_details)}")

    @classmethod
    def from_path(cls, path: str | os.PathLike, **kwargs) -> TFLiteModel:
        """Read the file and load it; a missing or corrupt file raises ``InputFileError``."""
        from ..fsutil import read_input_bytes

        path = Path(path)
        data = read_input_bytes(path, "a .tflite model")
        try:
            return cls(data, source=str(path), **kwargs)
        except ModelLoadError as exc:
            raise InputFileError(path, str(exc).removeprefix(f"{path}: ")) from None

    @property
    def input_shape(self) -> tuple[int, ...]:
        return tuple(int(d) for d in self.input_details[0]["shape"])

    @property
    def input_quant(self) -> QuantParams:
        return QuantParams.from_details(self.input_details[0])

    @property
    def output_quant(self) -> list[QuantParams]:
        return [QuantParams.from_details(d) for d in self.output_details]

    def quantize_input(self, batch_float: np.ndarray) -> np.ndarray:
        return _quantize(batch_float, self.input_quant)

    def run(self, batch_float: np.ndarray) -> np.ndarray:
        """Run float inputs (N, H, W, C) and return the first output as float32 (N, ...).

        Quantized inputs/outputs use the model's own scale and zero point. A model with batch 1
        (all edge models: the Edge TPU requires it) is invoked once per image.
        """
        batch = np.asarray(batch_float, dtype=np.float32)
        expected = self.input_shape
        if batch.ndim == len(expected) - 1:
            batch = batch[None]
        if batch.shape[1:] != expected[1:]:
            raise EdgenetError(f"{self.source}: input shape {batch.shape[1:]} does not match model {expected[1:]}")
        model_batch = expected[0]
        if model_batch not in (1, batch.shape[0]):
            raise EdgenetError(f"{self.source}: model batch {model_batch} cannot take {batch.shape[0]} images")
        step = 1 if model_batch == 1 else batch.shape[0]
        in_index = self.input_details[0]["index"]
        out = self.output_details[0]
        out_q = QuantParams.from_details(out)
        outputs = []
        for start in range(0, batch.shape[0], step):
            self.interpreter.set_tensor(in_index, self.quantize_input(batch[start : start + step]))
            self.interpreter.invoke()
            outputs.append(_dequantize(self.interpreter.get_tensor(out["index"]), out_q))
        return np.concatenate(outputs, axis=0)
