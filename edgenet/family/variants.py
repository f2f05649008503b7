"""The variant table: the single source of truth for every model edgenet knows.

``VARIANTS`` maps a name to a frozen :class:`Variant`. CLI choices, default input
sizes, documentation tables and tests are derived from it. Custom variants come from
compound scaling (:func:`compound_coefficients`) through :func:`parse_variant`, which
also accepts explicit width/depth/resolution overrides.
"""

from __future__ import annotations

import math
import re
from dataclasses import dataclass, field, replace
from typing import Literal

from ..errors import VariantError
from ..pixels.contract import (
    IMAGENET_MEAN_RGB,
    IMAGENET_STD_RGB,
    LITE_MEAN_RGB,
    LITE_STD_RGB,
    PreprocessContract,
)

Family = Literal["efficientnet", "lite", "baseline"]

# Compound scaling constants from the paper's grid search at phi = 1, under
# alpha * beta**2 * gamma**2 ~= 2 so that multiply-adds grow by about 2**phi.
ALPHA_DEPTH = 1.2
BETA_WIDTH = 1.1
GAMMA_RESOLUTION = 1.15
BASE_RESOLUTION = 224

# Sane ranges for custom variants: outside them the network is either degenerate or
# far beyond anything an edge device runs.
PHI_RANGE = (-8.0, 8.0)
WIDTH_RANGE = (0.1, 4.0)
DEPTH_RANGE = (0.1, 5.0)
RESOLUTION_RANGE = (32, 1024)


@dataclass(frozen=True)
class Published:
    """Numbers published for a variant, used as golden values in tests and docs."""

    params: int | None = None  # exact Keras count_params(), with top
    params_approx: float | None = None  # as printed in a paper (e.g. 4.7e6)
    macs: float | None = None  # multiply-adds ("FLOPs" in the paper)
    top1: float | None = None
    top5: float | None = None
    int8_top1: float | None = None


@dataclass(frozen=True)
class Variant:
    """One model: its scaling coefficients and the edge-driven structural choices."""

    name: str
    family: Family
    width: float
    depth: float
    resolution: int
    dropout: float
    phi: float | None = None
    activation: Literal["swish", "relu6", "relu"] = "swish"
    se: bool = True
    fixed_stem_head: bool = False
    drop_connect_rate: float = 0.2
    spec: str = ""  # text that parse_variant() turns back into this variant
    published: Published = field(default_factory=Published, compare=False)

    @property
    def is_custom(self) -> bool:
        return self.name not in VARIANTS

    @property
    def label(self) -> str:
        """A canonical, re-parseable label: the table name, or the spec of a custom variant."""
        return self.spec if self.is_custom else self.name

    @property
    def contract(self) -> PreprocessContract:
        """The preprocessing contract of this variant (see :mod:`edgenet.pixels.contract`)."""
        if self.family == "lite":
            return PreprocessContract(self.resolution, LITE_MEAN_RGB, LITE_STD_RGB)
        if self.name == "mobilenetv2":
            return PreprocessContract(self.resolution, (127.5,) * 3, (127.5,) * 3)
        if self.name == "resnet50":
            # Caffe-style: BGR order and mean subtraction, done in the graph; the
            # contract states the equivalent RGB mean.
            return PreprocessContract(self.resolution, (123.68, 116.779, 103.939), (1.0, 1.0, 1.0))
        return PreprocessContract(self.resolution, IMAGENET_MEAN_RGB, IMAGENET_STD_RGB)


def _b(name, phi, width, depth, resolution, dropout, params, macs, top1, top5):
    return Variant(
        name=name, family="efficientnet", width=width, depth=depth, resolution=resolution,
        dropout=dropout, phi=phi, spec=name,
        published=Published(params=params, macs=macs, top1=top1, top5=top5),
    )


def _lite(name, phi, width, depth, resolution, dropout, params, macs, top1, int8_top1):
    return Variant(
        name=name, family="lite", width=width, depth=depth, resolution=resolution, dropout=dropout,
        phi=phi, spec=name,
        activation="relu6",  # bounded activation: easier quantization than swish
        se=False,  # squeeze-excitation is poorly supported on many edge accelerators
        fixed_stem_head=True,  # keep stem/head small: scaling them costs latency for little accuracy
        published=Published(params_approx=params, macs=macs, top1=top1, int8_top1=int8_top1),
    )


