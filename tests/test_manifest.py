"""Manifests: fingerprints, atomic round trip, and what counts as a finished conversion."""

from __future__ import annotations

import json
import math

from edgenet.convert.manifest import (
    SCHEMA,
    inputs_fingerprint,
    is_up_to_date,
    manifest_path_for,
    read_manifest,
    utc_now,
    write_manifest,
)
from edgenet.fsutil import sha256_bytes
from edgenet.runtime.envinfo import model_info

INPUTS = {"variant_spec": "b0", "quant": "int8", "io": "int8", "weights_sha256": None,
          "calibration": {"file_list_sha256": "ab" * 32, "samples": 100, "seed": 0}, "edgenet": "0.1.0"}


def _finished(tmp_path, data: bytes = b"model bytes", fingerprint: str | None = None):
    model = tmp_path / "b0-int8.tflite"
    model.write_bytes(data)
    fingerprint = fingerprint or inputs_fingerprint(INPUTS)
    manifest = {"schema": SCHEMA, "created_utc": utc_now(), "variant": {"name": "b0", "spec": "b0"},
                "quant": "int8", "resolution": 224, "params": 5, "macs": 7,
                "model": {"file": model.name, "sha256": sha256_bytes(data), "size_bytes": len(data)},
                "inputs_fingerprint": fingerprint, "fidelity": {"sqnr_db": math.inf}}
    write_manifest(manifest_path_for(model), manifest)
    return model, fingerprint


def test_manifest_path_is_beside_the_model(tmp_path):
    assert manifest_path_for(tmp_path / "b0-int8-uint8.tflite") == tmp_path / "b0-int8-uint8.json"


def test_fingerprint_is_stable_and_sensitive():
    same = json.loads(json.dumps(INPUTS))
    assert inputs_fingerprint(same) == inputs_fingerprint(INPUTS)
    assert inputs_fingerprint(dict(reversed(list(INPUTS.items())))) == inputs_fingerprint(INPUTS)
    for key, value in (("quant", "int16x8"), ("io", "uint8"), ("weights_sha256", "cd" * 32),
                       ("calibration", {**INPUTS["calibration"], "seed": 1}),
                       ("calibration", {**INPUTS["calibration"], "samples": 50}), ("edgenet", "0.2.0")):
        assert inputs_fingerprint({**INPUTS, key: value}) != inputs_fingerprint(INPUTS), key


def test_round_trip_is_atomic_and_json_safe(tmp_path):
    model, fingerprint = _finished(tmp_path)
    text = manifest_path_for(model).read_text()
    assert "Infinity" not in text  # JSON has no inf: stored as null
    manifest = read_manifest(manifest_path_for(model))
    assert manifest["fidelity"]["sqnr_db"] is None
    assert manifest["inputs_fingerprint"] == fingerprint
    assert sorted(p.name for p in tmp_path.iterdir()) == ["b0-int8.json", "b0-int8.tflite"]
    assert manifest["created_utc"].endswith("Z")


def test_up_to_date_only_when_everything_matches(tmp_path):
    model, fingerprint = _finished(tmp_path)
    assert is_up_to_date(model, fingerprint) is not None
    assert is_up_to_date(model, inputs_fingerprint({**INPUTS, "quant": "fp32"})) is None
    model.write_bytes(b"model bytez")  # same size, different content
    assert is_up_to_date(model, fingerprint) is None
    model.write_bytes(b"longer model bytes")
    assert is_up_to_date(model, fingerprint) is None
    model.unlink()
    assert is_up_to_date(model, fingerprint) is None


def test_missing_broken_or_foreign_manifest_is_not_finished(tmp_path):
    model, fingerprint = _finished(tmp_path)
    path = manifest_path_for(model)
    path.write_text("{ truncated")
    assert read_manifest(path) is None and is_up_to_date(model, fingerprint) is None
    path.write_text(json.dumps({"schema": "something/else", "inputs_fingerprint": fingerprint}))
    assert is_up_to_date(model, fingerprint) is None
    path.unlink()
    assert is_up_to_date(model, fingerprint) is None


def test_bench_reads_the_manifest_labels(tmp_path):
    """edgenet.runtime.envinfo.model_info (used by bench/eval) picks variant and quant from our manifest."""
    model, _ = _finished(tmp_path)
    info = model_info(model)
    assert info["variant"] == "b0" and info["quant"] == "int8" and info["resolution"] == 224
    assert info["sha256"] == read_manifest(manifest_path_for(model))["model"]["sha256"]
