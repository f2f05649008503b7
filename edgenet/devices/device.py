"""A device description and a session that ships files to it and runs edgenet there.

ssh runs with ``BatchMode=yes`` (never prompt for a password: a sweep must not hang on input) and a
``ConnectTimeout`` so an unreachable board costs seconds, not minutes. Files go to a fresh temporary
folder on the host, removed when the session ends; folders (an evaluation's images) travel as one
tar stream rather than one scp per file.
"""

from __future__ import annotations

import json
import os
import shlex
import subprocess
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path

from ..errors import EdgenetError, InputFileError, one_line
from ..fsutil import read_input_text

__all__ = ["Device", "DeviceError", "Session", "load_device", "resolve_device", "with_manifests"]


class DeviceError(EdgenetError):
    """The device could not be reached or did not produce results."""


@dataclass(frozen=True)
class Device:
    """Where to run edgenet: ``host`` over ssh (``None``: this machine) with ``command`` starting edgenet.

    ``emulation`` (``{"emulator", "cpu", "profile"}``) marks an emulated board; the records it makes
    carry the same marker from the device itself (:func:`edgenet.runtime.envinfo.emulation`).
    """

    name: str
    host: str | None = None
    command: str = "edgenet"
    ssh_options: tuple[str, ...] = ()
    emulation: dict | None = field(default=None, compare=False)

    @property
    def local(self) -> bool:
        return self.host is None

    @property
    def where(self) -> str:
        return self.host or self.name


def load_device(path: str | os.PathLike) -> Device:
    """Read a device file (JSON: name, host, command, ssh_options, emulation; other keys ignored)."""
    path = Path(path)
    text = read_input_text(path, "a device file (JSON)")
    try:
        data = json.loads(text)
    except json.JSONDecodeError as exc:
        raise InputFileError(path, f"not valid JSON ({exc.msg})") from None
    if not isinstance(data, dict):
        raise InputFileError(path, "a device file holds one JSON object")
    host, command = data.get("host"), data.get("command") or "edgenet"
    options = data.get("ssh_options") or []
    if host is not None and not isinstance(host, str):
        raise InputFileError(path, "'host' must be 'user@host' or null")
    if not isinstance(command, str) or not isinstance(options, list) or not all(isinstance(o, str) for o in options):
        raise InputFileError(path, "'command' must be a string and 'ssh_options' a list of strings")
    emulation = data.get("emulation")
    return Device(name=str(data.get("name") or host or path.stem), host=host, command=command,
                  ssh_options=tuple(options), emulation=emulation if isinstance(emulation, dict) else None)


def resolve_device(spec: str | Device, ssh_options: Sequence[str] = ()) -> Device:
    """``user@host`` or a device file's path -> :class:`Device`; extra ``ssh_options`` are added."""
    if isinstance(spec, Device):
        device = spec
    elif str(spec).endswith(".json") or Path(str(spec)).is_file():
        device = load_device(spec)
    else:
        device = Device(name=str(spec), host=str(spec))
    if ssh_options:
        device = Device(device.name, device.host, device.command, device.ssh_options + tuple(ssh_options),
                        device.emulation)
    return device



def with_manifests(paths: Sequence[Path]) -> list[Path]:
    """The models followed by the manifests beside them (``MODEL.json``): shipped together, the device's
    records know the variant and its preprocessing contract."""
    return list(paths) + [p.with_suffix(".json") for p in paths if p.with_suffix(".json").is_file()]


