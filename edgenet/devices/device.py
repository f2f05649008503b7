"""THE device: one frozen, self-validating description of a board, whatever spelled it.

Three spellings give one :class:`Device`: a JSON device file (``--remote DEVICE.json``;
``tools/emulated-pi`` writes one per emulated board), a ``[[device]]`` table of a ``devices.toml``
inventory (``--devices``), and ``--remote user@host``. One schema, one validation
(:meth:`Device.__post_init__`), so a bad entry is one line naming the file and the entry whichever
file it came from. ``--remote X`` is an inventory of one device (:func:`load_devices`).

The schema (JSON keys, TOML keys)::

    name         unique: letters, digits and . _ - @ : (default: the host, else the file's name)
    host         "user@host" reached over ssh; absent/null: this machine
    command      how to start edgenet on the device (default "edgenet")
    ssh_options  ["Key=Value", ...] ssh -o options (a key path, never a key)
    delegate     "cpu" | "edgetpu"
    edgetpu_lib  the Edge TPU delegate library (default libedgetpu.so.1)
    threads      [1, 4] thread counts to measure (an integer is a list of one)
    labels       { board = "rpi4" } free text, reported with the device
    node         the Ray node that owns the device's link (informational)
    emulation    {emulator, cpu, profile}: an emulated board (tools/emulated-pi)
    python       the device's Python (informational; emulated boards)
    constraints  { max_memory_mb = 300, min_top1 = 75 }: this device's own limits for ``sweep`` (the names of
                 edgenet.decide.constraints, checked when a sweep starts), over the command line's for this device

Old keys still load with a one-line deprecation note: ``edgenet`` (now ``command``) and ``link``
(``"ssh"`` now means: has a ``host``). Files are bounded before they are parsed (size and nesting
depth), so a hostile file costs one line, never a RecursionError.
"""

from __future__ import annotations

import json
import os
import re
import shlex
import sys
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field, fields, replace
from pathlib import Path

from ..errors import EdgenetError, InputFileError, printable
from ..runtime.delegates import DELEGATES, EDGETPU_LIBRARY

__all__ = [
    "DEFAULT_COMMAND", "Device", "DeviceError", "DeviceSpecError", "load_device", "load_devices", "load_inventory",
    "resolve_device", "with_manifests",
]

DEFAULT_COMMAND = "edgenet"
#: A device file or inventory is small: anything bigger, or nested deeper, is refused before parsing.
MAX_FILE_BYTES = 1 << 20
MAX_DEPTH = 32
_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.@:-]{0,127}$")
_EMULATION_KEYS = ("emulator", "cpu", "profile")
#: Old key -> the schema's key (loaded with a deprecation note).
_OLD_KEYS = {"edgenet": "command"}


class DeviceError(EdgenetError):
    """A device could not be reached, timed out, or did not produce results."""


class DeviceSpecError(EdgenetError, ValueError):
    """A device description that breaks the schema (the cause, without the file)."""


def _text(value: object, key: str, *, empty: bool = False) -> str:
    if not isinstance(value, str) or (not empty and not value.strip()):
        raise DeviceSpecError(f"{key} must be a non-empty string, got {printable(repr(value))[:80]}")
    if not value.isprintable():
        raise DeviceSpecError(f"{key} holds control characters: {printable(value)[:80]!r}")
    return value


