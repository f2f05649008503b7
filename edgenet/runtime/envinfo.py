"""Fingerprint of the machine and the model behind a measurement.

Latency on small boards depends on things a result must carry to be comparable: the CPU model, how
many cores the process may use (containers and ``taskset`` restrict it below ``os.cpu_count()``),
the frequency governor (``ondemand``/``schedutil`` ramp up during a run, ``powersave`` never does),
and on a Raspberry Pi whether the firmware throttled the clock (under-voltage or heat), which
``vcgencmd get_throttled`` reports before and after the run. Everything is read from /proc and
/sys where readable and ``None`` otherwise, never guessed.

Under an emulator (qemu-user running an arm64 userland, as ``tools/emulated-pi`` builds) the code
and the arithmetic are ARM's but the clock is the host's: :func:`emulation` says so, and the record
carries it, so an emulated latency is never taken for a board's. The host's governor and frequency
describe the host, not the emulated board, and are left out there.
"""

from __future__ import annotations

import json
import os
import platform
import shutil
import socket
import subprocess
import sys
from pathlib import Path

from ..fsutil import sha256_bytes

__all__ = [
    "cpu_model",
    "cpu_cores",
    "cpufreq",
    "raspberry_pi_model",
    "emulation",
    "throttled",
    "device_info",
    "isa_features",
    "load_average",
    "measured_on",
    "model_info",
    "manifest_path",
]

_CPUFREQ = Path("/sys/devices/system/cpu/cpu0/cpufreq")


def _read(path: str | Path) -> str | None:
    try:
        return Path(path).read_text(encoding="utf-8", errors="replace").strip()
    except OSError:
        return None


def cpu_model(cpuinfo: str | None = None) -> str | None:
    """CPU name from /proc/cpuinfo: ``model name`` on x86, ``Model``/``Hardware`` on ARM boards."""
    text = _read("/proc/cpuinfo") if cpuinfo is None else cpuinfo
    found: dict[str, str] = {}
    for line in (text or "").splitlines():
        key, sep, value = line.partition(":")
        key = key.strip().lower()
        if sep and value.strip() and key not in found:
            found[key] = value.strip()
    for key in ("model name", "model", "hardware", "cpu model", "processor"):
        if key in found and not found[key].isdigit():
            return found[key]
    return platform.processor() or None


#: The instruction-set features that decide XNNPACK's int8 speed, per architecture, in the order the
#: "measured on" line names them: (name shown, /proc/cpuinfo flags that provide it). On x86 the int8
#: dot products are AVX2 (vpmaddubsw), then VNNI (vpdpbusd: AVX-512 VNNI, or AVX-VNNI on client cores),
#: then AMX tiles; on ARM, the SDOT/UDOT dot products (dotprod) and the int8 matrix multiply (i8mm).
#: Machines of one kind differ 5x by them (B0 int8: 2.8 ms with AVX-512 VNNI, 14 ms with AVX2 only).
ISA_FEATURES: dict[str, tuple[tuple[str, tuple[str, ...]], ...]] = {
    "x86": (("AVX2", ("avx2",)), ("AVX-512 VNNI", ("avx512_vnni",)), ("AVX-VNNI", ("avx_vnni",)),
            ("AMX", ("amx_int8",))),
    "arm": (("dotprod", ("asimddp",)), ("i8mm", ("i8mm",))),
}
#: Features a line names as missing when absent (AVX-VNNI only matters where AVX-512 VNNI is absent).
_SAY_MISSING = {"AVX2", "AVX-512 VNNI", "AMX", "dotprod", "i8mm"}


def _arch(machine: str | None) -> str | None:
    machine = (machine or "").lower()
    if machine in ("x86_64", "amd64", "i386", "i686", "x86"):
        return "x86"
    if machine.startswith(("aarch64", "arm")):
        return "arm"
    return None


def isa_features(cpuinfo: str | None = None, machine: str | None = None) -> dict[str, bool] | None:
    """``{"AVX2": True, "AVX-512 VNNI": True, "AVX-VNNI": False, "AMX": False}`` (or ARM's dotprod, i8mm)
    from the ``flags``/``Features`` line of /proc/cpuinfo; None where unknown (no /proc, other CPUs)."""
    arch = _arch(machine or platform.machine())
    text = _read("/proc/cpuinfo") if cpuinfo is None else cpuinfo
    if arch is None or not text:
        return None
    flags: set[str] = set()
    for line in text.splitlines():
        key, sep, value = line.partition(":")
        if sep and key.strip().lower() in ("flags", "features"):
            flags |= set(value.split())
    if not flags:
        return None
    return {name: any(f in flags for f in provided) for name, provided in ISA_FEATURES[arch]}


