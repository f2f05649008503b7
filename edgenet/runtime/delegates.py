"""The delegates edgenet can run a model with, and where the Edge TPU's library is found by default."""

from __future__ import annotations

__all__ = ["DELEGATES", "EDGETPU_LIBRARY"]

#: ``cpu`` is the runtime's own kernels (XNNPACK by default); ``edgetpu`` the Coral delegate.
DELEGATES: tuple[str, ...] = ("cpu", "edgetpu")
#: The Edge TPU runtime's shared library, as the Coral packages install it (found by the dynamic loader).
EDGETPU_LIBRARY = "libedgetpu.so.1"
