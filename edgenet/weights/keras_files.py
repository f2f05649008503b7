"""Load weights into an edgenet model, from Keras weight files and checkpoints.

Only weights are ever read: edgenet never deserialises a model (and its code) from a
user's file. Two Keras layouts are understood:

* Keras 3 ``.weights.h5``: ``layers/<class_snake>[_<n>]/vars/<i>``, keyed by layer class
  and position (the ``_walk_saveable`` naming of Keras 3);
* the legacy ``.h5`` layout of the published ImageNet files: one group per layer name
  (``block1a_dwconv``) with a ``weight_names`` attribute.

PyTorch (legacy pickle and zip) and safetensors checkpoints go through the restricted
reader in :mod:`edgenet.weights.checkpoint` and the name mapping in :mod:`edgenet.weights.mapping`.
Every weight is shape-checked; a mismatch is one line naming the layer, the expected
and the found shapes.
"""

from __future__ import annotations

import re
from collections import defaultdict
from pathlib import Path

import numpy as np

from ..errors import EdgenetError, InputFileError
from ..pixels.contract import IMAGENET_STD_RGB

KERAS_SUFFIXES = (".h5", ".hdf5", ".keras_weights")
CHECKPOINT_SUFFIXES = (".pth", ".pt", ".bin", ".ckpt", ".safetensors", ".npz")


class WeightFileError(EdgenetError):
    """A weight file that does not fit the model."""


def _snake(name: str) -> str:
    """Keras 3's key for a layer class in ``.weights.h5`` (Conv2D -> conv2d)."""
    name = re.sub(r"\W+", "", name)
    name = re.sub(r"(.)([A-Z][a-z]+)", r"\1_\2", name)
    return re.sub(r"([a-z])([A-Z])", r"\1_\2", name).lower()


def _keras3_entries(h5) -> dict[str, list[list[np.ndarray]]]:
    """Class name -> per-instance weight lists, in saved order."""
    by_class: dict[str, list[tuple[int, list[np.ndarray]]]] = defaultdict(list)
    for key, group in h5["layers"].items():
        match = re.match(r"^(.*?)(?:_(\d+))?$", key)
        cls, ordinal = match.group(1), int(match.group(2) or 0)
        values = []
        if "vars" in group:
            vars_ = group["vars"]
            values = [np.asarray(vars_[str(i)]) for i in range(len(vars_))]
        by_class[cls].append((ordinal, values))
    return {cls: [v for _, v in sorted(items, key=lambda t: t[0])] for cls, items in by_class.items()}


def _legacy_entries(h5) -> dict[str, list[np.ndarray]]:
    def text(v):
        return v.decode("utf8") if isinstance(v, bytes) else str(v)

    out = {}
    group = h5["model_weights"] if "model_weights" in h5 else h5
    for layer_name in (text(n) for n in group.attrs["layer_names"]):
        g = group[layer_name]
        out[layer_name] = [np.asarray(g[text(w)]) for w in g.attrs.get("weight_names", [])]
    return out


def read_keras_weights(path) -> tuple[str, dict]:
    """Read a Keras weight file as plain arrays: ("keras3", by class) or ("legacy", by name)."""
    import h5py

    path = Path(path)
    if not path.is_file():
        raise InputFileError(path, "no such file")
    try:
        with h5py.File(path, "r") as h5:
            if "layers" in h5 and isinstance(h5["layers"], h5py.Group):
                return "keras3", _keras3_entries(h5)
            root = h5["model_weights"] if "model_weights" in h5 else h5
            if "layer_names" in root.attrs:
                return "legacy", _legacy_entries(h5)
    except OSError as exc:
        raise InputFileError(path, f"not a readable HDF5 weight file ({str(exc).splitlines()[0]})") from None
    raise InputFileError(path, "HDF5 file holds neither Keras 3 nor legacy Keras weights")


def _fix_published_normalization(values: list[np.ndarray]) -> list[np.ndarray]:
    """The published ImageNet files store the std as the variance (tensorflow#49930).

    Keras fixes this with an extra Rescaling layer; edgenet stores the true variance
    instead, which computes the same (x - mean) / std.
    """
    mean, variance, *rest = values
    std = np.array([s / 255.0 for s in IMAGENET_STD_RGB], dtype=variance.dtype)
    if np.allclose(variance.reshape(-1), std, atol=1e-4):
        variance = (std**2).reshape(variance.shape)
    return [mean, variance, *rest]


def _assign(model, layer_name: str, values: list[np.ndarray], source: str) -> None:
    layer = model.get_layer(layer_name)
    expected = [tuple(w.shape) for w in layer.weights]
    found = [tuple(v.shape) for v in values]
    if expected != found:
        raise WeightFileError(
            f"{source}: layer {layer_name} has weights of shape {found}, the model expects {expected}"
        )
    layer.set_weights(values)


def _weighted_layers(model):
    return [layer for layer in model.layers if layer.weights]


