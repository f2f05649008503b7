"""Atomic file output and content hashing.

Every file edgenet writes goes to a temporary name in the same folder first and is
renamed into place, so an interrupted or failed run never leaves a partial file and
never damages an earlier result.
"""

from __future__ import annotations

import contextlib
import hashlib
import os
import re
from collections.abc import Iterator
from pathlib import Path


def tmp_path(path: str | os.PathLike, keep_ending: bool = False) -> Path:
    """Where a write to ``path`` is staged: a hidden name in the same folder (so the rename is atomic),
    unique to this process. ``keep_ending`` puts the process id first, so the name still ends like
    ``path`` for writers that check it (Keras insists on ``.weights.h5``)."""
    path = Path(path)
    return path.with_name(f".tmp-{os.getpid()}-{path.name}" if keep_ending else f".{path.name}.tmp-{os.getpid()}")


def _why(exc: OSError) -> str:
    if isinstance(exc, FileExistsError):
        return "a file is in the way of a folder"
    if exc.strerror:
        return exc.strerror
    # h5py's errors carry the errno only in their text ("... errno = 30, error message = ...").
    found = re.search(r"errno = (\d+)", str(exc))
    if found:
        return os.strerror(int(found.group(1)))
    return (str(exc).strip().splitlines() or [type(exc).__name__])[0][:200]


def write_error(path: str | os.PathLike, exc: OSError):
    """The one line for an output that cannot be written (read-only folder, full disk, a file in the way)."""
    from .errors import InputFileError

    return InputFileError(path, f"cannot write: {_why(exc)}")


@contextlib.contextmanager
def atomic_output(path: str | os.PathLike, keep_ending: bool = False) -> Iterator[Path]:
    """Yield a temporary path to write; it replaces ``path`` when the body succeeds, and is removed
    otherwise, so ``path`` is either the old file or the complete new one, never a partial one.

    Any ``OSError`` (EACCES, EROFS, ENOSPC, ENOTDIR, ...) while creating the folder, writing or
    renaming becomes one ``InputFileError`` naming ``path`` and the cause (:func:`write_error`);
    the cleanup itself never raises.
    """
    path = Path(path)
    tmp = tmp_path(path, keep_ending)
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        yield tmp
        os.replace(tmp, path)
    except OSError as exc:
        raise write_error(path, exc) from None
    finally:
        with contextlib.suppress(OSError):
            tmp.unlink(missing_ok=True)


def atomic_write_bytes(path: str | os.PathLike, data: bytes) -> Path:
    with atomic_output(path) as tmp, open(tmp, "wb") as fh:
        fh.write(data)
        fh.flush()
        os.fsync(fh.fileno())
    return Path(path)


def atomic_write_text(path: str | os.PathLike, text: str) -> Path:
    return atomic_write_bytes(path, text.encode("utf-8"))


def sha256_bytes(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def sha256_file(path: str | os.PathLike, chunk_bytes: int = 1 << 20) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as fh:
        for chunk in iter(lambda: fh.read(chunk_bytes), b""):
            digest.update(chunk)
    return digest.hexdigest()


def read_input_bytes(path: str | os.PathLike, expected: str = "a file") -> bytes:
    """The bytes of a user's input file; any problem is one ``InputFileError`` naming the file."""
    from .errors import InputFileError

    path = Path(path)
    try:
        data = path.read_bytes()
    except FileNotFoundError:
        raise InputFileError(path, "no such file") from None
    except IsADirectoryError:
        raise InputFileError(path, f"is a directory, expected {expected}") from None
    except OSError as exc:
        raise InputFileError(path, f"cannot read: {exc.strerror or exc}") from None
    if not data:
        raise InputFileError(path, f"empty file, expected {expected}")
    return data


def read_input_text(path: str | os.PathLike, expected: str = "a text file") -> str:
    """The UTF-8 text of a user's input file (an empty file is empty text; see :func:`read_input_bytes`)."""
    from .errors import InputFileError

    path = Path(path)
    if path.is_file() and path.stat().st_size == 0:
        return ""
    data = read_input_bytes(path, expected)
    try:
        return data.decode("utf-8")
    except UnicodeDecodeError:
        raise InputFileError(path, f"not UTF-8 text, expected {expected}") from None
