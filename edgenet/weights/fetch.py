"""``--weights imagenet``: find, download and verify the published weights of a variant.

Resolution order for a registry entry (:mod:`edgenet.weights.registry`):

1. an installed package that ships the same file (Lite0-2), after checking its hash;
2. the cache (``$EDGENET_CACHE``, else ``$XDG_CACHE_HOME/edgenet``, else
   ``~/.cache/edgenet``; files under ``weights/``), after checking its hash; no network;
3. a download from the source (or the mirror ``$EDGENET_WEIGHTS_URL/<file name>``),
   unless offline (``EDGENET_OFFLINE=1`` or ``HF_HUB_OFFLINE=1``).

Downloads resume: bytes land in ``<file>.part``, an interrupted transfer is picked up with an
HTTP ``Range`` request, on the next attempt of the same call or of a later run; the file is
renamed into place only after its hash matches (a mismatch deletes it), and kept read-only.
A lock file keeps two processes from writing the same file. Nothing in the cache is ever
written through a link (``O_NOFOLLOW``; a hard link is refused too). A download is bounded: by
the registry's size (else :data:`MAX_DOWNLOAD_BYTES`), by a deadline and a stall timeout, by
:data:`MAX_REDIRECTS` redirects that stay on http(s), and the bytes are never decoded on the way
(no ``gzip`` bomb).

What is used is what was verified: :func:`read_verified` hashes the very bytes a loader parses
when they come from the cache or an installed package, so a file swapped after its check is
refused in one line. Files without a published hash are fetched only when the
user says ``trust_on_first_use``; the SHA-256 of that first copy is recorded in
``<file>.sha256`` and checked from then on.

Every failure is one line naming the URL or file, and where a file can be placed by
hand.
"""

from __future__ import annotations

import errno
import hashlib
import os
import re
import stat
import sys
import time
from collections.abc import Callable, Mapping
from contextlib import contextmanager, suppress
from dataclasses import dataclass, field
from pathlib import Path

from ..errors import EdgenetError, InputFileError, MissingDependencyError, format_path, printable
from .registry import (
    IGNORE_PACKAGES_ENV,
    OFFLINE_ENV,
    REGISTRY,
    PublishedWeights,
    cache_dir,
    published_weights,
)

__all__ = [
    "FetchSettings", "Located", "WeightsHashError", "WeightsUnavailableError", "VerifyResult",
    "TransferLimits", "cached_path", "file_hash", "locate", "read_verified", "resolve", "resolve_path", "verify",
]

DOWNLOAD_ATTEMPTS = 3  # one transfer plus two resumes after an interruption
CONNECT_TIMEOUT_S = 15.0
#: A transfer that brings fewer than STALL_MIN_BYTES in STALL_TIMEOUT_S is stalled (a byte every
#: 20 s keeps a socket alive forever; it does not keep a download alive).
STALL_TIMEOUT_S = 60.0
STALL_MIN_BYTES = 16 << 10
#: The whole transfer's deadline (B7's 256 MB at 150 kB/s).
DOWNLOAD_DEADLINE_S = 1800.0
#: Files without a published size are refused beyond this (the largest published file, B7, is 256 MB).
MAX_DOWNLOAD_BYTES = 512 << 20
MAX_REDIRECTS = 5
#: The most a weights file may hold when it is read to be loaded.
MAX_WEIGHTS_BYTES = 2 << 30
_CHUNK_BYTES = 1 << 16


class WeightsUnavailableError(EdgenetError):
    """Published weights that are neither installed, cached nor downloadable right now."""


class WeightsHashError(EdgenetError):
    """A file whose hash does not match the registry (or the hash pinned on first use)."""


def _truthy(value: str | None) -> bool:
    return (value or "").strip().lower() in ("1", "true", "yes", "on")


