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

import os
import re
from collections import defaultdict
from contextlib import contextmanager
from pathlib import Path

import numpy as np

from ..errors import EdgenetError, InputFileError, format_path
from ..fsutil import atomic_output
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


#: HDF5 filters a weight file may use: deflate, shuffle, fletcher32, szip, nbit, scale-offset, lzf.
#: Any other filter id would make HDF5 load a plugin library from HDF5_PLUGIN_PATH.
SAFE_HDF5_FILTERS = frozenset({1, 2, 3, 4, 5, 6, 32000})

_OUTSIDE = "edgenet reads only data stored inside the weight file"


class StoredArray:
    """A dataset checked to live inside the file; read only after its shape was checked against the model."""

    __slots__ = ("name", "shape", "dtype", "_dataset", "_path")

    def __init__(self, dataset, path: Path):
        self.name, self.shape, self.dtype, self._dataset = dataset.name, tuple(dataset.shape), dataset.dtype, dataset
        self._path = path

    def read(self) -> np.ndarray:
        try:
            return np.asarray(self._dataset[()])
        except (OSError, ValueError, TypeError, RuntimeError) as exc:
            raise InputFileError(self._path, f"{self.name}: cannot read the data ({_first_line(exc)})") from None


class _SafeReader:
    """Walks an HDF5 file one link at a time; refuses anything that reaches outside it.

    Only hard links are followed (soft, external and user-defined links are refused, so a
    dangling link or a link into another file is one line, never a ``KeyError`` or a read of
    another file); datasets must be plain numbers stored in the file: not virtual, no external
    raw storage, no filter plugin, and a contiguous dataset cannot declare more bytes than the file has.
    """

    def __init__(self, h5, path: Path):
        import h5py

        self.h5py, self.h5, self.path = h5py, h5, path
        self.file_bytes = path.stat().st_size

    def fail(self, where: str, cause: str) -> InputFileError:
        return InputFileError(self.path, f"{where}: {cause}")

    def child(self, group, name: str):
        """``group[name]`` for a path of one or more components, following hard links only (None: absent)."""
        node = group
        for part in [p for p in str(name).split("/") if p]:
            link = node.get(part, getlink=True)
            where = f"{node.name.rstrip('/')}/{part}"
            if link is None:
                return None
            if isinstance(link, self.h5py.ExternalLink):
                raise self.fail(where, f"external link to {link.filename}:{link.path}; {_OUTSIDE}")
            if isinstance(link, self.h5py.SoftLink):
                raise self.fail(where, f"soft link to {link.path}; {_OUTSIDE} as plain datasets")
            if not isinstance(link, self.h5py.HardLink):
                raise self.fail(where, f"link of an unsupported kind; {_OUTSIDE}")
            node = node[part]
        return node

    def group(self, parent, name: str):
        node = self.child(parent, name)
        if node is not None and not isinstance(node, self.h5py.Group):
            raise self.fail(node.name, "expected a group, found a dataset")
        return node

    def dataset(self, parent, name: str) -> StoredArray:
        node = self.child(parent, name)
        where = f"{parent.name.rstrip('/')}/{name}"
        if node is None:
            raise self.fail(where, "no such dataset")
        if not isinstance(node, self.h5py.Dataset):
            raise self.fail(where, "expected a dataset, found a group")
        if node.is_virtual:
            raise self.fail(where, f"virtual dataset (its data lives in other files); {_OUTSIDE}")
        plist = node.id.get_create_plist()
        if plist.get_external_count():
            raise self.fail(where, f"external raw storage in another file; {_OUTSIDE}")
        for index in range(plist.get_nfilters()):
            filter_id = plist.get_filter(index)[0]
            if filter_id not in SAFE_HDF5_FILTERS:
                raise self.fail(where, f"uses HDF5 filter {filter_id}, which would load a plugin library")
        dtype = node.dtype
        if dtype.kind not in "fiub" or dtype.fields is not None or dtype.subdtype is not None:
            raise self.fail(where, f"holds {dtype}, not numbers")
        declared = int(np.prod(node.shape, dtype=np.float64) * dtype.itemsize)
        if node.chunks is None and declared > self.file_bytes:
            raise self.fail(where, f"declares {declared} bytes of data but the file has only {self.file_bytes}")
        return StoredArray(node, self.path)


def _keras3_entries(reader: _SafeReader) -> dict[str, list[list[StoredArray]]]:
    """Class name -> per-instance weight lists, in saved order."""
    by_class: dict[str, list[tuple[int, list[StoredArray]]]] = defaultdict(list)
    layers = reader.group(reader.h5, "layers")
    for key in layers.keys():
        group = reader.group(layers, key)
        match = re.match(r"^(.*?)(?:_(\d+))?$", key)
        cls, ordinal = match.group(1), int(match.group(2) or 0)
        values = []
        vars_ = reader.group(group, "vars")
        if vars_ is not None:
            values = [reader.dataset(vars_, str(i)) for i in range(len(vars_))]
        by_class[cls].append((ordinal, values))
    return {cls: [v for _, v in sorted(items, key=lambda t: t[0])] for cls, items in by_class.items()}


def _legacy_entries(reader: _SafeReader) -> dict[str, list[StoredArray]]:
    def text(v):
        return v.decode("utf8") if isinstance(v, bytes) else str(v)

    out = {}
    group = reader.group(reader.h5, "model_weights") or reader.h5
    for layer_name in (text(n) for n in group.attrs["layer_names"]):
        g = reader.group(group, layer_name)
        if g is None:
            raise reader.fail(f"{group.name.rstrip('/')}/{layer_name}", "layer listed in layer_names has no group")
        out[layer_name] = [reader.dataset(g, text(w)) for w in g.attrs.get("weight_names", [])]
    return out