@dataclass(frozen=True)
class Device:
    """Where edgenet runs: ``host`` over ssh (``None``: this machine), started by ``command``."""

    name: str
    host: str | None = None
    command: str = DEFAULT_COMMAND
    ssh_options: tuple[str, ...] = ()
    delegate: str = "cpu"
    edgetpu_lib: str = EDGETPU_LIBRARY
    threads: tuple[int, ...] = (1,)
    labels: dict = field(default_factory=dict, compare=False, hash=False)
    node: str | None = None
    emulation: dict | None = field(default=None, compare=False, hash=False)
    python: str | None = field(default=None, compare=False)
    constraints: dict = field(default_factory=dict, compare=False, hash=False)

    def __post_init__(self) -> None:
        if self.host is not None:
            _text(self.host, "host")
            if self.host.startswith("-") or any(c.isspace() for c in self.host):
                raise DeviceSpecError(f"host must be 'user@host' (no spaces, not starting with '-'), got {self.host!r}")
        if not isinstance(self.name, str) or not _NAME.match(self.name):
            raise DeviceSpecError(f"name must be letters, digits, '.', '_', '-', '@' or ':' (at most 128), "
                                  f"got {printable(repr(self.name))[:80]}")
        _text(self.command, "command")
        try:
            argv = shlex.split(self.command)
        except ValueError as exc:  # an unbalanced quote
            raise DeviceSpecError(f"command {self.command!r} is not a valid command line ({exc})") from None
        if not argv:
            raise DeviceSpecError("command is empty")
        options = tuple(self.ssh_options) if isinstance(self.ssh_options, (list, tuple)) else None
        if options is None or not all(isinstance(o, str) and "=" in o and not o.startswith("-") for o in options):
            raise DeviceSpecError(f"ssh_options must be a list of \"Key=Value\" strings, got {self.ssh_options!r}")
        for option in options:
            _text(option, "ssh_options")
        object.__setattr__(self, "ssh_options", options)
        if self.delegate not in DELEGATES:
            raise DeviceSpecError(f"delegate must be one of {', '.join(DELEGATES)}, got {self.delegate!r}")
        _text(self.edgetpu_lib, "edgetpu_lib")
        threads = (self.threads,) if isinstance(self.threads, int) and not isinstance(self.threads, bool) \
            else self.threads
        if (not isinstance(threads, (list, tuple)) or not threads
                or not all(isinstance(t, int) and not isinstance(t, bool) and 1 <= t <= 64 for t in threads)):
            raise DeviceSpecError(f"threads must be a list of integers 1..64, got {self.threads!r}")
        object.__setattr__(self, "threads", tuple(threads))
        if not isinstance(self.labels, Mapping):
            raise DeviceSpecError("labels must be a table, e.g. labels = { board = \"rpi4\" }")
        object.__setattr__(self, "labels", {printable(str(k)): printable(str(v)) for k, v in self.labels.items()})
        if not isinstance(self.constraints, Mapping) or not all(
                isinstance(k, str) and isinstance(v, int | float) and (not isinstance(v, bool) or k == "edgetpu_on_chip")
                for k, v in self.constraints.items()):
            raise DeviceSpecError("constraints must be a table of numbers (edgetpu_on_chip: true/false), e.g. "
                                  "constraints = { max_memory_mb = 300, min_top1 = 75 }")
        object.__setattr__(self, "constraints", dict(self.constraints))
        for key in ("node", "python"):
            if getattr(self, key) is not None:
                _text(getattr(self, key), key)
        if self.emulation is not None:
            if not isinstance(self.emulation, Mapping) or not all(
                    isinstance(self.emulation.get(k), (str, type(None))) for k in _EMULATION_KEYS):
                raise DeviceSpecError("emulation must be {emulator, cpu, profile} strings")
            object.__setattr__(self, "emulation", {k: self.emulation.get(k) for k in _EMULATION_KEYS})

    # -- what the device is -----------------------------------------------------------------------------
    @property
    def local(self) -> bool:
        """No host: the command runs on this machine, on this machine's files."""
        return self.host is None

    @property
    def link(self) -> str:
        return "local" if self.local else "ssh"

    @property
    def in_process(self) -> bool:
        """This machine's own edgenet: the work runs here, no command to start."""
        return self.local and self.command == DEFAULT_COMMAND

    @property
    def where(self) -> str:
        """How the device is reached, for one-line reports."""
        if not self.local:
            return f"ssh {self.host}"
        if not self.in_process:
            return f"command {printable(self.command)[:60]}" + (" (emulated)" if self.emulation else "")
        return "this node's " + ("Edge TPU" if self.delegate == "edgetpu" else "CPU")

    def with_ssh_options(self, options: Sequence[str]) -> Device:
        """The same device with more ssh options (``--ssh-option``; ssh keeps the first value of each)."""
        return replace(self, ssh_options=self.ssh_options + tuple(options)) if options else self

    # -- the schema -----------------------------------------------------------------------------------
    def to_dict(self) -> dict:
        """The device in the schema's keys (JSON-able; :meth:`from_dict` gives it back)."""
        out = {f.name: getattr(self, f.name) for f in fields(self)}
        out["ssh_options"], out["threads"], out["labels"] = list(self.ssh_options), list(self.threads), dict(self.labels)
        out["constraints"] = dict(self.constraints)
        return out

    @classmethod
    def from_dict(cls, data: object, *, default_name: str | None = None,
                  warn: Callable[[str], None] | None = None) -> Device:
        """One entry of any spelling; old keys load with a note to ``warn``; unknown keys are refused."""
        if not isinstance(data, Mapping):
            raise DeviceSpecError(f"a device is a table/object of keys, got {type(data).__name__}")
        data = dict(data)
        known = {f.name for f in fields(cls)}
        for old, new in _OLD_KEYS.items():
            if old in data:
                if new in data:
                    raise DeviceSpecError(f"both {old!r} (old name) and {new!r} are given: keep {new!r}")
                if warn:
                    warn(f"key {old!r} is deprecated, write {new!r}")
                data[new] = data.pop(old)
        if "link" in data:
            link = data.pop("link")
            if link not in ("local", "ssh"):
                raise DeviceSpecError(f"link must be one of local, ssh, got {printable(repr(link))}")
            if link == "ssh" and not data.get("host"):
                raise DeviceSpecError("link = \"ssh\" needs host = \"user@host\"")
            if link == "local" and data.get("host"):
                raise DeviceSpecError("link = \"local\" with a host: drop link (a host means ssh)")
            if warn:
                warn("key 'link' is deprecated: a device with a host is reached over ssh, without one it is local")
        unknown = sorted(set(data) - known)
        if unknown:
            raise DeviceSpecError(f"unknown key {printable(str(unknown[0]))!r} (known: {', '.join(sorted(known))})")
        if data.get("command") is None:
            data.pop("command", None)
        for key in ("ssh_options", "labels", "constraints"):
            if data.get(key) is None:
                data.pop(key, None)
        if data.get("name") is None:
            data["name"] = data.get("host") if isinstance(data.get("host"), str) else default_name
        return cls(**data)


