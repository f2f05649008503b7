"""Calibration data for int8 post-training quantization.

The TFLite converter picks every activation's int8 range from the tensors it sees while
running the float model on a *representative dataset*. EfficientNet is sensitive to
this: swish and squeeze-excitation activations have long-tailed ranges, and min/max
calibration lets a few outliers stretch a tensor's range so the ordinary values get
only a handful of int8 steps (tensorflow/tensorflow#49927). Calibration images should
therefore come from the deployment domain; edgenet ships a small default set of real
photographs (``edgenet/data/calibration``, licences in its ``manifest.json`` and in
``calibration/README.md``) for when the user has none.

:func:`load_calibration` turns a folder (or ``"default"``) into a deterministic array
through the one :func:`edgenet.pixels.preprocess.preprocess` implementation, and checks every
tensor is finite and in range *before* conversion: the converter crashes (segfaults)
rather than erroring on NaN/Inf input.
"""

from __future__ import annotations

import hashlib
import json
import math
import os
import sys
from collections.abc import Callable
from dataclasses import dataclass, field
from functools import lru_cache
from pathlib import Path

import numpy as np
from PIL import Image
from tqdm import tqdm

from ..errors import EdgenetError, InputFileError
from ..fsutil import sha256_file
from ..pixels.contract import PreprocessContract
from ..pixels.images import (
    IMAGE_EXTENSIONS,
    check_unreadable_share,
    describe_skipped,
    load_image,
    walk_image_files,
)
from ..pixels.preprocess import input_bounds, pixels_to_input, preprocess, resize_box

DEFAULT_SOURCE = "default"
MANIFEST_NAME = "manifest.json"
DEFAULT_SAMPLES = 100

# Augmentation when a folder has fewer usable images than requested samples: like
# Inception-style training crops (tpu's distorted bounding box), but milder, so the
# synthetic samples stay close to the real activation statistics.
AUGMENT_AREA_RANGE = (0.6, 1.0)
AUGMENT_ASPECT_RANGE = (3 / 4, 4 / 3)
AUGMENT_FLIP_PROBABILITY = 0.5

# Slack for float rounding when checking tensors against the contract's range.
_RANGE_TOLERANCE = 1e-3


def default_calibration_dir() -> Path:
    """The folder of edgenet's embedded default images (inside the installed package)."""
    return Path(__file__).resolve().parent.parent / "data" / "calibration"


@lru_cache(maxsize=1)
def _manifest_entries() -> tuple[dict, ...]:
    path = default_calibration_dir() / MANIFEST_NAME
    data = json.loads(path.read_text(encoding="utf-8"))
    return tuple(data["images"])


def default_manifest() -> tuple[dict, ...]:
    """The embedded images' manifest entries (file, split, title, source, credit, licence, ...)."""
    return tuple(dict(e) for e in _manifest_entries())


def _split(name: str) -> tuple[Path, ...]:
    root = default_calibration_dir()
    return tuple(root / e["file"] for e in sorted(_manifest_entries(), key=lambda e: e["file"]) if e["split"] == name)


def calibration_images() -> tuple[Path, ...]:
    """Embedded images used for calibration (never includes :func:`holdout_images`)."""
    return _split("calibration")


def holdout_images() -> tuple[Path, ...]:
    """Embedded images kept out of calibration, for the conversion fidelity check."""
    return _split("holdout")


@dataclass(frozen=True, eq=False)
class CalibrationData:
    """A calibration set ready for the converter's representative dataset.

    ``array`` rows are the real samples (in ``files`` order) followed by
    ``augmented_count`` augmented ones. ``fingerprint`` identifies the inputs for
    manifests and caching: same files, contents, samples, seed and source -> same
    fingerprint (and the same array).
    """

    array: np.ndarray  # (N, res, res, 3) float32
    files: tuple[Path, ...]
    skipped: tuple[tuple[Path, str], ...]
    augmented_count: int
    fingerprint: dict = field(default_factory=dict)
    note: str = ""
    source: str = DEFAULT_SOURCE

    @property
    def count(self) -> int:
        return int(self.array.shape[0])


