"""THE transport to a device: one :class:`Session` runs edgenet there and ships its files, for every command.

bench, eval, profile, sweep and ``edgenet devices`` all go through :meth:`Session.run`. On a device
with a host, one ssh connection does everything:

* the files travel as one tar stream on ssh's stdin (its exact length is sent first, so the device
  reads exactly that much), into a fresh ``mktemp -d`` folder that a shell ``trap`` removes however
  the run ends;
* the device-side command runs under ``timeout`` with what is left of the budget (connection and
  copying included), so nothing there outlives ``--timeout-s``;
* ssh's stdin stays open while the command runs: when the local side goes (Ctrl-C, SIGTERM, a
  SIGKILL that takes ssh with it), the device sees end-of-file and stops the command;
* ssh runs with ``BatchMode=yes`` (never a password prompt), a ``ConnectTimeout`` (OpenSSH applies it
  to the banner exchange too) and ``ServerAlive`` probes; the device's ``ssh_options`` come first, so
  they win (ssh keeps the first value of each option).

A device without a host runs its command on this machine, on this machine's files, bounded the same.

What comes back is untrusted. :meth:`Session.records` parses a reply through the results schema's
validation (types, ranges, no NaN, no negative latency), takes each model's identity from the file
that was shipped (never from a path the device names), and escapes control characters in every text;
anything else is one line, ``DEVICE: malformed reply (...)``, and nothing of the reply is kept.
"""

from __future__ import annotations

import contextlib
import json
import math
import os
import shlex
import subprocess
import tarfile
import threading
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from .. import process
from ..errors import EdgenetError, one_line, printable
from .device import Device, DeviceError, resolve_device

__all__ = ["GRACE_S", "MalformedReply", "Reply", "Session", "Shipped", "escape_strings"]

#: Seconds the local side waits past the budget for the device side to stop and clean up.
GRACE_S = 5.0
#: What a reply may hold: a device cannot make this machine keep gigabytes.
MAX_STDOUT_BYTES = 256 << 20
MAX_STDERR_BYTES = 16 << 20
_DEFAULT_OPTIONS = {"batchmode": "yes", "serveraliveinterval": "5", "serveralivecountmax": "2"}
_WORKDIR_TAG = "edgenet-session "


class MalformedReply(DeviceError):
    """A device answered with something that is not what was asked for."""


@dataclass(frozen=True)
class Shipped:
    """A file or folder sent to the device: ``name`` inside the session folder there, ``local`` here."""

    name: str
    local: Path
    folder: bool = False


@dataclass(frozen=True)
class Reply:
    """What the device's command printed (``stdout`` whole, ``stderr`` its tail) and its exit status."""

    stdout: str
    stderr: str
    returncode: int
    workdir: str | None = None  # the session folder on the device (None: a local device)

    def last_error(self) -> str:
        """The device's last stderr line, control characters escaped."""
        return printable(one_line(self.stderr, pick="last", empty="no output"))


def escape_strings(value: Any) -> Any:
    """Every text inside ``value`` with control characters escaped (a terminal never gets a device's escapes)."""
    if isinstance(value, str):
        return printable(value)
    if isinstance(value, dict):
        return {printable(str(k)): escape_strings(v) for k, v in value.items()}
    if isinstance(value, list):
        return [escape_strings(v) for v in value]
    return value


def _ssh_options(options: Sequence[str], connect_timeout_s: float) -> list[str]:
    """The device's options first (ssh keeps the first value of each option), then edgenet's defaults."""
    given = {str(o).split("=", 1)[0].strip().lower() for o in options}
    defaults = dict(_DEFAULT_OPTIONS, connecttimeout=str(max(1, int(connect_timeout_s))))
    out: list[str] = []
    for option in options:
        out += ["-o", option]
    for key, value in defaults.items():
        if key not in given:
            out += ["-o", f"{key}={value}"]
    return out


class _Count:
    """A write-only sink that counts bytes: the tar stream's exact length, before it is sent."""

    def __init__(self) -> None:
        self.size = 0

    def write(self, data: bytes) -> int:
        self.size += len(data)
        return len(data)


