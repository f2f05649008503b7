"""read_checkpoint: PyTorch legacy/zip, safetensors and npz without torch, and refusing code.

Checkpoints are built here opcode by opcode (as torch.save writes them), so the tests
need no torch; the reader was also cross-checked against torch 2.13's own files.
"""

from __future__ import annotations

import builtins
import json
import os
import pickle
import struct
import sys
import zipfile
from pathlib import Path

import numpy as np
import pytest

from edgenet.errors import EdgenetError, InputFileError
from edgenet.weights.checkpoint import ALLOWED_GLOBALS, TORCH_MAGIC, UnsafeCheckpointError, read_checkpoint

# --- a minimal pickle writer (protocol 2 opcodes, as torch.save emits) -------------------------

def g(module: str, name: str) -> bytes:
    return f"c{module}\n{name}\n".encode()


def s(text: str) -> bytes:
    data = text.encode()
    return b"X" + struct.pack("<I", len(data)) + data


def i(n: int) -> bytes:
    return b"J" + struct.pack("<i", n)


def tup(*items: bytes) -> bytes:
    return b"(" + b"".join(items) + b"t"


def odict(items) -> bytes:
    return g("collections", "OrderedDict") + b")R(" + b"".join(s(k) + v for k, v in items) + b"u"


def storage(key: str, numel: int, kind: str = "FloatStorage", legacy: bool = False, view=None) -> bytes:
    extra = ()
    if legacy:
        extra = (b"N" if view is None else tup(s(view[0]), i(view[1]), i(view[2])),)
    return tup(s("storage"), g("torch", kind), s(key), s("cpu"), i(numel), *extra) + b"Q"


def tensor(stor: bytes, offset: int, size, stride) -> bytes:
    hooks = g("collections", "OrderedDict") + b")R"
    args = tup(stor, i(offset), tup(*map(i, size)), tup(*map(i, stride)), b"\x89", hooks)
    return g("torch._utils", "_rebuild_tensor_v2") + args + b"R"


def pickled(body: bytes) -> bytes:
    return b"\x80\x02" + body + b"."


def write_legacy(path: Path, obj_pickle: bytes, storages: dict[str, np.ndarray]) -> Path:
    out = bytearray()
    for header in (TORCH_MAGIC, 1001, {"protocol_version": 1001, "little_endian": True,
                                       "type_sizes": {"short": 2, "int": 4, "long": 8}}):
        out += pickle.dumps(header, protocol=2)
    out += obj_pickle + pickle.dumps(list(storages), protocol=2)
    for data in storages.values():
        out += struct.pack("<q", data.size) + data.astype(data.dtype.newbyteorder("<")).tobytes()
    path.write_bytes(bytes(out))
    return path


def write_zip(path: Path, obj_pickle: bytes, storages: dict[str, np.ndarray], byteorder: str = "little",
              prefix: str = "archive") -> Path:
    order = "<" if byteorder == "little" else ">"
    with zipfile.ZipFile(path, "w") as zf:
        zf.writestr(f"{prefix}/data.pkl", obj_pickle)
        zf.writestr(f"{prefix}/byteorder", byteorder)
        for key, data in storages.items():
            zf.writestr(f"{prefix}/data/{key}", data.astype(data.dtype.newbyteorder(order)).tobytes())
        zf.writestr(f"{prefix}/version", "3\n")
    return path


# --- a checkpoint covering dtypes, strides, offsets and shared storage --------------------------

BASE = np.arange(24, dtype=np.float32)
HALF = np.array([0.5, -1.25, 3.0, 65504.0, -0.0, 2.0], dtype=np.float16)
LONG = np.array([1, -2, 2**40], dtype=np.int64)
BF16_VALUES = np.array([1.5, -2.0, 3.140625, 0.0], dtype=np.float32)
BF16_BITS = (BF16_VALUES.view(np.uint32) >> 16).astype(np.uint16)


