"""Decoding image files into RGB, the same way on every machine.

Every path that feeds pixels to a model (predict, calibration, evaluation, the
conversion fidelity check) goes through :func:`load_image`, so a quantized model on a
Raspberry Pi sees exactly the pixels the float model saw on the workstation. Only
Pillow and numpy are used: this module runs on edge devices without TensorFlow.

Conversion rules (fixed, so results never depend on how a file happens to be stored):

* EXIF orientation is applied first (phone photos are often stored sideways).
* Grayscale (``1``, ``L``) is replicated to three channels.
* Anything with alpha (``RGBA``, ``LA``, ``PA``, palette or grayscale with a
  transparency key) is composited on opaque white.
* ``CMYK``, ``YCbCr``, ``LAB``, ``HSV`` use Pillow's fixed conversion to RGB.
* 16-bit integer images (``I;16*``, and ``I``, clipped to 0..65535) keep the top
  8 bits (``>> 8``); float images (``F``) are taken as 0..1 (non-finite -> 0) and
  scaled by 255 with rounding.

Pillow's decompression-bomb limit (``Image.MAX_IMAGE_PIXELS``) is deliberately left on:
a huge image is refused with a clear error instead of exhausting a small device's memory.
"""

from __future__ import annotations

import os
import warnings
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from PIL import Image, ImageOps, UnidentifiedImageError

from .. import fsutil
from ..errors import EdgenetError, InputFileError, format_path
from ..fsutil import FolderWalk, open_input, walk_files

# Lower-case suffixes (with the dot) that folder scans treat as image candidates.
IMAGE_EXTENSIONS: frozenset[str] = frozenset(
    {".jpg", ".jpeg", ".png", ".bmp", ".webp", ".gif", ".tif", ".tiff", ".ppm", ".pgm"}
)

#: Pillow formats edgenet decodes, decided by the file's content (the extension only nominates
#: candidates in a folder scan). Anything else (EPS, which runs Ghostscript; PDF; ICO; raw camera
#: formats; ...) is refused rather than decoded by a plugin nobody asked for.
IMAGE_FORMATS: tuple[str, ...] = ("JPEG", "PNG", "BMP", "WEBP", "GIF", "TIFF", "PPM")

#: Above this share of unreadable files among those tried, a folder is taken to be the wrong one.
MAX_UNREADABLE_SHARE = 0.5

CAUSE_NOT_IMAGE = "not an image file"
CAUSE_CORRUPT = "truncated or corrupt image data"
CAUSE_TOO_LARGE = "image too large (decompression-bomb limit)"

_WHITE = (255, 255, 255, 255)
_SIXTEEN_BIT_MODES = ("I;16", "I;16B", "I;16L", "I;16N", "I;16BS", "I;16S")


def _composite_on_white(rgba: Image.Image) -> Image.Image:
    background = Image.new("RGBA", rgba.size, _WHITE)
    return Image.alpha_composite(background, rgba).convert("RGB")


def to_rgb(image: Image.Image) -> Image.Image:
    """``image`` as an 8-bit RGB image, converted by the fixed rules in the module docstring.

    Raises ``ValueError`` for a mode Pillow cannot convert to RGB.
    """
    mode = image.mode
    if mode == "RGB" and "transparency" not in image.info:
        return image.copy()
    if mode in _SIXTEEN_BIT_MODES or mode == "I":
        values = np.asarray(image).astype(np.int64)
        if mode == "I":
            values = np.clip(values, 0, 65535)
        gray = (values >> 8).astype(np.uint8)
        return Image.fromarray(gray, mode="L").convert("RGB")
    if mode == "F":
        values = np.asarray(image, dtype=np.float64)
        values = np.where(np.isfinite(values), values, 0.0)
        gray = np.clip(np.round(values * 255.0), 0, 255).astype(np.uint8)
        return Image.fromarray(gray, mode="L").convert("RGB")
    has_alpha = mode in ("RGBA", "LA", "PA", "La", "RGBa") or "transparency" in image.info
    if has_alpha:
        return _composite_on_white(image.convert("RGBA"))
    return image.convert("RGB")


#: The most an image file may hold: far above any photo, far below a device's memory.
MAX_IMAGE_FILE_BYTES = 512 << 20


