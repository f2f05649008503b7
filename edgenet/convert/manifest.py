"""The manifest written beside every converted model (``MODEL.tflite`` -> ``MODEL.json``).

A ``.tflite`` file alone does not say how to feed it: which resolution and crop, whether
the graph normalises the pixels itself, what the int8 input scale means, which
calibration images fixed its ranges, or which weights it carries. The manifest records
all of that (schema ``edgenet.manifest/1``), and it is written *last*, atomically, so
its presence marks a finished conversion: :func:`is_up_to_date` only trusts a model
whose manifest has the same inputs fingerprint and whose sha256 still matches.

Only the standard library and numpy-free code: this is read on edge devices.
"""

from __future__ import annotations

import hashlib
import json
import os
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

from ..fsutil import atomic_write_text, sha256_file
from ..runtime.envinfo import manifest_path

__all__ = [
    "SCHEMA",
    "manifest_path_for",
    "inputs_fingerprint",
    "read_manifest",
    "write_manifest",
    "is_up_to_date",
    "utc_now",
]

SCHEMA = "edgenet.manifest/1"


#: ``OUT/b0-int8.tflite`` -> ``OUT/b0-int8.json``: the one naming rule, shared with the readers in runtime/.
manifest_path_for = manifest_path


def utc_now() -> str:
    return datetime.now(timezone.utc).replace(microsecond=0).isoformat().replace("+00:00", "Z")


def inputs_fingerprint(inputs: dict[str, Any]) -> str:
    """sha256 of the canonical JSON of everything that determines a conversion's output."""
    text = json.dumps(inputs, sort_keys=True, separators=(",", ":"), default=str)
    return hashlib.sha256(text.encode("utf-8")).hexdigest()


def read_manifest(path: str | os.PathLike) -> dict | None:
    """The manifest at ``path``, or ``None`` if it is missing, unreadable or not ours."""
    from ..errors import InputFileError
    from ..fsutil import read_input_text

    try:
        data = json.loads(read_input_text(path, "a model manifest (JSON)"))
    except (InputFileError, ValueError):
        return None
    if not isinstance(data, dict) or data.get("schema") != SCHEMA:
        return None
    return data


def write_manifest(path: str | os.PathLike, manifest: dict) -> Path:
    """Write ``manifest`` atomically (pretty JSON, stable key order as given, non-finite -> null)."""
    return atomic_write_text(path, json.dumps(_finite(manifest), indent=2) + "\n")


def _finite(value: Any) -> Any:
    """JSON has no Infinity/NaN; an SQNR of inf (identical outputs) is stored as null."""
    if isinstance(value, float) and (value != value or value in (float("inf"), float("-inf"))):
        return None
    if isinstance(value, dict):
        return {k: _finite(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_finite(v) for v in value]
    return value


def is_up_to_date(model_path: str | os.PathLike, fingerprint: str) -> dict | None:
    """The manifest of ``model_path`` if the model is finished and was built from ``fingerprint``.

    Finished means: the manifest exists and parses, records the same inputs fingerprint,
    and the model file exists with the recorded size and sha256 (a model replaced or
    damaged after its manifest was written is rebuilt, never trusted).
    """
    model_path = Path(model_path)
    manifest = read_manifest(manifest_path_for(model_path))
    if manifest is None or manifest.get("inputs_fingerprint") != fingerprint:
        return None
    model = manifest.get("model") or {}
    try:
        if model_path.stat().st_size != model.get("size_bytes"):
            return None
        if sha256_file(model_path) != model.get("sha256"):
            return None
    except OSError:
        return None
    return manifest
