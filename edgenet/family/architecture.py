"""A variant expanded into concrete layers, and its analytic parameter and MAC counts.

:func:`architecture` turns a :class:`~edgenet.family.variants.Variant` into the exact list of
blocks (channels, kernel, stride, squeeze-excitation width, skip, drop-connect rate,
feature-map size). The Keras builder and the counts both read this one plan, so the
counts equal Keras's ``count_params()`` by construction and are checked against it in
the tests. Nothing here imports TensorFlow.

Counting conventions: parameters are every weight of the Keras model, including
batch-norm moving statistics and the 7 non-trainable weights of the input
Normalization layer of B variants (as Keras counts them). Multiply-adds (MACs, the
paper's "FLOPs") count convolution and dense layers, squeeze-excitation included;
element-wise ops, pooling and batch norm (folded at export) are not counted.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

from .blocks import B0_BLOCKS, HEAD_FILTERS, STEM_FILTERS, round_filters, round_repeats
from .variants import Variant


@dataclass(frozen=True)
class BlockPlan:
    """One MBConv block with every size resolved."""

    name: str  # Keras-compatible positional name, e.g. "block2a"
    stage: int  # 1-based stage index
    filters_in: int
    filters_out: int
    expanded: int  # channels inside the block (filters_in * expand_ratio)
    expand_ratio: int
    kernel_size: int
    strides: int
    se_filters: int  # 0 when the block has no squeeze-excitation
    skip: bool  # identity shortcut (with drop-connect)
    drop_rate: float
    input_size: int  # feature-map height/width entering the block
    output_size: int

    @property
    def params(self) -> int:
        p = 0
        if self.expand_ratio != 1:
            p += self.filters_in * self.expanded + 4 * self.expanded
        p += self.kernel_size**2 * self.expanded + 4 * self.expanded
        if self.se_filters:
            p += self.expanded * self.se_filters + self.se_filters
            p += self.se_filters * self.expanded + self.expanded
        p += self.expanded * self.filters_out + 4 * self.filters_out
        return p

    @property
    def macs(self) -> int:
        m = 0
        if self.expand_ratio != 1:
            m += self.input_size**2 * self.filters_in * self.expanded
        m += self.output_size**2 * self.kernel_size**2 * self.expanded
        if self.se_filters:
            m += 2 * self.expanded * self.se_filters
        m += self.output_size**2 * self.expanded * self.filters_out
        return m


@dataclass(frozen=True)
class Architecture:
    variant: Variant
    resolution: int
    stem_filters: int
    blocks: tuple[BlockPlan, ...]
    head_filters: int
    num_classes: int
    include_top: bool

    @property
    def stem_size(self) -> int:
        return _same_out(self.resolution, 2)

    @property
    def head_size(self) -> int:
        return self.blocks[-1].output_size

    @property
    def stem_params(self) -> int:
        return 27 * self.stem_filters + 4 * self.stem_filters

    @property
    def stem_macs(self) -> int:
        return self.stem_size**2 * 27 * self.stem_filters

    @property
    def head_params(self) -> int:
        return self.blocks[-1].filters_out * self.head_filters + 4 * self.head_filters

    @property
    def head_macs(self) -> int:
        return self.head_size**2 * self.blocks[-1].filters_out * self.head_filters

    @property
    def top_params(self) -> int:
        return self.head_filters * self.num_classes + self.num_classes if self.include_top else 0

    @property
    def top_macs(self) -> int:
        return self.head_filters * self.num_classes if self.include_top else 0

    @property
    def input_params(self) -> int:
        # Keras's Normalization layer: mean (3), variance (3), count (1). Lite models
        # normalise with a weightless Rescaling layer instead.
        return 7 if self.variant.family == "efficientnet" else 0

    @property
    def params(self) -> int:
        return (
            self.input_params + self.stem_params + sum(b.params for b in self.blocks)
            + self.head_params + self.top_params
        )

    @property
    def macs(self) -> int:
        return self.stem_macs + sum(b.macs for b in self.blocks) + self.head_macs + self.top_macs

    @property
    def int8_size_bytes(self) -> int:
        """Estimated size of the full-integer .tflite file.

        Weights take one byte each; every convolution and dense layer gets an int32 bias
        (batch norm folds into it) and per-output-channel scale and zero point; the
        flatbuffer adds a small fixed overhead.
        """
        kernels, channels = 27 * self.stem_filters, self.stem_filters
        for b in self.blocks:
            if b.expand_ratio != 1:
                kernels += b.filters_in * b.expanded
                channels += b.expanded
            kernels += b.kernel_size**2 * b.expanded
            channels += b.expanded
            if b.se_filters:
                kernels += 2 * b.expanded * b.se_filters
                channels += b.se_filters + b.expanded
            kernels += b.expanded * b.filters_out
            channels += b.filters_out
        kernels += self.blocks[-1].filters_out * self.head_filters
        channels += self.head_filters
        if self.include_top:
            kernels += self.head_filters * self.num_classes
            channels += self.num_classes
        overhead = 4096 + 600 * (len(self.blocks) * 8)
        return kernels + channels * (4 + 4 + 8) + overhead

    def rows(self) -> list[dict]:
        """The stage table, stem to head, as the paper's table 1 (scaled)."""
        rows = [dict(stage=1, operator="Conv3x3", resolution=self.resolution, channels=self.stem_filters,
                     layers=1, stride=2, kernel=3, expansion=None, se=False,
                     params=self.stem_params, macs=self.stem_macs)]
        for stage in sorted({b.stage for b in self.blocks}):
            blocks = [b for b in self.blocks if b.stage == stage]
            first = blocks[0]
            rows.append(dict(
                stage=stage + 1, operator=f"MBConv{first.expand_ratio}", resolution=first.input_size,
                channels=first.filters_out, layers=len(blocks), stride=first.strides,
                kernel=first.kernel_size, expansion=first.expand_ratio, se=bool(first.se_filters),
                params=sum(b.params for b in blocks), macs=sum(b.macs for b in blocks),
            ))
        rows.append(dict(stage=len(rows) + 1, operator="Conv1x1, pooling, FC" if self.include_top else "Conv1x1",
                         resolution=self.head_size, channels=self.head_filters, layers=1, stride=1, kernel=1,
                         expansion=None, se=False, params=self.head_params + self.top_params,
                         macs=self.head_macs + self.top_macs))
        return rows


