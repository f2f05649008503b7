"""Read pretrained weights from PyTorch, safetensors and npz files without torch, safely.

A PyTorch checkpoint is a pickle, and unpickling runs whatever callables the file names:
``torch.load`` on an untrusted ``.pth`` can execute arbitrary code. edgenet reads these
files with numpy only, through a *restricted* unpickler whose ``find_class`` resolves
an allow-list of globals (``collections.OrderedDict``, ``torch._utils._rebuild_tensor*``,
``torch._utils._rebuild_parameter*``, the ``torch.*Storage`` types and ``torch`` dtypes)
to small numpy-based stand-ins defined here. Any other global (``os.system``,
``builtins.eval``, a pickled model class, ...) raises :class:`UnsafeCheckpointError`
before anything is called. torch is never imported: a Raspberry Pi host can import
weights too.

Supported, detected from the content (not the extension):

* PyTorch zip format (``torch.save`` default since 1.6): ``<prefix>/data.pkl``, one
  ``<prefix>/data/<key>`` file per storage, optional ``<prefix>/byteorder``;
* PyTorch legacy format: magic number, protocol version and sys-info pickles, the object
  pickle, the list of storage keys, then each storage as an 8-byte little-endian element
  count followed by its little-endian data;
* safetensors (8-byte header length, JSON header, raw buffer);
* ``.npz`` (read with ``allow_pickle=False``).

Tensors are rebuilt lazily: the pickle yields placeholders, and only the tensors of the
selected state dict are read from the data region (storage offset and strides applied
with bounds checks, then copied, so no array aliases the file buffer). Common
wrappers are unwrapped (``state_dict``, ``model``, ``model_state``, ``ema``...),
``num_batches_tracked`` entries are dropped and a ``module.`` prefix (DataParallel) is
stripped. bfloat16 becomes float32 (numpy has no bfloat16).
"""

from __future__ import annotations

import _compat_pickle
import io
import json
import math
import pickle
import zipfile
from collections import OrderedDict
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from ..errors import EdgenetError, InputFileError, one_line

__all__ = ["UnsafeCheckpointError", "read_checkpoint", "TORCH_MAGIC", "ALLOWED_GLOBALS"]

TORCH_MAGIC = 0x1950A86A20F9469CFC6C  # torch.serialization.MAGIC_NUMBER (legacy format)
TORCH_PROTOCOL_VERSION = 1001
_ZIP_MAGIC = (b"PK\x03\x04", b"PK\x05\x06")
_MAX_SAFETENSORS_HEADER = 100 * 1024 * 1024

# Keys under which training scripts nest the tensor dict, in order of preference.
CONTAINER_KEYS = ("state_dict", "model_state", "model_state_dict", "model", "ema", "state_dict_ema", "model_ema")


class UnsafeCheckpointError(InputFileError):
    """The checkpoint's pickle names a global outside the allow-list; nothing was run."""

    def __init__(self, path, global_name: str):
        self.global_name = global_name
        super().__init__(
            path,
            f"refused to load global {global_name!r}: a checkpoint may only contain tensors and dicts "
            "(nothing from the file was run)",
        )


# --- element types -------------------------------------------------------------------------

# canonical name -> numpy dtype of the stored bytes (bfloat16 is read as its raw uint16 bits)
_ELEMENT_DTYPES: dict[str, str] = {
    "float64": "f8", "float32": "f4", "float16": "f2", "bfloat16": "u2",
    "int64": "i8", "int32": "i4", "int16": "i2", "int8": "i1",
    "uint64": "u8", "uint32": "u4", "uint16": "u2", "uint8": "u1", "bool": "?",
}
_STORAGE_NAMES = {
    "DoubleStorage": "float64", "FloatStorage": "float32", "HalfStorage": "float16", "BFloat16Storage": "bfloat16",
    "LongStorage": "int64", "IntStorage": "int32", "ShortStorage": "int16", "CharStorage": "int8",
    "ByteStorage": "uint8", "BoolStorage": "bool", "UntypedStorage": "uint8",
}
_TORCH_DTYPE_NAMES = {
    "float64": "float64", "double": "float64", "float32": "float32", "float": "float32",
    "float16": "float16", "half": "float16", "bfloat16": "bfloat16", "int64": "int64", "long": "int64",
    "int32": "int32", "int": "int32", "int16": "int16", "short": "int16", "int8": "int8", "uint8": "uint8",
    "uint16": "uint16", "uint32": "uint32", "uint64": "uint64", "bool": "bool",
}
_SAFETENSORS_DTYPES = {
    "F64": "float64", "F32": "float32", "F16": "float16", "BF16": "bfloat16", "I64": "int64", "I32": "int32",
    "I16": "int16", "I8": "int8", "U64": "uint64", "U32": "uint32", "U16": "uint16", "U8": "uint8", "BOOL": "bool",
}