@dataclass(frozen=True)
class FetchSettings:
    """Where the cache is, and whether the network and installed packages may be used."""

    cache_root: Path
    offline: bool = False
    use_packages: bool = True
    deadline_s: float = DOWNLOAD_DEADLINE_S  # a download's whole time
    stall_s: float = STALL_TIMEOUT_S  # a download bringing less than STALL_MIN_BYTES in this long is stalled
    environ: Mapping[str, str] = field(default_factory=dict, compare=False, repr=False)

    @classmethod
    def from_env(cls, environ: Mapping[str, str] | None = None) -> FetchSettings:
        environ = dict(os.environ if environ is None else environ)
        return cls(
            cache_root=cache_dir(environ),
            offline=_truthy(environ.get(OFFLINE_ENV)) or _truthy(environ.get("HF_HUB_OFFLINE")),
            use_packages=not _truthy(environ.get(IGNORE_PACKAGES_ENV)),
            environ=environ,
        )

    @property
    def weights_dir(self) -> Path:
        return self.cache_root / "weights"


@dataclass(frozen=True)
class Located:
    """A verified weights file and where it came from ("package", "cache" or "download")."""

    entry: PublishedWeights
    path: Path
    origin: str


def cached_path(entry: PublishedWeights, settings: FetchSettings) -> Path:
    return settings.weights_dir / entry.filename


def _pin_path(path: Path) -> Path:
    return path.with_name(path.name + ".sha256")


def file_hash(path, algorithm: str = "sha256") -> str:
    """The hash of a file, read through the one reader of users' files (never a FIFO or a device)."""
    from ..fsutil import open_input

    digest = hashlib.new(algorithm)
    with open_input(path, "a weights file") as f:
        for chunk in iter(lambda: f.read(1 << 20), b""):
            digest.update(chunk)
    return digest.hexdigest()


def _expected(entry: PublishedWeights, path: Path) -> str | None:
    """The published hash, or the SHA-256 pinned at the first download (None: nothing pinned)."""
    from ..fsutil import MAX_PIN_BYTES, read_input_bytes

    if entry.hash:
        return entry.hash
    pin = _pin_path(path)
    if not os.path.lexists(pin):
        return None
    data = read_input_bytes(pin, "a .sha256 pin", MAX_PIN_BYTES)
    words = data.split()
    if not words or not re.fullmatch(rb"[0-9a-fA-F]{64}", words[0]):
        raise WeightsHashError(f"{format_path(pin)}: not a sha256 pin (expected 64 hex digits, then the file name); "
                               f"remove it and the file beside it, then fetch again with --trust-on-first-use")
    return "sha256:" + words[0].decode("ascii").lower()


def _cached_file(path: Path) -> bool:
    """Whether the cache holds a file at ``path``; anything else in its place is one line."""
    from ..fsutil import file_kind

    try:
        info = os.stat(path)
    except FileNotFoundError:
        if os.path.islink(path):
            raise InputFileError(path, "symbolic link to a missing file in the weights cache; remove it") from None
        return False
    except NotADirectoryError:
        return False  # the cache itself is under a file: said when the download needs the folder
    except OSError as exc:
        raise InputFileError(path, f"cannot read: {exc.strerror or exc}") from None
    if stat.S_ISREG(info.st_mode):
        return True
    raise InputFileError(path, f"{file_kind(info.st_mode)} is where the weights file should be; remove it")


def _matches(path: Path, expected: str) -> tuple[bool, str]:
    algorithm, want = expected.split(":", 1)
    got = file_hash(path, algorithm)
    return got == want.lower(), got


def _where_by_hand(entry: PublishedWeights, settings: FetchSettings) -> str:
    check = f" ({entry.hash})" if entry.hash else ""
    return f"place the file by hand at {cached_path(entry, settings)}{check}"


def _say(log: Callable[[str], None] | None, message: str) -> None:
    if log is not None:
        log(message)


def locate(entry: PublishedWeights, settings: FetchSettings, *, log=None) -> Located | None:
    """An installed package copy or a cached file whose hash checks out; never the network.

    A cached file that fails its check is deleted (and said so); a package copy that
    fails is ignored (and said so): it is not edgenet's to delete.
    """
    if settings.use_packages and entry.package is not None:
        copy = entry.package.locate()
        if copy is not None:
            ok, got = _matches(copy, entry.hash) if entry.hash else (True, "")
            if ok:
                return Located(entry, copy, "package")
            _say(log, f"{entry.variant}: installed {copy} does not match its published {entry.hash} "
                      f"(got {got}): ignored; reinstall with {entry.package.install_hint}")
    path = cached_path(entry, settings)
    if not _cached_file(path):
        return None
    expected = _expected(entry, path)
    if expected is None:
        # Placed by hand, no published hash: the user vouched for it; pin it from now on.
        digest = file_hash(path)
        _write_pin(path, digest)
        _say(log, f"{entry.variant}: {path} has no published hash: pinned its sha256 {digest}")
        return Located(entry, path, "cache")
    ok, got = _matches(path, expected)
    if ok:
        return Located(entry, path, "cache")
    path.unlink(missing_ok=True)
    _say(log, f"{entry.variant}: cached {path} does not match {expected} (got {got}): deleted")
    return None