def _body(legacy: bool) -> bytes:
    st = lambda key, n, kind="FloatStorage": storage(key, n, kind, legacy)  # noqa: E731
    return odict([
        ("conv.weight", tensor(st("0", 24), 0, (2, 3, 2, 2), (12, 4, 2, 1))),
        ("transposed", tensor(st("0", 24), 0, (6, 4), (1, 6))),  # non-contiguous view of storage 0
        ("row", tensor(st("0", 24), 6, (6,), (1,))),  # offset view sharing storage 0
        ("column", tensor(st("0", 24), 2, (4,), (6,))),
        ("half", tensor(st("1", 6, "HalfStorage"), 0, (2, 3), (3, 1))),
        ("long", tensor(st("2", 3, "LongStorage"), 0, (3,), (1,))),
        ("bf16", tensor(st("3", 4, "BFloat16Storage"), 0, (4,), (1,))),
        ("scalar", tensor(st("0", 24), 5, (), ())),
        ("bn.num_batches_tracked", tensor(st("2", 3, "LongStorage"), 0, (), ())),
    ])


STORAGES = {"0": BASE, "1": HALF, "2": LONG, "3": BF16_BITS}


def _check_round_trip(d: dict[str, np.ndarray]) -> None:
    assert list(d) == ["conv.weight", "transposed", "row", "column", "half", "long", "bf16", "scalar"]
    grid = BASE.reshape(4, 6)
    np.testing.assert_array_equal(d["conv.weight"], BASE.reshape(2, 3, 2, 2))
    np.testing.assert_array_equal(d["transposed"], grid.T)
    np.testing.assert_array_equal(d["row"], grid[1])
    np.testing.assert_array_equal(d["column"], grid[:, 2])
    np.testing.assert_array_equal(d["half"], HALF.reshape(2, 3))
    np.testing.assert_array_equal(d["long"], LONG)
    np.testing.assert_array_equal(d["bf16"], BF16_VALUES)
    assert d["scalar"].shape == () and d["scalar"] == 5.0
    assert d["conv.weight"].dtype == np.float32 and d["half"].dtype == np.float16
    assert d["long"].dtype == np.int64 and d["bf16"].dtype == np.float32
    for array in d.values():
        assert array.dtype.isnative
    d["row"][0] = -1  # copies, not views of one buffer: writing one leaves the others alone
    assert d["transposed"][0, 1] == 6 and d["column"][1] == 8


def test_legacy_round_trip(tmp_path):
    path = write_legacy(tmp_path / "legacy.pth", pickled(_body(legacy=True)), STORAGES)
    _check_round_trip(read_checkpoint(path))


@pytest.mark.parametrize("byteorder", ["little", "big"])
def test_zip_round_trip(tmp_path, byteorder):
    path = write_zip(tmp_path / "new.pt", pickled(_body(legacy=False)), STORAGES, byteorder)
    _check_round_trip(read_checkpoint(path))


def test_zip_archive_prefix_is_the_file_stem(tmp_path):
    # torch.save names the archive folder after the file (e.g. "resnet/data.pkl").
    path = write_zip(tmp_path / "resnet.pth", pickled(_body(legacy=False)), STORAGES, prefix="resnet")
    _check_round_trip(read_checkpoint(path))


def test_legacy_storage_view(tmp_path):
    view = storage("0", 24, legacy=True, view=("0v", 10, 4))
    body = odict([("v", tensor(view, 1, (2,), (2,)))])
    d = read_checkpoint(write_legacy(tmp_path / "view.pth", pickled(body), {"0": BASE}))
    np.testing.assert_array_equal(d["v"], [11.0, 13.0])


