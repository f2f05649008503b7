"""The one preprocessing implementation: decoded image -> model input tensor.

Predict, calibration, evaluation and the conversion fidelity check all call
:func:`preprocess`, driven by the model's :class:`~edgenet.pixels.contract.PreprocessContract`.
A second, slightly different copy (another crop rule, another resize filter, the
normalisation applied twice) is the classic way an int8 EfficientNet "loses" accuracy
that the quantizer never lost, so there is deliberately only this one.

Geometry follows tensorflow/tpu's EfficientNet eval preprocessing: crop the centred
square of side ``int(res / (res + crop_padding) * min(h, w))`` (offsets
``(h - side + 1) // 2``), then resize it to ``res x res``. The resize uses Pillow's
filter named by the contract (bicubic by default); Pillow antialiases when shrinking,
unlike ``tf.image.resize``, and gives bit-identical results on every device.

Only numpy and Pillow: this runs on edge devices.
"""

from __future__ import annotations

import os
from collections.abc import Iterable
from pathlib import Path

import numpy as np
from PIL import Image

from ..errors import InputFileError
from .contract import PreprocessContract
from .images import load_image, to_rgb

_RESAMPLE = {
    "bicubic": Image.Resampling.BICUBIC,
    "bilinear": Image.Resampling.BILINEAR,
}

ImageLike = Image.Image | str | os.PathLike


def resample_filter(contract: PreprocessContract) -> Image.Resampling:
    """The Pillow filter for ``contract.resample``."""
    try:
        return _RESAMPLE[contract.resample]
    except KeyError:
        raise ValueError(f"unsupported resample filter {contract.resample!r}") from None


def centre_crop_box(width: int, height: int, resolution: int, crop_padding: int) -> tuple[int, int, int, int]:
    """(left, top, right, bottom) of tpu's padded centre crop of a ``width x height`` image."""
    side = int(resolution / (resolution + crop_padding) * min(width, height))
    side = max(1, side)
    top = (height - side + 1) // 2
    left = (width - side + 1) // 2
    return left, top, left + side, top + side


def resize_box(image: Image.Image, box: tuple[int, int, int, int],
               contract: PreprocessContract) -> Image.Image:
    """The region ``box`` of an RGB ``image`` resized to the contract's square input size.

    The region is cropped out first, as tpu does, so pixels outside it never leak into
    the border through the resize filter's support (``resize(box=...)`` would let them).
    """
    size = (contract.resolution, contract.resolution)
    return image.crop(box).resize(size, resample=resample_filter(contract))


def input_bounds(contract: PreprocessContract) -> tuple[np.ndarray, np.ndarray]:
    """Per-channel (low, high) that a correct input tensor stays within.

    Pixels span ``contract.input_range``; for host normalisation the bounds are that range
    after ``(x - mean) / std``. Calibration uses this to reject broken tensors.
    """
    lo, hi = (np.full(3, v, dtype=np.float64) for v in contract.input_range)
    if contract.normalization == "host":
        mean = np.asarray(contract.mean_rgb, dtype=np.float64)
        std = np.asarray(contract.std_rgb, dtype=np.float64)
        with np.errstate(divide="ignore", invalid="ignore"):
            a, b = (lo - mean) / std, (hi - mean) / std
        lo, hi = np.minimum(a, b), np.maximum(a, b)
    return lo, hi


def pixels_to_input(pixels: np.ndarray, contract: PreprocessContract) -> np.ndarray:
    """uint8 RGB pixels (..., 3) -> float32 model input under ``contract``.

    Pixels are mapped linearly from 0..255 to ``contract.input_range`` (identity for the
    default (0, 255)); with ``normalization == "host"`` the contract's ``(x - mean) / std``
    follows. ``"in_graph"`` models normalise themselves and get raw pixels: never both.
    """
    if contract.normalization not in ("in_graph", "host"):
        raise ValueError(f"unknown normalization {contract.normalization!r}")
    x = pixels.astype(np.float32)
    lo, hi = (float(v) for v in contract.input_range)
    if (lo, hi) != (0.0, 255.0):
        x = x * np.float32((hi - lo) / 255.0) + np.float32(lo)
    if contract.normalization == "host":
        mean = np.asarray(contract.mean_rgb, dtype=np.float32)
        std = np.asarray(contract.std_rgb, dtype=np.float32)
        with np.errstate(divide="ignore", invalid="ignore"):
            x = (x - mean) / std
    return x.astype(np.float32, copy=False)


def preprocess(image: ImageLike, contract: PreprocessContract) -> np.ndarray:
    """One image (a PIL image or a path) -> float32 array (res, res, 3) for the model.

    A path is decoded with :func:`edgenet.pixels.images.load_image` (and may raise
    :class:`~edgenet.errors.InputFileError`); a PIL image is first converted with the same
    RGB rules.
    """
    if isinstance(image, Image.Image):
        rgb = image if image.mode == "RGB" else to_rgb(image)
    else:
        rgb = load_image(image)
    box = centre_crop_box(rgb.width, rgb.height, contract.resolution, contract.crop_padding)
    resized = resize_box(rgb, box, contract)
    return pixels_to_input(np.asarray(resized, dtype=np.uint8), contract)


def preprocess_batch(
    paths: Iterable[str | os.PathLike], contract: PreprocessContract
) -> tuple[np.ndarray, list[tuple[Path, str]]]:
    """Preprocess many files; unreadable ones are reported, not fatal.

    Returns ``(array (N, res, res, 3) float32, failed)`` where ``failed`` lists
    ``(path, one-line reason)`` for each file that could not be decoded, so a caller can
    carry on with the others. ``array`` rows follow the order of the readable paths.
    """
    rows: list[np.ndarray] = []
    failed: list[tuple[Path, str]] = []
    for path in paths:
        try:
            rows.append(preprocess(path, contract))
        except InputFileError as err:
            failed.append((Path(path), err.cause))
    res = contract.resolution
    array = np.stack(rows) if rows else np.zeros((0, res, res, 3), dtype=np.float32)
    return array, failed


def _integer_range(dtype) -> tuple[np.dtype, int, int]:
    dt = np.dtype(dtype)
    if dt.kind not in "iu":
        raise ValueError(f"quantized dtype must be an integer type, got {dt}")
    info = np.iinfo(dt)
    return dt, int(info.min), int(info.max)


def quantize_input(x_float: np.ndarray, scale: float, zero_point: int, dtype) -> np.ndarray:
    """Float tensor -> integer tensor with TFLite's affine rule ``q = round(x / scale) + zp``.

    Rounds half away from zero like TFLite's reference quantize kernel (``std::round``),
    not numpy's round-half-to-even, so host-side quantization matches the converter's
    own and the device's, then clips to the dtype's range. For edgenet's int8 models
    (scale 1, zero point -128 on raw pixels) this is exact.
    """
    dt, qmin, qmax = _integer_range(dtype)
    scale = float(scale)
    if not np.isfinite(scale) or scale <= 0.0:
        raise ValueError(f"quantization scale must be a positive number, got {scale}")
    v = np.asarray(x_float, dtype=np.float64) / scale
    rounded = np.sign(v) * np.floor(np.abs(v) + 0.5)
    return np.clip(rounded + int(zero_point), qmin, qmax).astype(dt)


def dequantize(q: np.ndarray, scale: float, zero_point: int) -> np.ndarray:
    """Integer tensor -> float32 with ``(q - zero_point) * scale``."""
    return ((np.asarray(q, dtype=np.float64) - int(zero_point)) * float(scale)).astype(np.float32)
