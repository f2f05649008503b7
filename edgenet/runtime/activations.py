"""Every intermediate tensor of a model run, for measuring quantization error (needs a runtime only).

:func:`preserving_interpreter` keeps every tensor alive after ``invoke`` (the interpreter's
``experimental_preserve_all_tensors``) and uses the builtin kernels without default delegates,
because a delegate such as XNNPACK fuses operators and hides their outputs.
"""

from __future__ import annotations

import os

import numpy as np

__all__ = ["preserving_interpreter", "feed", "output_float", "dequantizer"]


def preserving_interpreter(model_bytes: bytes, threads: int | None = None):
    """An interpreter that keeps every intermediate tensor, builtin kernels only (no XNNPACK fusion)."""
    from ..runtime.interpreter import load_runtime

    runtime = load_runtime()
    resolver = runtime.op_resolver_type
    kwargs = {"model_content": bytes(model_bytes), "num_threads": threads or os.cpu_count() or 1,
              "experimental_preserve_all_tensors": True}
    if resolver is not None:
        kwargs["experimental_op_resolver_type"] = resolver.BUILTIN_WITHOUT_DEFAULT_DELEGATES
    interpreter = runtime.Interpreter(**kwargs)
    interpreter.allocate_tensors()
    return interpreter


def feed(interpreter, x_float: np.ndarray) -> None:
    """Set the (single) input from float pixels, quantizing with the model's own parameters."""
    from ..pixels.preprocess import quantize_input

    detail = interpreter.get_input_details()[0]
    scale, zero_point = detail.get("quantization", (0.0, 0))
    x = np.asarray(x_float, dtype=np.float32).reshape(detail["shape"])
    if scale and np.issubdtype(np.dtype(detail["dtype"]), np.integer):
        x = quantize_input(x, scale, zero_point, detail["dtype"])
    interpreter.set_tensor(detail["index"], x)


def output_float(interpreter) -> np.ndarray:
    from ..pixels.preprocess import dequantize

    detail = interpreter.get_output_details()[0]
    value = interpreter.get_tensor(detail["index"])
    scale, zero_point = detail.get("quantization", (0.0, 0))
    if scale and np.issubdtype(value.dtype, np.integer):
        return dequantize(value, scale, zero_point).reshape(1, -1)
    return np.asarray(value, dtype=np.float32).reshape(1, -1)


def dequantizer(interpreter):
    """``index -> float array`` for the interpreter's tensors, dequantized with each tensor's own parameters."""
    params = {d["index"]: d.get("quantization", (0.0, 0)) for d in interpreter.get_tensor_details()}

    def value(index: int) -> np.ndarray:
        raw = interpreter.get_tensor(index)
        scale, zero_point = params.get(index, (0.0, 0))
        if scale and np.issubdtype(raw.dtype, np.integer):
            return ((raw.astype(np.float32) - zero_point) * scale).astype(np.float32)
        return np.asarray(raw, dtype=np.float32)

    return value
