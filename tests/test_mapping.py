"""map_checkpoint: efficientnet-pytorch and timm names onto Keras layers, every shape checked."""

from __future__ import annotations

import re

import numpy as np
import pytest
from conftest import TINY_LITE_SPEC, TINY_SPEC

from edgenet.errors import EdgenetError
from edgenet.family.architecture import architecture
from edgenet.family.variants import parse_variant
from edgenet.weights.checkpoint import read_checkpoint
from edgenet.weights.mapping import (
    WeightMappingError,
    detect_naming,
    expected_checkpoint_shapes,
    expected_weight_shapes,
    map_checkpoint,
)


def arch_of(name: str, **kwargs):
    return architecture(parse_variant(name), **kwargs)


@pytest.fixture(scope="module")
def lite0_tensors(lite0_checkpoint):
    return read_checkpoint(lite0_checkpoint)


def random_checkpoint(arch, seed: int = 0) -> dict[str, np.ndarray]:
    """An efficientnet-pytorch-named checkpoint of ``arch`` with random values."""
    rng = np.random.default_rng(seed)
    out = {}
    for name, shape in expected_checkpoint_shapes(arch).items():
        value = rng.standard_normal(shape).astype(np.float32)
        out[name] = np.abs(value) + 0.1 if name.endswith("running_var") else value
    return out


def to_timm(tensors: dict[str, np.ndarray], arch) -> dict[str, np.ndarray]:
    """Rename efficientnet-pytorch names to timm's, written independently of edgenet.weights.mapping."""
    position, seen = {}, {}
    for n, block in enumerate(arch.blocks):
        seen[block.stage] = seen.get(block.stage, -1) + 1
        position[n] = (block.stage - 1, seen[block.stage], block.expand_ratio == 1)
    top = {"_conv_stem": "conv_stem", "_bn0": "bn1", "_conv_head": "conv_head", "_bn1": "bn2", "_fc": "classifier"}
    separable = {"_depthwise_conv": "conv_dw", "_bn1": "bn1", "_se_reduce": "se.conv_reduce",
                 "_se_expand": "se.conv_expand", "_project_conv": "conv_pw", "_bn2": "bn2"}
    inverted = {"_expand_conv": "conv_pw", "_bn0": "bn1", "_depthwise_conv": "conv_dw", "_bn1": "bn2",
                "_se_reduce": "se.conv_reduce", "_se_expand": "se.conv_expand", "_project_conv": "conv_pwl",
                "_bn2": "bn3"}
    out = {}
    for name, value in tensors.items():
        m = re.match(r"_blocks\.(\d+)\.(\w+)\.(\w+)$", name)
        if m:
            stage, index, is_separable = position[int(m.group(1))]
            part = (separable if is_separable else inverted)[m.group(2)]
            out[f"blocks.{stage}.{index}.{part}.{m.group(3)}"] = value
        else:
            module, leaf = name.rsplit(".", 1)
            out[f"{top[module]}.{leaf}"] = value
    return out


# --- the real Lite0 checkpoint --------------------------------------------------------------------

def test_real_lite0_maps_completely(lite0_tensors):
    arch = arch_of("lite0")
    mapped = map_checkpoint(lite0_tensors, arch)
    assert mapped.naming == "efficientnet-pytorch" and mapped.notes == ()
    expected = expected_weight_shapes(arch)
    assert list(mapped) == list(expected) and len(mapped) == 99
    for layer, shapes in expected.items():
        assert [w.shape for w in mapped[layer]] == shapes, layer
        assert all(w.dtype == np.float32 and w.flags.c_contiguous for w in mapped[layer])
    assert sum(w.size for ws in mapped.values() for w in ws) == arch.params == 4_694_024
    np.testing.assert_array_equal(mapped["stem_conv"][0], lite0_tensors["_conv_stem.weight"].transpose(2, 3, 1, 0))
    np.testing.assert_array_equal(mapped["predictions"][0], lite0_tensors["_fc.weight"].T)


@pytest.mark.parametrize("variant, message", [
    ("b0", "checkpoint does not fit b0: missing tensor _blocks.0._se_reduce.weight"),
    ("lite1", "checkpoint does not fit lite1: _blocks.3._depthwise_conv.weight has shape (144, 1, 5, 5), "
              "expected (144, 1, 3, 3)"),
    ("lite4", "checkpoint does not fit lite4: _blocks.0._project_conv.weight has shape (16, 32, 1, 1), "
              "expected (24, 32, 1, 1)"),
    ("b3", "checkpoint does not fit b3: _conv_stem.weight has shape (32, 3, 3, 3), expected (40, 3, 3, 3)"),
])
def test_real_lite0_does_not_fit_other_variants(lite0_tensors, variant, message):
    with pytest.raises(WeightMappingError) as info:
        map_checkpoint(lite0_tensors, arch_of(variant))
    assert isinstance(info.value, EdgenetError)
    assert str(info.value).startswith(message) and "\n" not in str(info.value)


