"""The quantization modes: one typed table that the converter, the worker and the CLI derive from.

Where the edge changes the choice: ``int8`` is what CPU int8 kernels, the Edge TPU and NPUs run;
``int16x8`` keeps int16 activations for accuracy but has reference kernels only on most runtimes;
``fp16`` halves the file for GPU delegates; ``dynamic`` quantizes weights only (no calibration).
"""

from __future__ import annotations

from dataclasses import dataclass

from ..errors import EdgenetError

__all__ = ["CALIBRATED_MODES", "IO_TYPES", "MODES", "QUANT_MODES", "QuantMode", "default_io", "mode", "resolve_io"]


@dataclass(frozen=True)
class QuantMode:
    """One quantization mode and what it needs."""

    name: str
    calibrated: bool  # needs a representative (calibration) dataset for activation ranges
    integer_io: bool  # full-integer: the model's input and output may be int8/uint8 (--io)
    summary: str


#: name -> mode, in the order commands list them.
MODES: dict[str, QuantMode] = {
    m.name: m
    for m in (
        QuantMode("fp32", False, False, "plain float"),
        QuantMode("fp16", False, False, "float16 weights (GPU delegates)"),
        QuantMode("dynamic", False, False, "int8 weights, float activations"),
        QuantMode("int8", True, True, "full-integer: CPU int8 kernels, Edge TPU, NPUs"),
        QuantMode("int16x8", True, False, "int16 activations, int8 weights (more accurate, reference kernels)"),
    )
}
QUANT_MODES: tuple[str, ...] = tuple(MODES)
CALIBRATED_MODES: tuple[str, ...] = tuple(name for name, m in MODES.items() if m.calibrated)
#: Input/output tensor types; only an ``integer_io`` mode may use the integer ones.
IO_TYPES: tuple[str, ...] = ("float", "int8", "uint8")


def mode(quant: str) -> QuantMode:
    """The mode called ``quant``, or a one-line error listing the choices."""
    try:
        return MODES[quant]
    except KeyError:
        raise EdgenetError(f"unknown quantization {quant!r}; choose from {', '.join(QUANT_MODES)}") from None


def default_io(quant: str) -> str:
    """Full-integer models take and give int8 by default (what the Edge TPU and int8 CPUs want); others float."""
    return "int8" if mode(quant).integer_io else "float"


def resolve_io(quant: str, io: str | None) -> str:
    """Validate the ``io`` type for ``quant`` (only full-integer models can have integer io)."""
    m = mode(quant)
    io = io or default_io(quant)
    if io not in IO_TYPES:
        raise EdgenetError(f"unknown --io {io!r}; choose from {', '.join(IO_TYPES)}")
    if io != "float" and not m.integer_io:
        raise EdgenetError(f"--io {io} needs --quant int8 (a {quant} model has float input and output)")
    return io
