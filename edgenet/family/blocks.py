"""The B0 block table as data, and the pure rounding rules of compound scaling.

The table is the EfficientNet-B0 baseline found by architecture search (Tan & Le 2019,
table 1). Every other variant is this table scaled by width and depth; the scaling
rules live here as small pure functions so they can be tested directly.

Block strings use the tensorflow/tpu notation, e.g. ``r2_k3_s22_e6_i16_o24_se0.25``:
repeats, kernel, stride (both axes), expansion, input and output channels, SE ratio.
"""

from __future__ import annotations

import math
import re
from dataclasses import dataclass


@dataclass(frozen=True)
class BlockArgs:
    """One stage of MBConv blocks before scaling."""

    kernel_size: int
    repeats: int
    filters_in: int
    filters_out: int
    expand_ratio: int
    strides: int
    se_ratio: float  # 0 means no squeeze-excitation
    id_skip: bool = True

    def encode(self) -> str:
        """The tpu block string of this stage (inverse of :func:`decode_block`)."""
        text = (
            f"r{self.repeats}_k{self.kernel_size}_s{self.strides}{self.strides}"
            f"_e{self.expand_ratio}_i{self.filters_in}_o{self.filters_out}"
        )
        if self.se_ratio:
            text += f"_se{self.se_ratio:g}"
        if not self.id_skip:
            text += "_noskip"
        return text


# EfficientNet-B0: stem Conv3x3/2 (32) -> these seven MBConv stages -> Conv1x1 (1280) -> pool -> FC.
B0_BLOCKS: tuple[BlockArgs, ...] = (
    BlockArgs(kernel_size=3, repeats=1, filters_in=32, filters_out=16, expand_ratio=1, strides=1, se_ratio=0.25),
    BlockArgs(kernel_size=3, repeats=2, filters_in=16, filters_out=24, expand_ratio=6, strides=2, se_ratio=0.25),
    BlockArgs(kernel_size=5, repeats=2, filters_in=24, filters_out=40, expand_ratio=6, strides=2, se_ratio=0.25),
    BlockArgs(kernel_size=3, repeats=3, filters_in=40, filters_out=80, expand_ratio=6, strides=2, se_ratio=0.25),
    BlockArgs(kernel_size=5, repeats=3, filters_in=80, filters_out=112, expand_ratio=6, strides=1, se_ratio=0.25),
    BlockArgs(kernel_size=5, repeats=4, filters_in=112, filters_out=192, expand_ratio=6, strides=2, se_ratio=0.25),
    BlockArgs(kernel_size=3, repeats=1, filters_in=192, filters_out=320, expand_ratio=6, strides=1, se_ratio=0.25),
)
STEM_FILTERS = 32
HEAD_FILTERS = 1280

_BLOCK_RE = re.compile(
    r"^r(?P<r>\d+)_k(?P<k>\d+)_s(?P<s>\d)(?P<s2>\d)_e(?P<e>\d+)_i(?P<i>\d+)_o(?P<o>\d+)"
    r"(?:_se(?P<se>[0-9.]+))?(?P<noskip>_noskip)?$"
)


def decode_block(text: str) -> BlockArgs:
    """Parse a tpu block string; raises ``ValueError`` naming the string when malformed."""
    match = _BLOCK_RE.match(text.strip())
    if not match:
        raise ValueError(f"malformed block string {text!r} (expected e.g. 'r2_k3_s22_e6_i16_o24_se0.25')")
    if match["s"] != match["s2"]:
        raise ValueError(f"block string {text!r}: only equal strides on both axes are supported")
    se_ratio = float(match["se"]) if match["se"] else 0.0
    if not 0.0 <= se_ratio <= 1.0:
        raise ValueError(f"block string {text!r}: SE ratio must be within [0, 1]")
    return BlockArgs(
        kernel_size=int(match["k"]),
        repeats=int(match["r"]),
        filters_in=int(match["i"]),
        filters_out=int(match["o"]),
        expand_ratio=int(match["e"]),
        strides=int(match["s"]),
        se_ratio=se_ratio,
        id_skip=not match["noskip"],
    )


def make_divisible(value: float, divisor: int = 8, min_value: int | None = None) -> int:
    """Round ``value`` to the nearest multiple of ``divisor``, never below 90% of it.

    This is the channel rounding rule of tensorflow/tpu, Keras and timm: hardware likes
    channel counts that are multiples of 8, and rounding down by more than 10% would
    remove too much capacity.
    """
    min_value = divisor if min_value is None else min_value
    rounded = max(min_value, int(value + divisor / 2) // divisor * divisor)
    if rounded < 0.9 * value:
        rounded += divisor
    return int(rounded)


def round_filters(filters: int, width: float, divisor: int = 8) -> int:
    """Channels of a layer after width scaling."""
    return make_divisible(filters * width, divisor)


def round_repeats(repeats: int, depth: float) -> int:
    """Number of blocks of a stage after depth scaling (always rounded up)."""
    return int(math.ceil(depth * repeats))