# --- the files ----------------------------------------------------------------------------------------


def _nesting_depth(text: str) -> int:
    """The deepest ``[``/``{`` nesting of JSON or TOML text, outside strings and comments."""
    depth = deepest = 0
    quote, i, n = None, 0, len(text)
    while i < n:
        ch = text[i]
        if quote:
            if ch == "\\" and quote == '"':
                i += 1
            elif ch == quote:
                quote = None
        elif ch in "\"'":
            quote = ch
        elif ch == "#":
            while i < n and text[i] != "\n":
                i += 1
        elif ch in "[{":
            depth += 1
            deepest = max(deepest, depth)
        elif ch in "]}":
            depth = max(0, depth - 1)
        i += 1
    return deepest


def _bounded_text(path: Path, expected: str) -> str:
    from ..fsutil import read_input_text

    text = read_input_text(path, expected, max_bytes=MAX_FILE_BYTES)
    if _nesting_depth(text) > MAX_DEPTH:
        raise InputFileError(path, f"nested more than {MAX_DEPTH} levels deep: not {expected}")
    return text


def _warner(path: Path, entry: str) -> Callable[[str], None]:
    said: set[str] = set()

    def warn(message: str) -> None:
        if message not in said:
            said.add(message)
            print(f"warning: {printable(str(path))}: {entry}: {message}", file=sys.stderr)

    return warn