def test_untyped_storage_with_rebuild_v3(tmp_path):
    # torch >= 2 writes dtypes without a legacy storage class (uint16...) this way.
    values = np.array([1, 65535, 7], dtype=np.uint16)
    stor = tup(s("storage"), g("torch.storage", "UntypedStorage"), s("0"), s("cpu"), i(6)) + b"Q"
    hooks = g("collections", "OrderedDict") + b")R"
    body = odict([("u", g("torch._utils", "_rebuild_tensor_v3")
                   + tup(stor, i(0), tup(i(3)), tup(i(1)), b"\x89", hooks, g("torch", "uint16")) + b"R")])
    d = read_checkpoint(write_zip(tmp_path / "u16.pt", pickled(body), {"0": values.view(np.uint8)}))
    assert d["u"].dtype == np.uint16
    np.testing.assert_array_equal(d["u"], values)


def test_parameters_containers_and_module_prefix(tmp_path):
    param = g("torch._utils", "_rebuild_parameter") + tup(
        tensor(storage("0", 24), 0, (4,), (1,)), b"\x88", g("collections", "OrderedDict") + b")R") + b"R"
    inner = odict([("module.fc.weight", param), ("module.fc.bias", tensor(storage("0", 24), 4, (2,), (1,)))])
    outer = b"}(" + s("epoch") + i(7) + s("state_dict") + inner + s("arch") + s("b0") + b"u"
    d = read_checkpoint(write_zip(tmp_path / "wrapped.pt", pickled(outer), {"0": BASE}))
    assert list(d) == ["fc.weight", "fc.bias"]
    np.testing.assert_array_equal(d["fc.bias"], [4.0, 5.0])


# --- safety -------------------------------------------------------------------------------------

class _Payload:
    """Pickles as a call of ``func(arg)``: what a malicious checkpoint does."""

    def __init__(self, func, arg):
        self.func, self.arg = func, arg

    def __reduce__(self):
        return (self.func, (self.arg,))


def _payloads(marker: Path):
    return {
        "os.system": _Payload(os.system, f"touch {marker}"),
        "builtins.exec": _Payload(builtins.exec, f"open({str(marker)!r}, 'w').close()"),
        "builtins.eval": _Payload(builtins.eval, f"open({str(marker)!r}, 'w').close()"),
    }


def _refused_name(func) -> str:
    return f"{func.__module__}.{func.__qualname__}"  # os.system pickles as posix.system


@pytest.mark.parametrize("payload", ["os.system", "builtins.exec", "builtins.eval"])
@pytest.mark.parametrize("where", ["legacy", "legacy-magic", "legacy-in-state-dict", "zip", "zip-protocol4"])
def test_malicious_checkpoint_is_refused_and_runs_nothing(tmp_path, payload, where):
    marker = tmp_path / "pwned"
    evil = _payloads(marker)[payload]
    evil_pickle = pickle.dumps(evil, protocol=4 if where.endswith("protocol4") else 2)
    path = tmp_path / "evil.pth"
    if where == "legacy":
        write_legacy(path, evil_pickle, {})
    elif where == "legacy-magic":
        path.write_bytes(evil_pickle)  # a bare pickle: refused before the magic number is checked
    elif where == "legacy-in-state-dict":
        body = odict([("ok", tensor(storage("0", 24, legacy=True), 0, (2,), (1,))),
                      ("bad", evil_pickle[2:-1])])  # splice the payload in as a value
        write_legacy(path, pickled(body), {"0": BASE})
    else:
        write_zip(path, evil_pickle, {})
    with pytest.raises(UnsafeCheckpointError) as info:
        read_checkpoint(path)
    message = str(info.value)
    assert "\n" not in message and str(path) in message
    assert repr(_refused_name(evil.func)) in message
    assert not marker.exists()


def test_refused_global_message(tmp_path):
    path = write_zip(tmp_path / "evil.pt", pickled(g("subprocess", "Popen") + tup(s("ls")) + b"R"), {})
    with pytest.raises(EdgenetError, match=r"evil\.pt: refused to load global 'subprocess\.Popen'"):
        read_checkpoint(path)


