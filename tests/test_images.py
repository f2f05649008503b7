"""Decoding real image files of every kind into RGB (edgenet.pixels.images)."""

from __future__ import annotations

import io

import numpy as np
import pytest
from PIL import Image

from edgenet.errors import EdgenetError, InputFileError
from edgenet.pixels.images import IMAGE_EXTENSIONS, ScanResult, list_image_files, load_image, scan_images, to_rgb

PILLOW_DEFAULT_MAX_PIXELS = int(1024 * 1024 * 1024 // 4 // 3)


def _pixels(im: Image.Image) -> np.ndarray:
    assert im.mode == "RGB"
    return np.asarray(im).astype(int)


def _noise_jpeg_bytes(size=(64, 48)) -> bytes:
    rng = np.random.default_rng(0)
    buf = io.BytesIO()
    Image.fromarray(rng.integers(0, 256, (size[1], size[0], 3), dtype=np.uint8)).save(buf, "JPEG", quality=95)
    return buf.getvalue()


def test_rgb_png_round_trip(tmp_path):
    arr = np.random.default_rng(1).integers(0, 256, (12, 20, 3), dtype=np.uint8)
    Image.fromarray(arr).save(tmp_path / "a.png")
    im = load_image(tmp_path / "a.png")
    assert im.size == (20, 12)
    np.testing.assert_array_equal(np.asarray(im), arr)


@pytest.mark.parametrize("mode", ["L", "1"])
def test_grayscale_replicated(tmp_path, mode):
    gray = np.zeros((8, 8), dtype=np.uint8)
    gray[:, 4:] = 255
    Image.fromarray(gray, "L").convert(mode).save(tmp_path / "g.png")
    px = _pixels(load_image(tmp_path / "g.png"))
    assert px.shape == (8, 8, 3)
    assert (px[:, :4] == 0).all() and (px[:, 4:] == 255).all()


def _palette_image(transparent: bool) -> Image.Image:
    im = Image.new("P", (6, 6), 0)
    im.putpalette([255, 0, 0, 0, 0, 255] + [0] * (256 * 3 - 6))
    for x in range(3, 6):
        for y in range(6):
            im.putpixel((x, y), 1)
    if transparent:
        im.info["transparency"] = 0
    return im


@pytest.mark.parametrize("fmt", ["png", "gif"])
def test_palette_without_transparency(tmp_path, fmt):
    _palette_image(False).save(tmp_path / f"p.{fmt}")
    px = _pixels(load_image(tmp_path / f"p.{fmt}"))
    assert tuple(px[0, 0]) == (255, 0, 0)
    assert tuple(px[0, 5]) == (0, 0, 255)


@pytest.mark.parametrize("fmt", ["png", "gif"])
def test_palette_transparency_composited_on_white(tmp_path, fmt):
    im = _palette_image(True)
    im.save(tmp_path / f"p.{fmt}", transparency=0)
    px = _pixels(load_image(tmp_path / f"p.{fmt}"))
    assert tuple(px[0, 0]) == (255, 255, 255)  # transparent red -> white
    assert tuple(px[0, 5]) == (0, 0, 255)


def test_rgba_composited_on_white(tmp_path):
    arr = np.zeros((2, 3, 4), dtype=np.uint8)
    arr[0, 0] = (255, 0, 0, 0)  # fully transparent red
    arr[0, 1] = (0, 0, 255, 255)  # opaque blue
    arr[0, 2] = (0, 0, 0, 128)  # half-transparent black
    arr[1] = (10, 20, 30, 255)
    Image.fromarray(arr, "RGBA").save(tmp_path / "a.png")
    px = _pixels(load_image(tmp_path / "a.png"))
    assert tuple(px[0, 0]) == (255, 255, 255)
    assert tuple(px[0, 1]) == (0, 0, 255)
    assert all(abs(v - 127) <= 1 for v in px[0, 2])
    assert tuple(px[1, 0]) == (10, 20, 30)
    # The same pixels as an in-memory image convert identically.
    np.testing.assert_array_equal(np.asarray(to_rgb(Image.fromarray(arr, "RGBA"))), px)


def test_la_composited_on_white(tmp_path):
    Image.new("LA", (4, 4), (0, 0)).save(tmp_path / "la.png")
    assert (_pixels(load_image(tmp_path / "la.png")) == 255).all()


@pytest.mark.parametrize("fmt", ["jpeg", "tiff"])
def test_cmyk(tmp_path, fmt):
    Image.new("CMYK", (16, 16), (0, 255, 255, 0)).save(tmp_path / f"c.{fmt}")
    px = _pixels(load_image(tmp_path / f"c.{fmt}"))
    red = px.reshape(-1, 3).mean(axis=0)
    assert red[0] > 240 and red[1] < 15 and red[2] < 15


def test_16_bit_png_keeps_top_byte(tmp_path):
    values = np.array([[0x0000, 0x1234, 0xFFFF, 0x80FF]], dtype=np.uint16)
    Image.fromarray(values).save(tmp_path / "d.png")
    with Image.open(tmp_path / "d.png") as raw:
        assert raw.mode.startswith("I")
    px = _pixels(load_image(tmp_path / "d.png"))
    assert px[0, :, 0].tolist() == [0x00, 0x12, 0xFF, 0x80]
    assert (px[..., 0] == px[..., 1]).all() and (px[..., 0] == px[..., 2]).all()


def test_16_bit_modes_in_memory():
    values = np.array([[0x0000, 0x1234, 0xFFFF]], dtype=np.uint16)
    little = Image.fromarray(values)
    big = Image.frombytes("I;16B", (3, 1), values.astype(">u2").tobytes())
    int32 = Image.fromarray(np.array([[-5, 0x1234, 70000]], dtype=np.int32))
    assert (little.mode, big.mode, int32.mode) == ("I;16", "I;16B", "I")
    assert np.asarray(to_rgb(little))[0, :, 0].tolist() == [0x00, 0x12, 0xFF]
    assert np.asarray(to_rgb(big))[0, :, 0].tolist() == [0x00, 0x12, 0xFF]
    assert np.asarray(to_rgb(int32))[0, :, 0].tolist() == [0x00, 0x12, 0xFF]  # clipped to 0..65535


def test_float_tiff_taken_as_unit_range(tmp_path):
    values = np.array([[0.0, 0.5, 1.0, 2.0, np.nan]], dtype=np.float32)
    Image.fromarray(values).save(tmp_path / "f.tif")
    px = _pixels(load_image(tmp_path / "f.tif"))
    assert px[0, :, 0].tolist() == [0, 128, 255, 255, 0]


def test_exif_orientation_applied(tmp_path):
    # Stored 40x20: left half red, right half blue. Orientation 6 = "rotate 90 degrees
    # clockwise to display", so the displayed image is 20x40 with red on top.
    arr = np.zeros((20, 40, 3), dtype=np.uint8)
    arr[:, :20] = (255, 0, 0)
    arr[:, 20:] = (0, 0, 255)
    exif = Image.Exif()
    exif[0x0112] = 6
    Image.fromarray(arr).save(tmp_path / "rot.jpg", quality=95, exif=exif)
    im = load_image(tmp_path / "rot.jpg")
    assert im.size == (20, 40)
    px = _pixels(im)
    assert px[:16, :, 0].mean() > 200 and px[:16, :, 2].mean() < 50  # top is red
    assert px[24:, :, 2].mean() > 200 and px[24:, :, 0].mean() < 50  # bottom is blue


def test_missing_file(tmp_path):
    with pytest.raises(InputFileError, match="no such file") as err:
        load_image(tmp_path / "nope.jpg")
    assert str(tmp_path / "nope.jpg") in str(err.value)
    assert isinstance(err.value, EdgenetError)


def test_directory(tmp_path):
    with pytest.raises(InputFileError, match="directory") as err:
        load_image(tmp_path)
    assert str(tmp_path) in str(err.value)


def test_not_an_image(tmp_path):
    path = tmp_path / "notes.jpg"
    path.write_text("this is not a picture\n")
    with pytest.raises(InputFileError, match="not an image file") as err:
        load_image(path)
    assert str(path) in str(err.value)


def test_empty_file(tmp_path):
    path = tmp_path / "empty.png"
    path.write_bytes(b"")
    with pytest.raises(InputFileError) as err:
        load_image(path)
    assert str(path) in str(err.value)


def test_truncated_jpeg(tmp_path):
    data = _noise_jpeg_bytes()
    path = tmp_path / "cut.jpg"
    path.write_bytes(data[: len(data) // 2])
    with pytest.raises(InputFileError, match="truncated or corrupt") as err:
        load_image(path)
    assert str(path) in str(err.value)


def test_truncated_png(tmp_path):
    buf = io.BytesIO()
    Image.fromarray(np.random.default_rng(2).integers(0, 256, (64, 64, 3), dtype=np.uint8)).save(buf, "PNG")
    path = tmp_path / "cut.png"
    path.write_bytes(buf.getvalue()[:-2000])
    with pytest.raises(InputFileError, match="truncated or corrupt") as err:
        load_image(path)
    assert str(path) in str(err.value)


def test_corrupt_png_data(tmp_path):
    buf = io.BytesIO()
    Image.fromarray(np.random.default_rng(3).integers(0, 256, (32, 32, 3), dtype=np.uint8)).save(buf, "PNG")
    data = bytearray(buf.getvalue())
    idat = data.index(b"IDAT")
    data[idat + 50] ^= 0xFF  # damage the compressed pixels: the chunk's CRC no longer matches
    path = tmp_path / "bad.png"
    path.write_bytes(bytes(data))
    with pytest.raises(InputFileError, match="truncated or corrupt") as err:
        load_image(path)
    assert str(path) in str(err.value)


def test_decompression_bomb_limit_is_on_and_reported(tmp_path, monkeypatch):
    assert Image.MAX_IMAGE_PIXELS == PILLOW_DEFAULT_MAX_PIXELS  # edgenet never turns it off
    Image.new("RGB", (20, 20), (1, 2, 3)).save(tmp_path / "big.png")
    monkeypatch.setattr(Image, "MAX_IMAGE_PIXELS", 100)  # 400 px > 2 x limit: Pillow raises
    with pytest.raises(InputFileError, match="decompression-bomb") as err:
        load_image(tmp_path / "big.png")
    assert str(tmp_path / "big.png") in str(err.value)
    monkeypatch.setattr(Image, "MAX_IMAGE_PIXELS", 300)  # between limit and 2 x: Pillow only warns
    with pytest.raises(InputFileError, match="decompression-bomb"):
        load_image(tmp_path / "big.png")


def test_scan_images(tmp_path):
    (tmp_path / "sub").mkdir()
    (tmp_path / ".hidden").mkdir()
    Image.new("RGB", (8, 8), (1, 2, 3)).save(tmp_path / "b.png")
    Image.new("RGB", (8, 8), (1, 2, 3)).save(tmp_path / "sub" / "a.JPG", format="JPEG")
    Image.new("RGB", (8, 8), (1, 2, 3)).save(tmp_path / ".hidden" / "x.png")
    Image.new("RGB", (8, 8), (1, 2, 3)).save(tmp_path / "._b.png")
    (tmp_path / "a_broken.jpg").write_bytes(b"\xff\xd8\xff\xe0 broken")
    (tmp_path / "readme.txt").write_text("not a candidate")
    result = scan_images(tmp_path)
    assert isinstance(result, ScanResult)
    assert [p.relative_to(tmp_path).as_posix() for p in result.images] == ["b.png", "sub/a.JPG"]
    assert [(p.name, reason) for p, reason in result.skipped] == [("a_broken.jpg", "truncated or corrupt image data")]
    assert result.candidates == 3
    assert list_image_files(tmp_path) == (tmp_path / "a_broken.jpg", tmp_path / "b.png", tmp_path / "sub" / "a.JPG")
    assert ".jpg" in IMAGE_EXTENSIONS and ".pgm" in IMAGE_EXTENSIONS


def test_scan_bad_folders(tmp_path):
    with pytest.raises(InputFileError, match="no such folder") as err:
        scan_images(tmp_path / "missing")
    assert str(tmp_path / "missing") in str(err.value)
    (tmp_path / "f.png").write_bytes(b"x")
    with pytest.raises(InputFileError, match="not a folder"):
        scan_images(tmp_path / "f.png")
    (tmp_path / "empty").mkdir()
    assert scan_images(tmp_path / "empty").images == ()
