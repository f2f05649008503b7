"""Calibration sets: determinism, augmentation, bad folders, NaN checks, the embedded default set."""

from __future__ import annotations

import hashlib
import json
from dataclasses import replace

import numpy as np
import pytest
from PIL import Image

from edgenet.convert.calibration import (
    CalibrationData,
    calibration_images,
    check_calibration_array,
    default_calibration_dir,
    default_manifest,
    holdout_images,
    load_calibration,
)
from edgenet.errors import EdgenetError, InputFileError
from edgenet.family.variants import parse_variant
from edgenet.pixels.images import load_image
from edgenet.pixels.preprocess import preprocess

CONTRACT = parse_variant("phi=0,width=0.25,depth=0.25,resolution=64").contract


def _write_photos(folder, count, start=0):
    folder.mkdir(parents=True, exist_ok=True)
    paths = []
    for i in range(start, start + count):
        rng = np.random.default_rng(i)
        y, x = np.mgrid[0:60, 0:80]
        base = np.stack([x * 3 + i * 20, y * 4, (x + y) * 2], axis=-1) % 256
        arr = np.clip(base + rng.normal(0, 12, base.shape), 0, 255).astype(np.uint8)
        path = folder / f"img_{i:02d}.jpg"
        Image.fromarray(arr).save(path, quality=92)
        paths.append(path)
    return paths


def test_same_seed_same_data_different_seed_different(tmp_path):
    _write_photos(tmp_path / "set", 6)
    a = load_calibration(tmp_path / "set", CONTRACT, samples=4, seed=7)
    b = load_calibration(str(tmp_path / "set"), CONTRACT, samples=4, seed=7)
    c = load_calibration(tmp_path / "set", CONTRACT, samples=4, seed=8)
    assert isinstance(a, CalibrationData)
    assert a.array.shape == (4, 64, 64, 3) and a.array.dtype == np.float32
    np.testing.assert_array_equal(a.array, b.array)
    assert a.files == b.files and a.fingerprint == b.fingerprint
    assert not np.array_equal(a.array, c.array)
    assert a.fingerprint != c.fingerprint
    assert a.augmented_count == 0 and a.skipped == ()
    assert a.fingerprint["samples"] == 4 and a.fingerprint["seed"] == 7 and a.fingerprint["augmented"] == 0
    # Rows are exactly what the one preprocess implementation gives for those files.
    for row, path in zip(a.array, a.files, strict=True):
        np.testing.assert_array_equal(row, preprocess(path, CONTRACT))


def test_fingerprint_follows_file_contents(tmp_path):
    _write_photos(tmp_path / "set", 3)
    before = load_calibration(tmp_path / "set", CONTRACT, samples=3, seed=0).fingerprint
    _write_photos(tmp_path / "set", 1, start=9)[0].rename(tmp_path / "set" / "img_00.jpg")
    after = load_calibration(tmp_path / "set", CONTRACT, samples=3, seed=0).fingerprint
    assert before["file_list_sha256"] != after["file_list_sha256"]


def test_augments_when_samples_exceed_images(tmp_path):
    _write_photos(tmp_path / "few", 3)
    data = load_calibration(tmp_path / "few", CONTRACT, samples=8, seed=1)
    assert data.array.shape == (8, 64, 64, 3)
    assert len(data.files) == 3 and data.augmented_count == 5
    assert data.fingerprint["augmented"] == 5
    assert "random crops and flips" in data.note and "3 usable" in data.note
    # Augmented rows are new tensors, not copies of the real ones.
    real = [data.array[i] for i in range(3)]
    for row in data.array[3:]:
        assert not any(np.array_equal(row, r) for r in real)
    again = load_calibration(tmp_path / "few", CONTRACT, samples=8, seed=1)
    np.testing.assert_array_equal(data.array, again.array)
    other = load_calibration(tmp_path / "few", CONTRACT, samples=8, seed=2)
    assert not np.array_equal(data.array[3:], other.array[3:])


def test_unreadable_files_are_skipped_and_listed(tmp_path):
    _write_photos(tmp_path / "mixed", 2)
    (tmp_path / "mixed" / "broken.jpg").write_bytes(b"\xff\xd8\xff garbage")
    (tmp_path / "mixed" / "text.png").write_text("hello")
    data = load_calibration(tmp_path / "mixed", CONTRACT, samples=4, seed=0)
    assert {p.name for p, _ in data.skipped} == {"broken.jpg", "text.png"}
    assert len(data.files) == 2 and data.count == 4
    assert "skipped 2 unreadable" in data.note


def test_missing_folder(tmp_path):
    with pytest.raises(InputFileError, match="does not exist") as err:
        load_calibration(tmp_path / "nowhere", CONTRACT, samples=2, seed=0)
    assert str(tmp_path / "nowhere") in str(err.value)


def test_file_instead_of_folder(tmp_path):
    path = _write_photos(tmp_path, 1)[0]
    with pytest.raises(InputFileError, match="not a folder"):
        load_calibration(path, CONTRACT, samples=2, seed=0)


def test_empty_folder(tmp_path):
    (tmp_path / "empty").mkdir()
    (tmp_path / "empty" / "notes.txt").write_text("no images here")
    with pytest.raises(EdgenetError, match="no image files") as err:
        load_calibration(tmp_path / "empty", CONTRACT, samples=2, seed=0)
    assert str(tmp_path / "empty") in str(err.value)
    assert "\n" not in str(err.value)


