"""How close a quantized model stays to its float original, measured right after conversion.

Post-training quantization can go wrong silently: a badly calibrated activation range (the
long tails of swish/SE in EfficientNet, tensorflow/tensorflow#49927) or a preprocessing
mismatch still yields a model that runs, just with wrong answers. So every int8 (and
int16x8) conversion compares the float Keras model with the quantized TFLite model on
images the calibrator never saw:

* ``top1_agreement``: fraction of images where both models pick the same class;
* ``top5_overlap``: mean ``|top5_float & top5_quant| / 5``;
* ``sqnr_db``: signal-to-quantization-noise ratio of the logits,
  ``10 * log10(sum(ref**2) / sum((ref - quant)**2))`` over all images and classes.

These measure *fidelity to the float model*, not accuracy: with random weights they are
numbers about noise. Held-out images must not be calibration images (the quantizer has
fitted its ranges to those, so they flatter the result). The embedded default set keeps
a few photographs apart for this (:func:`edgenet.convert.calibration.holdout_images`); because
there are only a handful, each is also seen through a fixed set of crops and flips
(:data:`VIEWS`), which gives enough tensors for a stable SQNR without touching the
calibration photos.

Only numpy and Pillow at module level; the models are passed in as callables.
"""

from __future__ import annotations

import math
import os
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass
from pathlib import Path

import numpy as np
from PIL import Image

from ..errors import EdgenetError, InputFileError
from ..pixels.contract import PreprocessContract
from ..pixels.images import list_image_files, load_image
from ..pixels.preprocess import centre_crop_box, pixels_to_input, resize_box
from .calibration import DEFAULT_SOURCE, holdout_images

__all__ = ["Fidelity", "HoldoutSet", "VIEWS", "fidelity_metrics", "holdout_set", "measure_fidelity"]

#: (crop side as a fraction of the shorter side, horizontal anchor 0..1, vertical anchor 0..1, flip).
#: The first view is the evaluation crop of :func:`edgenet.pixels.preprocess.preprocess`'s geometry.
VIEWS: tuple[tuple[float | None, float, float, bool], ...] = (
    (None, 0.5, 0.5, False),
    (None, 0.5, 0.5, True),
    (0.8, 0.0, 0.0, False),
    (0.8, 1.0, 0.0, True),
    (0.8, 0.0, 1.0, True),
    (0.8, 1.0, 1.0, False),
    (0.6, 0.5, 0.5, False),
    (0.6, 0.5, 0.5, True),
)
#: Below this many held-out images every image is seen through all :data:`VIEWS`.
MIN_IMAGES_WITHOUT_VIEWS = 24
#: At most this many held-out images from a user folder (keeps the check to seconds).
MAX_HOLDOUT_IMAGES = 64


@dataclass(frozen=True)
class Fidelity:
    """Quantized-vs-float agreement on held-out images (see the module docstring)."""

    top1_agreement: float
    top5_overlap: float
    sqnr_db: float
    samples: int
    images: int
    source: str
    max_abs_logit_error: float

    def to_dict(self) -> dict:
        return asdict(self)


@dataclass(frozen=True, eq=False)
class HoldoutSet:
    """Held-out input tensors (N, res, res, 3) float32 with a description of where they came from."""

    array: np.ndarray
    images: int
    source: str
    note: str


def fidelity_metrics(reference: np.ndarray, quantized: np.ndarray, *, images: int | None = None,
                     source: str = "") -> Fidelity:
    """Compare logits ``reference`` (float model) and ``quantized`` (N, classes)."""
    ref = np.asarray(reference, dtype=np.float64).reshape(len(reference), -1)
    q = np.asarray(quantized, dtype=np.float64).reshape(len(quantized), -1)
    if ref.shape != q.shape or ref.shape[0] == 0:
        raise ValueError(f"fidelity needs two equal, non-empty logit arrays, got {ref.shape} and {q.shape}")
    k = min(5, ref.shape[1])
    top1 = float(np.mean(np.argmax(ref, axis=1) == np.argmax(q, axis=1)))
    top_ref = np.argsort(-ref, axis=1, kind="stable")[:, :k]
    top_q = np.argsort(-q, axis=1, kind="stable")[:, :k]
    overlap = float(np.mean([len(set(a) & set(b)) / k for a, b in zip(top_ref, top_q, strict=True)]))
    signal = float(np.sum(ref**2))
    noise = float(np.sum((ref - q) ** 2))
    if noise == 0.0:
        sqnr = math.inf
    elif signal == 0.0:
        sqnr = -math.inf
    else:
        sqnr = 10.0 * math.log10(signal / noise)
    return Fidelity(
        top1_agreement=top1,
        top5_overlap=overlap,
        sqnr_db=sqnr,
        samples=int(ref.shape[0]),
        images=int(images if images is not None else ref.shape[0]),
        source=source,
        max_abs_logit_error=float(np.max(np.abs(ref - q))),
    )


