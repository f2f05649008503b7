"""THE results schema shared by every command that measures (bench, eval, convert; read by select,
sweep and report), plus atomic JSON-lines storage and CSV export.

Schema ``edgenet.result/1``: one JSON object per line. Every field is present; absent values are
``null``. Nested objects always carry all their keys (``null`` when unknown)::

    schema:      "edgenet.result/1"
    kind:        "bench" | "eval" | "convert"
    created_utc: ISO-8601 UTC timestamp, e.g. "2025-01-31T12:00:00.123456+00:00"
    model:       {path, name, sha256, size_bytes, variant, quant, resolution, params, macs, manifest}
    device:      {label, hostname, machine, cpu_model, cores, governor, freq_mhz, os, python,
                  runtime: {name, version}, delegate: {name, version} | null,
                  throttled_before, throttled_after,
                  emulation: {emulator, cpu, profile} | null,
                  isa: {"AVX2": bool, "AVX-512 VNNI": bool, "AVX-VNNI": bool, "AMX": bool}
                       | {"dotprod": bool, "i8mm": bool} | null,
                  load_1m: float | null,
                  measured_on: "CPU (machine); ISA features; N cores; load L"}
                  (isa, load_1m, measured_on added with issue 23; null in older records)
    settings:    {threads, xnnpack, delegate, warmup_s, min_runs, min_s, max_s, timeout_s,
                  xnnpack_latest, api, xnnpack_weight_cache (added with issue 16; null in older records),
                  ynnpack (added with issue 24; null in older records)}
    latency_ms:  {init, first, mean, std, min, p50, p90, p95, p99, max}
    runs:        int, timed invocations after warm-up
    failed_runs: int, invocations that raised (any > 0 sets ``error``)
    peak_rss_mb: float, the measuring process's peak resident memory
    init_memory_mb: {anon, file}: what creating the model and its first invocation added to the
                 process's resident memory, private (anonymous: heap, packed weights) and
                 file-backed (libraries, the mapped model, an XNNPACK weight cache file; shareable)
                 (added with issue 16; null in older records and where /proc is absent)
    rss_after_first_run_mb: float, the measuring process's resident memory (private + file-backed,
                 ``RssAnon + RssFile``) right after the model's init and first invocation: what
                 ``--max-memory-mb`` holds a candidate to (added with issue 24; null in older records)
    samples_ms:  [float, ...] every timed invocation, in order
    accuracy:    {top1, top5, count, dataset, agreement_top1, drop_top1_points, reference}
    error:       null | "one line"   (a record with an error has no trustworthy numbers)

Units are in the names: ``latency_ms`` holds milliseconds, ``size_bytes`` bytes, ``peak_rss_mb``
MiB-based megabytes (ru_maxrss KiB / 1024). ``device.label`` is the user's name for the machine
(``--label``), which ``report`` groups by. ``device.delegate`` is non-null only when a delegate
really ran the model: a CPU figure is never labelled ``edgetpu``.
``device.emulation`` is non-null when the record was made under an emulator (qemu-user running an
emulated Raspberry Pi, ``tools/emulated-pi``): its numbers prove ARM code and numerics, and its
latencies are the emulator's, never a board's (``select``, ``sweep`` and ``report`` leave them out).

CSV export flattens nested objects with dotted column names (``latency_ms.p50``,
``device.runtime.version``); lists and ``model.manifest`` become JSON text in one cell.
"""

from __future__ import annotations

import csv
import io
import json
import math
import os
from collections.abc import Iterable
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

from ..errors import EdgenetError, InputFileError, one_line, printable
from ..fsutil import atomic_write_text, read_input_text

__all__ = [
    "SCHEMA",
    "KINDS",
    "FIELDS",
    "NESTED_FIELDS",
    "RecordError",
    "check_fields",
    "make_record",
    "append_records",
    "parse_reply",
    "validate_record",
    "read_records",
    "flatten_record",
    "records_to_csv",
    "write_csv",
    "write_records",
]

SCHEMA = "edgenet.result/1"
KINDS = ("bench", "eval", "convert")

