"""Atomic output and hashing (edgenet/fsutil.py): an earlier file survives any failed write."""

from __future__ import annotations

import hashlib

import pytest

from edgenet.errors import InputFileError
from edgenet.fsutil import (
    atomic_output,
    atomic_write_bytes,
    atomic_write_text,
    read_input_bytes,
    sha256_file,
    tmp_path,
)


def test_a_failed_write_keeps_the_old_file_and_leaves_nothing(tmp_path):
    path = atomic_write_text(tmp_path / "sub" / "out.json", "old")
    with pytest.raises(RuntimeError), atomic_output(path) as tmp:
        tmp.write_text("half")
        raise RuntimeError("interrupted")
    assert path.read_text() == "old" and sorted(p.name for p in path.parent.iterdir()) == ["out.json"]
    with atomic_output(path) as tmp:
        tmp.write_text("new")
    assert path.read_text() == "new" and sorted(p.name for p in path.parent.iterdir()) == ["out.json"]


def test_temporary_names_stay_beside_the_target():
    from pathlib import Path

    target = Path("/data/b0.weights.h5")
    assert tmp_path(target).parent == target.parent and tmp_path(target).name.startswith(".b0.weights.h5.tmp-")
    assert tmp_path(target, keep_ending=True).name.endswith(".weights.h5")  # Keras checks the ending


def test_hashes_and_input_errors(tmp_path):
    data = bytes(range(256)) * 5000
    path = atomic_write_bytes(tmp_path / "blob.bin", data)
    assert sha256_file(path, chunk_bytes=4096) == hashlib.sha256(data).hexdigest()
    assert read_input_bytes(path) == data
    with pytest.raises(InputFileError, match="missing.bin"):
        read_input_bytes(tmp_path / "missing.bin", "a model")
