"""Coral Edge TPU support: a static compatibility check and the compiler wrapper.

The check (:func:`check_model`) reads a ``.tflite`` file without TensorFlow and applies
the documented Edge TPU rules op by op, so it runs anywhere, including the ARM hosts
where ``edgetpu_compiler`` does not exist. :func:`compile_models` runs the real
compiler where it is available (x86-64 Linux) and parses its report.
"""

from __future__ import annotations

from .check import ON_CHIP_CACHE_BYTES, CheckReport, OpCheck, check_model
from .compiler import CompileResult, compile_models, compiler_available, parse_compiler_log

__all__ = [
    "ON_CHIP_CACHE_BYTES",
    "CheckReport",
    "CompileResult",
    "OpCheck",
    "check_model",
    "compile_models",
    "compiler_available",
    "parse_compiler_log",
]