def test_b0_checkpoint_onto_lite0_names_the_extra_se_tensor():
    tensors = random_checkpoint(arch_of("b0"))
    with pytest.raises(WeightMappingError, match=re.escape(
            "unused tensor _blocks.0._se_reduce.weight (checkpoint has squeeze-excitation, lite0 has none)")):
        map_checkpoint(tensors, arch_of("lite0"))


def test_missing_and_extra_tensors(lite0_tensors):
    arch = arch_of("lite0")
    missing = {k: v for k, v in lite0_tensors.items() if k != "_bn1.running_var"}
    with pytest.raises(WeightMappingError, match=r"^checkpoint does not fit lite0: missing tensor _bn1\.running_var$"):
        map_checkpoint(missing, arch)
    extra = dict(lite0_tensors)
    extra["_blocks.16._bn0.weight"] = np.ones(320, np.float32)
    with pytest.raises(WeightMappingError, match=re.escape(
            "unused tensor _blocks.16._bn0.weight (checkpoint has more blocks than lite0)")):
        map_checkpoint(extra, arch)
    extra = dict(lite0_tensors, **{"_fc2.weight": np.ones(3, np.float32)})
    with pytest.raises(WeightMappingError, match=re.escape("unused tensor _fc2.weight (not part of lite0)")):
        map_checkpoint(extra, arch)


def test_unknown_naming():
    with pytest.raises(WeightMappingError, match="unrecognised checkpoint naming"):
        detect_naming({"features.0.weight": np.zeros(1)})


# --- both namings, synthesised from the architecture --------------------------------------------

@pytest.mark.parametrize("variant", ["b0", "lite0", TINY_SPEC, TINY_LITE_SPEC])
def test_timm_and_efficientnet_pytorch_map_identically(variant):
    arch = arch_of(variant)
    pytorch_named = random_checkpoint(arch, seed=1)
    timm_named = to_timm(pytorch_named, arch)
    assert set(timm_named) == set(expected_checkpoint_shapes(arch, "timm"))
    a = map_checkpoint(pytorch_named, arch)
    b = map_checkpoint(timm_named, arch, bn_eps_source=1e-3)  # a tf_ port: same epsilon as Keras
    assert (a.naming, b.naming) == ("efficientnet-pytorch", "timm")
    assert list(a) == list(b) == list(expected_weight_shapes(arch))
    for layer in a:
        for x, y in zip(a[layer], b[layer], strict=True):
            np.testing.assert_array_equal(x, y)


def test_timm_names_for_b0():
    shapes = expected_checkpoint_shapes(arch_of("b0"), "timm")
    assert shapes["blocks.0.0.conv_dw.weight"] == (32, 1, 3, 3)
    assert shapes["blocks.0.0.se.conv_reduce.weight"] == (8, 32, 1, 1)
    assert shapes["blocks.0.0.conv_pw.weight"] == (16, 32, 1, 1)  # separable block: conv_pw projects
    assert shapes["blocks.1.0.conv_pw.weight"] == (96, 16, 1, 1)  # inverted residual: conv_pw expands
    assert shapes["blocks.1.0.se.conv_expand.bias"] == (96,)
    assert shapes["blocks.5.3.bn3.running_var"] == (192,)
    assert shapes["blocks.6.0.conv_pwl.weight"] == (320, 1152, 1, 1)
    assert shapes["bn2.weight"] == (1280,) and shapes["classifier.weight"] == (1000, 1280)
    assert len(shapes) == 311


def test_timm_default_epsilon_is_folded_into_the_variance():
    arch = arch_of("lite0")
    tensors = to_timm(random_checkpoint(arch), arch)
    mapped = map_checkpoint(tensors, arch)
    assert any("epsilon 1e-05 folded" in note for note in mapped.notes)
    var = tensors["bn1.running_var"]
    np.testing.assert_allclose(mapped["stem_bn"][3], var + 1e-5 - 1e-3, rtol=1e-6)
    # The batch-norm output is unchanged: sqrt(var' + 1e-3) == sqrt(var + 1e-5).
    np.testing.assert_allclose(np.sqrt(mapped["stem_bn"][3] + 1e-3), np.sqrt(var + 1e-5), rtol=1e-6)


