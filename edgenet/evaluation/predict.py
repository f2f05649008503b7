"""Classify images with a Keras variant or a .tflite model through the one preprocessing path."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np

from ..errors import InputFileError
from ..pixels.preprocess import preprocess
from .classifier import Classifier
from .labels import top_k


@dataclass(frozen=True)
class ImagePrediction:
    path: str
    top: tuple[tuple[int, str, float], ...] = ()  # (class index, label, probability)
    error: str | None = None

    def to_dict(self) -> dict:
        return {"image": self.path, "error": self.error,
                "top": [{"index": i, "label": label, "score": round(float(p), 6)} for i, label, p in self.top]}


def predict_images(classifier: Classifier, images, k: int = 5) -> list[ImagePrediction]:
    """Top-``k`` classes per image; an unreadable image gets an error and the others go on."""
    results = []
    for image in images:
        try:
            x = preprocess(Path(image), classifier.contract)
        except InputFileError as exc:
            results.append(ImagePrediction(str(image), error=exc.cause))
            continue
        logits = classifier.run(x[None])[0]
        scores = "probabilities" if classifier.contract.output == "probabilities" else "logits"
        results.append(ImagePrediction(str(image), tuple(top_k(np.asarray(logits), k=k, scores=scores))))
    return results
