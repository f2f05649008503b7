"""Lazy access to TensorFlow and Keras with an install hint.

Importing this module imports TensorFlow; only model building and conversion do.
The core install (a Raspberry Pi or Coral host) has no TensorFlow.
"""

from __future__ import annotations

import os

from .errors import MissingDependencyError

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")  # keep TensorFlow's C++ start-up chatter off stderr

try:
    import keras  # noqa: E402
    import tensorflow as tf  # noqa: E402
except ImportError as exc:  # pragma: no cover - exercised in the core-install test
    raise MissingDependencyError("tensorflow", "tf", "building or converting models") from exc

__all__ = ["tf", "keras"]