class Session:
    """Ship files to a device once and run edgenet commands there (a context manager).

    On a local device nothing is copied: the paths are this machine's and are passed as they are.
    """

    def __init__(self, device: Device, connect_timeout_s: int = 10):
        self.device = device
        self.connect_timeout_s = connect_timeout_s
        self.workdir: str | None = None
        self._opts = ["-o", "BatchMode=yes", "-o", f"ConnectTimeout={connect_timeout_s}"]
        for option in device.ssh_options:
            self._opts += ["-o", option]

    # -- ssh plumbing ---------------------------------------------------------------------------------
    def _ssh(self, command: str, timeout_s: float, **kwargs) -> subprocess.CompletedProcess:
        host = self.device.host
        try:
            return subprocess.run(["ssh", *self._opts, host, command], capture_output=True, timeout=timeout_s,
                                  **({"text": True, "stdin": subprocess.DEVNULL} | kwargs))
        except subprocess.TimeoutExpired:
            raise DeviceError(f"{host}: no answer within {timeout_s:g} s") from None
        except FileNotFoundError:
            raise DeviceError("ssh is not installed on this machine") from None

    def __enter__(self) -> Session:
        if not self.device.local:
            proc = self._ssh("mktemp -d", self.connect_timeout_s + 30)
            if proc.returncode != 0:
                raise DeviceError(f"{self.device.host}: unreachable: "
                                  + one_line(proc.stderr, pick="last", empty="no output"))
            self.workdir = proc.stdout.strip().splitlines()[-1]
        return self

    def __exit__(self, *exc) -> None:
        if self.workdir is not None:
            self._ssh(f"rm -rf {shlex.quote(self.workdir)}", self.connect_timeout_s + 30)
            self.workdir = None

    # -- files ----------------------------------------------------------------------------------------
    def put(self, paths: Sequence[str | os.PathLike], timeout_s: float = 600) -> list[str]:
        """Copy files into the session folder; returns their paths on the device (same order)."""
        local = [Path(p) for p in paths]
        if self.device.local:
            return [str(p.resolve()) for p in local]
        if len({p.name for p in local}) != len(local):
            raise DeviceError("--remote needs models with distinct file names (they share one remote folder)")
        scp = subprocess.run(["scp", "-q", *self._opts, *map(str, local), f"{self.device.host}:{self.workdir}/"],
                             capture_output=True, text=True, timeout=timeout_s)
        if scp.returncode != 0:
            raise DeviceError(f"{self.device.host}: copying files failed: "
                              + one_line(scp.stderr, pick="last", empty="no output"))
        return [f"{self.workdir}/{p.name}" for p in local]

    def put_tree(self, folder: str | os.PathLike, name: str, timeout_s: float = 1800) -> str:
        """Copy a folder's content (one tar stream) to ``<session>/<name>``; returns its device path."""
        folder = Path(folder)
        if self.device.local:
            return str(folder.resolve())
        target = f"{self.workdir}/{name}"
        tar = subprocess.Popen(["tar", "-C", str(folder), "-cf", "-", "."], stdout=subprocess.PIPE)
        try:
            proc = self._ssh(f"mkdir -p {shlex.quote(target)} && tar -xf - -C {shlex.quote(target)}", timeout_s,
                             stdin=tar.stdout, text=True)
        finally:
            tar.stdout.close()
            tar.wait()
        if proc.returncode != 0 or tar.returncode != 0:
            raise DeviceError(f"{self.device.host}: copying {folder} failed: "
                              + one_line(proc.stderr, pick="last", empty="no output"))
        return target

    # -- commands -------------------------------------------------------------------------------------
    def run(self, command: str, args: Sequence[str], timeout_s: float) -> subprocess.CompletedProcess:
        """Run ``command`` (a shell-quoted command line starting edgenet) with ``args`` on the device."""
        if self.device.local:
            try:
                return subprocess.run([*shlex.split(command), *map(str, args)], capture_output=True, text=True,
                                      timeout=timeout_s, stdin=subprocess.DEVNULL)
            except subprocess.TimeoutExpired:
                raise DeviceError(f"{self.device.name}: no answer within {timeout_s:g} s") from None
            except FileNotFoundError:
                raise DeviceError(f"{self.device.name}: {shlex.split(command)[0]} not found "
                                  "(build the device first, e.g. tools/emulated-pi build)") from None
        line = command + " " + " ".join(shlex.quote(str(a)) for a in args)
        return self._ssh(line, timeout_s)