def load_device(path: str | os.PathLike) -> Device:
    """A JSON device file: one object in the device schema."""
    path = Path(path)
    text = _bounded_text(path, "a device file (JSON)")
    try:
        data = json.loads(text)
    except json.JSONDecodeError as exc:
        raise InputFileError(path, f"not valid JSON ({exc.msg})") from None
    except RecursionError:
        raise InputFileError(path, "nested too deeply: not a device file") from None
    if not isinstance(data, dict):
        raise InputFileError(path, "a device file holds one JSON object")
    entry = f"device {printable(str(data.get('name')))!r}" if isinstance(data.get("name"), str) else "the device"
    try:
        return Device.from_dict(data, default_name=path.stem, warn=_warner(path, entry))
    except DeviceSpecError as exc:
        raise InputFileError(path, f"{entry}: {exc}") from None


def _toml_loads(text: str) -> dict:
    if sys.version_info >= (3, 11):
        import tomllib
    else:  # pragma: no cover - Python 3.10
        import tomli as tomllib
    return tomllib.loads(text)


def load_inventory(path: str | os.PathLike, names: Sequence[str] = ()) -> tuple[Device, ...]:
    """A ``devices.toml`` (one ``[[device]]`` table per board); with ``names``, only those, in file order."""
    path = Path(path)
    text = _bounded_text(path, "a devices.toml inventory")
    try:
        data = _toml_loads(text)
    except ValueError as exc:
        raise InputFileError(path, f"not valid TOML: {exc}") from None
    except RecursionError:
        raise InputFileError(path, "nested too deeply: not a devices.toml inventory") from None
    raw = data.get("device")
    if not isinstance(raw, list) or not raw:
        raise InputFileError(path, "no devices: add [[device]] tables with at least a name")
    devices = []
    for index, entry in enumerate(raw):
        name = entry.get("name") if isinstance(entry, dict) else None
        where = f"device {printable(name)!r}" if isinstance(name, str) else f"device #{index + 1}"
        if isinstance(entry, dict) and "name" not in entry:
            raise InputFileError(path, f"{where}: 'name' is missing")
        try:
            devices.append(Device.from_dict(entry, warn=_warner(path, where)))
        except DeviceSpecError as exc:
            raise InputFileError(path, f"{where}: {exc}") from None
    seen: set[str] = set()
    for device in devices:
        if device.name in seen:
            raise InputFileError(path, f"device {device.name!r} is listed twice")
        seen.add(device.name)
    if names:
        unknown = sorted(set(names) - seen)
        if unknown:
            raise InputFileError(path, f"no device named {printable(unknown[0])!r}")
        devices = [d for d in devices if d.name in names]
    return tuple(devices)


def load_devices(spec: str | os.PathLike | Device, names: Sequence[str] = (),
                 ssh_options: Sequence[str] = ()) -> tuple[Device, ...]:
    """THE loader: a ``devices.toml``, a JSON device file, a :class:`Device` or ``user@host``.

    ``ssh_options`` (``--ssh-option``) are added to every device's own.
    """
    if isinstance(spec, Device):
        devices: tuple[Device, ...] = (spec,)
    else:
        text = os.fspath(spec)
        path = Path(text)
        if text.endswith(".toml"):
            devices = load_inventory(path, names)
        elif text.endswith(".json") or path.is_file() or os.sep in text:
            devices = (load_device(path),)
        else:
            try:
                devices = (Device(name=text, host=text),)
            except DeviceSpecError as exc:
                raise DeviceSpecError(f"--remote {printable(text)!r}: {exc}") from None
    try:
        return tuple(d.with_ssh_options(ssh_options) for d in devices)
    except DeviceSpecError as exc:
        raise DeviceSpecError(f"--ssh-option: {exc}") from None


def resolve_device(spec: str | os.PathLike | Device, ssh_options: Sequence[str] = ()) -> Device:
    """``--remote X``: an inventory of exactly one device."""
    devices = load_devices(spec, (), ssh_options)
    if len(devices) != 1:
        raise InputFileError(spec, f"holds {len(devices)} devices; --remote takes one (use --devices for a fleet)")
    return devices[0]


def with_manifests(paths: Sequence[Path]) -> list[Path]:
    """The models followed by the manifests beside them (``MODEL.json``): shipped together, the device's
    records know the variant and its preprocessing contract."""
    return list(paths) + [p.with_suffix(".json") for p in paths if p.with_suffix(".json").is_file()]