def load_image(path: str | os.PathLike) -> Image.Image:
    """Decode ``path`` fully into an RGB :class:`PIL.Image.Image` with EXIF orientation applied.

    Raises :class:`edgenet.errors.InputFileError` naming the file for a missing path, a
    folder, a special file (FIFO, device, socket: never opened), a link loop, a file whose
    content is not one of :data:`IMAGE_FORMATS` (decided by content, whatever its extension),
    truncated or corrupt data, or an image beyond Pillow's decompression-bomb limit.
    Multi-frame files (GIF, TIFF) give their first frame.
    """
    p = Path(path)
    fh = open_input(p, "an image file", MAX_IMAGE_FILE_BYTES)  # regular files only, never a FIFO
    try:
        with warnings.catch_warnings(), fh:
            # Pillow's remarks on damaged metadata ("Corrupt EXIF data") are not the user's business:
            # the image either decodes or fails below in one line.
            warnings.simplefilter("ignore", UserWarning)
            # Between MAX_IMAGE_PIXELS and twice it Pillow only warns; refuse those too.
            warnings.simplefilter("error", Image.DecompressionBombWarning)
            with Image.open(fh, formats=IMAGE_FORMATS) as im:
                im.load()  # force the full decode here so corrupt data fails inside the try
                try:
                    oriented = ImageOps.exif_transpose(im)
                except Exception:  # a malformed EXIF block must not make a readable image unusable
                    oriented = im
                return to_rgb(oriented if oriented is not None else im)
    except (Image.DecompressionBombError, Image.DecompressionBombWarning):
        raise InputFileError(p, CAUSE_TOO_LARGE) from None
    except UnidentifiedImageError:
        raise InputFileError(p, CAUSE_NOT_IMAGE) from None  # or not one of IMAGE_FORMATS
    except PermissionError:
        raise InputFileError(p, fsutil.CAUSE_PERMISSION) from None
    except Exception:  # noqa: BLE001 - Pillow reports broken data with a zoo of exception types
        # (OSError, SyntaxError, ValueError, EOFError, IndexError, struct.error, ...) depending on the
        # codec; whatever a decoder raises on a user's bytes is that file's problem, in one line.
        raise InputFileError(p, CAUSE_CORRUPT) from None


def walk_image_files(folder: str | os.PathLike) -> FolderWalk:
    """Candidates under ``folder`` (recursive) whose suffix is in :data:`IMAGE_EXTENSIONS`, through the
    one folder walk (:func:`edgenet.fsutil.walk_files`): hidden names ignored, sorted by relative path;
    link loops, dangling links, special files and names that are not UTF-8 come back in ``skipped``
    with their reason. Nothing is decoded; see :func:`scan_images` for that."""
    return walk_files(folder, IMAGE_EXTENSIONS)


def list_image_files(folder: str | os.PathLike) -> tuple[Path, ...]:
    """The usable candidates of :func:`walk_image_files` (for callers that report no skips)."""
    return walk_image_files(folder).files


@dataclass(frozen=True)
class ScanResult:
    """What :func:`scan_images` found: usable images and the candidates it had to skip."""

    folder: Path
    images: tuple[Path, ...]
    skipped: tuple[tuple[Path, str], ...]  # (path, one-line reason)

    @property
    def candidates(self) -> int:
        return len(self.images) + len(self.skipped)


def scan_images(folder: str | os.PathLike) -> ScanResult:
    """Every decodable image under ``folder``, recursively, in sorted order.

    Each candidate (by extension) is fully decoded once; the ones that fail are returned
    in ``skipped`` with their reason rather than stopping the scan. A missing folder or a
    path that is not a folder raises :class:`InputFileError`.
    """
    root = Path(folder)
    walk = walk_image_files(root)
    usable: list[Path] = []
    skipped: list[tuple[Path, str]] = list(walk.skipped)
    for path in walk.files:
        try:
            load_image(path)
        except InputFileError as err:
            skipped.append((path, err.cause))
        else:
            usable.append(path)
    return ScanResult(folder=root, images=tuple(usable), skipped=tuple(skipped))


def describe_skipped(skipped, limit: int = 3) -> str:
    """``3 file(s): a.jpg (not an image file), b.png (symbolic link loop), ... and 1 more``."""
    shown = ", ".join(f"{format_path(path)} ({reason})" for path, reason in list(skipped)[:limit])
    more = f" and {len(skipped) - limit} more" if len(skipped) > limit else ""
    return f"{len(skipped)} file(s): {shown}{more}"


def check_unreadable_share(where: str, usable: int, skipped) -> None:
    """The one policy for folders of images: raise when more than :data:`MAX_UNREADABLE_SHARE` of
    the files tried could not be read (the folder is likely the wrong one), naming the first few."""
    tried = usable + len(skipped)
    if tried and len(skipped) / tried > MAX_UNREADABLE_SHARE:
        raise EdgenetError(f"{where}: {len(skipped)} of {tried} image files are unreadable (more than "
                           f"{MAX_UNREADABLE_SHARE:.0%}); first {describe_skipped(skipped)}")
