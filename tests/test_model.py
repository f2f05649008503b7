"""The Keras builder: counts equal Keras, outputs equal Keras applications with the same weights."""

import h5py
import keras
import numpy as np
import pytest

from edgenet.family.architecture import architecture
from edgenet.family.model import build_model
from edgenet.family.variants import VARIANTS, parse_variant
from edgenet.weights.keras_files import load_weights

APPS = {f"b{i}": getattr(keras.applications, f"EfficientNetB{i}") for i in range(8)}


@pytest.mark.parametrize("name", [n for n, v in VARIANTS.items() if v.family != "baseline"])
def test_count_params_equals_analytic(name):
    v = VARIANTS[name]
    model = build_model(v)
    assert model.count_params() == architecture(v).params
    keras.backend.clear_session()


@pytest.mark.parametrize("name", ["mobilenetv2", "resnet50"])
def test_baselines_have_published_counts(name):
    model = build_model(VARIANTS[name])
    assert model.count_params() == VARIANTS[name].published.params
    keras.backend.clear_session()


def test_keras_b0_counts_equal_ours():
    assert keras.applications.EfficientNetB0(weights=None).count_params() == architecture(VARIANTS["b0"]).params


def test_lite_has_no_se_and_uses_relu6():
    model = build_model(VARIANTS["lite0"])
    names = [layer.name for layer in model.layers]
    assert not any("_se_" in n for n in names)
    acts = {layer.activation.__name__ for layer in model.layers if isinstance(layer, keras.layers.Activation)}
    assert acts == {"relu6"}
    b0_acts = {layer.activation.__name__ for layer in build_model(VARIANTS["b0"]).layers
               if isinstance(layer, keras.layers.Activation)}
    assert b0_acts in ({"swish"}, {"silu"})  # keras names swish "silu"


def test_options(tiny_variant):
    m = build_model(tiny_variant, include_top=False, pooling="avg")
    assert m.output_shape == (None, architecture(tiny_variant).head_filters)
    m = build_model(tiny_variant, num_classes=10, resolution=96)
    assert m.input_shape == (None, 96, 96, 3) and m.output_shape == (None, 10)
    m = build_model(tiny_variant, include_top=False)
    assert len(m.output_shape) == 4
    assert any(layer.name.endswith("_drop") for layer in build_model(VARIANTS["b0"]).layers)


def _randomise(model, seed):
    rng = np.random.default_rng(seed)
    for layer in model.layers:
        values = layer.get_weights()
        if not values:
            continue
        if isinstance(layer, keras.layers.BatchNormalization):
            g, b, m, v = (w.shape for w in values)
            layer.set_weights([rng.uniform(0.5, 1.5, g).astype("float32"), rng.normal(0, 0.1, b).astype("float32"),
                               rng.normal(0, 0.1, m).astype("float32"), rng.uniform(0.5, 1.5, v).astype("float32")])
        elif isinstance(layer, keras.layers.Normalization):
            layer.set_weights([np.array([0.4, 0.5, 0.6], "float32"), np.array([0.05, 0.06, 0.07], "float32"),
                               np.array(0)])
        else:
            layer.set_weights([rng.normal(0, 0.1, w.shape).astype("float32") for w in values])


@pytest.mark.parametrize("name", ["b0", "b3"])
def test_weights_from_keras_applications_give_same_outputs(name, tmp_path):
    from keras.src.legacy.saving import legacy_h5_format

    reference = APPS[name](weights=None)
    _randomise(reference, seed=1)
    keras3_file = tmp_path / f"{name}.weights.h5"
    reference.save_weights(keras3_file)
    legacy_file = tmp_path / f"{name}.h5"
    with h5py.File(legacy_file, "w") as fh:  # the layout of the published ImageNet files
        legacy_h5_format.save_weights_to_hdf5_group(fh, reference)
    res = reference.input_shape[1]
    x = np.random.default_rng(2).uniform(0, 255, (2, res, res, 3)).astype("float32")
    expected = reference(x, training=False).numpy()
    for path in (keras3_file, legacy_file):
        ours = build_model(VARIANTS[name], classifier_activation="softmax")
        info = load_weights(ours, VARIANTS[name], path)
        assert info["layers"] == sum(1 for layer in ours.layers if layer.weights)
        assert np.abs(ours(x, training=False).numpy() - expected).max() <= 1e-5
    keras.backend.clear_session()


def test_custom_spec_builds(tiny_variant):
    v = parse_variant("phi=-2")
    m = build_model(v)
    assert m.count_params() == architecture(v).params