def test_pickled_module_object_is_refused(tmp_path):
    # torch.save(model) pickles the class itself: edgenet needs a state dict.
    body = g("copyreg", "_reconstructor") + tup(g("torch.nn.modules.linear", "Linear"), g("builtins", "object"),
                                                b"N") + b"R"
    with pytest.raises(UnsafeCheckpointError, match="copyreg._reconstructor"):
        read_checkpoint(write_zip(tmp_path / "module.pt", pickled(body), {}))


def test_stand_ins_cannot_be_modified_by_a_pickle(tmp_path):
    # BUILD on an allowed global would otherwise change how the *next* file is read.
    body = g("torch", "FloatStorage") + b"N}" + s("element") + s("int8") + b"s\x86b"
    with pytest.raises(InputFileError, match="modify"):
        read_checkpoint(write_zip(tmp_path / "tamper.pt", pickled(body), {}))
    assert ALLOWED_GLOBALS[("torch", "FloatStorage")].element == "float32"
    _check_round_trip(read_checkpoint(write_zip(tmp_path / "ok.pt", pickled(_body(False)), STORAGES)))


def test_strides_outside_the_storage_are_refused(tmp_path):
    # as_strided reads memory unchecked: a lying stride must not leak or crash.
    body = odict([("x", tensor(storage("0", 24), 20, (3, 3), (3, 1)))])
    with pytest.raises(InputFileError, match="overruns storage 0"):
        read_checkpoint(write_zip(tmp_path / "oob.pt", pickled(body), {"0": BASE}))


# --- other formats and errors -------------------------------------------------------------------

def _write_safetensors(path: Path, tensors: dict[str, tuple[str, np.ndarray]]) -> Path:
    header, chunks, offset = {"__metadata__": {"format": "pt"}}, [], 0
    for name, (kind, data) in tensors.items():
        raw = data.astype(data.dtype.newbyteorder("<")).tobytes()
        header[name] = {"dtype": kind, "shape": list(data.shape), "data_offsets": [offset, offset + len(raw)]}
        chunks.append(raw)
        offset += len(raw)
    text = json.dumps(header).encode()
    path.write_bytes(struct.pack("<Q", len(text)) + text + b"".join(chunks))
    return path


def test_safetensors(tmp_path):
    f32 = np.arange(6, dtype=np.float32).reshape(2, 3)
    path = _write_safetensors(tmp_path / "m.safetensors", {
        "w": ("F32", f32), "h": ("F16", HALF), "b": ("BF16", BF16_BITS), "d": ("F64", np.array([1.5])),
        "l": ("I64", LONG), "i": ("I32", np.array([-7], np.int32)), "c": ("I8", np.array([-1, 2], np.int8)),
        "u": ("U8", np.array([255], np.uint8)), "m": ("BOOL", np.array([True, False])),
    })
    d = read_checkpoint(path)
    assert list(d) == ["w", "h", "b", "d", "l", "i", "c", "u", "m"]
    np.testing.assert_array_equal(d["w"], f32)
    np.testing.assert_array_equal(d["h"], HALF)
    np.testing.assert_array_equal(d["b"], BF16_VALUES)
    assert d["b"].dtype == np.float32 and d["m"].dtype == np.bool_ and d["l"].dtype == np.int64
    np.testing.assert_array_equal(d["l"], LONG)
    path.write_bytes(path.read_bytes()[:-10])
    with pytest.raises(InputFileError, match="truncated"):
        read_checkpoint(path)


def test_npz(tmp_path):
    np.savez(tmp_path / "w.npz", a=np.ones((2, 2), np.float32), b=np.arange(3))
    d = read_checkpoint(tmp_path / "w.npz")
    assert list(d) == ["a", "b"] and d["a"].shape == (2, 2)
    np.savez(tmp_path / "obj.npz", a=np.array([{"x": 1}], dtype=object))
    with pytest.raises(InputFileError, match="obj.npz"):
        read_checkpoint(tmp_path / "obj.npz")