def _tar_into(sink, items: Sequence[Shipped]) -> None:
    with tarfile.open(fileobj=sink, mode="w|", format=tarfile.PAX_FORMAT) as tar:
        for item in items:
            tar.add(str(item.local), arcname=item.name, recursive=item.folder)


class Session:
    """One device, one transport: ship files, run an edgenet command there, read its reply.

    ``timeout_s`` bounds every :meth:`run` (connection and copying included) on both sides.
    """

    def __init__(self, device: Device | str, *, timeout_s: float, connect_timeout_s: float = 10.0):
        self.device = device if isinstance(device, Device) else resolve_device(device)
        if not (isinstance(timeout_s, (int, float)) and math.isfinite(timeout_s) and timeout_s > 0):
            raise EdgenetError(f"--timeout-s must be a finite number of seconds above 0, got {timeout_s!r}")
        self.timeout_s = float(timeout_s)
        self.connect_timeout_s = max(1.0, min(connect_timeout_s, self.timeout_s))
        self._items: list[Shipped] = []

    @property
    def name(self) -> str:
        return self.device.name

    # -- files ----------------------------------------------------------------------------------------
    def ship(self, path: str | os.PathLike, name: str | None = None, *, folder: bool = False) -> Shipped:
        """Send ``path`` with the next :meth:`run` (a local device reads it in place); returns its handle."""
        local = Path(path)
        name = name or local.name
        if any(item.name == name for item in self._items):
            raise DeviceError(f"{self.name}: two files named {name!r} would share the device's folder; "
                              "give the models distinct file names")
        try:
            ok = local.is_dir() if folder else local.is_file()
        except OSError:
            ok = False
        if not ok:
            raise EdgenetError(f"{printable(str(local))}: no such {'folder' if folder else 'file'}")
        item = Shipped(name, local, folder)
        self._items.append(item)
        return item

    def _arg(self, arg: str | Shipped, remote: bool) -> str:
        if not isinstance(arg, Shipped):
            return shlex.quote(str(arg)) if remote else str(arg)
        if remote:
            return f'"$1"/{shlex.quote(arg.name)}'
        return str(arg.local.resolve())

    def local_path(self, path: object, reply: Reply) -> Path | None:
        """The local file behind a path the device names (a shipped file, else ``None``)."""
        if not isinstance(path, str):
            return None
        for item in self._items:
            if item.folder:
                continue
            there = str(item.local.resolve()) if reply.workdir is None else f"{reply.workdir}/{item.name}"
            if path == there:
                return item.local
        return None

    def local_name(self, path: str, reply: Reply) -> str | None:
        """A path inside a shipped folder, as ``<folder name>/<relative path>`` (``None`` if outside)."""
        for item in self._items:
            if not item.folder:
                continue
            base = str(item.local.resolve()) if reply.workdir is None else f"{reply.workdir}/{item.name}"
            if path.startswith(base + "/"):
                return f"{item.name}/{path[len(base) + 1:]}"
        return None

    # -- running ----------------------------------------------------------------------------------------
    def _script(self, command: str, args: Sequence[str | Shipped], size: int) -> str:
        """POSIX sh run by the device's login shell (see the module docstring)."""
        inner = " ".join([command, *(self._arg(a, remote=True) for a in args)])
        return "\n".join([
            "start=$(date +%s)",
            "d=$(mktemp -d) || exit 97",
            "job=",
            "trap '[ -n \"$job\" ] && kill -TERM \"$job\" 2>/dev/null; rm -rf \"$d\"' EXIT",
            "trap 'exit 143' HUP INT TERM PIPE",
            f"printf '{_WORKDIR_TAG}%s\\n' \"$d\" >&2",
            f"head -c {size} | tar -xf - -C \"$d\" || exit 98" if size else ":",
            f"left=$(( {math.ceil(self.timeout_s)} - ($(date +%s) - start) ))",
            "[ \"$left\" -gt 0 ] || exit 124",
            "exec 3<&0",
            f"timeout -k 2 \"$left\" sh -c {shlex.quote(inner)} edgenet \"$d\" </dev/null 3<&- &",
            "job=$!",
            "( cat <&3 >/dev/null 2>&1; kill -TERM \"$job\" 2>/dev/null ) &",
            "watch=$!",
            "exec 3<&-",
            "wait \"$job\"; rc=$?; job=",
            "kill \"$watch\" 2>/dev/null",
            "exit \"$rc\"",
        ])

    def run(self, command: str, args: Sequence[str | Shipped] = (), *, what: str = "command") -> Reply:
        """Run ``command`` (shell text that starts edgenet's subcommand, e.g. ``edgenet bench``) with ``args``
        on the device, the shipped files sent first; bounded by ``timeout_s`` on both sides."""
        try:
            argv0 = shlex.split(command)
        except ValueError as exc:
            raise DeviceError(f"{self.name}: the {what} command {command!r} is not a valid command line ({exc})") \
                from None
        if not argv0:
            raise DeviceError(f"{self.name}: the {what} command is empty")
        if self.device.local:
            argv = [*argv0, *(self._arg(a, remote=False) for a in args)]
            return self._communicate(argv, None, 0, what, local=True)
        size = 0
        if self._items:
            counter = _Count()
            try:
                _tar_into(counter, self._items)
            except OSError as exc:
                raise EdgenetError(f"{printable(str(exc.filename or ''))}: cannot read: {exc.strerror or exc}") \
                    from None
            size = counter.size
        argv = ["ssh", *_ssh_options(self.device.ssh_options, self.connect_timeout_s), "--", self.device.host,
                self._script(command, args, size)]
        return self._communicate(argv, self._items if size else None, size, what, local=False)

    def _communicate(self, argv: list[str], items: Sequence[Shipped] | None, size: int, what: str,
                     local: bool) -> Reply:
        out, err = bytearray(), bytearray()
        too_much: list[str] = []

        def read(stream, buffer: bytearray, cap: int, keep_tail: bool) -> None:
            with contextlib.suppress(OSError, ValueError):
                for chunk in iter(lambda: stream.read1(1 << 16), b""):
                    buffer += chunk
                    if len(buffer) > cap:
                        if not keep_tail:
                            too_much.append(f"more than {cap >> 20} MiB of output")
                            del buffer[cap:]
                        else:
                            del buffer[: len(buffer) - cap]

        def write(stdin) -> None:
            class Exact:  # stops the stream at the announced length: the device reads exactly that much
                sent = 0

                def write(self, data: bytes) -> int:
                    data = data[: max(0, size - Exact.sent)]
                    stdin.write(data)
                    Exact.sent += len(data)
                    return len(data)

            with contextlib.suppress(OSError, ValueError):
                _tar_into(Exact(), items)
                if Exact.sent < size:  # a file shrank while shipping: the device's tar fails on the short stream
                    stdin.write(b"\0" * (size - Exact.sent))
                stdin.flush()
            # stdin stays open: its end tells the device that this side is gone.

        try:
            proc = process.popen(argv, stdin=subprocess.DEVNULL if local else subprocess.PIPE,
                                 stdout=subprocess.PIPE, stderr=subprocess.PIPE)
        except FileNotFoundError:
            if local:
                raise DeviceError(f"{self.name}: {printable(argv[0])} not found (build the device first, e.g. "
                                  "tools/emulated-pi build)") from None
            raise DeviceError("ssh is not installed on this machine") from None
        threads = [threading.Thread(target=read, args=(proc.stdout, out, MAX_STDOUT_BYTES, False), daemon=True),
                   threading.Thread(target=read, args=(proc.stderr, err, MAX_STDERR_BYTES, True), daemon=True)]
        if items:
            threads.append(threading.Thread(target=write, args=(proc.stdin,), daemon=True))
        for thread in threads:
            thread.start()
        try:
            proc.wait(timeout=self.timeout_s + (0 if local else GRACE_S))
            for thread in threads[:2]:  # the output to its end before the pipes are closed
                thread.join(timeout=GRACE_S)
        except subprocess.TimeoutExpired:
            process.stop(proc, grace_s=0.5)
            raise DeviceError(f"{self.name}: no result within {self.timeout_s:g} s (the {what}'s --timeout-s "
                              f"budget); {'its command' if local else 'ssh'} stopped") from None
        finally:
            process.stop(proc)  # a no-op for a finished run; on an interruption it ends ssh, and the device its side
            for thread in threads:
                thread.join(timeout=2)
        stdout = out.decode("utf-8", "replace")
        stderr = err.decode("utf-8", "replace")
        workdir = None
        if not local:
            lines = stderr.split("\n")
            tagged = [i for i, line in enumerate(lines) if line.startswith(_WORKDIR_TAG)][:1]  # ours comes first
            if tagged:
                workdir = lines[tagged[0]][len(_WORKDIR_TAG):].strip()
                stderr = "\n".join(lines[: tagged[0]] + lines[tagged[0] + 1:])
            if proc.returncode == 255 and workdir is None:
                raise DeviceError(f"{self.name}: unreachable: {printable(one_line(stderr, pick='last', empty='ssh failed'))}")
        if too_much:
            raise MalformedReply(f"{self.name}: malformed reply ({too_much[0]})")
        if proc.returncode in (124, 137):
            raise DeviceError(f"{self.name}: the {what} did not finish within {self.timeout_s:g} s (--timeout-s) "
                              "and was stopped there")
        return Reply(stdout, stderr, proc.returncode, workdir)

    # -- replies --------------------------------------------------------------------------------------
    def malformed(self, cause: str) -> MalformedReply:
        return MalformedReply(f"{self.name}: malformed reply ({printable(cause)[:300]})")

    def records(self, reply: Reply, kind: str, what: str | None = None) -> list[dict]:
        """The reply's ``kind`` records, validated; ``model`` of each from the shipped file it names.

        No records at all is the device's failure (its last stderr line); a reply that breaks the
        schema, names a file that was not shipped, or describes other bytes than were shipped is a
        :class:`MalformedReply`.
        """
        from ..results import RecordError, parse_reply
        from ..runtime.envinfo import model_info

        if not reply.stdout.strip():
            raise DeviceError(f"{self.name}: {what or kind} produced no results: {reply.last_error()}")
        try:
            records = parse_reply(reply.stdout, kind)
        except RecordError as exc:
            raise self.malformed(str(exc)) from None
        if not records:
            raise DeviceError(f"{self.name}: {what or kind} produced no results: {reply.last_error()}")
        identity: dict[Path, dict] = {}
        out = []
        for number, record in enumerate(records, start=1):
            record = escape_strings(record)
            model = record.get("model") or {}
            local = self.local_path(model.get("path"), reply)
            if local is None:
                raise self.malformed(f"record {number}: model.path {str(model.get('path'))[:120]!r} is not a file "
                                     "that was shipped")
            if local not in identity:
                identity[local] = model_info(local)
            mine = dict(identity[local])
            if model.get("sha256") not in (None, mine["sha256"]) or model.get("size_bytes") not in (
                    None, mine["size_bytes"]):
                raise self.malformed(f"record {number}: model.sha256/size_bytes are not those of the shipped "
                                     f"{local.name}")
            record["model"] = mine
            out.append(record)
        return out

    def document(self, reply: Reply, check: Callable[[Any], None], what: str) -> Any:
        """The reply's stdout as strict JSON (no NaN), checked by ``check`` (raises ``ValueError``)."""
        text = reply.stdout.strip()
        if not text:
            raise DeviceError(f"{self.name}: {what} produced no result: {reply.last_error()}")

        def no_constant(name: str) -> Any:
            raise ValueError(f"{name} is not a number")

        try:
            value = json.loads(text, parse_constant=no_constant)
            check(value)
        except RecursionError:
            raise self.malformed("nested too deeply") from None
        except ValueError as exc:  # JSONDecodeError included
            raise self.malformed(str(exc)) from None
        return escape_strings(value)
