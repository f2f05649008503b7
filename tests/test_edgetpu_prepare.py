"""Edge TPU readiness after conversion (edgenet/edgetpu/prepare.py): the static check lands in the
model's manifest, and compilation happens where edgetpu_compiler exists (said plainly where not)."""

from __future__ import annotations

import shutil

import pytest
from fixtures_tflite import tiny_tflite_models

from edgenet.convert.manifest import manifest_path_for, read_manifest, write_manifest
from edgenet.convert.request import DEFAULT_EDGETPU_IO, EDGETPU_IO
from edgenet.edgetpu.check import check_model
from edgenet.edgetpu.compiler import compiler_available
from edgenet.edgetpu.prepare import prepare_for_edgetpu


@pytest.fixture()
def models(tmp_path):
    tiny = tiny_tflite_models()
    with_manifest = tmp_path / "tiny-int8.tflite"
    shutil.copy(tiny.int8, with_manifest)
    write_manifest(manifest_path_for(with_manifest), {"schema": "edgenet.manifest/1", "quant": "int8"})
    bare = tmp_path / "bare-int8.tflite"
    shutil.copy(tiny.int8, bare)
    return with_manifest, bare


def test_the_static_check_is_recorded_in_the_manifest_and_reported(models, tmp_path):
    with_manifest, bare = models
    ready = prepare_for_edgetpu([with_manifest, bare], tmp_path / "compiled")
    assert [r.model_path for r in ready] == [str(with_manifest), str(bare)]
    report = check_model(with_manifest)
    first = ready[0]
    assert first.ops_tpu_share == report.ops_tpu_share and first.macs_tpu_share == report.macs_tpu_share
    assert 0.0 <= first.ops_tpu_share <= 1.0 and 0.0 <= first.macs_tpu_share <= 1.0
    stored = read_manifest(manifest_path_for(with_manifest))
    assert stored["quant"] == "int8"  # the rest of the manifest is kept
    assert stored["edgetpu"]["static_check"] == report.to_dict(include_ops=False)
    assert not manifest_path_for(bare).exists()  # no manifest is invented for a model without one
    available, why_not = compiler_available()
    if available:
        assert first.note == "compiled with edgetpu_compiler"
    else:
        assert all(r.compiled_path is None and r.note for r in ready) and why_not in first.note


def test_edge_tpu_io_defaults_to_uint8():
    assert DEFAULT_EDGETPU_IO == "uint8" and set(EDGETPU_IO) == {"uint8", "int8"}