# (width, depth, resolution, dropout) as in tensorflow/tpu efficientnet_builder.py and
# Keras applications. phi is the nominal compound coefficient of each published model;
# the published B1-B7 coefficients are hand-tuned, not alpha/beta/gamma ** phi.
VARIANTS: dict[str, Variant] = {
    v.name: v
    for v in (
        _b("b0", 0, 1.0, 1.0, 224, 0.2, 5_330_571, 0.39e9, 77.1, 93.3),
        _b("b1", 1, 1.0, 1.1, 240, 0.2, 7_856_239, 0.70e9, 79.1, 94.4),
        _b("b2", 2, 1.1, 1.2, 260, 0.3, 9_177_569, 1.0e9, 80.1, 94.9),
        _b("b3", 3, 1.2, 1.4, 300, 0.3, 12_320_535, 1.8e9, 81.6, 95.7),
        _b("b4", 4, 1.4, 1.8, 380, 0.4, 19_466_823, 4.2e9, 82.9, 96.4),
        _b("b5", 5, 1.6, 2.2, 456, 0.4, 30_562_527, 9.9e9, 83.6, 96.7),
        _b("b6", 6, 1.8, 2.6, 528, 0.5, 43_265_143, 19e9, 84.0, 96.8),
        _b("b7", 7, 2.0, 3.1, 600, 0.5, 66_658_687, 37e9, 84.3, 97.0),
        _lite("lite0", 0, 1.0, 1.0, 224, 0.2, 4.7e6, 407e6, 75.1, 74.4),
        _lite("lite1", 1, 1.0, 1.1, 240, 0.2, 5.4e6, 631e6, 76.7, 75.9),
        _lite("lite2", 2, 1.1, 1.2, 260, 0.3, 6.1e6, 899e6, 77.6, 77.0),
        _lite("lite3", 3, 1.2, 1.4, 280, 0.3, 8.2e6, 1.44e9, 79.8, 79.0),
        _lite("lite4", 4, 1.4, 1.8, 300, 0.3, 13.0e6, 2.64e9, 81.5, 80.2),
        # Reference models the paper compares with (built from Keras applications).
        Variant(
            name="mobilenetv2", family="baseline", width=1.0, depth=1.0, resolution=224, dropout=0.0,
            activation="relu6", se=False, spec="mobilenetv2",
            published=Published(params=3_538_984, params_approx=3.4e6, macs=0.30e9, top1=72.0),
        ),
        Variant(
            name="resnet50", family="baseline", width=1.0, depth=1.0, resolution=224, dropout=0.0,
            activation="relu", se=False, spec="resnet50",
            published=Published(params=25_636_712, params_approx=26e6, macs=4.1e9, top1=76.0),
        ),
    )
}
EFFICIENTNET_NAMES = tuple(n for n, v in VARIANTS.items() if v.family == "efficientnet")
LITE_NAMES = tuple(n for n, v in VARIANTS.items() if v.family == "lite")
BASELINE_NAMES = tuple(n for n, v in VARIANTS.items() if v.family == "baseline")

_ALIASES = re.compile(r"^(?:efficientnet[-_]?)?(b\d|lite\d)$")


def compound_coefficients(
    phi: float,
    alpha: float = ALPHA_DEPTH,
    beta: float = BETA_WIDTH,
    gamma: float = GAMMA_RESOLUTION,
) -> tuple[float, float, int]:
    """Pure compound scaling: (width beta**phi, depth alpha**phi, resolution 224 * gamma**phi)."""
    return beta**phi, alpha**phi, int(round(BASE_RESOLUTION * gamma**phi))


def _check_range(key: str, value: float, bounds: tuple[float, float]) -> None:
    if not (bounds[0] <= value <= bounds[1]) or math.isnan(value):
        raise VariantError(f"{key}={value:g} is outside the sane range {bounds[0]:g}..{bounds[1]:g}")


def custom_variant(
    phi: float = 0.0,
    *,
    base: Literal["b", "lite"] = "b",
    width: float | None = None,
    depth: float | None = None,
    resolution: int | None = None,
    alpha: float = ALPHA_DEPTH,
    beta: float = BETA_WIDTH,
    gamma: float = GAMMA_RESOLUTION,
) -> Variant:
    """A variant from compound scaling at ``phi``, with optional explicit overrides."""
    _check_range("phi", phi, PHI_RANGE)
    for key, value in (("alpha", alpha), ("beta", beta), ("gamma", gamma)):
        _check_range(key, value, (1.0, 3.0))
    w, d, r = compound_coefficients(phi, alpha, beta, gamma)
    w = w if width is None else float(width)
    d = d if depth is None else float(depth)
    r = r if resolution is None else int(resolution)
    _check_range("width", w, WIDTH_RANGE)
    _check_range("depth", d, DEPTH_RANGE)
    _check_range("resolution", r, RESOLUTION_RANGE)

    parts = [f"phi={phi:g}"]
    name = ("lite-" if base == "lite" else "") + f"phi{phi:g}"
    for key, tag, value in (("width", "w", width), ("depth", "d", depth), ("resolution", "r", resolution)):
        if value is not None:
            parts.append(f"{key}={value:g}")
            name += f"-{tag}{value:g}"
    if (alpha, beta, gamma) != (ALPHA_DEPTH, BETA_WIDTH, GAMMA_RESOLUTION):
        parts += [f"alpha={alpha:g}", f"beta={beta:g}", f"gamma={gamma:g}"]
        name += f"-a{alpha:g}-b{beta:g}-g{gamma:g}"
    if base == "lite":
        parts.append("base=lite")
    # Dropout follows the published variant nearest in phi.
    family = LITE_NAMES if base == "lite" else EFFICIENTNET_NAMES
    nearest = min(family, key=lambda n: abs(VARIANTS[n].phi - phi))
    template = VARIANTS[nearest]
    return replace(
        template, name=name, width=w, depth=d, resolution=r, phi=phi,
        spec=",".join(parts), published=Published(),
    )


