"""``edgenet devices``: is each device reachable, which runtime does it have, does its delegate load.

:func:`probe_here` is the device side (``edgenet devices --probe`` prints it as JSON);
:func:`check_device` asks a device through its :class:`~edgenet.devices.session.Session` (or this
process, for this machine) and never raises; :func:`check_devices` checks many in parallel and stops
every probe when the command is interrupted.
"""

from __future__ import annotations

import concurrent.futures as cf
from collections.abc import Sequence
from dataclasses import asdict, dataclass

from ..errors import EdgenetError, printable
from ..runtime.delegates import EDGETPU_LIBRARY
from .device import Device

__all__ = ["DeviceCheck", "check_device", "check_devices", "check_probe", "probe_here"]

#: The default bound on one device's check (connection included).
PROBE_TIMEOUT_S = 70.0


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
    node: str | None = None  # the machine that checked it
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
        return printable("; ".join(parts))

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


def check_probe(reply: object) -> None:
    """A probe reply as :func:`probe_here` writes it; ``ValueError`` naming what is wrong."""
    if not isinstance(reply, dict):
        raise ValueError(f"expected a probe object, got {type(reply).__name__}")
    for key in ("machine", "runtime", "runtime_version", "delegate", "detail"):
        if not isinstance(reply.get(key), (str, type(None))) or len(reply.get(key) or "") > 1000:
            raise ValueError(f"probe.{key}: expected short text, got {type(reply.get(key)).__name__}")
    if not isinstance(reply.get("delegate_ok"), (bool, type(None))):
        raise ValueError(f"probe.delegate_ok: expected true/false/null, got {type(reply['delegate_ok']).__name__}")


def check_device(device: Device, timeout_s: float = PROBE_TIMEOUT_S) -> DeviceCheck:
    """Reach ``device`` from this machine and report runtime, version and delegate (never raises)."""
    import shlex
    import socket

    from .session import MalformedReply, Session

    found: dict
    reachable = True
    if device.in_process:
        found = probe_here(device.delegate, device.edgetpu_lib)
    else:
        try:
            session = Session(device, timeout_s=timeout_s)
            reply = session.run(f"{device.command} devices --probe --delegate {shlex.quote(device.delegate)} "
                                f"--edgetpu-lib {shlex.quote(device.edgetpu_lib)}", what="probe")
            found = session.document(reply, check_probe, f"'{device.command} devices --probe'")
        except MalformedReply as exc:
            found = {"detail": str(exc).removeprefix(f"{device.name}: ")}
        except EdgenetError as exc:
            text = str(exc).removeprefix(f"{device.name}: ")
            reachable = not text.startswith(("unreachable", "no result within", "ssh is not installed"))
            found = {"detail": text}
    ok = reachable and bool(found.get("runtime")) and (device.delegate == "cpu" or bool(found.get("delegate_ok")))
    detail = found.get("detail") or ""
    if reachable and not found.get("runtime") and not detail:
        detail = "no TFLite runtime (pip install edgenet on the device)"
    return DeviceCheck(name=device.name, where=device.where, ok=ok, reachable=reachable,
                       runtime=found.get("runtime"), runtime_version=found.get("runtime_version"),
                       machine=found.get("machine"), delegate=device.delegate, delegate_ok=found.get("delegate_ok"),
                       node=socket.gethostname(), detail=printable(detail))


def check_devices(devices: Sequence[Device], timeout_s: float = PROBE_TIMEOUT_S) -> list[DeviceCheck]:
    """Every device's check, in parallel, in inventory order. An interruption stops every probe at once."""
    from .. import process

    pool = cf.ThreadPoolExecutor(max(1, min(8, len(devices))), thread_name_prefix="edgenet-probe")
    try:
        futures = [pool.submit(check_device, d, timeout_s) for d in devices]
        return [f.result() for f in futures]
    except BaseException:
        pool.shutdown(wait=False, cancel_futures=True)
        process.stop_all(grace_s=0.5)  # the probes' ssh processes: their threads return at once
        raise
    finally:
        pool.shutdown(wait=False, cancel_futures=True)
