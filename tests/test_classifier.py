"""One interface over Keras variants and .tflite files (edgenet/evaluation/classifier.py), on the
trained digits model: real interpreters, real Keras, real images."""

from __future__ import annotations

import json
import shutil

import numpy as np
import pytest

from edgenet.convert.manifest import manifest_path_for
from edgenet.errors import EdgenetError, InputFileError
from edgenet.evaluation.classifier import manifest_for, open_classifier
from edgenet.pixels.contract import PreprocessContract
from edgenet.pixels.preprocess import preprocess


@pytest.fixture(scope="module")
def batch(digits_model):
    """Two test images of each digit, preprocessed for the model, with their labels."""
    files = [p for d in range(10) for p in sorted((digits_model.data.test_dir / str(d)).glob("*.png"))[:2]]
    labels = np.array([int(p.parent.name) for p in files])
    manifest = manifest_for(digits_model.int8)
    contract = PreprocessContract.from_dict(manifest["preprocessing"])
    return np.stack([preprocess(p, contract) for p in files]), labels


def test_a_tflite_model_takes_its_contract_and_labels_from_its_manifest(digits_model, batch):
    clf = open_classifier(str(digits_model.int8))
    manifest = json.loads(manifest_path_for(digits_model.int8).read_text())
    assert clf.kind == "tflite" and clf.quant == "int8" and clf.notes == ()
    assert clf.contract == PreprocessContract.from_dict(manifest["preprocessing"])
    assert clf.path == str(digits_model.int8) and clf.name == digits_model.int8.name
    x, labels = batch
    logits = clf.run(x)
    assert logits.shape == (len(labels), 10) and logits.dtype == np.float32
    assert np.mean(logits.argmax(axis=1) == labels) >= 0.8  # a trained model, int8 (Keras: > 0.9)


def test_keras_and_tflite_classifiers_agree(digits_model, batch):
    keras_clf = open_classifier(digits_model.spec, weights=str(digits_model.weights))
    fp32 = open_classifier(str(digits_model.fp32))
    assert keras_clf.kind == "keras" and keras_clf.quant == "float32" and keras_clf.contract == fp32.contract
    x, _ = batch
    np.testing.assert_allclose(keras_clf.run(x), fp32.run(x), atol=1e-3)


def test_without_a_manifest_the_convention_is_assumed_and_said(digits_model, batch, tmp_path):
    bare = tmp_path / "bare.tflite"
    shutil.copy(digits_model.int8, bare)
    clf = open_classifier(str(bare))
    assert clf.quant is None and clf.variant is None
    assert clf.contract.resolution == batch[0].shape[1] and clf.contract.normalization == "in_graph"
    assert len(clf.notes) == 1 and "no manifest beside it" in clf.notes[0] and str(bare) in clf.notes[0]


def test_bad_manifests_and_options_are_one_line_errors(digits_model, tmp_path):
    model = tmp_path / "m.tflite"
    shutil.copy(digits_model.int8, model)
    manifest = json.loads(manifest_path_for(digits_model.int8).read_text())
    manifest["preprocessing"]["resolution"] = 999
    manifest_path_for(model).write_text(json.dumps(manifest))
    with pytest.raises(EdgenetError, match=r"m.tflite: manifest says 999 px but the model takes \d+"):
        open_classifier(str(model))
    manifest_path_for(model).write_text("{not json")
    with pytest.raises(InputFileError, match=r"m.json: unreadable manifest"):
        open_classifier(str(model))
    with pytest.raises(EdgenetError, match="--weights applies to Keras variants"):
        open_classifier(str(digits_model.int8), weights=str(digits_model.weights))
    with pytest.raises(InputFileError, match="missing.tflite"):
        open_classifier(str(tmp_path / "missing.tflite"))