def _write_pin(path: Path, sha256: str) -> None:
    from ..fsutil import atomic_write_text

    atomic_write_text(_pin_path(path), f"{sha256}  {path.name}\n")


def resolve(
    variant,
    settings: FetchSettings | None = None,
    *,
    entry: PublishedWeights | None = None,
    trust_on_first_use: bool = False,
    progress: bool = True,
    log: Callable[[str], None] | None = None,
) -> Located:
    """The verified published weights of ``variant``: installed, cached, or downloaded now."""
    settings = settings or FetchSettings.from_env()
    entry = entry or published_weights(variant)
    found = locate(entry, settings, log=log)
    if found is not None:
        return found
    url = entry.source_url(settings.environ)
    name = entry.variant
    if url is None:
        how = f"install it ({entry.package.install_hint}) or " if entry.package else ""
        raise WeightsUnavailableError(f"{name}: weights not installed or cached; {how}{_where_by_hand(entry, settings)}")
    if settings.offline:
        raise WeightsUnavailableError(f"{name}: offline and not cached: download {url} and "
                                      f"{_where_by_hand(entry, settings)}")
    if entry.hash is None and not trust_on_first_use:
        raise WeightsUnavailableError(
            f"{name}: {url} has no published hash; run 'edgenet weights fetch {name} --trust-on-first-use' to "
            f"download it and pin its sha256, or {_where_by_hand(entry, settings)}")
    path = cached_path(entry, settings)
    limits = TransferLimits(max_bytes=entry.size_bytes or MAX_DOWNLOAD_BYTES, exact=entry.size_bytes is not None,
                            deadline_s=settings.deadline_s, stall_s=settings.stall_s)
    digest = download(url, path, entry.hash, progress=progress, log=log, label=name, limits=limits)
    if entry.hash is None:
        _write_pin(path, digest)
        _say(log, f"{name}: trust on first use: pinned sha256 {digest} in {_pin_path(path)}")
    return Located(entry, path, "download")


def resolve_path(variant, **kwargs) -> Path:
    """:func:`resolve` for callers that only need the file."""
    return resolve(variant, **kwargs).path


# --- transfer ------------------------------------------------------------------------------


def _refuse_link(path: Path, exc: OSError) -> EdgenetError:
    """The one line for a cache entry edgenet will not write through (a planted link, a folder...)."""
    from ..fsutil import write_error

    if exc.errno == errno.ELOOP:
        return InputFileError(path, "is a symbolic link: edgenet never writes through a link in its cache; "
                                    "remove it")
    if isinstance(exc, IsADirectoryError):
        return InputFileError(path, "a folder is where the file should be; remove it")
    return write_error(path, exc)


def _open_in_cache(path: Path, flags: int):
    """``path`` inside the cache opened for writing without ever following a link (``O_NOFOLLOW``);
    a hard link (a second name for a file elsewhere) is refused too. Returns the descriptor."""
    try:
        fd = os.open(path, flags | os.O_CREAT | os.O_NOFOLLOW | os.O_CLOEXEC | os.O_NONBLOCK, 0o600)
    except OSError as exc:
        raise _refuse_link(path, exc) from None
    info = os.fstat(fd)
    if not stat.S_ISREG(info.st_mode) or info.st_nlink != 1:
        os.close(fd)
        raise InputFileError(path, "is not a plain file of the cache (a special file or a hard link): "
                                   "edgenet never writes through it; remove it")
    return fd


def _cache_folder(folder: Path) -> None:
    from ..fsutil import write_error

    try:
        folder.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise write_error(folder, exc) from None
    if not folder.is_dir():
        raise InputFileError(folder, "cannot write: a file is in the way of the cache folder")