def _raw_dtype(element: str, byteorder: str = "<") -> np.dtype:
    dtype = np.dtype(_ELEMENT_DTYPES[element])
    return dtype.newbyteorder(byteorder) if dtype.itemsize > 1 else dtype


def _to_native(array: np.ndarray, element: str) -> np.ndarray:
    """A C-contiguous, native-byte-order copy; bfloat16 bits become float32 (exact: bf16 is truncated f32)."""
    if element == "bfloat16":
        return np.ascontiguousarray((array.astype(np.uint32) << 16).view(np.float32))
    return array.astype(array.dtype.newbyteorder("="), order="C", copy=True)


class _Corrupt(Exception):
    """Malformed content found by our own checks (wrapped into InputFileError)."""


class _Sealed:
    """Refuses the pickle BUILD opcode (``__setstate__``), so no file can modify a stand-in."""

    __slots__ = ()

    def __setstate__(self, state):
        raise _Corrupt(f"the pickle tries to modify {type(self).__name__.lstrip('_')}")


# --- allow-listed stand-ins ------------------------------------------------------------------
# Frozen, slotted objects whose __setstate__ refuses: a pickle BUILD opcode cannot modify
# them, so one file cannot tamper with how the next one is read. (A frozen slotted
# dataclass would otherwise get a __setstate__ that rewrites its fields.)


@dataclass(frozen=True, slots=True)
class _StorageType(_Sealed):
    """Stand-in for ``torch.FloatStorage`` etc.: just names the element type."""

    __setstate__ = _Sealed.__setstate__  # explicit: dataclass(slots=True) would add its own

    name: str
    element: str


@dataclass(frozen=True, slots=True)
class _TorchDtype(_Sealed):
    """Stand-in for ``torch.float32`` etc. (passed to ``_rebuild_tensor_v3``)."""

    __setstate__ = _Sealed.__setstate__  # explicit: dataclass(slots=True) would add its own

    name: str
    element: str


@dataclass(frozen=True, slots=True)
class _Rebuild(_Sealed):
    """Stand-in for a ``torch._utils`` rebuild function, callable by the unpickler."""

    __setstate__ = _Sealed.__setstate__  # explicit: dataclass(slots=True) would add its own

    name: str
    fn: Callable

    def __call__(self, *args):
        return self.fn(*args)


class _Storage(_Sealed):
    """A storage placeholder from a persistent id; its bytes are fetched on first use."""

    __slots__ = ("key", "element", "numel", "base", "start", "loader", "_raw")

    def __init__(self, key: str, element: str, numel: int, loader=None, base=None, start: int = 0):
        self.key, self.element, self.numel = key, element, numel
        self.loader, self.base, self.start = loader, base, start
        self._raw = None

    def raw(self) -> memoryview:
        if self._raw is None:
            if self.base is not None:  # legacy storage view
                size = np.dtype(_ELEMENT_DTYPES[self.element]).itemsize
                root = self.base.raw()
                self._raw = root[self.start * size:(self.start + self.numel) * size]
            else:
                if self.loader is None:
                    raise _Corrupt(f"storage {self.key} has no data")
                self._raw = memoryview(self.loader())
            need = self.numel * np.dtype(_ELEMENT_DTYPES[self.element]).itemsize
            if len(self._raw) < need:
                raise _Corrupt(f"storage {self.key} is truncated: {len(self._raw)} of {need} bytes")
        return self._raw