#: Keys of each nested object, in output order.
NESTED_FIELDS: dict[str, tuple[str, ...]] = {
    "model": ("path", "name", "sha256", "size_bytes", "variant", "quant", "resolution", "params", "macs", "manifest"),
    "device": (
        "label",
        "hostname",
        "machine",
        "cpu_model",
        "cores",
        "governor",
        "freq_mhz",
        "os",
        "python",
        "runtime",
        "delegate",
        "throttled_before",
        "throttled_after",
        "emulation",
        "isa",
        "load_1m",
        "measured_on",
    ),
    "settings": ("threads", "xnnpack", "delegate", "warmup_s", "min_runs", "min_s", "max_s", "timeout_s",
                 "xnnpack_latest", "api", "xnnpack_weight_cache", "ynnpack"),
    "latency_ms": ("init", "first", "mean", "std", "min", "p50", "p90", "p95", "p99", "max"),
    "accuracy": ("top1", "top5", "count", "dataset", "agreement_top1", "drop_top1_points", "reference"),
    "init_memory_mb": ("anon", "file"),
}
#: Top-level keys, in output order.
FIELDS: tuple[str, ...] = (
    "schema",
    "kind",
    "created_utc",
    "model",
    "device",
    "settings",
    "latency_ms",
    "runs",
    "failed_runs",
    "peak_rss_mb",
    "init_memory_mb",
    "rss_after_first_run_mb",
    "samples_ms",
    "accuracy",
    "error",
)
_SUBOBJECTS = {("device", "runtime"): ("name", "version"), ("device", "delegate"): ("name", "version"),
               ("device", "emulation"): ("emulator", "cpu", "profile")}


class RecordError(EdgenetError, ValueError):
    """A record that breaks the schema's types or ranges (the message names the field)."""


# What each field holds, for records that come from elsewhere (a device's reply): "num" a finite
# number, "num+" a finite number >= 0, "int+" an integer >= 0, "int1" an integer >= 1, "pct" a
# fraction 0..1 (or an old record's percentage, at most 100), "str", "bool", "obj" any object, a
# tuple: a nested object of those keys. ``samples_ms`` is a list of "num+".
_FIELD_TYPES: dict[str, Any] = {
    "model": {"path": "str", "name": "str", "sha256": "str", "size_bytes": "int+", "variant": "str",
              "quant": "str", "resolution": "int1", "params": "int+", "macs": "int+", "manifest": "obj"},
    "device": {"label": "str", "hostname": "str", "machine": "str", "cpu_model": "str", "cores": "int+",
               "governor": "str", "freq_mhz": "num+", "os": "str", "python": "str",
               "runtime": {"name": "str", "version": "str"}, "delegate": {"name": "str", "version": "str"},
               "throttled_before": "str", "throttled_after": "str",
               "emulation": {"emulator": "str", "cpu": "str", "profile": "str"}},
    "settings": {"threads": "int1", "xnnpack": "bool", "delegate": "str", "warmup_s": "num+", "min_runs": "int+",
                 "min_s": "num+", "max_s": "num+", "timeout_s": "num+", "xnnpack_latest": "bool", "api": "str",
                 "xnnpack_weight_cache": "bool"},
    "latency_ms": dict.fromkeys(NESTED_FIELDS["latency_ms"], "num+"),
    "init_memory_mb": {"anon": "num", "file": "num"},
    "accuracy": {"top1": "pct", "top5": "pct", "count": "int+", "dataset": "str", "agreement_top1": "pct",
                 "drop_top1_points": "num", "reference": "str"},
    "runs": "int+", "failed_runs": "int+", "peak_rss_mb": "num+", "created_utc": "str", "error": "str",
}
#: A reply's strings and lists are bounded: a device cannot make us hold gigabytes per field.
MAX_TEXT = 65536
MAX_SAMPLES = 10_000_000


def check_fields(value: Any, kind: Any, where: str) -> None:
    """``value`` holds what ``kind`` says (see ``_FIELD_TYPES``; ``None`` always passes), else :class:`RecordError`."""
    if value is None:
        return
    if isinstance(kind, dict):
        if not isinstance(value, dict):
            raise RecordError(f"{where}: expected an object, got {type(value).__name__}")
        for key, sub in kind.items():
            check_fields(value.get(key), sub, f"{where}.{key}")
        return
    if kind == "str":
        if not isinstance(value, str):
            raise RecordError(f"{where}: expected text, got {type(value).__name__}")
        if len(value) > MAX_TEXT:
            raise RecordError(f"{where}: {len(value)} characters (at most {MAX_TEXT})")
        return
    if kind == "bool":
        if not isinstance(value, bool):
            raise RecordError(f"{where}: expected true/false, got {type(value).__name__}")
        return
    if kind == "obj":
        return
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        raise RecordError(f"{where}: expected a number, got {type(value).__name__}")
    if not math.isfinite(value):
        raise RecordError(f"{where}: {value} is not a finite number")
    if kind in ("int+", "int1") and not isinstance(value, int):
        raise RecordError(f"{where}: expected an integer, got {value!r}")
    low = 1 if kind == "int1" else 0 if kind in ("num+", "int+", "pct") else None
    if low is not None and value < low:
        raise RecordError(f"{where}: {value!r} is {'negative' if value < 0 else f'below {low}'}")
    if kind == "pct" and value > 100:
        raise RecordError(f"{where}: {value!r} is not an accuracy (0..1)")