@contextmanager
def _lock(path: Path):
    """An exclusive lock beside ``path`` (two processes never write the same .part); never a link."""
    import fcntl

    lock_path = path.with_name(path.name + ".lock")
    fd = _open_in_cache(lock_path, os.O_WRONLY)
    try:
        fcntl.flock(fd, fcntl.LOCK_EX)
        yield
    finally:
        os.close(fd)  # closing releases the lock


@dataclass(frozen=True)
class TransferLimits:
    """What a download may take: bytes (the registry's size, else a cap), redirects, and time."""

    max_bytes: int = MAX_DOWNLOAD_BYTES
    exact: bool = False  # the registry knows the size: anything else is wrong
    deadline_s: float = DOWNLOAD_DEADLINE_S
    stall_s: float = STALL_TIMEOUT_S
    max_redirects: int = MAX_REDIRECTS


class _TransferError(Exception):
    """A transfer failure with its one-line cause (``resumable``: some bytes were kept)."""


def _get(session, url: str, headers: dict, limits: TransferLimits, deadline: float):
    """GET ``url`` following at most ``limits.max_redirects`` redirects, each to http(s) only, never twice
    to the same place; returns the streaming response and the final URL."""
    from urllib.parse import urljoin, urlsplit

    seen = {url}
    for _ in range(limits.max_redirects + 1):
        left = deadline - time.monotonic()
        if left <= 0:
            raise _TransferError(f"no answer within the {limits.deadline_s:g} s deadline")
        response = session.get(url, headers=headers, stream=True, allow_redirects=False,
                               timeout=(min(CONNECT_TIMEOUT_S, left), min(limits.stall_s, left)))
        if response.status_code not in (301, 302, 303, 307, 308):
            return response, url
        location = response.headers.get("Location", "")
        response.close()
        target = urljoin(url, location)
        if urlsplit(target).scheme not in ("http", "https"):
            raise _TransferError(f"redirected to {printable(target[:200])!s}, which is not http(s): refused")
        if target in seen:
            raise _TransferError(f"redirect loop (back to {printable(target[:200])})")
        seen.add(target)
        url = target
    raise _TransferError(f"more than {limits.max_redirects} redirects")


class _Transfer:
    """One attempt: resume ``<file>.part`` with a Range request, bounded in bytes and time."""

    def __init__(self, part: Path, limits: TransferLimits, *, progress: bool, label: str):
        self.part, self.limits, self.progress, self.label = part, limits, progress, label

    def __call__(self, session, url: str, fd: int, deadline: float) -> None:
        from tqdm import tqdm

        limits = self.limits
        offset = os.fstat(fd).st_size
        # identity: the bytes on the wire are the bytes of the file, never decoded beyond the size bound.
        headers = {"Accept-Encoding": "identity", **({"Range": f"bytes={offset}-"} if offset else {})}
        response, url = _get(session, url, headers, limits, deadline)
        with response:
            if offset and response.status_code == 416:  # the range is past the end: start over
                os.ftruncate(fd, 0)
                return self(session, url, fd, deadline)
            response.raise_for_status()
            resumed = offset and response.status_code == 206 and _content_range_start(response) == offset
            if not resumed:
                offset = 0  # the server sends the whole file
                os.ftruncate(fd, 0)
            os.lseek(fd, offset, os.SEEK_SET)
            length = response.headers.get("Content-Length")
            total = int(length) + offset if length and length.isdigit() else None
            if total is not None and total > limits.max_bytes:
                raise _TransferError(f"announces {total} bytes, more than the {limits.max_bytes} expected: refused")
            got = offset
            window_start, window_bytes = time.monotonic(), 0
            with tqdm(total=total, initial=offset, unit="B", unit_scale=True, unit_divisor=1024, desc=self.label,
                      disable=not self.progress, file=sys.stderr, leave=False) as bar:
                while True:
                    chunk = response.raw.read1(_CHUNK_BYTES, decode_content=False)
                    if not chunk:
                        break
                    got += len(chunk)
                    if got > limits.max_bytes:
                        os.ftruncate(fd, 0)
                        raise _TransferError(f"sent more than the {limits.max_bytes} bytes expected: stopped, "
                                             "nothing kept")
                    _write_all(fd, chunk)
                    bar.update(len(chunk))
                    now = time.monotonic()
                    window_bytes += len(chunk)
                    if now > deadline:
                        raise _TransferError(f"not done within the {limits.deadline_s:g} s deadline "
                                             f"({got} bytes)", "resumable")
                    if now - window_start >= limits.stall_s:
                        if window_bytes < STALL_MIN_BYTES:
                            raise _TransferError(f"stalled: {window_bytes} bytes in {now - window_start:.0f} s "
                                                 f"({got} bytes so far)", "resumable")
                        window_start, window_bytes = now, 0
            if limits.exact and got != limits.max_bytes:
                raise _TransferError(f"ended after {got} of the {limits.max_bytes} bytes the registry lists",
                                     "resumable")