@contextmanager
def open_keras_weights(path):
    """Open a Keras weight file: yields ("keras3", by class) or ("legacy", by name) of :class:`StoredArray`.

    Nothing is read but the file's structure; arrays are read by ``StoredArray.read`` while the
    file is open. Any structural problem is one :class:`InputFileError` naming the file.
    """
    import io

    import h5py

    from .fetch import read_verified

    path = Path(path)
    # The file is read once (regular files only, bounded) and parsed from those bytes, which are
    # checked against the registry when they come from the cache: what is loaded is what was verified.
    data = read_verified(path)
    try:
        h5 = h5py.File(io.BytesIO(data), "r")
    except OSError as exc:
        raise InputFileError(path, f"not a readable HDF5 weight file ({str(exc).splitlines()[0]})") from None
    with h5:
        reader = _SafeReader(h5, path)
        try:
            if reader.group(h5, "layers") is not None:
                entries = ("keras3", _keras3_entries(reader))
            else:
                root = reader.group(h5, "model_weights") or h5
                if "layer_names" not in root.attrs:
                    raise InputFileError(path, "HDF5 file holds neither Keras 3 nor legacy Keras weights")
                entries = ("legacy", _legacy_entries(reader))
        except (OSError, KeyError, ValueError, TypeError, RuntimeError) as exc:
            if isinstance(exc, EdgenetError):
                raise
            raise InputFileError(path, f"malformed HDF5 weight file ({_first_line(exc)})") from None
        yield entries


def _first_line(exc: BaseException) -> str:
    lines = str(exc).strip().splitlines()
    return (lines[0] if lines else type(exc).__name__)[:200]


def read_keras_weights(path) -> tuple[str, dict]:
    """Read a whole Keras weight file as plain arrays (tests and tools; loading uses :func:`open_keras_weights`)."""
    with open_keras_weights(path) as (layout, entries):
        if layout == "legacy":
            return layout, {k: [v.read() for v in vs] for k, vs in entries.items()}
        return layout, {k: [[v.read() for v in vs] for vs in items] for k, items in entries.items()}


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


def _assign(model, layer_name: str, values: list, source: str, transform=None) -> None:
    """Check shapes against the model BEFORE reading a byte, then read, check the values, assign."""
    layer = model.get_layer(layer_name)
    expected = [tuple(w.shape) for w in layer.weights]
    found = [tuple(v.shape) for v in values]
    if expected != found:
        raise WeightFileError(
            f"{source}: layer {layer_name} has weights of shape {found}, the model expects {expected}"
        )
    arrays = [v.read() if isinstance(v, StoredArray) else np.asarray(v) for v in values]
    if transform is not None:
        arrays = transform(arrays)
    for array, weight in zip(arrays, layer.weights, strict=True):
        if array.dtype.kind in "fc" and not np.isfinite(array).all():
            bad = int(array.size - np.isfinite(array).sum())
            raise WeightFileError(f"{source}: layer {layer_name} weight {weight.name} holds {bad} NaN or infinite "
                                  "value(s); refusing to load them")
    layer.set_weights(arrays)


def _weighted_layers(model):
    return [layer for layer in model.layers if layer.weights]


def load_keras_weights(model, path) -> dict:
    """Load a Keras weight file into ``model`` by layer name (legacy) or class position (Keras 3)."""
    with open_keras_weights(path) as (layout, entries):
        return _load_entries(model, layout, entries, format_path(path))


def _load_entries(model, layout: str, entries: dict, source: str) -> dict:
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
            fix = _fix_published_normalization if name == "normalization" else None
            _assign(model, name, values, source, fix)
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
            fix = _fix_published_normalization if layer.name == "normalization" else None
            _assign(model, layer.name, saved[index], source, fix)
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
    from .fetch import read_verified
    from .mapping import WeightMappingError, map_checkpoint
    from .registry import checkpoint_bn_eps

    tensors = read_checkpoint(path, read_verified(path))
    try:
        # A registry file (e.g. timm's tf_ ports, trained with TF's epsilon) says how it was trained.
        mapped = map_checkpoint(tensors, arch, bn_eps_source=checkpoint_bn_eps(path))
    except WeightMappingError as exc:
        raise WeightFileError(f"{format_path(path)}: {exc}") from None
    for name, values in mapped.items():
        _assign(model, name, values, format_path(path))
    return {"format": f"checkpoint ({mapped.naming})", "layers": len(mapped), "notes": list(mapped.notes)}


def load_weights(model, variant, path, *, arch=None) -> dict:
    """Load any supported weight file into ``model`` (built from ``variant``)."""
    path = Path(path)
    if not os.path.lexists(path):
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
        with open_keras_weights(path) as (layout, entries):
            if layout == "legacy":
                values = entries.get("predictions") or []
            else:
                dense = [v for v in entries.get("dense", []) if v]
                values = dense[-1] if dense else []
            return int(values[-1].shape[0]) if values and values[-1].shape else None
    from .checkpoint import read_checkpoint
    from .fetch import read_verified

    tensors = read_checkpoint(path, read_verified(path))
    for key in ("_fc.bias", "classifier.bias", "fc.bias", "head.fc.bias"):
        if key in tensors:
            classes = int(tensors[key].shape[0])
            return 1000 if classes == 1001 else classes
    return None