def load_average() -> float | None:
    """The 1-minute load average (runnable processes), None where the OS has none."""
    try:
        return round(os.getloadavg()[0], 2)
    except (AttributeError, OSError):
        return None


def measured_on(device: dict) -> str:
    """THE one line that says what a measurement ran on: CPU model, the ISA features that decide
    XNNPACK's int8 speed, cores, load. Built from a record's ``device`` object (what every bench
    record stores as ``device.measured_on`` and what REPORT.md prints), so both always agree.

    ``Intel(R) Xeon(R) CPU @ 2.80GHz (x86_64); AVX2, AVX-512 VNNI, no AMX; 2 cores; load 0.42``
    """
    d = device if isinstance(device, dict) else {}
    cpu = str(d.get("cpu_model") or "unknown CPU")
    machine = d.get("machine")
    parts = [f"{cpu} ({machine})" if machine else cpu]
    emulated = d.get("emulation")
    isa = d.get("isa")
    if emulated:
        parts.append("emulated: " + " ".join(str(emulated.get(k)) for k in ("profile", "cpu", "emulator")
                                             if isinstance(emulated, dict) and emulated.get(k)))
    elif isinstance(isa, dict) and isa:
        have = [name for name, present in isa.items() if present]
        if isa.get("AVX-512 VNNI"):
            have = [n for n in have if n != "AVX-VNNI"]
        missing = [f"no {name}" for name, present in isa.items() if not present and name in _SAY_MISSING]
        parts.append(", ".join(have + missing) or "none of the int8 ISA features")
    else:
        parts.append("ISA features unknown")
    cores = d.get("cores")
    parts.append(f"{cores} core{'s' if cores != 1 else ''}" if cores else "cores unknown")
    load = d.get("load_1m")
    parts.append(f"load {load:.2f}" if isinstance(load, (int, float)) else "load unknown")
    return "; ".join(parts)


def cpu_cores() -> dict:
    """Logical CPUs on the machine and how many this process may run on."""
    try:
        usable = len(os.sched_getaffinity(0))
    except (AttributeError, OSError):
        usable = None
    return {"logical": os.cpu_count(), "usable": usable}


def cpufreq() -> dict:
    """Governor and current/maximum frequency (MHz) of cpu0, each None when not readable."""

    def mhz(name: str) -> float | None:
        value = _read(_CPUFREQ / name)
        return round(int(value) / 1000.0, 1) if value and value.isdigit() else None

    return {
        "governor": _read(_CPUFREQ / "scaling_governor"),
        "cur_mhz": mhz("scaling_cur_freq"),
        "max_mhz": mhz("cpuinfo_max_freq") or mhz("scaling_max_freq"),
    }


def raspberry_pi_model() -> str | None:
    """``Raspberry Pi 4 Model B Rev 1.4`` etc. from the device tree, None elsewhere."""
    model = _read("/proc/device-tree/model")
    model = model.rstrip("\x00") if model else None
    return model if model and "raspberry pi" in model.lower() else None


#: Set by the emulated device's interpreter wrapper: ``{"emulator", "cpu", "profile"}`` as JSON.
EMULATION_ENV = "EDGENET_EMULATION"


def _qemu_user() -> bool:
    """True when this process is qemu-user emulating another architecture.

    qemu runs the guest in its own process, so the kernel's name for it is qemu's
    (``qemu-aarch64-st``); with binfmt_misc and no faked cpuinfo, the host's x86 /proc/cpuinfo
    shows through on an ARM ``platform.machine()``.
    """
    status = _read("/proc/self/status") or ""
    name = status.splitlines()[0].partition(":")[2].strip() if status else ""
    if name.startswith("qemu-"):
        return True
    cpuinfo = (_read("/proc/cpuinfo") or "").lower()
    return platform.machine().lower() in ("aarch64", "arm64", "armv7l") and (
        "genuineintel" in cpuinfo or "authenticamd" in cpuinfo)


