"""Map checkpoint tensor names and layouts onto edgenet's Keras layers, checking every shape.

Two PyTorch namings are recognised automatically:

* **efficientnet-pytorch** (lukemelas; also the TF ports): ``_conv_stem``, ``_bn0``,
  ``_blocks.N.{_expand_conv,_bn0,_depthwise_conv,_bn1,_se_reduce,_se_expand,_project_conv,_bn2}``
  with N the flat block index, ``_conv_head``, ``_bn1``, ``_fc``;
* **timm**: ``conv_stem``, ``bn1``, ``blocks.S.I.*`` (stage S, index I; the first stage
  is a depthwise-separable block ``conv_dw, bn1, se, conv_pw, bn2``, the others inverted
  residuals ``conv_pw, bn1, conv_dw, bn2, se, conv_pwl, bn3``), ``conv_head``, ``bn2``,
  ``classifier``.

Layouts: convolutions OIHW -> HWIO, depthwise (C, 1, k, k) -> (k, k, C, 1), dense
(out, in) -> (in, out); batch norm [weight, bias, running_mean, running_var] ->
[gamma, beta, moving_mean, moving_variance].

Batch-norm epsilon: edgenet (like Keras and tensorflow/tpu) uses 1e-3. A checkpoint
trained with another epsilon (timm's own models: 1e-5) is made exact by folding the
difference into the variance, ``moving_variance = running_var + eps_source - 1e-3``:
inference computes ``gamma * (x - mean) / sqrt(moving_variance + 1e-3) + beta``, which
then equals the source's ``sqrt(running_var + eps_source)`` denominator. The folded
variance can be slightly negative for near-constant channels; only ``variance + 1e-3``
is ever used (and the TFLite converter folds it into the convolution), so that is
harmless. Shapes are checked against what :class:`~edgenet.family.architecture.Architecture`
implies, so a checkpoint of another variant fails with one line naming the first tensor
that does not fit.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Literal

import numpy as np

from ..errors import EdgenetError
from ..family.architecture import Architecture

__all__ = [
    "KERAS_BN_EPSILON", "NAMINGS", "MappedWeights", "WeightMappingError", "detect_naming",
    "expected_checkpoint_shapes", "expected_weight_shapes", "map_checkpoint",
]

KERAS_BN_EPSILON = 1e-3
Naming = Literal["efficientnet-pytorch", "timm"]
NAMINGS: tuple[str, ...] = ("efficientnet-pytorch", "timm")
# The epsilon each naming's models were trained with unless told otherwise. timm's
# tf_efficientnet_* ports use 1e-3: pass bn_eps_source=1e-3 for those.
DEFAULT_BN_EPS: dict[str, float] = {"efficientnet-pytorch": 1e-3, "timm": 1e-5}


class WeightMappingError(EdgenetError, ValueError):
    """Checkpoint tensors that do not fit the architecture (one line naming the tensor)."""


class MappedWeights(dict):
    """``{keras_layer_name: [arrays in Keras weight order]}`` plus how it was obtained.

    ``naming`` is the detected naming scheme; ``notes`` are one-line remarks for the user
    (classifier background row dropped, classifier skipped, epsilon folded).
    """

    naming: str = ""
    notes: tuple[str, ...] = ()


Kind = Literal["conv", "dwconv", "se", "bn", "dense"]
_SUFFIXES: dict[str, tuple[str, ...]] = {
    "conv": ("weight",),
    "dwconv": ("weight",),
    "se": ("weight", "bias"),
    "bn": ("weight", "bias", "running_mean", "running_var"),
    "dense": ("weight", "bias"),
}


@dataclass(frozen=True)
class _Slot:
    """One Keras layer with weights, the checkpoint module feeding it, and Keras shapes."""

    layer: str
    kind: Kind
    source: str  # checkpoint module prefix, e.g. "_blocks.3._bn1"
    shapes: tuple[tuple[int, ...], ...]  # in Keras order and layout

    @property
    def names(self) -> tuple[str, ...]:
        return tuple(f"{self.source}.{s}" for s in _SUFFIXES[self.kind])

    def source_shapes(self) -> tuple[tuple[int, ...], ...]:
        return tuple(_to_source_shape(self.kind, i, s) for i, s in enumerate(self.shapes))


def _to_source_shape(kind: Kind, index: int, shape: tuple[int, ...]) -> tuple[int, ...]:
    if kind in ("conv", "se") and index == 0:
        h, w, i, o = shape
        return (o, i, h, w)
    if kind == "dwconv":
        h, w, c, m = shape
        return (c * m, 1, h, w)
    if kind == "dense" and index == 0:
        return (shape[1], shape[0])
    return shape


def _to_keras(kind: Kind, index: int, array: np.ndarray) -> np.ndarray:
    if kind in ("conv", "se") and index == 0:
        array = array.transpose(2, 3, 1, 0)  # OIHW -> HWIO
    elif kind == "dwconv":
        array = array.transpose(2, 3, 0, 1)  # (C, 1, k, k) -> (k, k, C, 1)
    elif kind == "dense" and index == 0:
        array = array.T  # (out, in) -> (in, out)
    return np.ascontiguousarray(array, dtype=np.float32)


def _bn(c: int) -> tuple[tuple[int, ...], ...]:
    return ((c,), (c,), (c,), (c,))


def _slots(arch: Architecture, naming: str) -> list[_Slot]:
    """Every weighted Keras layer of ``arch`` in build order, with its source module name."""
    timm = naming == "timm"
    slots = [
        _Slot("stem_conv", "conv", "conv_stem" if timm else "_conv_stem", ((3, 3, 3, arch.stem_filters),)),
        _Slot("stem_bn", "bn", "bn1" if timm else "_bn0", _bn(arch.stem_filters)),
    ]
    index_in_stage: dict[int, int] = {}
    for n, b in enumerate(arch.blocks):
        i = index_in_stage[b.stage] = index_in_stage.get(b.stage, -1) + 1
        if timm:
            p = f"blocks.{b.stage - 1}.{i}."
            if b.expand_ratio == 1:  # timm DepthwiseSeparableConv
                src = dict(dw=p + "conv_dw", bn=p + "bn1", se=p + "se.conv_", project=p + "conv_pw",
                           project_bn=p + "bn2")
            else:  # timm InvertedResidual
                src = dict(expand=p + "conv_pw", expand_bn=p + "bn1", dw=p + "conv_dw", bn=p + "bn2",
                           se=p + "se.conv_", project=p + "conv_pwl", project_bn=p + "bn3")
        else:
            p = f"_blocks.{n}."
            src = dict(expand=p + "_expand_conv", expand_bn=p + "_bn0", dw=p + "_depthwise_conv", bn=p + "_bn1",
                       se=p + "_se_", project=p + "_project_conv", project_bn=p + "_bn2")
        k = b.name + "_"
        if b.expand_ratio != 1:
            slots.append(_Slot(k + "expand_conv", "conv", src["expand"], ((1, 1, b.filters_in, b.expanded),)))
            slots.append(_Slot(k + "expand_bn", "bn", src["expand_bn"], _bn(b.expanded)))
        slots.append(_Slot(k + "dwconv", "dwconv", src["dw"], ((b.kernel_size, b.kernel_size, b.expanded, 1),)))
        slots.append(_Slot(k + "bn", "bn", src["bn"], _bn(b.expanded)))
        if b.se_filters:
            slots.append(_Slot(k + "se_reduce", "se", src["se"] + "reduce",
                               ((1, 1, b.expanded, b.se_filters), (b.se_filters,))))
            slots.append(_Slot(k + "se_expand", "se", src["se"] + "expand",
                               ((1, 1, b.se_filters, b.expanded), (b.expanded,))))
        slots.append(_Slot(k + "project_conv", "conv", src["project"], ((1, 1, b.expanded, b.filters_out),)))
        slots.append(_Slot(k + "project_bn", "bn", src["project_bn"], _bn(b.filters_out)))
    last = arch.blocks[-1].filters_out
    slots.append(_Slot("top_conv", "conv", "conv_head" if timm else "_conv_head", ((1, 1, last, arch.head_filters),)))
    slots.append(_Slot("top_bn", "bn", "bn2" if timm else "_bn1", _bn(arch.head_filters)))
    slots.append(_Slot("predictions", "dense", "classifier" if timm else "_fc",
                       ((arch.head_filters, arch.num_classes), (arch.num_classes,))))
    return slots


def expected_weight_shapes(arch: Architecture) -> dict[str, list[tuple[int, ...]]]:
    """``{keras_layer: [weight shapes in Keras order]}`` for every layer a checkpoint fills.

    The input ``normalization`` layer of B variants (ImageNet statistics set by the
    builder) is not included: no checkpoint provides it. ``predictions`` is included only
    when ``arch.include_top``.
    """
    return {s.layer: list(s.shapes) for s in _slots(arch, "efficientnet-pytorch")
            if s.kind != "dense" or arch.include_top}


def expected_checkpoint_shapes(arch: Architecture, naming: str = "efficientnet-pytorch") -> dict[str, tuple[int, ...]]:
    """``{checkpoint tensor name: PyTorch-layout shape}`` a checkpoint of ``arch`` holds."""
    _check_naming(naming)
    out: dict[str, tuple[int, ...]] = {}
    for slot in _slots(arch, naming):
        if slot.kind == "dense" and not arch.include_top:
            continue
        out.update(zip(slot.names, slot.source_shapes(), strict=True))
    return out


def detect_naming(tensors) -> str:
    """``"efficientnet-pytorch"`` or ``"timm"`` from the tensor names."""
    names = list(tensors)
    if any(n.startswith(("_conv_stem.", "_blocks.")) for n in names):
        return "efficientnet-pytorch"
    if any(n.startswith(("conv_stem.", "blocks.")) for n in names):
        return "timm"
    shown = ", ".join(names[:3]) or "no tensors"
    raise WeightMappingError(
        f"unrecognised checkpoint naming (first tensors: {shown}); expected efficientnet-pytorch "
        "(_conv_stem.weight, _blocks.N...) or timm (conv_stem.weight, blocks.S.I...) names"
    )


def _check_naming(naming: str) -> None:
    if naming not in NAMINGS:
        raise WeightMappingError(f"unknown naming {naming!r}; choose from {', '.join(NAMINGS)} or 'auto'")


def _shape(array) -> tuple[int, ...]:
    return tuple(int(n) for n in np.shape(array))


def map_checkpoint(
    tensors: dict,
    arch: Architecture,
    *,
    naming: str = "auto",
    bn_eps_source: float | None = None,
) -> MappedWeights:
    """Keras weights for every layer of ``arch`` from checkpoint ``tensors`` (see module doc).

    ``naming`` is detected unless given. ``bn_eps_source`` is the batch-norm epsilon the
    checkpoint was trained with (default: 1e-3 for efficientnet-pytorch, 1e-5 for timm);
    the difference to Keras's 1e-3 is folded into the moving variance so outputs match.
    A classifier with one row more than ``arch.num_classes`` (TF checkpoints with a
    background class 0) loses row 0; with ``include_top=False`` the classifier is skipped.
    Every tensor must be used and fit: anything else raises :class:`WeightMappingError`.
    """
    naming = detect_naming(tensors) if naming == "auto" else naming
    _check_naming(naming)
    eps = DEFAULT_BN_EPS[naming] if bn_eps_source is None else float(bn_eps_source)
    if not 0 <= eps < 1:
        raise WeightMappingError(f"bn_eps_source={eps:g} is not a plausible batch-norm epsilon")
    where = f"checkpoint does not fit {arch.variant.name}"
    notes: list[str] = []
    out = MappedWeights()
    used: set[str] = set()
    for slot in _slots(arch, naming):
        names = slot.names
        if slot.kind == "dense" and not arch.include_top:
            if any(n in tensors for n in names):
                used.update(n for n in names if n in tensors)
                notes.append(f"classifier {slot.source}.* skipped (include_top=False)")
            continue
        expected = slot.source_shapes()
        arrays = []
        for index, (name, shape) in enumerate(zip(names, expected, strict=True)):
            if name not in tensors:
                raise WeightMappingError(f"{where}: missing tensor {name}")
            array = np.asarray(tensors[name])
            found = _shape(array)
            if slot.kind == "dense" and found[:1] == (shape[0] + 1,) and found[1:] == shape[1:]:
                array = array[1:]  # TF checkpoints: class 0 is "background"
                if index == 0:
                    notes.append(f"classifier has {shape[0] + 1} classes: dropped row 0 (background class)")
            elif found != shape:
                raise WeightMappingError(f"{where}: {name} has shape {found}, expected {shape}")
            if not np.issubdtype(array.dtype, np.floating):
                raise WeightMappingError(f"{where}: {name} has dtype {array.dtype}, expected floating point")
            arrays.append(_to_keras(slot.kind, index, array))
            used.add(name)
        if slot.kind == "bn" and eps != KERAS_BN_EPSILON:
            arrays[3] = (arrays[3].astype(np.float64) + (eps - KERAS_BN_EPSILON)).astype(np.float32)
        out[slot.layer] = arrays
    unused = [n for n in tensors if n not in used and not n.endswith("num_batches_tracked")]
    if unused:
        raise WeightMappingError(f"{where}: unused tensor {unused[0]}{_unused_hint(unused[0], arch, naming)}")
    if eps != KERAS_BN_EPSILON:
        notes.append(f"batch-norm epsilon {eps:g} folded into moving_variance (Keras uses {KERAS_BN_EPSILON:g})")
    out.naming, out.notes = naming, tuple(notes)
    return out


def _unused_hint(name: str, arch: Architecture, naming: str) -> str:
    v = arch.variant.name
    if re.search(r"(\._se_|\.se\.)", name) and not any(b.se_filters for b in arch.blocks):
        return f" (checkpoint has squeeze-excitation, {v} has none)"
    if naming == "timm":
        m = re.match(r"blocks\.(\d+)\.(\d+)\.", name)
        if m:
            stage, index = int(m.group(1)) + 1, int(m.group(2))
            if index >= sum(1 for b in arch.blocks if b.stage == stage):
                return f" (checkpoint has more blocks than {v})"
    else:
        m = re.match(r"_blocks\.(\d+)\.", name)
        if m and int(m.group(1)) >= len(arch.blocks):
            return f" (checkpoint has more blocks than {v})"
    return f" (not part of {v})"