def load_keras_weights(model, path) -> dict:
    """Load a Keras weight file into ``model`` by layer name (legacy) or class position (Keras 3)."""
    layout, entries = read_keras_weights(path)
    source = str(path)
    loaded = 0
    if layout == "legacy":
        # Keras auto-names the input Normalization layer (normalization_1 when several
        # models were built in one session); there is only one per model.
        named = {re.sub(r"^normalization_\d+$", "normalization", k): v for k, v in entries.items() if v}
        wanted = {layer.name for layer in _weighted_layers(model)}
        missing = sorted(wanted - set(named))
        if missing:
            raise WeightFileError(f"{source}: no weights for layer {missing[0]} ({len(missing)} layer(s) missing)")
        extra = sorted(set(named) - wanted)
        if extra:
            raise WeightFileError(f"{source}: layer {extra[0]} in the file does not exist in {model.name}")
        for name, values in named.items():
            if name == "normalization":
                values = _fix_published_normalization(values)
            _assign(model, name, values, source)
            loaded += 1
    else:
        ordinal: dict[str, int] = defaultdict(int)
        for layer in _weighted_layers(model):
            cls = _snake(type(layer).__name__)
            index = ordinal[cls]
            ordinal[cls] += 1
            saved = [v for v in entries.get(cls, [])]
            if index >= len(saved):
                raise WeightFileError(f"{source}: no weights for layer {layer.name} ({cls} #{index + 1} missing)")
            values = saved[index]
            if layer.name == "normalization":
                values = _fix_published_normalization(values)
            _assign(model, layer.name, values, source)
            loaded += 1
        for cls, saved in entries.items():
            with_vars = [v for v in saved if v]
            if len(with_vars) > ordinal.get(cls, 0) and cls in ordinal:
                raise WeightFileError(f"{source}: file has {len(with_vars)} {cls} layers, {model.name} has {ordinal[cls]}")
            if with_vars and cls not in ordinal:
                raise WeightFileError(f"{source}: file has {cls} layers, which {model.name} does not")
    return {"format": f"keras-{layout}", "layers": loaded}


def load_checkpoint_weights(model, arch, path) -> dict:
    """Load a PyTorch or safetensors checkpoint through the restricted reader and the name map."""
    from .checkpoint import read_checkpoint
    from .mapping import map_checkpoint

    tensors = read_checkpoint(path)
    mapped = map_checkpoint(tensors, arch)
    for name, values in mapped.items():
        _assign(model, name, values, str(path))
    return {"format": f"checkpoint ({mapped.naming})", "layers": len(mapped), "notes": list(mapped.notes)}


def load_weights(model, variant, path, *, arch=None) -> dict:
    """Load any supported weight file into ``model`` (built from ``variant``)."""
    path = Path(path)
    if not path.exists():
        raise InputFileError(path, "no such file")
    suffix = "".join(path.suffixes[-2:]).lower() if path.name.endswith(".weights.h5") else path.suffix.lower()
    if suffix in KERAS_SUFFIXES or suffix == ".weights.h5":
        return load_keras_weights(model, path)
    if path.suffix.lower() in CHECKPOINT_SUFFIXES:
        if arch is None:
            from ..family.architecture import architecture

            arch = architecture(variant, num_classes=_num_classes(model), include_top=_has_top(model),
                                resolution=model.input_shape[1])
        return load_checkpoint_weights(model, arch, path)
    raise InputFileError(path, f"unknown weight file type {path.suffix!r} (expected .weights.h5, .h5, "
                               f".pth, .pt, .bin, .safetensors or .npz)")


def _has_top(model) -> bool:
    return any(layer.name == "predictions" for layer in model.layers)


def _num_classes(model) -> int:
    return model.get_layer("predictions").units if _has_top(model) else 1000


def save_weights(model, path) -> Path:
    """Save weights (only) in the Keras 3 ``.weights.h5`` format, atomically."""
    from ..fsutil import atomic_output

    path = Path(path)
    if not path.name.endswith(".weights.h5"):
        raise InputFileError(path, "output name must end in .weights.h5")
    with atomic_output(path, keep_ending=True) as tmp:  # Keras checks the .weights.h5 ending
        model.save_weights(tmp)
    return path


def classifier_classes(path) -> int | None:
    """Number of classes of the classifier stored in a weight file (None: no classifier found).

    Lets a model be built to fit its weights (a 10-class fine-tune, ImageNet's 1000); a
    1001-class TF checkpoint counts as 1000, since its background class is dropped on import.
    """
    path = Path(path)
    name = path.name.lower()
    if name.endswith(KERAS_SUFFIXES) or name.endswith(".weights.h5"):
        layout, entries = read_keras_weights(path)
        if layout == "legacy":
            values = entries.get("predictions") or []
        else:
            dense = [v for v in entries.get("dense", []) if v]
            values = dense[-1] if dense else []
        return int(values[-1].shape[0]) if values else None
    from .checkpoint import read_checkpoint

    tensors = read_checkpoint(path)
    for key in ("_fc.bias", "classifier.bias", "fc.bias", "head.fc.bias"):
        if key in tensors:
            classes = int(tensors[key].shape[0])
            return 1000 if classes == 1001 else classes
    return None
