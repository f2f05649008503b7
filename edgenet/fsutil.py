"""Atomic file output, the one reader of users' files and the one walk of their folders.

Every file edgenet writes goes to a temporary name in the same folder first and is
renamed into place, so an interrupted or failed run never leaves a partial file and
never damages an earlier result.
"""

from __future__ import annotations

import contextlib
import errno
import hashlib
import os
import re
import stat
from collections.abc import Iterator
from dataclasses import dataclass
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


def create_new(path: str | os.PathLike, mode: int = 0o666):
    """A fresh file at ``path`` opened for writing, never through a link: whatever is in the way (a
    stale temporary, a planted symbolic link) is removed first (removing a link does not touch its
    target), then the file is created with ``O_EXCL | O_NOFOLLOW``."""
    with contextlib.suppress(FileNotFoundError):
        os.unlink(path)
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL | getattr(os, "O_NOFOLLOW", 0)
                 | getattr(os, "O_CLOEXEC", 0), mode)
    return os.fdopen(fd, "wb")


def atomic_write_bytes(path: str | os.PathLike, data: bytes) -> Path:
    with atomic_output(path) as tmp, create_new(tmp) as fh:
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


#: Size caps per kind of user file: a file (or a link to one) larger than its kind can be is refused
#: before it is read, so a huge file never exhausts a small device's memory.
MAX_MODEL_BYTES = 2 << 30  # a .tflite flatbuffer cannot exceed 2 GiB
MAX_TEXT_BYTES = 256 << 20  # settings, device files, labels, results files, manifests
MAX_PIN_BYTES = 4 << 10  # a ``.sha256`` pin beside a cached file

#: What a path can be instead of a regular file (the name a message uses).
_SPECIAL_KINDS = ((stat.S_ISFIFO, "a FIFO"), (stat.S_ISSOCK, "a socket"), (stat.S_ISCHR, "a character device"),
                  (stat.S_ISBLK, "a block device"))

CAUSE_MISSING = "no such file"
CAUSE_BROKEN_LINK = "symbolic link to a missing file"
CAUSE_LINK_LOOP = "symbolic link loop"
CAUSE_PERMISSION = "permission denied"


def file_kind(mode: int) -> str:
    """``a FIFO``, ``a socket``, ``a character device``... for a ``st_mode`` that is not a regular file."""
    if stat.S_ISDIR(mode):
        return "a directory"
    return next((name for test, name in _SPECIAL_KINDS if test(mode)), "a special file")


def _open_error(path: Path, exc: OSError):
    from .errors import InputFileError

    if isinstance(exc, FileNotFoundError):
        return InputFileError(path, CAUSE_BROKEN_LINK if os.path.islink(path) else CAUSE_MISSING)
    if isinstance(exc, PermissionError):
        return InputFileError(path, CAUSE_PERMISSION)
    if exc.errno == errno.ELOOP:
        return InputFileError(path, CAUSE_LINK_LOOP)
    if exc.errno == errno.ENAMETOOLONG:
        return InputFileError(path, "file name too long")
    return InputFileError(path, f"cannot read: {exc.strerror or exc}")


def open_input(path: str | os.PathLike, expected: str = "a file", max_bytes: int | None = None):
    """The one way edgenet opens a user's file: a binary file object for ``path``, which must be a
    regular file (after symbolic links) of at most ``max_bytes``.

    A FIFO, socket or device (or a link to ``/dev/zero``) is refused from ``stat`` without being
    opened (opening a FIFO blocks until a writer comes; reading a device never ends); the open uses
    ``O_NONBLOCK`` and is checked again with ``fstat``, so a file swapped for a FIFO in between can
    never block either. Every problem is one :class:`~edgenet.errors.InputFileError` naming the file.
    """
    from .errors import InputFileError

    p = Path(path)
    try:
        info = os.stat(p)
    except (OSError, ValueError) as exc:  # ValueError: a NUL byte in the name
        if isinstance(exc, ValueError):
            raise InputFileError(p, "not a usable file name") from None
        raise _open_error(p, exc) from None
    if stat.S_ISDIR(info.st_mode):
        raise InputFileError(p, f"is a directory, not {expected}")
    if not stat.S_ISREG(info.st_mode):
        raise InputFileError(p, f"{file_kind(info.st_mode)}, not {expected} (not opened)")
    try:
        fd = os.open(p, os.O_RDONLY | getattr(os, "O_NONBLOCK", 0) | getattr(os, "O_CLOEXEC", 0))
    except OSError as exc:
        raise _open_error(p, exc) from None
    info = os.fstat(fd)
    if not stat.S_ISREG(info.st_mode):
        os.close(fd)
        raise InputFileError(p, "changed into a special file while being opened")
    if max_bytes is not None and info.st_size > max_bytes:
        os.close(fd)
        raise InputFileError(p, f"{info.st_size} bytes, more than {expected} can be ({max_bytes} bytes)")
    return os.fdopen(fd, "rb")