def check_calibration_array(array: np.ndarray, names: list[str] | tuple[str, ...],
                            contract: PreprocessContract) -> None:
    """Raise :class:`EdgenetError` naming the sample if any tensor is non-finite or out of range.

    ``names[i]`` describes row ``i`` (a file, or a file plus "augmented" note).
    """
    lo, hi = input_bounds(contract)
    bounds_ok = bool(np.all(np.isfinite(lo)) and np.all(np.isfinite(hi)))
    for i in range(array.shape[0]):
        row = array[i]
        if not np.all(np.isfinite(row)):
            bad = int(np.size(row) - np.count_nonzero(np.isfinite(row)))
            raise EdgenetError(
                f"{names[i]}: calibration tensor has {bad} NaN/Inf value(s); check the preprocessing "
                f"contract (mean/std) - the converter cannot use it"
            )
        if bounds_ok:
            mins, maxs = row.reshape(-1, 3).min(axis=0), row.reshape(-1, 3).max(axis=0)
            if np.any(mins < lo - _RANGE_TOLERANCE) or np.any(maxs > hi + _RANGE_TOLERANCE):
                raise EdgenetError(
                    f"{names[i]}: calibration tensor values {float(mins.min()):g}..{float(maxs.max()):g} are "
                    f"outside the contract's input range {float(lo.min()):g}..{float(hi.max()):g}"
                )


#: A calibration set whose pixels span less than this share of the input range in every channel
#: (all-black or all-one-colour images) gives an int8 input scale too small for real images.
MIN_RANGE_SHARE = 0.05


def degenerate_range(array: np.ndarray, contract: PreprocessContract) -> str | None:
    """A warning when the calibration tensors are (nearly) constant, else None."""
    lo, hi = input_bounds(contract)
    full = np.asarray(hi, dtype=np.float64) - np.asarray(lo, dtype=np.float64)
    flat = array.reshape(-1, array.shape[-1]).astype(np.float64)
    span = flat.max(axis=0) - flat.min(axis=0)
    if not np.all(np.isfinite(full)) or np.any(full <= 0):
        return None
    if np.all(span < MIN_RANGE_SHARE * full):
        return (f"the calibration images span only {float(span.max() / full.min()):.1%} of the input range "
                "(all black or one colour?): the int8 input scale will be tiny and real images will clip; "
                "calibrate on representative photos")
    return None


def _file_list_sha256(files: list[Path], root: Path) -> str:
    lines = []
    for path in files:
        try:
            rel = path.relative_to(root).as_posix()
        except ValueError:
            rel = path.as_posix()
        lines.append((os.fsencode(rel), sha256_file(path)))  # a name's bytes, whatever its encoding
    digest = hashlib.sha256()
    for rel, file_hash in sorted(lines):
        digest.update(rel + f"\0{file_hash}\n".encode())
    return digest.hexdigest()


def _augment(image: Image.Image, rng: np.random.Generator, contract: PreprocessContract) -> np.ndarray:
    """A seeded random crop (60-100 % area, aspect 3/4..4/3) with a random horizontal flip."""
    width, height = image.size
    area = width * height * rng.uniform(*AUGMENT_AREA_RANGE)
    aspect = math.exp(rng.uniform(math.log(AUGMENT_ASPECT_RANGE[0]), math.log(AUGMENT_ASPECT_RANGE[1])))
    crop_w = min(width, max(1, int(round(math.sqrt(area * aspect)))))
    crop_h = min(height, max(1, int(round(math.sqrt(area / aspect)))))
    left = int(rng.integers(0, width - crop_w + 1))
    top = int(rng.integers(0, height - crop_h + 1))
    flip = bool(rng.random() < AUGMENT_FLIP_PROBABILITY)
    resized = resize_box(image, (left, top, left + crop_w, top + crop_h), contract)
    if flip:
        resized = resized.transpose(Image.Transpose.FLIP_LEFT_RIGHT)
    return pixels_to_input(np.asarray(resized, dtype=np.uint8), contract)


