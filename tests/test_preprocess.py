"""The single preprocessing implementation: crop geometry, values, normalisation, quantization."""

from __future__ import annotations

from dataclasses import replace

import numpy as np
import pytest
from PIL import Image

from edgenet.errors import InputFileError
from edgenet.family.variants import parse_variant
from edgenet.pixels.contract import PreprocessContract
from edgenet.pixels.preprocess import (
    centre_crop_box,
    dequantize,
    input_bounds,
    preprocess,
    preprocess_batch,
    quantize_input,
)

TINY = parse_variant("phi=0,width=0.25,depth=0.25,resolution=64")


def _photo(width=96, height=64, seed=0) -> Image.Image:
    """A smooth, photo-like RGB image (gradients plus noise)."""
    rng = np.random.default_rng(seed)
    y, x = np.mgrid[0:height, 0:width]
    arr = np.stack([x * 255 / width, y * 255 / height, (x + y) * 127 / (width + height)], axis=-1)
    arr = np.clip(arr + rng.normal(0, 10, arr.shape), 0, 255).astype(np.uint8)
    return Image.fromarray(arr)


def test_centre_crop_box_matches_tpu_formula():
    # int(224 / 256 * 480) = 420; offsets ((h - side + 1) // 2, (w - side + 1) // 2)
    assert centre_crop_box(640, 480, 224, 32) == (110, 30, 530, 450)
    assert centre_crop_box(480, 640, 224, 32) == (30, 110, 450, 530)
    assert centre_crop_box(300, 300, 300, 32) == (15, 15, 286, 286)  # side int(300/332*300) = 271
    assert centre_crop_box(1, 1, 224, 32) == (0, 0, 1, 1)


def test_only_the_centre_crop_reaches_the_model():
    contract = TINY.contract
    width, height = 200, 120
    left, top, right, bottom = centre_crop_box(width, height, contract.resolution, contract.crop_padding)
    arr = np.zeros((height, width, 3), dtype=np.uint8)
    arr[:] = (255, 0, 0)
    arr[top:bottom, left:right] = (0, 200, 0)
    x = preprocess(Image.fromarray(arr), contract)
    assert x.shape == (64, 64, 3) and x.dtype == np.float32
    # No red from outside the crop leaks in, even at the borders.
    assert (x[..., 0] == 0).all() and (x[..., 1] == 200).all() and (x[..., 2] == 0).all()


def test_values_equal_an_independent_crop_and_bicubic_resize():
    contract = TINY.contract
    image = _photo(150, 100)
    left, top, right, bottom = centre_crop_box(150, 100, 64, 32)
    crop = Image.fromarray(np.asarray(image)[top:bottom, left:right])
    expected = np.asarray(crop.resize((64, 64), Image.Resampling.BICUBIC), dtype=np.float32)
    x = preprocess(image, contract)
    np.testing.assert_array_equal(x, expected)
    assert 0.0 <= x.min() and x.max() <= 255.0
    bilinear = preprocess(image, replace(contract, resample="bilinear"))
    assert not np.array_equal(bilinear, x)


def test_path_and_pil_inputs_agree(tmp_path):
    image = _photo().convert("L")
    image.save(tmp_path / "g.png")
    from_path = preprocess(tmp_path / "g.png", TINY.contract)
    from_pil = preprocess(image, TINY.contract)
    np.testing.assert_array_equal(from_path, from_pil)
    assert np.array_equal(from_path[..., 0], from_path[..., 2])


def test_in_graph_gives_raw_pixels_and_host_normalises():
    image = _photo()
    in_graph = TINY.contract
    assert in_graph.normalization == "in_graph"
    raw = preprocess(image, in_graph)
    host = replace(in_graph, normalization="host")
    normalised = preprocess(image, host)
    mean = np.asarray(in_graph.mean_rgb, dtype=np.float32)
    std = np.asarray(in_graph.std_rgb, dtype=np.float32)
    np.testing.assert_allclose(normalised, (raw - mean) / std, rtol=1e-6, atol=1e-6)
    lo, hi = input_bounds(host)
    assert (normalised >= lo - 1e-5).all() and (normalised <= hi + 1e-5).all()
    lite = replace(parse_variant("lite0").contract, resolution=64, normalization="host")
    x = preprocess(image, lite)
    np.testing.assert_allclose(x, (raw - 127.0) / 128.0, atol=1e-6)
    assert x.min() >= -127 / 128 and x.max() <= 1.0


def test_input_range_mapping():
    unit = PreprocessContract(64, (0.0,) * 3, (1.0,) * 3, input_range=(0.0, 1.0))
    x = preprocess(_photo(), unit)
    np.testing.assert_allclose(x, preprocess(_photo(), TINY.contract) / 255.0, rtol=1e-6)


def test_preprocess_batch_continues_past_bad_files(tmp_path):
    _photo(seed=1).save(tmp_path / "a.png")
    _photo(seed=2).save(tmp_path / "c.jpg")
    (tmp_path / "b.jpg").write_text("no")
    paths = [tmp_path / "a.png", tmp_path / "b.jpg", tmp_path / "c.jpg", tmp_path / "missing.png"]
    array, failed = preprocess_batch(paths, TINY.contract)
    assert array.shape == (2, 64, 64, 3) and array.dtype == np.float32
    np.testing.assert_array_equal(array[1], preprocess(tmp_path / "c.jpg", TINY.contract))
    assert failed == [(tmp_path / "b.jpg", "not an image file"), (tmp_path / "missing.png", "no such file")]
    empty, failed = preprocess_batch([tmp_path / "b.jpg"], TINY.contract)
    assert empty.shape == (0, 64, 64, 3) and len(failed) == 1
    with pytest.raises(InputFileError):
        preprocess(tmp_path / "b.jpg", TINY.contract)


def test_quantize_pixels_int8_exact():
    pixels = np.array([0.0, 1.0, 127.0, 128.0, 255.0], dtype=np.float32)
    q = quantize_input(pixels, 1.0, -128, np.int8)
    assert q.dtype == np.int8 and q.tolist() == [-128, -127, -1, 0, 127]
    np.testing.assert_array_equal(dequantize(q, 1.0, -128), pixels)
    assert quantize_input(pixels, 1.0, 0, "uint8").tolist() == [0, 1, 127, 128, 255]


def test_quantize_rounds_half_away_from_zero_and_clips():
    q = quantize_input(np.array([0.5, 1.5, 2.5, -0.5, -2.5, 1000.0, -1000.0]), 1.0, 0, np.int8)
    assert q.tolist() == [1, 2, 3, -1, -3, 127, -128]
    u = quantize_input(np.array([-3.0, 300.0]), 1.0, 0, np.uint8)
    assert u.tolist() == [0, 255]


def test_quantize_dequantize_round_trip_error_within_half_step():
    x = np.random.default_rng(0).uniform(-1, 1, 1000).astype(np.float32)
    scale, zp = 1 / 128, 0
    back = dequantize(quantize_input(x, scale, zp, np.int8), scale, zp)
    assert back.dtype == np.float32
    assert np.abs(back - np.clip(x, -1, 127 / 128)).max() <= scale / 2 + 1e-7


def test_quantize_rejects_bad_arguments():
    with pytest.raises(ValueError):
        quantize_input(np.zeros(2), 0.0, 0, np.int8)
    with pytest.raises(ValueError):
        quantize_input(np.zeros(2), 1.0, 0, np.float32)
