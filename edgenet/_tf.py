"""Lazy access to TensorFlow and Keras with an install hint.

Importing this module imports TensorFlow; only model building and conversion do.
The core install (a Raspberry Pi or Coral host) has no TensorFlow.
"""

from __future__ import annotations

import os

from .errors import MissingDependencyError
from .logs import native_stderr_filtered, verbose

# TensorFlow's C++ start-up chatter (oneDNN notice, absl's pre-init warning) stays off the user's
# stderr unless --verbose: the variable covers what still honours it, the fd-2 filter the rest.
if not verbose():
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

try:
    with native_stderr_filtered():
        import keras  # noqa: E402
        import tensorflow as tf  # noqa: E402
except ImportError as exc:  # pragma: no cover - exercised in the core-install test
    raise MissingDependencyError("tensorflow", "tf", "building or converting models") from exc

__all__ = ["tf", "keras"]