class _Tensor(_Sealed):
    """A tensor placeholder: a strided view of a storage, materialised by :meth:`array`."""

    __slots__ = ("storage", "offset", "size", "stride", "element")

    def __init__(self, storage, offset, size, stride, element=None):
        if not isinstance(storage, _Storage):
            raise _Corrupt(f"tensor storage is a {type(storage).__name__}, not a storage")
        if not (_is_int(offset) and offset >= 0):
            raise _Corrupt(f"bad storage offset {offset!r}")
        if not (isinstance(size, (tuple, list)) and all(_is_int(s) and s >= 0 for s in size)):
            raise _Corrupt(f"bad tensor size {size!r}")
        if not (isinstance(stride, (tuple, list)) and len(stride) == len(size)
                and all(_is_int(s) and s >= 0 for s in stride)):
            raise _Corrupt(f"bad tensor stride {stride!r} for size {size!r}")
        self.storage, self.offset = storage, int(offset)
        self.size, self.stride = tuple(int(s) for s in size), tuple(int(s) for s in stride)
        self.element = element or storage.element

    def array(self, byteorder: str) -> np.ndarray:
        raw = self.storage.raw()
        dtype = _raw_dtype(self.element, byteorder)
        if self.element != self.storage.element:  # _rebuild_tensor_v3: reinterpret the bytes
            if len(raw) % dtype.itemsize:
                raise _Corrupt(f"storage {self.storage.key} is not a whole number of {self.element}")
        flat = np.frombuffer(raw, dtype=dtype, count=len(raw) // dtype.itemsize)
        if 0 in self.size:
            out = np.zeros(self.size, dtype=dtype)
        else:
            # as_strided reads memory unchecked: prove the view stays inside the storage.
            last = self.offset + sum((n - 1) * s for n, s in zip(self.size, self.stride, strict=True))
            if last >= flat.size:
                raise _Corrupt(
                    f"tensor of size {self.size} stride {self.stride} offset {self.offset} "
                    f"overruns storage {self.storage.key} ({flat.size} elements)"
                )
            base = flat[self.offset:]
            out = np.lib.stride_tricks.as_strided(
                base, shape=self.size, strides=tuple(s * dtype.itemsize for s in self.stride), writeable=False
            )
        return _to_native(out, self.element)


def _is_int(value) -> bool:
    return isinstance(value, int) and not isinstance(value, bool)


def _rebuild_tensor(storage, storage_offset, size, stride):
    return _Tensor(storage, storage_offset, size, stride)


def _rebuild_tensor_v2(storage, storage_offset, size, stride, requires_grad=False, backward_hooks=None,
                       metadata=None):
    return _Tensor(storage, storage_offset, size, stride)


def _rebuild_tensor_v3(storage, storage_offset, size, stride, requires_grad, backward_hooks, dtype,
                       metadata=None):
    if not isinstance(dtype, _TorchDtype):
        raise _Corrupt(f"_rebuild_tensor_v3 dtype is a {type(dtype).__name__}")
    return _Tensor(storage, storage_offset, size, stride, element=dtype.element)


def _rebuild_parameter(data, requires_grad=False, backward_hooks=None, state=None):
    if not isinstance(data, _Tensor):
        raise _Corrupt("a parameter holds no tensor")
    return data


def _allowed_globals() -> dict[tuple[str, str], object]:
    table: dict[tuple[str, str], object] = {("collections", "OrderedDict"): OrderedDict}
    for fn in (_rebuild_tensor, _rebuild_tensor_v2, _rebuild_tensor_v3, _rebuild_parameter):
        table[("torch._utils", fn.__name__)] = _Rebuild(fn.__name__, fn)
    table[("torch._utils", "_rebuild_parameter_with_state")] = _Rebuild("_rebuild_parameter_with_state",
                                                                        _rebuild_parameter)
    for name, element in _STORAGE_NAMES.items():
        table[("torch", name)] = _StorageType(name, element)
    # torch >= 2 pickles dtypes without a legacy storage class (uint16...) as UntypedStorage
    table[("torch.storage", "UntypedStorage")] = table[("torch", "UntypedStorage")]
    for name, element in _TORCH_DTYPE_NAMES.items():
        table[("torch", name)] = _TorchDtype(name, element)
    return table


ALLOWED_GLOBALS: dict[tuple[str, str], object] = _allowed_globals()
"""(module, name) -> stand-in: everything a checkpoint pickle may refer to."""


class _RestrictedUnpickler(pickle.Unpickler):
    """Resolves only :data:`ALLOWED_GLOBALS`; storages come from ``storage_for``."""

    def __init__(self, file, path, storage_for: Callable[[tuple], _Storage] | None = None):
        super().__init__(file)
        self._path, self._storage_for = path, storage_for

    def find_class(self, module, name):
        found = ALLOWED_GLOBALS.get((module, name))
        if found is None:
            # Name the global as Python 3 does (protocol 2 writes builtins as __builtin__).
            module = _compat_pickle.IMPORT_MAPPING.get(module, module)
            raise UnsafeCheckpointError(self._path, f"{module}.{name}")
        return found

    def persistent_load(self, pid):
        if self._storage_for is None:
            raise _Corrupt("unexpected persistent id")
        return self._storage_for(pid)


class _StorageTable:
    """The persistent-id handler: one placeholder per storage key."""

    def __init__(self, loader_for: Callable[[str, _Storage], Callable[[], bytes]] | None = None):
        self.storages: dict[str, _Storage] = {}
        self._loader_for = loader_for

    def __call__(self, pid) -> _Storage:
        if not (isinstance(pid, tuple) and len(pid) in (5, 6) and pid[0] in ("storage", b"storage")):
            raise _Corrupt(f"unknown persistent id {str(pid)[:60]!r}")
        storage_type, key, _location, numel = pid[1:5]
        view = pid[5] if len(pid) == 6 else None
        if not isinstance(storage_type, _StorageType):
            raise _Corrupt(f"storage type {storage_type!r} is not a torch storage type")
        key = key.decode() if isinstance(key, bytes) else key
        if not isinstance(key, str) or not _is_int(numel) or numel < 0:
            raise _Corrupt(f"bad storage id {str(pid)[:80]!r}")
        storage = self.storages.get(key)
        if storage is None:
            storage = _Storage(key, storage_type.element, int(numel))
            if self._loader_for is not None:
                storage.loader = self._loader_for(key, storage)
            self.storages[key] = storage
        elif storage.element != storage_type.element:
            raise _Corrupt(f"storage {key} is used as both {storage.element} and {storage_type.element}")
        if view is not None:  # legacy (pre-1.0) storage views: (view_key, offset, size)
            if not (isinstance(view, tuple) and len(view) == 3 and _is_int(view[1]) and _is_int(view[2])
                    and 0 <= view[1] and 0 <= view[2] and view[1] + view[2] <= storage.numel):
                raise _Corrupt(f"bad storage view {str(view)[:60]!r}")
            return _Storage(f"{key}[{view[1]}:{view[1] + view[2]}]", storage.element, view[2],
                            base=storage, start=view[1])
        return storage


# --- formats ---------------------------------------------------------------------------------


def _select_tensors(obj, path) -> dict[str, _Tensor]:
    """The tensor dict inside ``obj``: unwrap training containers, drop bookkeeping."""
    for _ in range(3):  # at most a couple of nesting levels, e.g. {"model": {"state_dict": ...}}
        if not isinstance(obj, dict):
            raise InputFileError(path, f"holds a {type(obj).__name__}, not a dict of tensors")
        if any(isinstance(v, _Tensor) for v in obj.values()):
            break
        inner = next((obj[k] for k in CONTAINER_KEYS if isinstance(obj.get(k), dict)), None)
        if inner is None:
            keys = ", ".join(repr(k) for k in list(obj)[:8]) or "none"
            raise InputFileError(path, f"no tensors found (top-level keys: {keys})")
        obj = inner
    tensors = {str(k): v for k, v in obj.items() if isinstance(v, _Tensor) and not str(k).endswith("num_batches_tracked")}
    if not tensors:
        raise InputFileError(path, "no tensors found")
    if all(k.startswith("module.") for k in tensors):
        tensors = {k[len("module."):]: v for k, v in tensors.items()}
    return tensors


def _materialise(obj, path, byteorder: str) -> dict[str, np.ndarray]:
    return {name: t.array(byteorder) for name, t in _select_tensors(obj, path).items()}


def _read_legacy(path: Path, data: bytes) -> dict[str, np.ndarray]:
    data = memoryview(data)
    f = io.BytesIO(data)
    magic = _RestrictedUnpickler(f, path).load()
    if magic != TORCH_MAGIC:
        raise InputFileError(path, "a pickle without the PyTorch magic number: not a PyTorch checkpoint")
    version = _RestrictedUnpickler(f, path).load()
    if version != TORCH_PROTOCOL_VERSION:
        raise InputFileError(path, f"unsupported PyTorch legacy protocol version {version!r}")
    _RestrictedUnpickler(f, path).load()  # sys_info; the legacy writer stores data little-endian anyway
    table = _StorageTable()
    obj = _RestrictedUnpickler(f, path, table).load()
    keys = _RestrictedUnpickler(f, path).load()
    if not (isinstance(keys, list) and all(isinstance(k, str) for k in keys)):
        raise _Corrupt("the storage key list is malformed")
    offset = f.tell()
    for key in keys:
        storage = table.storages.get(key)
        if storage is None:
            raise _Corrupt(f"storage {key} is listed but no tensor uses it")
        if offset + 8 > len(data):
            raise _Corrupt(f"truncated: data of storage {key} is missing")
        count = int.from_bytes(data[offset:offset + 8], "little", signed=True)
        nbytes = count * np.dtype(_ELEMENT_DTYPES[storage.element]).itemsize
        if count < 0 or offset + 8 + nbytes > len(data):
            raise _Corrupt(f"truncated: storage {key} needs {nbytes} bytes, {len(data) - offset - 8} left")
        chunk = data[offset + 8:offset + 8 + nbytes]
        storage.loader = lambda chunk=chunk: chunk
        offset += 8 + nbytes
    return _materialise(obj, path, "<")


def _read_torch_zip(path: Path, zf: zipfile.ZipFile, pickle_name: str) -> dict[str, np.ndarray]:
    prefix = pickle_name[: -len("data.pkl")]
    names = set(zf.namelist())
    byteorder = "<"
    if prefix + "byteorder" in names:
        text = zf.read(prefix + "byteorder").decode("ascii", "replace").strip()
        if text not in ("little", "big"):
            raise _Corrupt(f"unknown byteorder {text!r}")
        byteorder = "<" if text == "little" else ">"

    def loader_for(key: str, storage: _Storage):
        member = f"{prefix}data/{key}"

        def load() -> bytes:
            try:
                info = zf.getinfo(member)
            except KeyError:
                raise _Corrupt(f"storage file {member} is missing") from None
            need = storage.numel * np.dtype(_ELEMENT_DTYPES[storage.element]).itemsize
            if info.file_size < need:
                raise _Corrupt(f"storage file {member} has {info.file_size} bytes, needs {need}")
            return zf.read(member)

        return load

    with zf.open(pickle_name) as f:
        obj = _RestrictedUnpickler(io.BytesIO(f.read()), path, _StorageTable(loader_for)).load()
    return _materialise(obj, path, byteorder)


def _read_npz(path: Path, data: bytes) -> dict[str, np.ndarray]:
    with np.load(io.BytesIO(data), allow_pickle=False) as npz:
        return {name: np.array(npz[name]) for name in npz.files}


def _read_safetensors(path: Path, data: bytes) -> dict[str, np.ndarray]:
    data = memoryview(data)
    size = int.from_bytes(data[:8], "little")
    if size > min(len(data) - 8, _MAX_SAFETENSORS_HEADER):
        raise _Corrupt(f"truncated: header of {size} bytes, file has {len(data)}")
    try:
        header = json.loads(bytes(data[8:8 + size]))
    except (UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise _Corrupt(f"bad safetensors header: {exc}") from None
    if not isinstance(header, dict):
        raise _Corrupt("bad safetensors header: not a JSON object")
    buffer = data[8 + size:]
    out: dict[str, np.ndarray] = {}
    for name, info in header.items():
        if name == "__metadata__":
            continue
        try:
            kind, shape, (begin, end) = info["dtype"], info["shape"], info["data_offsets"]
        except (TypeError, KeyError, ValueError):
            raise _Corrupt(f"bad header entry for {name}") from None
        if kind not in _SAFETENSORS_DTYPES:
            raise _Corrupt(f"tensor {name} has unsupported dtype {kind}")
        if not (isinstance(shape, list) and all(_is_int(n) and n >= 0 for n in shape)):
            raise _Corrupt(f"tensor {name} has a bad shape {shape!r}")
        element = _SAFETENSORS_DTYPES[kind]
        dtype = _raw_dtype(element, "<")
        count = math.prod(shape)
        if not (_is_int(begin) and _is_int(end) and 0 <= begin <= end <= len(buffer)):
            raise _Corrupt(f"truncated: tensor {name} lies outside the data ({begin}..{end} of {len(buffer)})")
        if end - begin != count * dtype.itemsize:
            raise _Corrupt(f"tensor {name}: {end - begin} bytes for shape {tuple(shape)} {kind}")
        flat = np.frombuffer(buffer, dtype=dtype, count=count, offset=begin)
        out[name] = _to_native(flat.reshape(shape), element)
    return out


#: The largest checkpoint edgenet reads (B7 is about 260 MB).
MAX_CHECKPOINT_BYTES = 2 << 30


def read_checkpoint(path, data: bytes | None = None) -> dict[str, np.ndarray]:
    """Every tensor of a checkpoint as ``{name: numpy array}``, in file order, without torch.

    The file is read once, through the one reader of users' files (regular files only, at most
    :data:`MAX_CHECKPOINT_BYTES`), and parsed from those bytes; ``data`` passes bytes already read
    (and verified: :func:`edgenet.weights.fetch.read_verified`), so what is parsed is what was checked.
    Raises :class:`UnsafeCheckpointError` when the pickle refers to anything but tensors
    and dicts, and :class:`~edgenet.errors.InputFileError` for a missing, truncated or
    unknown file.
    """
    from ..fsutil import read_input_bytes

    path = Path(path)
    if data is None:
        try:
            data = read_input_bytes(path, "a checkpoint file", MAX_CHECKPOINT_BYTES)
        except InputFileError as exc:
            if not exc.cause.startswith("empty file"):
                raise
            data = b""
    head = data[:16]
    if len(head) < 8:
        raise InputFileError(path, f"too short to be a checkpoint ({len(head)} bytes)")
    try:
        if head[:4] in _ZIP_MAGIC:
            return _read_zip(path, data)
        if head[0] == 0x80:  # pickle PROTO opcode: the legacy torch.save format
            return _read_legacy(path, data)
        if head[8:9] == b"{":
            return _read_safetensors(path, data)
    except EdgenetError:
        raise
    except _Corrupt as exc:
        raise InputFileError(path, one_line(exc, None)) from None
    except Exception as exc:  # untrusted bytes: any parser failure means a corrupt file
        cause = f"corrupt or truncated checkpoint ({type(exc).__name__}: {exc})"
        raise InputFileError(path, one_line(cause, None)) from None
    raise InputFileError(path, "unknown checkpoint format (expected PyTorch .pth/.pt, .safetensors or .npz)")


def _read_zip(path: Path, data: bytes) -> dict[str, np.ndarray]:
    try:
        zf = zipfile.ZipFile(io.BytesIO(data))
    except zipfile.BadZipFile as exc:
        raise _Corrupt(f"truncated or corrupt zip archive ({exc})") from None
    with zf:
        names = zf.namelist()
        pickles = [n for n in names if n == "data.pkl" or (n.endswith("/data.pkl") and n.count("/") == 1)]
        if len(pickles) == 1:
            return _read_torch_zip(path, zf, pickles[0])
        if names and all(n.endswith(".npy") for n in names):
            return _read_npz(path, data)
    raise _Corrupt("a zip archive that is neither a PyTorch checkpoint (no data.pkl) nor an .npz file")


