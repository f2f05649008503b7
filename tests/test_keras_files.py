"""Keras weight files (edgenet/weights/keras_files.py): load by name or position, save atomically,
the published files' quirk, and how many classes a file's classifier has. Real Keras models throughout."""

import keras
import numpy as np
import pytest

from edgenet.errors import InputFileError
from edgenet.family.model import build_model
from edgenet.family.variants import VARIANTS
from edgenet.weights.keras_files import (
    WeightFileError,
    classifier_classes,
    load_weights,
    read_keras_weights,
    save_weights,
)


def test_published_normalization_quirk_is_fixed(tmp_path):
    """Published ImageNet files store std as variance (tensorflow#49930); we load the true variance."""
    reference = keras.applications.EfficientNetB0(weights=None)
    reference.get_layer("normalization").set_weights(
        [np.array([0.485, 0.456, 0.406], "float32"), np.array([0.229, 0.224, 0.225], "float32"), np.array(0)])
    path = tmp_path / "b0.weights.h5"
    reference.save_weights(path)
    ours = build_model(VARIANTS["b0"])
    load_weights(ours, VARIANTS["b0"], path)
    variance = ours.get_layer("normalization").get_weights()[1]
    np.testing.assert_allclose(variance, np.array([0.229, 0.224, 0.225]) ** 2, rtol=1e-5)


def test_round_trip_and_mismatch(tmp_path):
    b0 = build_model(VARIANTS["b0"])
    path = save_weights(b0, tmp_path / "b0.weights.h5")
    b1 = build_model(VARIANTS["b1"])
    with pytest.raises(WeightFileError, match="b0.weights.h5"):
        load_weights(b1, VARIANTS["b1"], path)
    lite = build_model(VARIANTS["lite0"])
    with pytest.raises(WeightFileError):
        load_weights(lite, VARIANTS["lite0"], path)
    again = build_model(VARIANTS["b0"])
    load_weights(again, VARIANTS["b0"], path)
    for a, b in zip(again.get_weights(), b0.get_weights(), strict=True):
        np.testing.assert_array_equal(a, b)


def test_bad_weight_files(tmp_path, tiny_variant):
    model = build_model(tiny_variant)
    with pytest.raises(InputFileError, match="no such file"):
        load_weights(model, tiny_variant, tmp_path / "missing.weights.h5")
    junk = tmp_path / "junk.weights.h5"
    junk.write_bytes(b"not hdf5 at all")
    with pytest.raises(InputFileError, match="junk.weights.h5"):
        load_weights(model, tiny_variant, junk)
    odd = tmp_path / "weights.txt"
    odd.write_text("x")
    with pytest.raises(InputFileError, match="unknown weight file type"):
        load_weights(model, tiny_variant, odd)
    with pytest.raises(InputFileError, match="must end in .weights.h5"):
        save_weights(model, tmp_path / "out.h5")


def test_classifier_classes_reads_the_head_of_every_kind_of_file(tmp_path, tiny_variant, lite0_checkpoint):
    ten = save_weights(build_model(tiny_variant, num_classes=10), tmp_path / "ten.weights.h5")
    assert classifier_classes(ten) == 10
    headless = save_weights(build_model(tiny_variant, include_top=False), tmp_path / "headless.weights.h5")
    assert classifier_classes(headless) is None
    assert classifier_classes(lite0_checkpoint) == 1000  # a PyTorch checkpoint, through the restricted reader
    layout, entries = read_keras_weights(ten)
    assert layout == "keras3" and entries["dense"][-1][-1].shape == (10,)
    keras.backend.clear_session()


def test_a_failed_save_keeps_the_earlier_file_and_leaves_no_temp_file(tmp_path, tiny_variant):
    model = build_model(tiny_variant, num_classes=10)
    path = save_weights(model, tmp_path / "w.weights.h5")
    before = path.read_bytes()

    class Broken:  # a "model" whose save fails half-way, as a full disk would
        def save_weights(self, target):
            with open(target, "wb") as fh:
                fh.write(b"partial")
            raise OSError("No space left on device")

    with pytest.raises(InputFileError, match="w.weights.h5: cannot write: No space left"):  # one line (issue 11)
        save_weights(Broken(), path)
    assert path.read_bytes() == before
    assert sorted(p.name for p in tmp_path.iterdir()) == ["w.weights.h5"]
    again = build_model(tiny_variant, num_classes=10)
    load_weights(again, tiny_variant, path)
    for a, b in zip(again.get_weights(), model.get_weights(), strict=True):
        np.testing.assert_array_equal(a, b)
    keras.backend.clear_session()
