"""The device inventory: one small TOML file the user writes, one entry per board.

.. code-block:: toml

    [[device]]
    name = "laptop"            # unique; letters, digits, '-', '_', '.'
    link = "local"             # this machine's CPU (of the node that holds the device)
    threads = [1, 2]

    [[device]]
    name = "pi4-a"
    link = "ssh"               # reached over SSH from the node that owns the key
    host = "pi@10.0.0.21"
    ssh_options = ["Port=22", "IdentityFile=~/.ssh/pi_ed25519"]
    edgenet = "edgenet"        # how to start edgenet on the board (default "edgenet")
    threads = [1, 4]
    labels = { board = "rpi4", arch = "aarch64" }

    [[device]]
    name = "coral-usb"
    link = "local"
    delegate = "edgetpu"       # a Coral on the node's USB port (libedgetpu)

Each device is a Ray custom resource of capacity 1 (:func:`resource_name`), held by the node
that owns the device's link (``ray start ... --resources "$(edgenet devices --ray-resources)"``),
so latency jobs on one board run one at a time. The SSH key stays on that node: a task carries
only the ``IdentityFile`` *path*, never a key or a password.

Only the standard library at import time (``tomllib``, or ``tomli`` on Python 3.10).
"""

from __future__ import annotations

import json
import os
import re
import shlex
import subprocess
import sys
from collections.abc import Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path

from ..errors import EdgenetError, InputFileError
from ..runtime.delegates import EDGETPU_LIBRARY

__all__ = ["LINKS", "Device", "DeviceCheck", "load_inventory", "resource_name", "check_device", "probe_here",
           "ray_resources"]

LINKS = ("local", "ssh")
DELEGATES = ("cpu", "edgetpu")
RESOURCE_PREFIX = "edgenet-device-"
_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.-]{0,62}$")
_FIELDS = {"name", "link", "host", "ssh_options", "edgenet", "delegate", "edgetpu_lib", "threads", "labels", "node"}


@dataclass(frozen=True)
class Device:
    """One board of the fleet (see the module docstring for the TOML keys)."""

    name: str
    link: str = "local"
    host: str | None = None  # user@host for link = "ssh"
    ssh_options: tuple[str, ...] = ()
    edgenet: str = "edgenet"  # command that starts edgenet on the board (ssh)
    delegate: str = "cpu"
    edgetpu_lib: str = EDGETPU_LIBRARY
    threads: tuple[int, ...] = (1,)
    labels: dict = field(default_factory=dict, compare=False)
    node: str | None = None  # the cluster node that owns the link (informational)

    @property
    def resource(self) -> str:
        return resource_name(self.name)

    @property
    def where(self) -> str:
        """How the device is reached, for one-line reports."""
        if self.link == "ssh":
            return f"ssh {self.host}"
        return "this node's " + ("Edge TPU" if self.delegate == "edgetpu" else "CPU")

    def to_dict(self) -> dict:
        data = asdict(self)
        data["ssh_options"] = list(self.ssh_options)
        data["threads"] = list(self.threads)
        return data


def resource_name(device_name: str) -> str:
    """The Ray custom resource that stands for a device (capacity 1 on the node owning its link)."""
    return RESOURCE_PREFIX + device_name


def _toml_loads(text: str) -> dict:
    if sys.version_info >= (3, 11):
        import tomllib
    else:  # pragma: no cover - Python 3.10
        import tomli as tomllib
    return tomllib.loads(text)