def _write_all(fd: int, data: bytes) -> None:
    view = memoryview(data)
    while view:
        view = view[os.write(fd, view):]


def _content_range_start(response) -> int | None:
    match = re.match(r"bytes (\d+)-", response.headers.get("Content-Range", ""))
    return int(match.group(1)) if match else None


def _connection_cause(exc) -> str:
    text = str(exc)
    for needle, cause in (("Connection refused", "connection refused"), ("Name or service not known", "unknown host"),
                          ("timed out", "timed out"), ("Temporary failure in name resolution", "no DNS")):
        if needle in text:
            return cause
    return "connection failed"


def _fd_hash(fd: int, algorithm: str) -> str:
    digest = hashlib.new(algorithm)
    os.lseek(fd, 0, os.SEEK_SET)
    while True:
        chunk = os.read(fd, 1 << 20)
        if not chunk:
            return digest.hexdigest()
        digest.update(chunk)


def download(url: str, path: Path, known_hash: str | None, *, progress: bool = True, log=None,
             label: str | None = None, limits: TransferLimits | None = None) -> str:
    """Download ``url`` to ``path``: resumable, bounded (``limits``), verified, atomic; one-line errors.

    Bytes land in ``<file>.part`` (opened without following links, never a hard link), are checked
    against ``known_hash`` (or hashed, for trust on first use), made read-only and renamed into place.
    Returns the file's SHA-256 (``known_hash`` may be another algorithm).
    """
    try:
        import requests
        import urllib3
    except ImportError as exc:
        raise MissingDependencyError(exc.name or "requests", "tf", "downloading weights") from None

    path = Path(path)
    limits = limits or TransferLimits()
    _cache_folder(path.parent)
    part = path.with_name(path.name + ".part")
    label = label or path.name
    by_hand = f"download it yourself and place it at {format_path(path)}"
    transfer = _Transfer(part, limits, progress=progress, label=label)
    with _lock(path), requests.Session() as session:
        session.trust_env = False  # no proxy or .netrc from the environment: the URL is the URL
        fd = _open_in_cache(part, os.O_RDWR)
        deadline = time.monotonic() + limits.deadline_s  # for the whole download, resumes included
        try:
            for attempt in range(1, DOWNLOAD_ATTEMPTS + 1):
                before = os.fstat(fd).st_size
                try:
                    transfer(session, url, fd, deadline)
                    break
                except (requests.exceptions.InvalidURL, requests.exceptions.MissingSchema,
                        requests.exceptions.InvalidSchema) as exc:
                    raise WeightsUnavailableError(f"{url}: not a usable URL ({exc.__class__.__name__})") from None
                except requests.HTTPError as exc:
                    status = exc.response.status_code if exc.response is not None else "?"
                    reason = exc.response.reason if exc.response is not None else ""
                    raise WeightsUnavailableError(f"{url}: HTTP {status} {reason}".rstrip() + f"; {by_hand}") from None
                except (_TransferError, requests.RequestException, urllib3.exceptions.HTTPError) as exc:
                    got = os.fstat(fd).st_size
                    resumable = not isinstance(exc, _TransferError) or len(exc.args) > 1
                    cause = exc.args[0] if isinstance(exc, _TransferError) else _connection_cause(exc)
                    if resumable and got > before and attempt < DOWNLOAD_ATTEMPTS and time.monotonic() < deadline:
                        _say(log, f"{label}: transfer interrupted after {got} bytes ({cause}): resuming")
                        continue
                    if resumable and got:
                        raise WeightsUnavailableError(f"{url}: {cause}; transfer interrupted after {got} bytes; "
                                                      f"run again to resume, or {by_hand}") from None
                    raise WeightsUnavailableError(f"{url}: {cause}; {by_hand}") from None
                except OSError as exc:  # writing the .part: full disk, file too large, I/O error
                    raise _refuse_link(part, exc) from None
            sha256 = _fd_hash(fd, "sha256")
            if known_hash is not None:
                algorithm, want = known_hash.split(":", 1)
                got_hash = sha256 if algorithm == "sha256" else _fd_hash(fd, algorithm)
                if got_hash != want.lower():
                    os.ftruncate(fd, 0)
                    raise WeightsHashError(f"{url}: the download does not match {known_hash} (got {got_hash}): "
                                           "deleted, nothing was cached")
            os.fchmod(fd, 0o444)  # the verified copy stays read-only; it is checked again on every use
            try:
                os.replace(part, path)  # a rename never follows a link at either name
            except OSError as exc:
                raise _refuse_link(path, exc) from None
        except BaseException:
            with suppress(OSError):
                if os.fstat(fd).st_size == 0:
                    os.unlink(part)
            raise
        finally:
            os.close(fd)
    return sha256


