"""Size of a variant without building it: published counts for reference models, else analytic.

The one place that decides where a variant's parameters and multiply-adds come from. EfficientNets
(B, Lite, custom phi) are counted from their expanded architecture (:mod:`.architecture`), which
equals Keras's ``count_params()`` exactly; the reference models (MobileNetV2, ResNet-50) come from
Keras applications, not from our block plans, so their published counts are used.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass
from functools import lru_cache
from typing import Literal

from ..errors import VariantError
from .variants import Variant, parse_variant

__all__ = ["Counts", "analytic_counts", "counts_if_known", "variant_counts"]


@dataclass(frozen=True)
class Counts:
    """Parameters, multiply-adds, input resolution and estimated int8 size of one variant."""

    variant: str
    resolution: int
    params: int | None
    macs: int | None
    int8_size_bytes: int | None  # None for reference models: never converted from our plans
    phi: float | None
    source: Literal["analytic", "published"]


def variant_counts(variant: Variant | str, num_classes: int = 1000) -> Counts:
    """The counts of ``variant`` (a :class:`Variant`, a name or a spec); unknown names raise VariantError."""
    if not isinstance(variant, Variant):
        variant = parse_variant(variant)
    if variant.family == "baseline":
        pub = variant.published
        return Counts(
            variant=variant.name,
            resolution=variant.resolution,
            params=pub.params or (int(pub.params_approx) if pub.params_approx else None),
            macs=int(pub.macs) if pub.macs else None,
            int8_size_bytes=None,
            phi=None,
            source="published",
        )
    from .architecture import architecture

    arch = architecture(variant, num_classes=num_classes)
    return Counts(variant.name, arch.resolution, arch.params, arch.macs, arch.int8_size_bytes, variant.phi, "analytic")


def analytic_counts(variant_text: str) -> dict:
    """:func:`variant_counts` as a dict (variant, resolution, params, macs, int8_size_bytes, phi)."""
    data = asdict(variant_counts(variant_text))
    data.pop("source")
    return data


@lru_cache(maxsize=256)
def counts_if_known(variant_text: str) -> Counts | None:
    """:func:`variant_counts`, or None when the text names no variant (a model from elsewhere)."""
    try:
        return variant_counts(variant_text)
    except (VariantError, ValueError):
        return None
