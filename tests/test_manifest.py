"""Manifests: fingerprints (derived from the ConvertRequest), atomic round trip, and what counts as finished."""

from __future__ import annotations

import json
import math
from dataclasses import fields, replace
from pathlib import Path

import pytest

from edgenet.convert.manifest import (
    SCHEMA,
    inputs_fingerprint,
    is_up_to_date,
    manifest_path_for,
    read_manifest,
    utc_now,
    write_manifest,
)
from edgenet.convert.request import FILE_FIELDS, RUN_FIELDS, ConvertRequest, fingerprint_inputs
from edgenet.fsutil import sha256_bytes
from edgenet.runtime.envinfo import model_info

CALIBRATION = {"file_list_sha256": "ab" * 32, "samples": 100, "seed": 0}
#: A request where every field applies: int8, edgenet's calibrator, the budget with both precision rungs.
FULL = ConvertRequest(quant="int8", io="int8", calibrator="edgenet", ranges="mse", bias_correction=True,
                      weight_rounding=True, rounding_method="adaround", min_agreement=99.0, allow_float=True, allow_int16=True,
                      holdout=Path("held"))


def _inputs(request: ConvertRequest = FULL, **files) -> dict:
    files = {"weights_sha256": None, "calibration": CALIBRATION, "holdout_sha256": "cd" * 32, **files}
    return fingerprint_inputs(request, "b0", **files)


INPUTS = _inputs()
#: Another valid value for each field of FULL.
CHANGED = {"quant": dict(quant="int16x8", io="float", weight_rounding=False, rounding_method="gptq", allow_float=False,
                        allow_int16=False),
           "io": dict(io="uint8"), "weights": dict(weights=Path("w.h5")), "calib": dict(calib="photos"),
           "samples": dict(samples=50), "seed": dict(seed=1), "batch_size": dict(batch_size=None),
           "holdout": dict(holdout=Path("other")), "calibrator": None, "ranges": dict(ranges="auto"),
           "bias_correction": dict(bias_correction=False), "weight_rounding": dict(weight_rounding=False),
           "rounding_method": dict(rounding_method="gptq"),
           "min_agreement": dict(min_agreement=98.0), "allow_float": dict(allow_float=False),
           "allow_int16": dict(allow_int16=False), "max_latency_cost": dict(max_latency_cost=20.0),
           "target": dict(target="edgetpu"),
           "out_dir": dict(out_dir=Path("elsewhere")), "force": dict(force=True), "progress": dict(progress=False)}


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
    for key, value in (("weights_sha256", "cd" * 32), ("calibration", {**CALIBRATION, "seed": 1}),
                       ("holdout_sha256", "ef" * 32), ("edgenet", "0.2.0")):
        assert inputs_fingerprint({**INPUTS, key: value}) != inputs_fingerprint(INPUTS), key


def test_the_fingerprint_is_derived_from_every_field_of_the_request():
    """No hand-kept list: each field is in it by name, except where and how to run and the files (by content)."""
    names = {f.name for f in fields(ConvertRequest)}
    assert set(CHANGED) == names
    assert names - set(RUN_FIELDS) - set(FILE_FIELDS) <= set(INPUTS)
    assert not (set(RUN_FIELDS) | set(FILE_FIELDS)) & set(INPUTS)


@pytest.mark.parametrize("name", sorted(CHANGED))
def test_changing_any_field_changes_the_fingerprint_but_where_and_how_to_run(name):
    if name == "calibrator":  # the repairs need edgenet's calibrator: TF's one with a plain int8 request
        before, after = ConvertRequest(), ConvertRequest(calibrator="tflite")
    elif name == "target":  # the Edge TPU takes no precision rung: from a request without them
        before = replace(FULL, allow_float=False, allow_int16=False)
        after = replace(before, **CHANGED[name])
    else:
        before, after = FULL, replace(FULL, **CHANGED[name])
    assert getattr(after, name) != getattr(before, name)
    files = {"weights_sha256": "12" * 32} if name == "weights" else {}  # a file enters by its content
    if name == "holdout":
        files = {"holdout_sha256": "34" * 32}
    changed = inputs_fingerprint(_inputs(after, **files)) != inputs_fingerprint(_inputs(before))
    assert changed == (name not in RUN_FIELDS), name


def test_fields_that_do_not_apply_leave_the_fingerprint_alone():
    """A float conversion runs no calibration: --samples and --calibrator do not rebuild it."""
    fp32 = ConvertRequest(quant="fp32")
    assert _inputs(fp32) == _inputs(replace(fp32, samples=7, calibrator="tflite"))
    assert _inputs(fp32) != _inputs(replace(fp32, seed=3))  # without weights, the seed draws the weights
    weighted = replace(fp32, weights=Path("w.h5"))
    assert _inputs(weighted) == _inputs(replace(weighted, seed=3))


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
