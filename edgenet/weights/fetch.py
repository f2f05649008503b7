"""``--weights imagenet``: find, download and verify the published weights of a variant.

Resolution order for a registry entry (:mod:`edgenet.weights.registry`):

1. an installed package that ships the same file (Lite0-2), after checking its hash;
2. the cache (``$EDGENET_CACHE``, else ``$XDG_CACHE_HOME/edgenet``, else
   ``~/.cache/edgenet``; files under ``weights/``), after checking its hash; no network;
3. a download from the source (or the mirror ``$EDGENET_WEIGHTS_URL/<file name>``),
   unless offline (``EDGENET_OFFLINE=1`` or ``HF_HUB_OFFLINE=1``).

Downloads go through pooch (a temporary file in the cache folder, renamed only after
the hash matches; a mismatch deletes it) with a downloader that resumes: bytes land in
``<file>.part``, an interrupted transfer is picked up with an HTTP ``Range`` request,
on the next attempt of the same call or of a later run. A lock file keeps two processes
from writing the same file. Files without a published hash are fetched only when the
user says ``trust_on_first_use``; the SHA-256 of that first copy is recorded in
``<file>.sha256`` and checked from then on.

Every failure is one line naming the URL or file, and where a file can be placed by
hand.
"""

from __future__ import annotations

import hashlib
import os
import re
import sys
from collections.abc import Callable, Mapping
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path

from ..errors import EdgenetError, MissingDependencyError
from .registry import (
    IGNORE_PACKAGES_ENV,
    OFFLINE_ENV,
    PublishedWeights,
    cache_dir,
    published_weights,
)

__all__ = [
    "FetchSettings", "Located", "WeightsHashError", "WeightsUnavailableError", "VerifyResult",
    "cached_path", "file_hash", "locate", "resolve", "resolve_path", "verify",
]

DOWNLOAD_ATTEMPTS = 3  # one transfer plus two resumes after an interruption
CONNECT_TIMEOUT_S = 15.0
READ_TIMEOUT_S = 60.0
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
    digest = hashlib.new(algorithm)
    with open(path, "rb") as f:
        for chunk in iter(lambda: f.read(1 << 20), b""):
            digest.update(chunk)
    return digest.hexdigest()


def _expected(entry: PublishedWeights, path: Path) -> str | None:
    """The published hash, or the SHA-256 pinned at the first download (None: nothing pinned)."""
    if entry.hash:
        return entry.hash
    pin = _pin_path(path)
    if pin.is_file():
        return "sha256:" + pin.read_text().split()[0].strip()
    return None


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
    if not path.is_file():
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
    download(url, path, entry.hash, progress=progress, log=log, label=name)
    if entry.hash is None:
        digest = file_hash(path)
        _write_pin(path, digest)
        _say(log, f"{name}: trust on first use: pinned sha256 {digest} in {_pin_path(path)}")
    return Located(entry, path, "download")


def resolve_path(variant, **kwargs) -> Path:
    """:func:`resolve` for callers that only need the file."""
    return resolve(variant, **kwargs).path


# --- transfer ------------------------------------------------------------------------------


@contextmanager
def _lock(path: Path):
    """An exclusive lock beside ``path`` (two processes never write the same .part)."""
    import fcntl

    lock_path = path.with_name(path.name + ".lock")
    with open(lock_path, "a") as handle:
        fcntl.flock(handle, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(handle, fcntl.LOCK_UN)


class _ResumingDownloader:
    """A pooch downloader that appends to ``<file>.part`` and resumes it with an HTTP Range request."""

    def __init__(self, part: Path, *, progress: bool, label: str):
        self.part, self.progress, self.label = part, progress, label

    def __call__(self, url, output_file, pooch=None, check_only=False):
        import requests
        from tqdm import tqdm

        offset = self.part.stat().st_size if self.part.exists() else 0
        headers = {"Range": f"bytes={offset}-"} if offset else {}
        with requests.get(url, headers=headers, stream=True, timeout=(CONNECT_TIMEOUT_S, READ_TIMEOUT_S)) as r:
            if offset and r.status_code == 416:  # the range is past the end: start over
                self.part.unlink()
                return self(url, output_file, pooch, check_only)
            r.raise_for_status()
            resumed = offset and r.status_code == 206 and _content_range_start(r) == offset
            if not resumed:
                offset = 0  # the server sent the whole file
            length = r.headers.get("Content-Length")
            total = int(length) + offset if length and length.isdigit() else None
            with open(self.part, "ab" if resumed else "wb") as f, tqdm(
                total=total, initial=offset, unit="B", unit_scale=True, unit_divisor=1024, desc=self.label,
                disable=not self.progress, file=sys.stderr, leave=False,
            ) as bar:
                for chunk in r.iter_content(_CHUNK_BYTES):
                    f.write(chunk)
                    bar.update(len(chunk))
        os.replace(self.part, output_file)


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


def download(url: str, path: Path, known_hash: str | None, *, progress: bool = True, log=None,
             label: str | None = None) -> Path:
    """Download ``url`` to ``path`` (resuming, verified, atomic); one-line errors."""
    try:
        import pooch
        import requests
    except ImportError as exc:
        raise MissingDependencyError(exc.name or "pooch", "tf", "downloading weights") from None

    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    part = path.with_name(path.name + ".part")
    label = label or path.name
    pooch.get_logger().setLevel("WARNING")
    by_hand = f"download it yourself and place it at {path}"
    with _lock(path):
        for attempt in range(1, DOWNLOAD_ATTEMPTS + 1):
            before = part.stat().st_size if part.exists() else 0
            try:
                pooch.retrieve(url, known_hash, fname=path.name, path=path.parent, progressbar=False,
                               downloader=_ResumingDownloader(part, progress=progress, label=label))
                return path
            except (requests.exceptions.InvalidURL, requests.exceptions.MissingSchema,
                    requests.exceptions.InvalidSchema) as exc:  # these are ValueErrors too: before the next clause
                raise WeightsUnavailableError(f"{url}: not a usable URL ({exc.__class__.__name__})") from None
            except ValueError as exc:  # pooch: hash mismatch (it deleted the temporary file)
                part.unlink(missing_ok=True)
                got = re.search(r"but got (\w+)", str(exc))
                raise WeightsHashError(
                    f"{url}: the download does not match {known_hash}"
                    f"{f' (got {got.group(1)})' if got else ''}: deleted, nothing was cached") from None
            except requests.HTTPError as exc:
                status = exc.response.status_code if exc.response is not None else "?"
                reason = exc.response.reason if exc.response is not None else ""
                raise WeightsUnavailableError(f"{url}: HTTP {status} {reason}".rstrip() + f"; {by_hand}") from None
            except (requests.ConnectionError, requests.exceptions.ChunkedEncodingError, requests.Timeout) as exc:
                got = part.stat().st_size if part.exists() else 0
                if got > before and attempt < DOWNLOAD_ATTEMPTS:
                    _say(log, f"{label}: transfer interrupted after {got} bytes: resuming")
                    continue
                if got:
                    raise WeightsUnavailableError(
                        f"{url}: transfer interrupted after {got} bytes ({_connection_cause(exc)}); run again to "
                        f"resume, or {by_hand}") from None
                raise WeightsUnavailableError(f"{url}: {_connection_cause(exc)}; {by_hand}") from None
    return path  # pragma: no cover (the loop returns or raises)


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
    if path.is_file():
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
