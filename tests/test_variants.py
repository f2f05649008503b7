import math

import pytest

from edgenet.errors import VariantError
from edgenet.family.architecture import architecture
from edgenet.family.variants import (
    EFFICIENTNET_NAMES,
    LITE_NAMES,
    VARIANTS,
    compound_coefficients,
    parse_variant,
    parse_variant_list,
)

PAPER = {  # width, depth, resolution, dropout (tensorflow/tpu, Keras applications)
    "b0": (1.0, 1.0, 224, 0.2), "b1": (1.0, 1.1, 240, 0.2), "b2": (1.1, 1.2, 260, 0.3),
    "b3": (1.2, 1.4, 300, 0.3), "b4": (1.4, 1.8, 380, 0.4), "b5": (1.6, 2.2, 456, 0.4),
    "b6": (1.8, 2.6, 528, 0.5), "b7": (2.0, 3.1, 600, 0.5),
    "lite0": (1.0, 1.0, 224, 0.2), "lite1": (1.0, 1.1, 240, 0.2), "lite2": (1.1, 1.2, 260, 0.3),
    "lite3": (1.2, 1.4, 280, 0.3), "lite4": (1.4, 1.8, 300, 0.3),
}


@pytest.mark.parametrize("name", list(PAPER))
def test_table_matches_paper(name):
    v = VARIANTS[name]
    assert (v.width, v.depth, v.resolution, v.dropout) == PAPER[name]
    assert parse_variant(name) is v


def test_lite_structure_choices():
    for name in LITE_NAMES:
        v = VARIANTS[name]
        assert v.activation == "relu6" and not v.se and v.fixed_stem_head
        arch = architecture(v)
        assert arch.stem_filters == 32 and arch.head_filters == 1280
        assert all(b.se_filters == 0 for b in arch.blocks)
        stage_counts = [sum(1 for b in arch.blocks if b.stage == s) for s in range(1, 8)]
        assert stage_counts[0] == 1 and stage_counts[-1] == 1  # first and last stage not scaled
        assert v.contract.mean_rgb == (127.0,) * 3 and v.contract.std_rgb == (128.0,) * 3


def test_compound_scaling_formula():
    w, d, r = compound_coefficients(1)
    assert (w, d, r) == pytest.approx((1.1, 1.2, 258))
    assert 1.2 * 1.1**2 * 1.15**2 == pytest.approx(1.92, abs=0.01)  # ~2: MACs double per phi
    w, d, r = compound_coefficients(2.5)
    assert w == pytest.approx(1.1**2.5) and d == pytest.approx(1.2**2.5) and r == round(224 * 1.15**2.5)


def test_custom_phi_macs_grow_about_two_per_phi():
    base = architecture(parse_variant("phi=0")).macs
    for phi in (1, 2, 3):
        ratio = architecture(parse_variant(f"phi={phi}")).macs / base
        assert 1.7**phi < ratio < 2.7**phi  # ~2**phi, plus the upward rounding of repeats


@pytest.mark.parametrize(
    "text,width,depth,res",
    [("phi=1.5", 1.1**1.5, 1.2**1.5, round(224 * 1.15**1.5)),
     ("phi1.5", 1.1**1.5, 1.2**1.5, round(224 * 1.15**1.5)),
     ("phi=0,width=0.5,resolution=128", 0.5, 1.0, 128),
     ("phi=2,depth=1.0", 1.1**2, 1.0, round(224 * 1.15**2))],
)
def test_custom_specs(text, width, depth, res):
    v = parse_variant(text)
    assert (v.width, v.depth, v.resolution) == pytest.approx((width, depth, res))
    assert v.is_custom
    assert parse_variant(v.spec) == v  # the spec round-trips


def test_custom_lite_base():
    v = parse_variant("phi=1,base=lite")
    assert v.family == "lite" and v.activation == "relu6" and v.name == "lite-phi1"


@pytest.mark.parametrize("text", ["b9", "efficientnet-b8", "lite7", "", "phi=abc", "phi=1,foo=2", "phi=1,base=x",
                                  "phi=1,resolution=12.5"])
def test_bad_names_raise_variant_error(text):
    with pytest.raises(VariantError):
        parse_variant(text)


def test_unknown_name_lists_valid_names():
    with pytest.raises(VariantError, match="b0, b1, .*lite4"):
        parse_variant("b9")


@pytest.mark.parametrize("text", ["phi=9", "phi=-9", "phi=0,width=5", "phi=0,depth=0.01", "phi=0,resolution=8",
                                  "phi=0,resolution=4096", "phi=nan"])
def test_out_of_range_raise(text):
    with pytest.raises(VariantError, match="range"):
        parse_variant(text)


def test_aliases_and_lists():
    assert parse_variant("EfficientNet-B3").name == "b3"
    assert parse_variant("efficientnet_lite2").name == "lite2"
    assert [v.name for v in parse_variant_list(["b0-b3", "lite1"])] == ["b0", "b1", "b2", "b3", "lite1"]
    assert [v.name for v in parse_variant_list(["b0,b2"])] == ["b0", "b2"]
    assert len(parse_variant_list(["phi=1,width=1.2"])) == 1
    with pytest.raises(VariantError):
        parse_variant_list(["b3-b1"])


def test_families_are_derived_from_the_table():
    assert EFFICIENTNET_NAMES == tuple(f"b{i}" for i in range(8))
    assert LITE_NAMES == tuple(f"lite{i}" for i in range(5))
    assert all(not math.isnan(v.width) for v in VARIANTS.values())