def test_only_corrupt_folder(tmp_path):
    (tmp_path / "bad").mkdir()
    for i in range(3):
        (tmp_path / "bad" / f"x{i}.jpg").write_bytes(b"not really a jpeg")
    with pytest.raises(EdgenetError) as err:
        load_calibration(tmp_path / "bad", CONTRACT, samples=2, seed=0)
    message = str(err.value)
    assert str(tmp_path / "bad") in message
    assert "0 usable image(s) of 3" in message and "3 unreadable" in message
    assert "\n" not in message


def test_min_usable(tmp_path):
    _write_photos(tmp_path / "three", 3)
    with pytest.raises(EdgenetError, match=r"3 usable image\(s\) of 3 .*need at least 5"):
        load_calibration(tmp_path / "three", CONTRACT, samples=10, seed=0, min_usable=5)
    assert load_calibration(tmp_path / "three", CONTRACT, samples=10, seed=0, min_usable=3).count == 10
    with pytest.raises(EdgenetError):
        load_calibration(tmp_path / "three", CONTRACT, samples=0, seed=0)


def test_nan_from_a_broken_contract_names_the_file(tmp_path):
    paths = _write_photos(tmp_path / "set", 2)
    broken = replace(CONTRACT, normalization="host", std_rgb=(0.0, 0.0, 0.0))
    with pytest.raises(EdgenetError, match="NaN/Inf") as err:
        load_calibration(tmp_path / "set", broken, samples=2, seed=0)
    assert any(str(p) in str(err.value) for p in paths)


def test_check_calibration_array_finite_and_range():
    ok = np.full((2, 4, 4, 3), 100.0, dtype=np.float32)
    check_calibration_array(ok, ["a.jpg", "b.jpg"], CONTRACT)
    bad = ok.copy()
    bad[1, 2, 2, 1] = np.inf
    with pytest.raises(EdgenetError, match=r"^b\.jpg: .*NaN/Inf"):
        check_calibration_array(bad, ["a.jpg", "b.jpg"], CONTRACT)
    bad[1, 2, 2, 1] = np.nan
    with pytest.raises(EdgenetError, match=r"^b\.jpg"):
        check_calibration_array(bad, ["a.jpg", "b.jpg"], CONTRACT)
    high = ok.copy()
    high[0, 0, 0, 0] = 300.0
    with pytest.raises(EdgenetError, match=r"^a\.jpg: .*outside"):
        check_calibration_array(high, ["a.jpg", "b.jpg"], CONTRACT)


def test_progress_bar_goes_to_stderr(tmp_path, capsys):
    _write_photos(tmp_path / "set", 2)
    load_calibration(tmp_path / "set", CONTRACT, samples=3, seed=0, progress=True)
    captured = capsys.readouterr()
    assert captured.out == "" and "calibration" in captured.err


#: Distinct licensed photographs in the embedded set (issue #26 asks for at least 100; calibration/README.md says
#: where each comes from), and how many of them calibrate (the rest are held out).
MIN_DISTINCT = 100
MIN_CALIBRATING = 100


def test_default_set_manifest_files_and_licences():
    root = default_calibration_dir()
    entries = default_manifest()
    assert json.loads((root / "manifest.json").read_text())["images"] == list(entries)
    total_bytes = 0
    for entry in entries:
        path = root / entry["file"]
        data = path.read_bytes()
        total_bytes += len(data)
        assert hashlib.sha256(data).hexdigest() == entry["sha256"]
        assert entry["licence"] and entry["credit"] and entry["source"]
        assert entry["split"] in ("calibration", "holdout")
        image = load_image(path)
        assert min(image.size) <= 320
    assert total_bytes < 6_000_000  # ~31 KB a photo: the wheel stays small enough for a Raspberry Pi
    # Distinct photographs (no two files with the same pixels' source), every one with a licence; no ImageNet image.
    assert len({e["sha256"] for e in entries}) == len({e["source"] for e in entries}) == len(entries) >= MIN_DISTINCT
    assert not any("imagenet" in (e["source"] + e["file"]).lower() or "foolbox" in e["source"] for e in entries)
    assert sum(e["split"] == "calibration" for e in entries) >= MIN_CALIBRATING
    # Every image file in the folder is in the manifest.
    assert sorted(p.name for p in root.glob("*.jpg")) == sorted(e["file"] for e in entries)


def test_holdout_is_disjoint_from_calibration():
    cal, held = calibration_images(), holdout_images()
    assert len(held) >= 2 and len(cal) >= 5
    assert not set(cal) & set(held)
    assert all(p.exists() for p in cal + held)


def test_default_set_loads_without_holdout():
    contract = parse_variant("lite0").contract
    samples = len(calibration_images()) + 4
    data = load_calibration("default", replace(contract, resolution=96, normalization="host"), samples=samples, seed=3)
    assert data.array.shape == (samples, 96, 96, 3)
    assert data.source == "default" and data.fingerprint["source"] == "default"
    assert set(data.files) == set(calibration_images())
    assert not set(data.files) & set(holdout_images())
    assert data.augmented_count == 4
    assert data.array.min() >= -1.0 and data.array.max() <= 1.0
    again = load_calibration("default", replace(contract, resolution=96, normalization="host"), samples=samples, seed=3)
    assert again.fingerprint == data.fingerprint
    np.testing.assert_array_equal(again.array, data.array)