def emulation() -> dict | None:
    """``{"emulator", "cpu", "profile"}`` when running under an emulator, None on real hardware.

    The wrapper of ``tools/emulated-pi`` names the emulated CPU and board; without it a detected
    qemu still marks the record (CPU and board unknown).
    """
    declared = os.environ.get(EMULATION_ENV)
    info = None
    if declared:
        try:
            value = json.loads(declared)
        except json.JSONDecodeError:
            value = None
        if isinstance(value, dict):
            info = {k: (None if value.get(k) is None else str(value.get(k))) for k in ("emulator", "cpu", "profile")}
    if info is None and _qemu_user():
        info = {"emulator": "qemu-user", "cpu": None, "profile": None}
    return info


def throttled() -> str | None:
    """``vcgencmd get_throttled`` (e.g. ``0x0`` = never throttled), None where vcgencmd is absent."""
    exe = shutil.which("vcgencmd")
    if exe is None:
        return None
    try:
        out = subprocess.run([exe, "get_throttled"], capture_output=True, text=True, timeout=5).stdout
    except (OSError, subprocess.SubprocessError):
        return None
    _, _, value = out.strip().partition("=")
    return value or None


def device_info(
    label: str | None = None,
    runtime: dict | None = None,
    delegate: dict | None = None,
    throttled_before: str | None = None,
    throttled_after: str | None = None,
) -> dict:
    """The ``device`` object of a result record (see :mod:`edgenet.results`)."""
    freq = cpufreq()
    cores = cpu_cores()
    hostname = socket.gethostname()
    pi = raspberry_pi_model()
    emulated = emulation()
    isa = isa_features()
    if emulated:  # the host's clock settings (and ISA) say nothing about the emulated board
        freq = {"governor": None, "cur_mhz": None, "max_mhz": None}
        label = label or f"emulated-{emulated.get('profile') or emulated.get('cpu') or 'arm'}"
        isa = None
    device = {
        "label": label or hostname,
        "hostname": hostname,
        "machine": platform.machine(),
        "cpu_model": pi + " / " + (cpu_model() or "?") if pi else cpu_model(),
        "cores": cores["usable"] or cores["logical"],
        "governor": freq["governor"],
        "freq_mhz": freq["max_mhz"] or freq["cur_mhz"],
        "os": platform.platform(),
        "python": platform.python_version(),
        "runtime": runtime,
        "delegate": delegate,
        "throttled_before": throttled_before,
        "throttled_after": throttled_after,
        "emulation": emulated,
        "isa": isa,
        "load_1m": load_average(),
    }
    device["measured_on"] = measured_on(device)
    return device


def environment() -> dict:
    """A fuller fingerprint for logs and reports (not a schema object)."""
    return {
        "cpu_model": cpu_model(),
        "cores": cpu_cores(),
        "cpufreq": cpufreq(),
        "raspberry_pi": raspberry_pi_model(),
        "emulation": emulation(),
        "throttled": throttled(),
        "os": platform.platform(),
        "python": sys.version.split()[0],
        "machine": platform.machine(),
        "hostname": socket.gethostname(),
    }


def manifest_path(model_path: str | os.PathLike) -> Path:
    """``MODEL.tflite`` -> ``MODEL.json``, the manifest the converter writes beside the model."""
    return Path(model_path).with_suffix(".json")


def model_info(model_path: str | os.PathLike, data: bytes | None = None) -> dict:
    """The ``model`` object of a result record: size, sha256, and what the manifest says.

    The manifest is optional and read leniently (an unreadable one is recorded as absent): it only
    adds labels (variant, quantization), the measurement does not depend on it.
    """
    from ..errors import InputFileError
    from ..fsutil import read_input_bytes, read_input_text

    path = Path(model_path)
    if data is None:
        data = read_input_bytes(path, "a .tflite model")
    manifest = None
    try:
        text = read_input_text(manifest_path(path), "a model manifest (JSON)")
    except InputFileError:
        text = None
    if text:
        try:
            manifest = json.loads(text)
        except json.JSONDecodeError:
            manifest = None
    m = manifest if isinstance(manifest, dict) else {}
    variant = m.get("variant")
    if isinstance(variant, dict):
        variant = variant.get("spec") or variant.get("name")  # the spec re-parses, a custom name does not
    return {
        "path": str(path),
        "name": path.stem,
        "sha256": sha256_bytes(data),
        "size_bytes": len(data),
        "variant": variant,
        "quant": m.get("quant") or m.get("quantization"),
        "resolution": m.get("resolution"),
        "params": m.get("params"),
        "macs": m.get("macs"),
        "manifest": manifest if isinstance(manifest, dict) else None,
    }
