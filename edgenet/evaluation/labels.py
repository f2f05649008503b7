"""ImageNet-1k class names and turning a model's output vector into a top-k list.

The names ship in ``edgenet/data/imagenet_classes.txt`` (standard index order,
0 = tench ... 999 = toilet tissue; source and MIT licence in its header). Models are
built to output logits (no softmax in the graph); :func:`top_k` applies a numerically
stable softmax on the host when it shows scores. Some converted models (e.g. older
TF-slim / Coral ones) have 1001 outputs with a "background" class at index 0;
:func:`label_for` handles both layouts.
"""

from __future__ import annotations

from collections.abc import Sequence
from functools import lru_cache
from pathlib import Path
from typing import Literal

import numpy as np

LABELS_FILE = Path(__file__).resolve().parent.parent / "data" / "imagenet_classes.txt"
NUM_IMAGENET_CLASSES = 1000
BACKGROUND_LABEL = "background"


@lru_cache(maxsize=1)
def imagenet_labels() -> tuple[str, ...]:
    """The 1000 ImageNet-1k class names, index 0..999."""
    lines = LABELS_FILE.read_text(encoding="utf-8").splitlines()
    names = tuple(line.strip() for line in lines if line.strip() and not line.startswith("#"))
    if len(names) != NUM_IMAGENET_CLASSES:  # a packaging error, not a user error
        raise RuntimeError(f"{LABELS_FILE}: expected {NUM_IMAGENET_CLASSES} class names, found {len(names)}")
    return names


def label_for(index: int, num_classes: int = NUM_IMAGENET_CLASSES) -> str:
    """The class name of output ``index`` of a model with ``num_classes`` outputs.

    1000 outputs: ImageNet order. 1001 outputs: index 0 is "background", index i is
    ImageNet class i - 1. Any other size has no known names: ``"class <index>"``.
    """
    index = int(index)
    if not 0 <= index < num_classes:
        raise ValueError(f"class index {index} is outside 0..{num_classes - 1}")
    if num_classes == NUM_IMAGENET_CLASSES:
        return imagenet_labels()[index]
    if num_classes == NUM_IMAGENET_CLASSES + 1:
        return BACKGROUND_LABEL if index == 0 else imagenet_labels()[index - 1]
    return f"class {index}"


def softmax(logits, axis: int = -1) -> np.ndarray:
    """Numerically stable softmax (float64 internally; subtracts the max before ``exp``)."""
    x = np.asarray(logits, dtype=np.float64)
    shifted = x - np.max(x, axis=axis, keepdims=True)
    e = np.exp(shifted)
    return e / np.sum(e, axis=axis, keepdims=True)


def _looks_like_probabilities(v: np.ndarray) -> bool:
    return bool(np.all(v >= 0.0) and np.all(v <= 1.0) and abs(float(np.sum(v)) - 1.0) < 1e-3)


def top_k(
    logits_or_probs,
    k: int = 5,
    labels: Sequence[str] | None = None,
    *,
    scores: Literal["auto", "logits", "probabilities"] = "auto",
) -> list[tuple[int, str, float]]:
    """The ``k`` best classes as ``(index, label, probability)``, best first.

    ``logits_or_probs`` is one output vector (shape (C,) or (1, C)). With ``scores="auto"``
    a vector that is already a probability distribution (all in [0, 1], summing to 1) is
    used as is, anything else gets :func:`softmax`; pass ``"logits"`` or
    ``"probabilities"`` when the model's contract says which. Ties keep the lower index
    first. ``labels`` overrides the names; by default :func:`label_for` with C classes.
    """
    v = np.asarray(logits_or_probs, dtype=np.float64)
    if v.ndim == 2 and v.shape[0] == 1:
        v = v[0]
    if v.ndim != 1 or v.size == 0:
        raise ValueError(f"top_k needs one output vector, got shape {np.shape(logits_or_probs)}")
    if scores not in ("auto", "logits", "probabilities"):
        raise ValueError(f"scores must be 'auto', 'logits' or 'probabilities', not {scores!r}")
    if scores == "logits" or (scores == "auto" and not _looks_like_probabilities(v)):
        v = softmax(v)
    if labels is not None and len(labels) != v.size:
        raise ValueError(f"{len(labels)} labels given for {v.size} model outputs")
    k = max(0, min(int(k), v.size))
    order = np.argsort(-v, kind="stable")[:k]
    out = []
    for i in order:
        name = labels[int(i)] if labels is not None else label_for(int(i), v.size)
        out.append((int(i), name, float(v[i])))
    return out
