"""Run Coral's ``edgetpu_compiler`` and read its report.

The compiler is a closed-source x86-64 Linux binary (Coral apt repository, package
``edgetpu-compiler``); it does not exist for ARM hosts or macOS. Where it is missing,
:func:`compile_models` raises :class:`CompilerUnavailableError` with the install hint
and callers fall back to the static check in :mod:`edgenet.edgetpu.check`.

The compiler's console report (``-s`` adds the per-operator table) looks like::

    Edge TPU Compiler version 16.0.384591198
    Model compiled successfully in 1379 ms.
    Input model: model.tflite
    Input size: 4.41MiB
    ...
    On-chip memory used for caching model parameters: 1.92MiB
    Number of Edge TPU subgraphs: 1
    Total number of operations: 136
    ...
    Operator                       Count      Status
    CONV_2D                        52         Mapped to Edge TPU
    MEAN                           1          More than one subgraph is not supported

:func:`parse_compiler_log` turns that text (or a failure such as ``Invalid model: ...``
/ ``Model not quantized``) into a dict with sizes in bytes.
"""

from __future__ import annotations

import json
import os
import platform
import re
import shutil
import subprocess
from dataclasses import dataclass
from pathlib import Path

from .. import process
from ..errors import EdgenetError, InputFileError
from ..fsutil import atomic_write_text, write_error

COMPILER = "edgetpu_compiler"
INSTALL_HINT = (
    "edgetpu_compiler is not available: it runs only on x86-64 Debian/Ubuntu Linux; install it from "
    "Coral's apt repository (https://coral.ai/docs/edgetpu/compiler/): sudo apt-get install edgetpu-compiler"
)
COMPILE_TIMEOUT_S = 600
MAPPED_STATUS = "Mapped to Edge TPU"

_UNITS = {"B": 1, "KiB": 1024, "MiB": 1024**2, "GiB": 1024**3}
_SIZE = re.compile(r"^\s*([0-9]+(?:\.[0-9]+)?)\s*(B|KiB|MiB|GiB)\s*$")
_TABLE_ROW = re.compile(r"^(\S+)\s+(\d+)\s+(\S.*?)\s*$")

# "Key: value" lines of one model's block -> (field name, kind)
_FIELDS = {
    "Input model": ("input_model", str),
    "Input size": ("input_size_bytes", "size"),
    "Output model": ("output_model", str),
    "Output size": ("output_size_bytes", "size"),
    "On-chip memory used for caching model parameters": ("on_chip_used_bytes", "size"),
    "On-chip memory remaining for caching model parameters": ("on_chip_remaining_bytes", "size"),
    "Off-chip memory used for streaming uncached model parameters": ("off_chip_used_bytes", "size"),
    "Number of Edge TPU subgraphs": ("subgraphs", int),
    "Total number of operations": ("ops_total", int),
    "Operation log": ("operation_log", str),
    "Number of operations that will run on Edge TPU": ("ops_tpu", int),
    "Number of operations that will run on CPU": ("ops_cpu", int),
}


class CompilerUnavailableError(EdgenetError):
    """``edgetpu_compiler`` is not installed or cannot run on this platform."""

    def __init__(self, message: str = INSTALL_HINT):
        super().__init__(message)


def parse_size(text: str) -> int:
    """``"4.41MiB"`` -> bytes (the compiler prints B, KiB, MiB with two decimals)."""
    m = _SIZE.match(text)
    if not m:
        raise ValueError(f"not a compiler size: {text!r}")
    return int(round(float(m.group(1)) * _UNITS[m.group(2)]))


def _new_model() -> dict:
    return {name: None for name, _ in _FIELDS.values()} | {"operations": []}