def load_calibration(
    source: str | os.PathLike,
    contract: PreprocessContract,
    samples: int = DEFAULT_SAMPLES,
    seed: int = 0,
    min_usable: int = 1,
    progress: bool = False,
    log: Callable[[str], None] | None = None,
) -> CalibrationData:
    """Load ``samples`` calibration tensors from ``source`` (``"default"`` or a folder).

    Images are picked in an order drawn from ``numpy.random.default_rng(seed)`` over the
    sorted file list; unreadable files are skipped (and listed). If fewer usable images
    than ``samples`` exist, the rest are made by seeded random crops and flips of the
    usable ones (``augmented_count`` and ``note`` say so). Raises :class:`EdgenetError`
    with one line naming the folder and the counts when the folder is missing, has no
    image files, or has fewer than ``min_usable`` readable ones, and when any tensor is
    NaN/Inf or outside the contract's range.

    The string ``"default"`` always means the embedded set (its holdout images excluded);
    a folder that happens to be called ``default`` is reached as ``./default``. ``files``
    is in sampling order (matching the array rows); ``skipped`` lists the unreadable files
    met while sampling.
    """
    if int(samples) < 1:
        raise EdgenetError(f"calibration samples must be at least 1, got {samples}")
    if int(min_usable) < 1:
        raise EdgenetError(f"calibration min_usable must be at least 1, got {min_usable}")
    samples, min_usable, seed = int(samples), int(min_usable), int(seed)

    if str(source) == DEFAULT_SOURCE:
        root = default_calibration_dir()
        candidates = list(calibration_images())
        walk_skipped = []
        label = DEFAULT_SOURCE
        where = "default calibration set"
    else:
        root = Path(source)
        if not root.exists():
            raise InputFileError(root, "calibration folder does not exist")
        if not root.is_dir():
            raise InputFileError(root, "calibration source is not a folder (give a folder of images or 'default')")
        walk = walk_image_files(root)
        candidates = list(walk.files)
        walk_skipped = list(walk.skipped)  # link loops, dangling links, special files, undecodable names
        label = str(source)
        where = f"calibration folder {root}"
    if not candidates:
        exts = ", ".join(sorted(e.lstrip(".") for e in IMAGE_EXTENSIONS))
        unusable = f"; skipped {describe_skipped(walk_skipped)}" if walk_skipped else ""
        raise EdgenetError(f"{where}: no image files found (looked for {exts}); need at least "
                           f"{min_usable}{unusable}")

    rng = np.random.default_rng(seed)
    order = rng.permutation(len(candidates))
    rows: list[np.ndarray] = []
    used: list[Path] = []
    skipped: list[tuple[Path, str]] = list(walk_skipped)

    with tqdm(total=samples, desc="calibration", unit="img", file=sys.stderr, disable=not progress) as bar:
        for idx in order:
            if len(used) >= samples:
                break
            path = candidates[int(idx)]
            try:
                rows.append(preprocess(path, contract))
            except InputFileError as err:
                skipped.append((path, err.cause))
                continue
            used.append(path)
            bar.update(1)

        usable = len(used)
        if usable >= min_usable and skipped:
            # The images policy (edgenet.pixels.images): fail above the share, else say what was skipped.
            check_unreadable_share(where, usable, skipped)
            if log is not None:
                log(f"warning: {where}: skipped {describe_skipped(skipped)}")
        if usable < min_usable:
            first = f"; e.g. {skipped[0][0]}: {skipped[0][1]}" if skipped else ""
            raise EdgenetError(
                f"{where}: {usable} usable image(s) of {len(candidates) + len(walk_skipped)} image file(s) "
                f"({len(skipped)} unreadable), need at least {min_usable}{first}"
            )

        names = [str(p) for p in used]
        needed = samples - usable
        if needed > 0:
            # Spread the synthetic samples evenly over the real images (round-robin), and
            # decode each source once, so memory stays at one full-size image.
            per_image = [needed // usable + (1 if i < needed % usable else 0) for i in range(usable)]
            for path, count in zip(used, per_image, strict=True):
                if count == 0:
                    continue
                image = load_image(path)
                for k in range(count):
                    rows.append(_augment(image, rng, contract))
                    names.append(f"{path} (augmented sample {k + 1})")
                    bar.update(1)

    array = np.stack(rows).astype(np.float32, copy=False)
    check_calibration_array(array, names, contract)

    if needed > 0:
        note = (f"{where}: {usable} usable image(s) for {samples} samples; made {needed} more by seeded "
                f"random crops and flips (seed {seed})")
    else:
        note = f"{where}: {samples} sample(s) drawn from {len(candidates)} image file(s) (seed {seed})"
    if skipped:
        note += f"; skipped {len(skipped)} unreadable file(s)"
    degenerate = degenerate_range(array, contract)
    if degenerate:
        note += f"; {degenerate}"
        if log is not None:
            log(f"warning: {where}: {degenerate}")
    fingerprint = {
        "file_list_sha256": _file_list_sha256(used, root),
        "files": usable,
        "samples": samples,
        "seed": seed,
        "source": label,
        "augmented": needed,
    }
    return CalibrationData(
        array=array,
        files=tuple(used),
        skipped=tuple(skipped),
        augmented_count=needed,
        fingerprint=fingerprint,
        note=note,
        source=label,
    )