def validate_record(record: Any, kind: str | None = None) -> dict:
    """``record`` if it is a well-typed ``edgenet.result/1`` record (of ``kind``), else :class:`RecordError`.

    Types and ranges of every known field: numbers finite (no NaN/inf), latencies, counts and sizes
    not negative, accuracies 0..1, text bounded. What a writer of this schema produces always passes;
    it is the check for records that come from elsewhere (a device's reply).
    """
    if not isinstance(record, dict):
        raise RecordError(f"expected a record object, got {type(record).__name__}")
    if record.get("schema") != SCHEMA:
        raise RecordError(f"not an {SCHEMA} record (schema {printable(repr(record.get('schema')))[:60]})")
    if record.get("kind") not in KINDS or (kind is not None and record.get("kind") != kind):
        raise RecordError(f"kind {printable(repr(record.get('kind')))[:40]}, expected {kind or ' or '.join(KINDS)}")
    for key, sub in _FIELD_TYPES.items():
        check_fields(record.get(key), sub, key)
    samples = record.get("samples_ms")
    if samples is not None:
        if not isinstance(samples, list) or len(samples) > MAX_SAMPLES:
            raise RecordError(f"samples_ms: expected a list of numbers, got {type(samples).__name__}")
        for i, value in enumerate(samples):
            check_fields(value, "num+", f"samples_ms[{i}]")
    return record


def parse_reply(text: str, kind: str | None = None) -> list[dict]:
    """The records of JSON-lines ``text`` from elsewhere: :func:`validate_record` on every line, and
    nothing that cannot be stored (a NaN/Infinity anywhere); else a :class:`RecordError` naming the line."""
    records = []
    for number, line in enumerate(text.splitlines(), start=1):
        if not line.strip():
            continue
        try:
            record = validate_record(json.loads(line), kind)
            json.dumps(record, allow_nan=False)
        except json.JSONDecodeError as exc:
            raise RecordError(f"line {number}: not valid JSON ({exc.msg})") from None
        except RecursionError:
            raise RecordError(f"line {number}: nested too deeply") from None
        except RecordError as exc:
            raise RecordError(f"line {number}: {exc}") from None
        except ValueError:  # json.dumps: NaN or Infinity in a field the schema does not type
            raise RecordError(f"line {number}: a number that is not finite (NaN or Infinity)") from None
        records.append(record)
    return records


def _clean(value: Any) -> Any:
    """NaN/inf are not JSON: store them as null rather than writing an unreadable file."""
    if isinstance(value, float) and not math.isfinite(value):
        return None
    return value


def _nested(group: str, values: dict | None) -> dict | None:
    if values is None:
        return None
    unknown = set(values) - set(NESTED_FIELDS[group])
    if unknown:
        raise ValueError(f"unknown {group} field(s): {', '.join(sorted(unknown))}")
    out = {}
    for key in NESTED_FIELDS[group]:
        value = values.get(key)
        sub = _SUBOBJECTS.get((group, key))
        if sub is not None and value is not None:
            value = {k: value.get(k) for k in sub}
        out[key] = _clean(value)
    return out


def make_record(
    kind: str,
    *,
    model: dict | None = None,
    device: dict | None = None,
    settings: dict | None = None,
    latency_ms: dict | None = None,
    runs: int | None = None,
    failed_runs: int | None = None,
    peak_rss_mb: float | None = None,
    init_memory_mb: dict | None = None,
    rss_after_first_run_mb: float | None = None,
    samples_ms: Iterable[float] | None = None,
    accuracy: dict | None = None,
    error: str | None = None,
    created_utc: str | None = None,
) -> dict:
    """Build one schema record; nested dicts are completed with nulls, unknown keys rejected.

    ``error`` is collapsed to one line. Passing an unknown kind or field is a programming error
    (``ValueError``), not a user error.
    """
    if kind not in KINDS:
        raise ValueError(f"unknown record kind {kind!r}; choose from {', '.join(KINDS)}")
    return {
        "schema": SCHEMA,
        "kind": kind,
        "created_utc": created_utc or datetime.now(timezone.utc).isoformat(),
        "model": _nested("model", model),
        "device": _nested("device", device),
        "settings": _nested("settings", settings),
        "latency_ms": _nested("latency_ms", latency_ms),
        "runs": runs,
        "failed_runs": failed_runs,
        "peak_rss_mb": _clean(peak_rss_mb),
        "init_memory_mb": _nested("init_memory_mb", init_memory_mb),
        "rss_after_first_run_mb": _clean(rss_after_first_run_mb),
        "samples_ms": None if samples_ms is None else [float(x) for x in samples_ms],
        "accuracy": _nested("accuracy", accuracy),
        "error": None if error is None else one_line(error, None),
    }


