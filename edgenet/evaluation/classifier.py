"""One interface over the two kinds of model edgenet runs: a Keras variant and a .tflite file.

``predict``, ``eval`` and the conversion fidelity check all go through :func:`open_classifier`,
so both kinds read pixels the same way: :func:`edgenet.pixels.preprocess.preprocess` driven by the
model's :class:`~edgenet.pixels.contract.PreprocessContract`. A ``.tflite`` model takes its contract
from the manifest beside it (``MODEL.json``); quantized inputs and outputs are handled from
the model's own quantization parameters by :class:`edgenet.runtime.interpreter.TFLiteModel`, which
runs in a child process (:mod:`edgenet.runtime.isolated`) so a crashing model costs one line.

Opening a ``.tflite`` never imports TensorFlow (the core install on a Pi has none).
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from ..errors import EdgenetError, InputFileError
from ..pixels.contract import PreprocessContract
from ..runtime.delegates import EDGETPU_LIBRARY
from ..runtime.envinfo import manifest_path


@dataclass
class Classifier:
    """A model ready to classify preprocessed images: ``run(batch) -> logits (N, classes)``."""

    name: str
    kind: str  # "keras" | "tflite"
    contract: PreprocessContract
    runner: object = field(repr=False)
    variant: str | None = None
    quant: str | None = None
    path: str | None = None
    notes: tuple[str, ...] = ()

    def run(self, batch: np.ndarray) -> np.ndarray:
        if self.kind == "keras":
            return np.asarray(self.runner(batch, training=False), dtype=np.float32)
        return self.runner.run(batch)

    def close(self) -> None:
        """Stop the model's child process (a .tflite model); a no-op for Keras."""
        close = getattr(self.runner, "close", None)
        if close is not None and self.kind == "tflite":
            close()


def manifest_for(path: Path) -> dict | None:
    """The manifest JSON written beside ``MODEL.tflite`` as ``MODEL.json``, if any."""
    from ..fsutil import read_input_text

    candidate = manifest_path(path)
    if not candidate.is_file():
        return None
    text = read_input_text(candidate, "a model manifest (JSON)")
    try:
        return json.loads(text)
    except ValueError as exc:
        raise InputFileError(candidate, f"unreadable manifest ({exc})") from None


def _tflite_classifier(path: Path, threads: int, delegate: str = "cpu",
                       edgetpu_lib: str = EDGETPU_LIBRARY) -> Classifier:
    from ..runtime.isolated import IsolatedTFLiteModel

    # A user's model runs in a child process: an interpreter crash is one line, not the command.
    # A delegate that cannot run the model is refused there (one line): the Edge TPU's arithmetic is
    # its own, so its accuracy is measured on it or not at all, never taken from the CPU.
    model = IsolatedTFLiteModel(path, threads=threads, delegate=delegate, edgetpu_lib=edgetpu_lib)
    try:
        return _describe_tflite(path, model)
    except BaseException:
        model.close()
        raise


def _describe_tflite(path: Path, model) -> Classifier:
    manifest = manifest_for(path)
    notes: list[str] = []
    if manifest and "preprocessing" in manifest:
        contract = PreprocessContract.from_dict(manifest["preprocessing"])
    else:
        # No manifest: assume edgenet's convention (RGB 0..255, normalisation in the graph)
        # at the model's own input size, and say so.
        contract = PreprocessContract(model.input_shape[1], (0.0,) * 3, (1.0,) * 3)
        notes.append(f"{path}: no manifest beside it; assuming RGB pixels 0..255 with normalisation in the model")
    if contract.resolution != model.input_shape[1]:
        raise EdgenetError(f"{path}: manifest says {contract.resolution} px but the model takes {model.input_shape[1]}")
    variant = (manifest or {}).get("variant", {})
    return Classifier(
        name=path.name, kind="tflite", contract=contract, runner=model, path=str(path),
        variant=variant.get("name") if isinstance(variant, dict) else variant,
        quant=(manifest or {}).get("quant"), notes=tuple(notes),
    )


def _keras_classifier(spec: str, weights: str | None) -> Classifier:
    from ..family.model import build_model
    from ..family.variants import parse_variant
    from ..weights.keras_files import classifier_classes, load_weights

    variant = parse_variant(spec)
    model = build_model(variant, num_classes=(weights and classifier_classes(weights)) or 1000)
    notes: list[str] = []
    if weights:
        info = load_weights(model, variant, weights)
        notes.extend(info.get("notes", []))
    else:
        notes.append(f"{variant.name}: no --weights given; the network is randomly initialised and its "
                     "predictions are meaningless")
    return Classifier(name=variant.name, kind="keras", contract=variant.contract, runner=model,
                      variant=variant.name, quant="float32", notes=tuple(notes))


def open_classifier(model: str, *, weights: str | None = None, threads: int = 1, delegate: str = "cpu",
                    edgetpu_lib: str = EDGETPU_LIBRARY) -> Classifier:
    """A ``.tflite`` path or a variant name/spec (built in Keras, optionally with ``weights``).

    ``delegate="edgetpu"`` runs a ``.tflite`` compiled for the Edge TPU on it (``edgetpu_lib``).
    """
    if str(model).endswith(".tflite"):
        if weights:
            raise EdgenetError("--weights applies to Keras variants; a .tflite model carries its own weights")
        return _tflite_classifier(Path(model), threads, delegate, edgetpu_lib)
    if delegate not in (None, "cpu"):
        raise EdgenetError(f"{model}: --delegate {delegate} runs .tflite models compiled for it, not Keras variants")
    return _keras_classifier(model, weights)
