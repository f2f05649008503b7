"""edgenet: EfficientNet for the edge.

Build B0-B7, Lite0-4 and custom-phi EfficientNets in Keras, convert them to (int8) TFLite
calibrated on real images, benchmark latency and accuracy on CPUs and Coral, and pick the
largest variant that meets a latency budget.

The public API is re-exported here. Names are resolved lazily, so ``import edgenet`` stays
light: TensorFlow loads only when a model is built or converted.
"""

from __future__ import annotations

import importlib

from ._version import __version__

# name -> module that defines it (explicit, no import-time registry)
_EXPORTS = {
    "Variant": "variants", "VARIANTS": "variants", "parse_variant": "variants",
    "parse_variant_list": "variants", "custom_variant": "variants", "compound_coefficients": "variants",
    "PreprocessContract": "contract",
    "Architecture": "architecture", "architecture": "architecture",
    "build_model": "model",
    "load_weights": "weights", "save_weights": "weights",
    "read_checkpoint": "checkpoint", "map_checkpoint": "mapping",
    "load_image": "images", "preprocess": "preprocess", "load_calibration": "calibration",
    "open_classifier": "classifier", "predict_images": "predict",
    "ConvertOptions": "convert", "convert_variants": "convert",
    "TFLiteModel": "runtime",
    "BenchParams": "bench", "BenchResult": "bench",
    "evaluate": "evaluate",
    "select": "select", "LatencyModel": "latency_model", "suggest_custom_phi": "latency_model",
    "SweepParams": "sweep", "run_sweep": "sweep", "write_report": "report",
    "check_model": "edgetpu.check",
    "EdgenetError": "errors", "InputFileError": "errors", "VariantError": "errors",
    "MissingDependencyError": "errors",
}

__all__ = ["__version__", *sorted(_EXPORTS)]


def __getattr__(name: str):
    module = _EXPORTS.get(name)
    if module is None:
        raise AttributeError(f"module 'edgenet' has no attribute {name!r}")
    value = getattr(importlib.import_module(f".{module}", __name__), name)
    globals()[name] = value
    return value


def __dir__() -> list[str]:
    return sorted(set(globals()) | set(__all__))
