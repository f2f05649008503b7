"""How much memory a conversion declares to the cluster, from measured peaks.

``CONVERT_PEAK_MB`` is the peak resident memory of the conversion child (the larger of fp32 and
int8), measured by ``benchmarks/convert_b0_b7.py`` (benchmarks/results/convert_b0_b7.json, TF 2.21,
100 calibration samples). Ray only starts a task where its declared ``memory`` still fits, so a node
with 16 GB runs two B7 conversions at once and not three.

A variant outside the table (Lite, custom phi) is placed on the B0-B7 curve by its multiply-adds:
linear between the two neighbours, the last slope beyond B7, and B0's figure below B0 (the
TensorFlow runtime alone is most of it).
"""

from __future__ import annotations

#: variant -> measured peak MB of its conversion child (max over fp32 and int8).
CONVERT_PEAK_MB: dict[str, float] = {
    "b0": 1216.0, "b1": 1499.0, "b2": 1549.9, "b3": 1943.9,
    "b4": 2737.0, "b5": 3631.7, "b6": 4605.3, "b7": 6008.4,
}
#: Headroom over the measured peak (calibration sets larger than 100 samples, allocator noise).
HEADROOM = 1.15
MB = 1024 * 1024


def convert_memory_mb(variant) -> float:
    """Declared memory (MB) for converting ``variant`` (an :class:`edgenet.family.variants.Variant`)."""
    from ..family.architecture import architecture
    from ..family.variants import parse_variant

    if variant.spec is None and variant.name in CONVERT_PEAK_MB:
        return CONVERT_PEAK_MB[variant.name] * HEADROOM
    macs = architecture(variant).macs
    points = sorted((architecture(parse_variant(name)).macs, mb) for name, mb in CONVERT_PEAK_MB.items())
    if macs <= points[0][0]:
        return points[0][1] * HEADROOM
    for (m0, p0), (m1, p1) in zip(points, points[1:], strict=False):
        if macs <= m1:
            return (p0 + (p1 - p0) * (macs - m0) / (m1 - m0)) * HEADROOM
    (m0, p0), (m1, p1) = points[-2], points[-1]
    return (p1 + (p1 - p0) * (macs - m1) / (m1 - m0)) * HEADROOM


def convert_memory_bytes(variant) -> int:
    return int(convert_memory_mb(variant) * MB)