def read_input_bytes(path: str | os.PathLike, expected: str = "a file", max_bytes: int = MAX_MODEL_BYTES) -> bytes:
    """The bytes of a user's input file through :func:`open_input` (regular files only, at most
    ``max_bytes``, which also bounds a file that grows while it is read); an empty file is refused.
    Any problem is one ``InputFileError`` naming the file."""
    from .errors import InputFileError

    path = Path(path)
    with open_input(path, expected, max_bytes) as fh:
        try:
            data = fh.read(max_bytes + 1)
        except OSError as exc:
            raise InputFileError(path, f"cannot read: {exc.strerror or exc}") from None
    if len(data) > max_bytes:
        raise InputFileError(path, f"more than {max_bytes} bytes, more than {expected} can be")
    if not data:
        raise InputFileError(path, f"empty file, expected {expected}")
    return data


def read_input_text(path: str | os.PathLike, expected: str = "a text file", max_bytes: int = MAX_TEXT_BYTES) -> str:
    """The UTF-8 text of a user's input file (an empty file is empty text; see :func:`read_input_bytes`)."""
    from .errors import InputFileError

    path = Path(path)
    try:
        data = read_input_bytes(path, expected, max_bytes)
    except InputFileError as exc:
        if exc.cause.startswith("empty file"):
            return ""
        raise
    try:
        return data.decode("utf-8")
    except UnicodeDecodeError:
        raise InputFileError(path, f"not UTF-8 text, expected {expected}") from None


@dataclass(frozen=True)
class FolderWalk:
    """What :func:`walk_files` found under a user's folder: usable regular files, and the candidates
    it skipped, each with its one-line reason (a link loop, a dangling link, a FIFO, a name that is
    not UTF-8...)."""

    folder: Path
    files: tuple[Path, ...]
    skipped: tuple[tuple[Path, str], ...] = ()


CAUSE_NOT_UTF8_NAME = "file name is not valid UTF-8 (rename the file)"


def _skip_reason(path: Path, name: str) -> str | None:
    """Why a candidate found in a folder cannot be used (``None``: a regular file, or a link to one)."""
    try:
        name.encode("utf-8")
    except UnicodeEncodeError:  # os.walk's surrogate escapes of bytes that are not UTF-8
        return CAUSE_NOT_UTF8_NAME
    try:
        info = os.stat(path)
    except OSError as exc:
        return _open_error(path, exc).cause
    if stat.S_ISREG(info.st_mode):
        return None
    return f"{file_kind(info.st_mode)} (not opened)"


def walk_files(folder: str | os.PathLike, suffixes: frozenset[str], what: str = "folder") -> FolderWalk:
    """The one walk of a user's folder: every file under ``folder`` (recursive; linked sub-folders are
    not followed, so a folder loop cannot recur) whose lower-case suffix is in ``suffixes``.

    Hidden files and folders (``.name``) are ignored. Candidates that cannot be used are returned in
    ``skipped`` with their reason, never raised: a symbolic link loop, a link to a missing file, a
    FIFO, socket or device, a name that is not UTF-8. The order is sorted by the path relative to
    ``folder`` (POSIX form), the same on every file system. A missing folder, or a path that is not a
    folder, is one :class:`~edgenet.errors.InputFileError` naming it.
    """
    from .errors import InputFileError

    root = Path(folder)
    try:
        info = os.stat(root)
    except OSError as exc:
        if isinstance(exc, FileNotFoundError) and not os.path.islink(root):
            raise InputFileError(root, f"no such {what}") from None
        raise InputFileError(root, _open_error(root, exc).cause) from None
    if not stat.S_ISDIR(info.st_mode):
        raise InputFileError(root, f"not a {what}")
    found: list[tuple[str, Path, str | None]] = []

    def unreadable(exc: OSError) -> None:  # a sub-folder that cannot be listed is a skip too
        if exc.filename is not None:
            where = Path(os.fsdecode(exc.filename))
            found.append((os.fsencode(str(where)).decode("utf-8", "replace"), where,
                          f"folder cannot be listed: {exc.strerror or exc}"))

    for dirpath, dirnames, filenames in os.walk(root, onerror=unreadable):
        dirnames[:] = [d for d in dirnames if not d.startswith(".")]
        for name in filenames:
            if name.startswith(".") or Path(name).suffix.lower() not in suffixes:
                continue
            path = Path(dirpath) / name
            found.append((os.fsencode(path.relative_to(root).as_posix()).decode("utf-8", "replace"), path,
                          _skip_reason(path, name)))
    found.sort(key=lambda item: item[0])
    return FolderWalk(root, tuple(p for _, p, why in found if why is None),
                      tuple((p, why) for _, p, why in found if why is not None))