def parse_compiler_log(text: str) -> dict:
    """Parse the console output of ``edgetpu_compiler [-s]`` into a dict.

    Keys: ``version``, ``success`` (bool), ``compile_time_ms``, ``error`` (one line or
    None), ``models`` (one dict per input model with sizes in bytes, subgraph and op
    counts and ``operations``: rows ``{op, count, status, mapped}``), and summaries over
    all rows: ``ops_mapped``, ``ops_not_mapped``, ``not_mapped_by_reason``.
    """
    out: dict = {"version": None, "success": False, "compile_time_ms": None, "error": None, "models": []}
    current: dict | None = None
    in_table = False
    errors: list[str] = []
    for raw in text.splitlines():
        line = raw.strip()
        if not line:
            continue
        if m := re.match(r"Edge TPU Compiler version (\S+)", line):
            out["version"] = m.group(1)
            continue
        if m := re.match(r"Models? compiled successfully in (\d+(?:\.\d+)?) ms", line):
            out["success"] = True
            out["compile_time_ms"] = float(m.group(1))
            continue
        if m := re.match(r"Invalid model: (.+)", line):
            errors.append(f"invalid model {m.group(1)}")
            continue
        if line.startswith(("Compilation failed", "ERROR:", "Internal compiler error")) or line in (
            "Model not quantized",
        ):
            errors.append(line.rstrip(".!"))
            continue
        if re.match(r"Operator\s+Count\s+Status", line):
            in_table = True
            if current is None:
                current = _new_model()
                out["models"].append(current)
            continue
        key, sep, value = line.partition(":")
        if sep and key in _FIELDS:
            name, kind = _FIELDS[key]
            if name == "input_model":
                current = _new_model()
                out["models"].append(current)
                in_table = False
            elif current is None:
                current = _new_model()
                out["models"].append(current)
            value = value.strip()
            current[name] = parse_size(value) if kind == "size" else kind(value)
            continue
        if in_table and current is not None and (m := _TABLE_ROW.match(line)):
            status = m.group(3)
            current["operations"].append({
                "op": m.group(1), "count": int(m.group(2)), "status": status, "mapped": status == MAPPED_STATUS,
            })
    if errors:
        specific = [e for e in errors if e != "Compilation failed"] or errors
        out["success"] = False
        out["error"] = "; ".join(dict.fromkeys(specific))
    for model in out["models"]:
        if model["ops_tpu"] is None and out["success"] and model["ops_total"] is not None:
            # Without the "not all operations are supported" section every op is on the Edge TPU.
            rows = model["operations"]
            model["ops_tpu"] = sum(r["count"] for r in rows if r["mapped"]) if rows else model["ops_total"]
            model["ops_cpu"] = model["ops_total"] - model["ops_tpu"]
    rows = [r for model in out["models"] for r in model["operations"]]
    out["ops_mapped"] = sum(r["count"] for r in rows if r["mapped"])
    out["ops_not_mapped"] = sum(r["count"] for r in rows if not r["mapped"])
    by_reason: dict[str, int] = {}
    for r in rows:
        if not r["mapped"]:
            by_reason[r["status"]] = by_reason.get(r["status"], 0) + r["count"]
    out["not_mapped_by_reason"] = by_reason
    return out


def compiler_available() -> tuple[bool, str]:
    """(available, why not): the compiler exists only for x86-64 Linux."""
    machine = platform.machine().lower()
    if platform.system() != "Linux" or machine not in ("x86_64", "amd64"):
        return False, f"{INSTALL_HINT} (this host is {platform.system()} {platform.machine()})"
    if shutil.which(COMPILER) is None:
        return False, INSTALL_HINT
    return True, ""


@dataclass(frozen=True)
class CompileResult:
    model_path: str
    output_path: str | None  # the compiled ``*_edgetpu.tflite`` (None on failure)
    report_path: str  # JSON summary written beside it
    log_path: str  # the compiler's console output
    report: dict  # parse_compiler_log() of the console output
    returncode: int

    @property
    def ok(self) -> bool:
        return self.returncode == 0 and bool(self.report.get("success"))


def compile_models(paths, out_dir: str | os.PathLike, *, timeout_s: float = COMPILE_TIMEOUT_S) -> list[CompileResult]:
    """Compile each model with ``edgetpu_compiler -s -o OUT_DIR MODEL``.

    Writes, next to each ``<stem>_edgetpu.tflite``, the console output
    (``<stem>_edgetpu.compile.log``) and its parsed summary (``<stem>_edgetpu.compile.json``:
    ops mapped / not mapped with reasons and counts, subgraphs, on-chip / off-chip bytes).
    Models are compiled one at a time so that each gets the whole on-chip cache (co-compiling
    shares it between them). Raises :class:`CompilerUnavailableError` where the compiler
    cannot run, :class:`InputFileError` for a missing input.
    """
    ok, why = compiler_available()
    if not ok:
        raise CompilerUnavailableError(why)
    out_dir = Path(out_dir)
    try:
        out_dir.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise write_error(out_dir, exc) from None
    results = []
    for path in map(Path, paths):
        if not path.is_file():
            raise InputFileError(path, "no such file")
        cmd = [shutil.which(COMPILER) or COMPILER, "-s", "-o", str(out_dir), str(path)]
        try:
            proc = process.run(cmd, text=True, timeout_s=timeout_s)
            console, code = proc.stdout + proc.stderr, proc.returncode
        except subprocess.TimeoutExpired:
            console, code = f"Compilation failed: timed out after {timeout_s:.0f} s\n", 124
        report = parse_compiler_log(console)
        if code != 0 and not report["error"]:
            report["error"] = f"edgetpu_compiler exited with status {code}"
            report["success"] = False
        compiled = out_dir / f"{path.stem}_edgetpu.tflite"
        report["model"] = str(path)
        report["output"] = str(compiled) if compiled.exists() and report["success"] else None
        log_path = atomic_write_text(out_dir / f"{path.stem}_edgetpu.compile.log", console)
        json_path = atomic_write_text(out_dir / f"{path.stem}_edgetpu.compile.json", json.dumps(report, indent=2) + "\n")
        results.append(CompileResult(str(path), report["output"], str(json_path), str(log_path), report, code))
    return results
