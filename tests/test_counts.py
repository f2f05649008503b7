"""Published counts for reference models, else analytic (edgenet/family/counts.py)."""

from __future__ import annotations

import pytest

from edgenet.errors import VariantError
from edgenet.family.architecture import architecture
from edgenet.family.counts import analytic_counts, counts_if_known, variant_counts
from edgenet.family.variants import VARIANTS, parse_variant


@pytest.mark.parametrize("name", ["b0", "b3", "lite2"])
def test_efficientnets_are_counted_from_their_architecture(name):
    counts, arch = variant_counts(name), architecture(VARIANTS[name])
    assert counts.source == "analytic"
    assert (counts.params, counts.macs, counts.resolution, counts.int8_size_bytes) == (
        arch.params, arch.macs, arch.resolution, arch.int8_size_bytes)
    assert counts.phi == VARIANTS[name].phi


def test_reference_models_use_their_published_counts():
    counts = variant_counts("resnet50")
    pub = VARIANTS["resnet50"].published
    assert counts.source == "published" and counts.params == pub.params == 25_636_712
    assert counts.macs == int(pub.macs) and counts.int8_size_bytes is None and counts.phi is None


def test_custom_variants_and_variant_objects_are_counted():
    custom = parse_variant("phi=1.5")
    assert variant_counts(custom) == variant_counts(custom.spec)
    assert variant_counts("phi=1").macs < variant_counts(custom).macs < variant_counts("phi=2").macs


def test_the_dict_form_and_unknown_names():
    assert analytic_counts("b0") == {k: v for k, v in variant_counts("b0").__dict__.items() if k != "source"}
    with pytest.raises(VariantError):
        variant_counts("b9")
    assert counts_if_known("b9") is None and counts_if_known("mobilenet_v3_int8") is None
    assert counts_if_known("b0") == variant_counts("b0")