_SPEC_KEYS = {"phi", "width", "depth", "resolution", "alpha", "beta", "gamma", "base"}


def parse_variant(text: str) -> Variant:
    """A variant from a table name (``b0``, ``EfficientNet-Lite2``) or a custom spec.

    A custom spec is comma-separated ``key=value`` pairs: ``phi`` plus optional ``width``,
    ``depth``, ``resolution`` overrides, ``alpha``/``beta``/``gamma``, and ``base=lite``
    for the edge family, e.g. ``phi=1.5`` or ``phi=0,width=0.5,resolution=128``.
    """
    raw = text.strip()
    key = raw.lower()
    if key in VARIANTS:
        return VARIANTS[key]
    alias = _ALIASES.match(key)
    if alias and alias.group(1) in VARIANTS:
        return VARIANTS[alias.group(1)]
    short = re.match(r"^(lite-)?phi(-?[0-9.]+)$", key)
    if short:
        key = f"phi={short.group(2)}" + (",base=lite" if short.group(1) else "")
    if "=" not in key:
        raise VariantError(
            f"unknown variant {raw!r}; valid names: {', '.join(VARIANTS)}, or a custom spec such as 'phi=1.5'"
        )
    values: dict[str, str] = {}
    for item in key.split(","):
        name, sep, value = item.partition("=")
        name = name.strip()
        if not sep or name not in _SPEC_KEYS:
            raise VariantError(
                f"bad custom variant {raw!r}: {item.strip()!r} is not one of {', '.join(sorted(_SPEC_KEYS))} =value"
            )
        if name in values:
            raise VariantError(f"bad custom variant {raw!r}: {name} is given twice")
        values[name] = value.strip()
    base = values.pop("base", "b")
    if base not in ("b", "lite"):
        raise VariantError(f"bad custom variant {raw!r}: base must be 'b' or 'lite'")
    try:
        numbers = {k: float(v) for k, v in values.items()}
    except ValueError:
        raise VariantError(f"bad custom variant {raw!r}: every value must be a number") from None
    if "resolution" in numbers:
        if numbers["resolution"] != int(numbers["resolution"]):
            raise VariantError(f"bad custom variant {raw!r}: resolution must be a whole number")
        numbers["resolution"] = int(numbers["resolution"])
    return custom_variant(numbers.pop("phi", 0.0), base=base, **numbers)


def parse_variant_list(texts) -> list[Variant]:
    """Expand names and ranges such as ``b0-b3`` or ``lite0-lite2`` into variants, in order."""
    out: list[Variant] = []
    for text in texts:
        for piece in _list_pieces(text):
            rng = re.match(r"^(b|lite)(\d)-(?:b|lite)?(\d)$", piece.lower())
            if rng:
                lo, hi = int(rng.group(2)), int(rng.group(3))
                if lo > hi:
                    raise VariantError(f"empty variant range {piece!r}")
                names = [f"{rng.group(1)}{i}" for i in range(lo, hi + 1)]
                for name in names:
                    out.append(parse_variant(name))
            else:
                out.append(parse_variant(piece))
    if not out:
        raise VariantError(f"no variant given; valid names: {', '.join(VARIANTS)}, ranges such as b0-b3, "
                           "or a custom spec such as 'phi=1.5'")
    return out


def _list_pieces(text: str) -> list[str]:
    """Split ``lite0-lite4,phi=1.5,width=0.5,b0`` into ``lite0-lite4``, ``phi=1.5,width=0.5``, ``b0``.

    ``key=value`` items belong to the custom spec they follow; a name or range ends it (so a
    repeated key, as in ``phi=-8,phi=-7``, stays in one spec and is refused there).
    """
    pieces: list[str] = []
    spec: list[str] = []
    for item in (part.strip() for part in str(text).split(",")):
        if not item:
            continue
        if "=" in item:
            spec.append(item)
            continue
        if spec:
            pieces.append(",".join(spec))
            spec = []
        pieces.append(item)
    if spec:
        pieces.append(",".join(spec))
    return pieces