def _dumps(record: dict) -> str:
    # allow_nan=False: a NaN would make the line unreadable by strict JSON parsers.
    return json.dumps(record, allow_nan=False, separators=(",", ":"))


def append_records(path: str | os.PathLike, records: Iterable[dict]) -> Path:
    """Append records to a JSON-lines file without ever risking the earlier lines.

    The old content is read, the new lines are serialised *before* anything is written, and the
    whole file is replaced atomically (temp file + rename). A failure at any point leaves the old
    file byte-for-byte intact.
    """
    path = Path(path)
    new_lines = [_dumps(r) for r in records]
    old = read_input_text(path, "a JSON-lines results file") if os.path.lexists(path) else ""
    if old and not old.endswith("\n"):
        old += "\n"
    return atomic_write_text(path, old + "".join(line + "\n" for line in new_lines))


def write_records(stream: io.TextIOBase, records: Iterable[dict]) -> None:
    """Write records as JSON lines to an open text stream (``--json -``)."""
    for record in records:
        stream.write(_dumps(record) + "\n")
    stream.flush()


def read_records(path: str | os.PathLike, kind: str | None = None) -> list[dict]:
    """Read a JSON-lines results file; a bad line raises ``InputFileError`` naming file and line."""
    text = read_input_text(path, "a JSON-lines results file")
    return parse_records(text, source=str(path), kind=kind)


def parse_records(text: str, source: str = "<results>", kind: str | None = None) -> list[dict]:
    """Parse JSON-lines text into records (blank lines ignored)."""
    records = []
    for number, line in enumerate(text.splitlines(), start=1):
        if not line.strip():
            continue
        try:
            record = json.loads(line)
        except json.JSONDecodeError as exc:
            raise InputFileError(source, f"line {number}: not valid JSON ({exc.msg})") from None
        if not isinstance(record, dict) or record.get("schema") != SCHEMA:
            found = record.get("schema") if isinstance(record, dict) else type(record).__name__
            raise InputFileError(source, f"line {number}: not an {SCHEMA} record (schema {found!r})")
        if kind is None or record.get("kind") == kind:
            records.append(record)
    return records


def flatten_record(record: dict, prefix: str = "") -> dict[str, Any]:
    """``{"latency_ms": {"p50": 1.0}}`` -> ``{"latency_ms.p50": 1.0}``; lists and manifests -> JSON text."""
    flat: dict[str, Any] = {}
    for key, value in record.items():
        name = f"{prefix}{key}"
        if isinstance(value, dict) and name != "model.manifest":
            flat.update(flatten_record(value, prefix=f"{name}."))
        elif isinstance(value, (list, dict)):
            flat[name] = json.dumps(value, separators=(",", ":"))
        else:
            flat[name] = value
    return flat


def _columns() -> list[str]:
    columns = []
    for field in FIELDS:
        if field not in NESTED_FIELDS:
            columns.append(field)
            continue
        for key in NESTED_FIELDS[field]:
            sub = _SUBOBJECTS.get((field, key))
            columns.extend(f"{field}.{key}.{s}" for s in sub) if sub else columns.append(f"{field}.{key}")
    return columns


def records_to_csv(records: Iterable[dict], include_samples: bool = False) -> str:
    """CSV text with one row per record and dotted column names, in schema order.

    ``samples_ms`` is left out unless asked for: it can hold thousands of numbers per row.
    Floats are written with ``repr`` so they read back exactly.
    """
    columns = [c for c in _columns() if include_samples or c != "samples_ms"]
    buffer = io.StringIO()
    writer = csv.DictWriter(buffer, fieldnames=columns, extrasaction="ignore", lineterminator="\n")
    writer.writeheader()
    for record in records:
        flat = flatten_record(record)
        writer.writerow({c: ("" if flat.get(c) is None else flat.get(c)) for c in columns})
    return buffer.getvalue()


def write_csv(path: str | os.PathLike, records: Iterable[dict], include_samples: bool = False) -> Path:
    """Write records as CSV atomically."""
    return atomic_write_text(path, records_to_csv(records, include_samples=include_samples))