def test_layout_transposes():
    arch = arch_of("b0")
    tensors = random_checkpoint(arch)
    mapped = map_checkpoint(tensors, arch)
    # conv OIHW -> HWIO: element (o=5, i=2, h=0, w=1) moves to (h=0, w=1, i=2, o=5)
    assert mapped["stem_conv"][0][0, 1, 2, 5] == tensors["_conv_stem.weight"][5, 2, 0, 1]
    assert mapped["block2a_expand_conv"][0][0, 0, 7, 40] == tensors["_blocks.1._expand_conv.weight"][40, 7, 0, 0]
    # depthwise (C, 1, k, k) -> (k, k, C, 1): (c=7, 0, h=2, w=1) moves to (2, 1, 7, 0)
    assert mapped["block1a_dwconv"][0][2, 1, 7, 0] == tensors["_blocks.0._depthwise_conv.weight"][7, 0, 2, 1]
    # SE 1x1 convs with bias
    assert mapped["block1a_se_reduce"][0][0, 0, 30, 3] == tensors["_blocks.0._se_reduce.weight"][3, 30, 0, 0]
    np.testing.assert_array_equal(mapped["block1a_se_reduce"][1], tensors["_blocks.0._se_reduce.bias"])
    # dense (out, in) -> (in, out)
    assert mapped["predictions"][0][3, 10] == tensors["_fc.weight"][10, 3]
    # batch norm order: gamma, beta, moving_mean, moving_variance
    for got, suffix in zip(mapped["top_bn"], ("weight", "bias", "running_mean", "running_var"), strict=True):
        np.testing.assert_array_equal(got, tensors[f"_bn1.{suffix}"])


def test_background_class_is_dropped_and_classifier_skippable():
    arch = arch_of("lite0")
    tensors = random_checkpoint(arch)
    weight = np.random.default_rng(3).standard_normal((1001, 1280)).astype(np.float32)
    tensors["_fc.weight"], tensors["_fc.bias"] = weight, np.arange(1001, dtype=np.float32)
    mapped = map_checkpoint(tensors, arch)
    np.testing.assert_array_equal(mapped["predictions"][0], weight[1:].T)
    np.testing.assert_array_equal(mapped["predictions"][1], np.arange(1, 1001))
    assert any("dropped row 0" in note for note in mapped.notes)

    headless = arch_of("lite0", include_top=False)
    mapped = map_checkpoint(tensors, headless)
    assert "predictions" not in mapped and any("skipped" in note for note in mapped.notes)
    no_fc = {k: v for k, v in tensors.items() if not k.startswith("_fc.")}
    assert "predictions" not in map_checkpoint(no_fc, headless)
    with pytest.raises(WeightMappingError, match="missing tensor _fc.weight"):
        map_checkpoint(no_fc, arch)
    tensors["_fc.weight"] = weight[:10]
    with pytest.raises(WeightMappingError, match=re.escape("_fc.weight has shape (10, 1280), expected (1000, 1280)")):
        map_checkpoint(tensors, arch)


# --- against the real Keras builder ---------------------------------------------------------------

@pytest.mark.parametrize("spec", [TINY_SPEC, TINY_LITE_SPEC])
def test_expected_shapes_match_the_keras_model(spec):
    from edgenet.family.model import build_model

    variant = parse_variant(spec)
    model = build_model(variant)
    expected = expected_weight_shapes(architecture(variant))
    actual = {layer.name: [tuple(w.shape) for w in layer.get_weights()]
              for layer in model.layers if layer.get_weights() and layer.name != "normalization"}
    assert actual == expected


def test_real_lite0_classifies_chelsea_and_coffee(lite0_tensors):
    # End to end: real weights, real builder, the contract's preprocessing, real images.
    from PIL import Image
    from skimage import data

    from edgenet.family.model import build_model
    from edgenet.pixels.preprocess import preprocess

    variant = parse_variant("lite0")
    model = build_model(variant)
    for layer, weights in map_checkpoint(lite0_tensors, architecture(variant)).items():
        model.get_layer(layer).set_weights(weights)
    batch = np.stack([preprocess(Image.fromarray(image), variant.contract)
                      for image in (data.chelsea(), data.coffee())])
    assert batch.shape == (2, 224, 224, 3) and 0 <= batch.min() and batch.max() <= 255
    logits = np.asarray(model(batch, training=False))
    top1 = logits.argmax(axis=1)
    assert 281 <= top1[0] <= 285, top1  # tabby / tiger cat / Persian / Siamese / Egyptian cat
    assert top1[1] in (967, 968), top1  # espresso / cup