def _device(path: Path, index: int, raw: object) -> Device:
    where = f"device #{index + 1}"
    if not isinstance(raw, dict):
        raise InputFileError(path, f"{where}: expected a [[device]] table")
    name = raw.get("name")
    if not isinstance(name, str) or not _NAME.match(name):
        raise InputFileError(path, f"{where}: 'name' must be letters, digits, '-', '_' or '.', got {name!r}")
    where = f"device {name!r}"
    unknown = sorted(set(raw) - _FIELDS)
    if unknown:
        raise InputFileError(path, f"{where}: unknown key {unknown[0]!r} (known: {', '.join(sorted(_FIELDS))})")
    link = raw.get("link", "local")
    if link not in LINKS:
        raise InputFileError(path, f"{where}: link must be one of {', '.join(LINKS)}, got {link!r}")
    host = raw.get("host")
    if link == "ssh" and (not isinstance(host, str) or not host.strip()):
        raise InputFileError(path, f"{where}: link = \"ssh\" needs host = \"user@host\"")
    delegate = raw.get("delegate", "cpu")
    if delegate not in DELEGATES:
        raise InputFileError(path, f"{where}: delegate must be one of {', '.join(DELEGATES)}, got {delegate!r}")
    threads = raw.get("threads", [1])
    if isinstance(threads, int):
        threads = [threads]
    if (not isinstance(threads, list) or not threads
            or not all(isinstance(t, int) and not isinstance(t, bool) and 1 <= t <= 64 for t in threads)):
        raise InputFileError(path, f"{where}: threads must be a list of integers 1..64, got {threads!r}")
    options = raw.get("ssh_options", [])
    if not isinstance(options, list) or not all(isinstance(o, str) and "=" in o for o in options):
        raise InputFileError(path, f"{where}: ssh_options must be a list of \"Key=Value\" strings")
    labels = raw.get("labels", {})
    if not isinstance(labels, dict):
        raise InputFileError(path, f"{where}: labels must be a table, e.g. labels = {{ board = \"rpi4\" }}")
    for key in ("edgenet", "edgetpu_lib", "node"):
        if key in raw and not isinstance(raw[key], str):
            raise InputFileError(path, f"{where}: {key} must be a string")
    return Device(name=name, link=link, host=host.strip() if isinstance(host, str) else None,
                  ssh_options=tuple(options), edgenet=raw.get("edgenet", "edgenet"), delegate=delegate,
                  edgetpu_lib=raw.get("edgetpu_lib", EDGETPU_LIBRARY), threads=tuple(threads),
                  labels={str(k): str(v) for k, v in labels.items()}, node=raw.get("node"))


def load_inventory(path: str | os.PathLike, names: Sequence[str] = ()) -> tuple[Device, ...]:
    """Parse ``devices.toml``; a missing file, bad TOML or a bad entry is one line naming the file.

    With ``names``, only those devices, in inventory order (an unknown name is one line).
    """
    from ..fsutil import read_input_text

    path = Path(path)
    text = read_input_text(path, "a devices.toml inventory")
    try:
        data = _toml_loads(text)
    except ValueError as exc:
        raise InputFileError(path, f"not valid TOML: {exc}") from None
    raw = data.get("device")
    if not isinstance(raw, list) or not raw:
        raise InputFileError(path, "no devices: add [[device]] tables with at least a name")
    devices = tuple(_device(path, i, entry) for i, entry in enumerate(raw))
    seen: set[str] = set()
    for device in devices:
        if device.name in seen:
            raise InputFileError(path, f"device {device.name!r} is listed twice")
        seen.add(device.name)
    if names:
        unknown = sorted(set(names) - seen)
        if unknown:
            raise InputFileError(path, f"no device named {unknown[0]!r}")
        devices = tuple(d for d in devices if d.name in names)
    return devices


def ray_resources(devices: Sequence[Device], node: str | None = None) -> dict[str, int]:
    """The ``--resources`` JSON for ``ray start`` on the node that owns these devices' links."""
    return {d.resource: 1 for d in devices if node is None or d.node == node}


@dataclass(frozen=True)
class DeviceCheck:
    """What ``edgenet devices`` found for one device."""

    name: str
    where: str
    ok: bool
    reachable: bool
    runtime: str | None = None
    runtime_version: str | None = None
    machine: str | None = None
    delegate: str = "cpu"
    delegate_ok: bool | None = None
    node: str | None = None  # the cluster node that checked it
    detail: str = ""

    def line(self) -> str:
        status = "ok" if self.ok else "FAILED"
        parts = [f"{self.name}: {status}", self.where]
        if self.node:
            parts.append(f"via node {self.node}")
        if self.runtime:
            parts.append(f"{self.runtime} {self.runtime_version or '?'}")
        if self.machine:
            parts.append(self.machine)
        if self.delegate != "cpu":
            parts.append(f"{self.delegate} delegate " + ("present" if self.delegate_ok else "MISSING"))
        if self.detail:
            parts.append(self.detail)
        return "; ".join(parts)

    def to_dict(self) -> dict:
        return asdict(self)