def test_input_errors(tmp_path):
    with pytest.raises(InputFileError, match="missing.pth: no such file"):
        read_checkpoint(tmp_path / "missing.pth")
    (tmp_path / "empty.pth").write_bytes(b"")
    with pytest.raises(InputFileError, match="too short"):
        read_checkpoint(tmp_path / "empty.pth")
    (tmp_path / "text.pth").write_bytes(b"hello, this is not a checkpoint at all")
    with pytest.raises(InputFileError, match="unknown checkpoint format"):
        read_checkpoint(tmp_path / "text.pth")
    (tmp_path / "magic.pth").write_bytes(pickle.dumps(12345, protocol=2) + b"\0" * 16)
    with pytest.raises(InputFileError, match="magic number"):
        read_checkpoint(tmp_path / "magic.pth")
    with zipfile.ZipFile(tmp_path / "other.zip", "w") as zf:
        zf.writestr("readme.txt", "hi")
    with pytest.raises(InputFileError, match="no data.pkl"):
        read_checkpoint(tmp_path / "other.zip")


@pytest.mark.parametrize("fraction", [0.05, 0.5, 0.97])
def test_truncated_files(tmp_path, fraction):
    for name, writer in (("legacy.pth", write_legacy), ("zip.pth", write_zip)):
        path = writer(tmp_path / name, pickled(_body(name.startswith("legacy"))), STORAGES)
        data = path.read_bytes()
        path.write_bytes(data[: int(len(data) * fraction)])
        with pytest.raises(InputFileError) as info:
            read_checkpoint(path)
        assert "\n" not in str(info.value) and str(path) in str(info.value)


# --- the real EfficientNet-Lite0 checkpoint (legacy format, efficientnet-pytorch naming) --------

def test_real_lite0_checkpoint(lite0_checkpoint):
    d = read_checkpoint(lite0_checkpoint)
    assert len(d) == 247  # 49 batch norms' num_batches_tracked dropped
    assert next(iter(d)) == "_conv_stem.weight" and d["_conv_stem.weight"].shape == (32, 3, 3, 3)
    assert list(d)[-2:] == ["_fc.weight", "_fc.bias"] and d["_fc.weight"].shape == (1000, 1280)
    assert {a.dtype for a in d.values()} == {np.dtype(np.float32)}
    # Its conv and fc weights are stored column-major (stride (1, 32, 288, 96) for the stem: a TF
    # port); the reader applies the strides and returns C-contiguous arrays.
    assert all(a.flags.c_contiguous for a in d.values())
    assert sum(a.size for a in d.values()) == 4_694_024
    assert not any("num_batches_tracked" in k or "_se_" in k for k in d)  # Lite has no squeeze-excitation
    # Values as torch.load reads them (cross-checked once with torch 2.13).
    np.testing.assert_allclose(d["_fc.bias"][:3], [0.03205391, -0.01598576, 0.00529074], rtol=1e-6)
    np.testing.assert_allclose(d["_bn0.running_var"][:2], [1.6314286, 70.371574], rtol=1e-6)
    assert "torch" not in sys.modules


def test_real_file_survives_a_round_trip_through_our_zip_writer(tmp_path, lite0_checkpoint):
    # The same tensors written as a zip checkpoint by the helpers above read back equal.
    d = read_checkpoint(lite0_checkpoint)
    names = list(d)[:6]
    items, storages = [], {}
    for n, name in enumerate(names):
        a = d[name]
        strides = tuple(int(st // 4) for st in a.strides)
        items.append((name, tensor(storage(str(n), a.size), 0, a.shape, strides)))
        storages[str(n)] = a.ravel()
    back = read_checkpoint(write_zip(tmp_path / "lite0.pt", pickled(odict(items)), storages))
    for name in names:
        np.testing.assert_array_equal(back[name], d[name])


def test_buffer_is_not_aliased(tmp_path):
    path = write_zip(tmp_path / "n.pt", pickled(_body(False)), STORAGES)
    first = read_checkpoint(path)
    first["conv.weight"][...] = 0
    assert read_checkpoint(path)["conv.weight"].sum() == BASE.sum()