def _view(image: Image.Image, view: tuple[float | None, float, float, bool],
          contract: PreprocessContract) -> np.ndarray:
    fraction, ax, ay, flip = view
    if fraction is None:
        box = centre_crop_box(image.width, image.height, contract.resolution, contract.crop_padding)
    else:
        side = max(1, int(fraction * min(image.width, image.height)))
        left = int(round(ax * (image.width - side)))
        top = int(round(ay * (image.height - side)))
        box = (left, top, left + side, top + side)
    resized = resize_box(image, box, contract)
    if flip:
        resized = resized.transpose(Image.Transpose.FLIP_LEFT_RIGHT)
    return pixels_to_input(np.asarray(resized, dtype=np.uint8), contract)


def _tensors(paths: Sequence[Path], contract: PreprocessContract) -> tuple[list[np.ndarray], int]:
    """Decode ``paths`` (skipping unreadable ones) into tensors, with views when there are few."""
    decoded = []
    for path in paths:
        try:
            decoded.append(load_image(path))
        except InputFileError:
            continue
    views = VIEWS if len(decoded) < MIN_IMAGES_WITHOUT_VIEWS else VIEWS[:1]
    rows = [_view(image, view, contract) for image in decoded for view in views]
    return rows, len(decoded)


def holdout_set(
    calib_source: str | os.PathLike,
    contract: PreprocessContract,
    calibration_files: Sequence[Path] = (),
    holdout: str | os.PathLike | None = None,
) -> HoldoutSet | None:
    """The images for the fidelity check, never overlapping the calibration images.

    ``holdout`` (a folder) wins; else the embedded held-out photos for ``"default"``; else the
    images of the user's calibration folder that calibration did not use (at most
    :data:`MAX_HOLDOUT_IMAGES`, in sorted order). ``None`` when nothing is left over (every image
    was used for calibration): the caller reports that fidelity was not measured.
    """
    used = {Path(p).resolve() for p in calibration_files}
    if holdout is not None:
        root = Path(holdout)
        if not root.is_dir():
            raise InputFileError(root, "holdout folder does not exist or is not a folder")
        paths = [p for p in list_image_files(root) if p.resolve() not in used][:MAX_HOLDOUT_IMAGES]
        source = str(root)
    elif str(calib_source) == DEFAULT_SOURCE:
        paths = list(holdout_images())
        source = "default holdout"
    else:
        paths = [p for p in list_image_files(Path(calib_source)) if p.resolve() not in used][:MAX_HOLDOUT_IMAGES]
        source = f"{calib_source} (images not used for calibration)"
    rows, images = _tensors(paths, contract)
    if not rows:
        if holdout is not None:
            raise EdgenetError(f"holdout folder {holdout}: no readable images that are not calibration images")
        return None
    note = f"{images} held-out image(s) from {source}"
    if len(rows) > images:
        note += f", {len(rows) // images} fixed crops/flips each"
    return HoldoutSet(np.stack(rows).astype(np.float32), images, source, note)


def measure_fidelity(
    reference: Callable[[np.ndarray], np.ndarray],
    quantized: Callable[[np.ndarray], np.ndarray],
    holdout: HoldoutSet,
) -> Fidelity:
    """Run both models (callables taking a float batch, returning logits) on ``holdout``."""
    ref = np.concatenate([np.asarray(reference(holdout.array[i : i + 1])) for i in range(len(holdout.array))])
    quant = np.concatenate([np.asarray(quantized(holdout.array[i : i + 1])) for i in range(len(holdout.array))])
    return fidelity_metrics(ref, quant, images=holdout.images, source=holdout.source)