def _same_out(size: int, stride: int) -> int:
    """Output size of a TensorFlow "same"-padded layer."""
    return int(math.ceil(size / stride))


def architecture(
    variant: Variant,
    *,
    resolution: int | None = None,
    num_classes: int = 1000,
    include_top: bool = True,
) -> Architecture:
    """Expand ``variant`` into concrete blocks (EfficientNet and Lite families)."""
    if variant.family == "baseline":
        raise ValueError(f"{variant.name} is a reference model from Keras applications, not an EfficientNet")
    res = int(resolution or variant.resolution)
    width, depth = variant.width, variant.depth
    stem = STEM_FILTERS if variant.fixed_stem_head else round_filters(STEM_FILTERS, width)
    head = HEAD_FILTERS if variant.fixed_stem_head else round_filters(HEAD_FILTERS, width)

    stages = []
    for i, args in enumerate(B0_BLOCKS):
        if variant.fixed_stem_head and i in (0, len(B0_BLOCKS) - 1):
            repeats = args.repeats  # Lite keeps the first and last stage unscaled
        else:
            repeats = round_repeats(args.repeats, depth)
        stages.append((args, repeats))
    total = float(sum(r for _, r in stages))

    blocks: list[BlockPlan] = []
    size = _same_out(res, 2)
    channels = stem
    index = 0
    for stage, (args, repeats) in enumerate(stages, start=1):
        out = round_filters(args.filters_out, width)
        for j in range(repeats):
            strides = args.strides if j == 0 else 1
            f_in = channels
            # SE width follows the block's nominal (rounded) input channels, as in Keras.
            nominal_in = round_filters(args.filters_in, width) if j == 0 else out
            se_filters = max(1, int(nominal_in * args.se_ratio)) if (variant.se and args.se_ratio) else 0
            out_size = _same_out(size, strides)
            blocks.append(BlockPlan(
                name=f"block{stage}{chr(ord('a') + j)}",
                stage=stage,
                filters_in=f_in,
                filters_out=out,
                expanded=f_in * args.expand_ratio,
                expand_ratio=args.expand_ratio,
                kernel_size=args.kernel_size,
                strides=strides,
                se_filters=se_filters,
                skip=args.id_skip and strides == 1 and f_in == out,
                drop_rate=variant.drop_connect_rate * index / total,
                input_size=size,
                output_size=out_size,
            ))
            channels, size = out, out_size
            index += 1
    return Architecture(variant, res, stem, tuple(blocks), head, num_classes, include_top)
