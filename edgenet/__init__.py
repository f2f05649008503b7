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
    "Variant": "family.variants", "VARIANTS": "family.variants", "parse_variant": "family.variants",
    "parse_variant_list": "family.variants", "custom_variant": "family.variants", "compound_coefficients": "family.variants",
    "PreprocessContract": "pixels.contract",
    "Architecture": "family.architecture", "architecture": "family.architecture",
    "build_model": "family.model",
    "load_weights": "weights.keras_files", "save_weights": "weights.keras_files",
    "read_checkpoint": "weights.checkpoint", "map_checkpoint": "weights.mapping",
    "load_image": "pixels.images", "preprocess": "pixels.preprocess", "load_calibration": "convert.calibration",
    "open_classifier": "evaluation.classifier", "predict_images": "evaluation.predict",
    "ConvertRequest": "convert.api", "convert_variants": "convert.api",
    "ConvertOptions": "convert.api",  # deprecated: the old name of ConvertRequest, kept for one release
    "TFLiteModel": "runtime.interpreter",
    "BenchParams": "bench", "BenchResult": "bench",
    "evaluate": "evaluation.evaluate",
    "select": "decide.select", "LatencyModel": "decide.latency_model", "suggest_custom_phi": "decide.latency_model",
    "SweepParams": "sweep", "run_sweep": "sweep", "write_report": "decide.report",
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