# --- verification -------------------------------------------------------------------------


@dataclass(frozen=True)
class VerifyResult:
    variant: str
    status: str  # "ok" | "missing" | "mismatch" | "unpinned"
    path: Path | None
    origin: str | None  # "package" | "cache"
    detail: str = ""

    @property
    def ok(self) -> bool:
        return self.status != "mismatch"


def verify(entry: PublishedWeights, settings: FetchSettings | None = None) -> list[VerifyResult]:
    """Re-check every local copy of ``entry`` (installed package, cache); deletes a bad cached file."""
    settings = settings or FetchSettings.from_env()
    out: list[VerifyResult] = []
    if entry.package is not None:
        copy = entry.package.locate()
        if copy is not None:
            ok, got = _matches(copy, entry.hash)
            out.append(VerifyResult(entry.variant, "ok" if ok else "mismatch", copy, "package",
                                    "" if ok else f"expected {entry.hash}, got {got}; reinstall with "
                                                  f"{entry.package.install_hint}"))
    path = cached_path(entry, settings)
    if _cached_file(path):
        expected = _expected(entry, path)
        if expected is None:
            out.append(VerifyResult(entry.variant, "unpinned", path, "cache",
                                    "no published hash and none pinned: used files get pinned on first use"))
        else:
            ok, got = _matches(path, expected)
            if not ok:
                path.unlink(missing_ok=True)
            out.append(VerifyResult(entry.variant, "ok" if ok else "mismatch", path, "cache",
                                    "" if ok else f"expected {expected}, got {got}: deleted"))
    if not out:
        out.append(VerifyResult(entry.variant, "missing", None, None, "not installed or cached"))
    return out


# --- use ----------------------------------------------------------------------------------


def _managed_hash(path: Path, settings: FetchSettings) -> tuple[PublishedWeights, str] | None:
    """The registry entry and expected hash when ``path`` is a copy edgenet verified (the cache's, or an
    installed package's); ``None`` for any other file (a user's own weights are the user's)."""
    for entry in REGISTRY.values():
        if entry.filename != path.name:
            continue
        copies = [cached_path(entry, settings)]
        if entry.package is not None:
            copies.append(entry.package.locate())
        real = os.path.realpath(path)
        if any(c is not None and os.path.realpath(c) == real for c in copies):
            expected = _expected(entry, cached_path(entry, settings)) if entry.hash is None else entry.hash
            return (entry, expected) if expected else None
    return None


def read_verified(path, settings: FetchSettings | None = None) -> bytes:
    """The bytes of a weights file, read once through the one reader of users' files; when the file is
    a registry copy (cache or package), those very bytes are hashed against the registry (or the pin),
    so a file swapped or modified after it was verified is refused in one line, never loaded."""
    from ..fsutil import read_input_bytes

    path = Path(path)
    data = read_input_bytes(path, "a weights file", MAX_WEIGHTS_BYTES)
    managed = _managed_hash(path, settings or FetchSettings.from_env())
    if managed is not None:
        entry, expected = managed
        algorithm, want = expected.split(":", 1)
        got = hashlib.new(algorithm, data).hexdigest()
        if got != want.lower():
            raise WeightsHashError(f"{format_path(path)}: does not match {expected} (got {got}): it changed after it "
                                   f"was verified; refused (run 'edgenet weights verify {entry.variant}')")
    return data