def probe_here(delegate: str = "cpu", edgetpu_lib: str = EDGETPU_LIBRARY) -> dict:
    """This machine's runtime and, for the Edge TPU, whether its delegate loads (a JSON-able dict)."""
    import ctypes
    import platform

    from ..runtime.interpreter import load_runtime

    out: dict = {"machine": platform.machine(), "runtime": None, "runtime_version": None, "delegate": delegate,
                 "delegate_ok": None, "detail": ""}
    try:
        runtime = load_runtime()
    except EdgenetError as exc:
        out["detail"] = str(exc)
        return out
    out["runtime"], out["runtime_version"] = runtime.info.name, runtime.info.version
    if delegate == "edgetpu":
        try:
            ctypes.CDLL(edgetpu_lib)
            runtime.load_delegate(edgetpu_lib)
            out["delegate_ok"] = True
        except (OSError, ValueError, RuntimeError) as exc:
            out["delegate_ok"] = False
            out["detail"] = f"{edgetpu_lib}: " + (" ".join(str(exc).split()) or type(exc).__name__)[:200]
    return out


def _ssh_probe(device: Device, connect_timeout_s: int) -> dict:
    from ..bench.remote import _ssh_options

    command = f"{device.edgenet} devices --probe --delegate {shlex.quote(device.delegate)} " \
              f"--edgetpu-lib {shlex.quote(device.edgetpu_lib)}"
    try:
        proc = subprocess.run(["ssh", *_ssh_options(device.ssh_options, connect_timeout_s), device.host, command],
                              capture_output=True, text=True, timeout=connect_timeout_s + 60, stdin=subprocess.DEVNULL)
    except subprocess.TimeoutExpired:
        return {"reachable": False, "detail": f"no answer within {connect_timeout_s + 60} s"}
    except FileNotFoundError:
        return {"reachable": False, "detail": "ssh is not installed on this node"}
    if proc.returncode == 255:
        lines = [ln.strip() for ln in proc.stderr.splitlines() if ln.strip()]
        return {"reachable": False, "detail": "unreachable: " + (lines[-1][:200] if lines else "ssh failed")}
    lines = [ln for ln in proc.stdout.splitlines() if ln.strip()]
    try:
        payload = json.loads(lines[-1])
    except (IndexError, ValueError):
        err = [ln.strip() for ln in proc.stderr.splitlines() if ln.strip()]
        return {"reachable": True, "detail": f"'{device.edgenet}' did not answer: "
                                             + (err[-1][:200] if err else f"exit code {proc.returncode}")}
    return {"reachable": True, **payload}


def check_device(device: Device, connect_timeout_s: int = 10) -> DeviceCheck:
    """Reach the device from this node and report runtime, version and delegate (never raises)."""
    import socket

    if device.link == "ssh":
        found = _ssh_probe(device, connect_timeout_s)
    else:
        found = {"reachable": True, **probe_here(device.delegate, device.edgetpu_lib)}
    ok = bool(found.get("reachable")) and bool(found.get("runtime")) and (
        device.delegate == "cpu" or bool(found.get("delegate_ok")))
    detail = found.get("detail") or ""
    if found.get("reachable") and not found.get("runtime") and not detail:
        detail = "no TFLite runtime (pip install edgenet on the device)"
    return DeviceCheck(name=device.name, where=device.where, ok=ok, reachable=bool(found.get("reachable")),
                       runtime=found.get("runtime"), runtime_version=found.get("runtime_version"),
                       machine=found.get("machine"), delegate=device.delegate, delegate_ok=found.get("delegate_ok"),
                       node=socket.gethostname(), detail=detail)
