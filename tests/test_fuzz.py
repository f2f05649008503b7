"""Property-based fuzzing (Hypothesis) of the two readers of untrusted bytes that run everywhere:
the image loader and the .tflite reader.

The property: any bytes either load or fail with one ``InputFileError`` line naming the file; no
other exception, no hang, no crash of this process. Inputs are real files mutated (bit flips,
overwritten runs, truncation, splices) plus raw random bytes. ``derandomize`` keeps every run of
the suite on the same examples, so a failure reproduces.
"""

from __future__ import annotations

import io
import os
import tempfile
from pathlib import Path

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from edgenet.errors import EdgenetError, InputFileError

FUZZ = settings(max_examples=60, deadline=None, derandomize=True,
                suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large])


def _seed_images() -> dict[str, bytes]:
    from PIL import Image

    rng = np.random.default_rng(0)
    pixels = rng.integers(0, 255, (24, 32, 3), dtype=np.uint8)
    out = {}
    for fmt, ext, mode in (("PNG", ".png", "RGBA"), ("JPEG", ".jpg", "RGB"), ("GIF", ".gif", "P"),
                           ("BMP", ".bmp", "RGB"), ("TIFF", ".tif", "L"), ("WEBP", ".webp", "RGB"), ("PPM", ".ppm", "RGB")):
        buffer = io.BytesIO()
        Image.fromarray(pixels).convert(mode).save(buffer, format=fmt)
        out[ext] = buffer.getvalue()
    return out


SEEDS = _seed_images()


@st.composite
def mutated(draw, seeds: dict[str, bytes]):
    """(extension, bytes): a seed file damaged in a few places, or raw random bytes."""
    ext = draw(st.sampled_from(sorted(seeds)))
    if draw(st.integers(0, 9)) == 0:
        return ext, draw(st.binary(min_size=0, max_size=512))
    data = bytearray(seeds[ext])
    for _ in range(draw(st.integers(1, 4))):
        kind = draw(st.sampled_from(["flip", "overwrite", "truncate", "splice"]))
        at = draw(st.integers(0, max(0, len(data) - 1)))
        if kind == "flip" and data:
            data[at] ^= 1 << draw(st.integers(0, 7))
        elif kind == "overwrite":
            chunk = draw(st.binary(min_size=1, max_size=16))
            data[at : at + len(chunk)] = chunk
        elif kind == "truncate":
            del data[at:]
        else:
            other = seeds[draw(st.sampled_from(sorted(seeds)))]
            data[at:] = other[draw(st.integers(0, len(other) - 1)):]
    return ext, bytes(data)


@pytest.fixture(scope="module")
def fuzz_dir():
    with tempfile.TemporaryDirectory(prefix="edgenet-fuzz-") as folder:
        yield Path(folder)


@FUZZ
@given(case=mutated(SEEDS))
def test_image_loader_loads_or_fails_in_one_line(fuzz_dir, case):
    from edgenet.pixels.images import load_image

    ext, data = case
    path = fuzz_dir / f"fuzz{ext}"
    path.write_bytes(data)
    try:
        image = load_image(path)
    except InputFileError as exc:
        assert str(exc).startswith(str(path)) and "\n" not in str(exc)
    else:
        assert image.mode == "RGB" and image.width > 0 and image.height > 0
        np.asarray(image)


@pytest.fixture(scope="module")
def tflite_seed() -> bytes:
    from fixtures_tflite import tiny_tflite_models

    return tiny_tflite_models().int8.read_bytes()


@FUZZ
@given(data=st.data())
def test_tflite_reader_reads_or_fails_in_one_line(fuzz_dir, tflite_seed, data):
    from edgenet.runtime.tflite_graph import read_graph

    _, damaged = data.draw(mutated({".tflite": tflite_seed}))
    path = fuzz_dir / "fuzz.tflite"
    path.write_bytes(damaged)
    try:
        graph = read_graph(path)
    except InputFileError as exc:
        assert str(exc).startswith(str(path)) and "\n" not in str(exc)
    else:
        assert graph is not None


@settings(max_examples=6, deadline=None, derandomize=True, suppress_health_check=[HealthCheck.too_slow])
@given(data=st.data())
def test_interpreter_on_damaged_models_fails_in_one_line_never_crashes_us(fuzz_dir, tflite_seed, data):
    """The interpreter itself, on damaged models, through the child process predict and eval use."""
    from edgenet.runtime.isolated import IsolatedTFLiteModel

    _, damaged = data.draw(mutated({".tflite": tflite_seed}))
    path = fuzz_dir / "fuzz-run.tflite"
    path.write_bytes(damaged)
    try:
        with IsolatedTFLiteModel(path) as model:
            out = model.run(np.zeros((1, *model.input_shape[1:]), np.float32))
            assert out.shape[0] == 1
    except EdgenetError as exc:
        assert "\n" not in str(exc) and str(path) in str(exc)
    assert os.getpid() > 0  # we are still here


# --- option values: every number option of every command ------------------------------------------------

def _number_options():
    import click

    from edgenet.cli import main
    from edgenet.cli.common import NumberType

    def walk(command, path=()):
        yield path, command
        for name, sub in sorted(getattr(command, "commands", {}).items()):
            yield from walk(sub, (*path, name))

    return [(" ".join(path), option) for path, command in walk(main) for option in command.params
            if isinstance(option, click.Option) and isinstance(option.type, NumberType)]


NUMBER_OPTIONS = _number_options()
OPTION_TEXT = st.one_of(
    st.floats(allow_nan=True, allow_infinity=True).map(repr),
    st.floats(allow_nan=True, allow_infinity=True).map(str),
    st.integers(min_value=-(10**30), max_value=10**30).map(str),
    st.sampled_from(["nan", "NaN", "inf", "-inf", "+inf", "1e308", "-1e308", "1e-320", "0", "-0", "0x10", "1_000",
                     " 5 ", "", "5ms", "½", "٣", "1e5", "2.5", "65536"]),
    st.text(max_size=12),
)


@FUZZ
@given(index=st.integers(0, len(NUMBER_OPTIONS) - 1), text=OPTION_TEXT)
def test_every_number_option_takes_a_finite_number_in_range_or_names_itself(index, text):
    """Any text given to any number option of any command: a finite number within the option's bounds,
    or click's one usage line naming the option (never an exception of another type)."""
    import math

    import click

    where, option = NUMBER_OPTIONS[index]
    ctx = click.Context(click.Command(where or "edgenet"))
    try:
        value = option.type_cast_value(ctx, text)
    except click.BadParameter as exc:
        message = exc.format_message()
        assert option.opts[0] in message and "\n" not in message, (where, message)
        return
    bounds = option.type.bounds
    assert isinstance(value, int if bounds.integer else float) and not isinstance(value, bool)
    assert math.isfinite(value) and bounds.lo <= value <= bounds.hi, (where, option.opts, text, value)
    assert not (bounds.lo_open and value == bounds.lo) and not (bounds.hi_open and value == bounds.hi)


def test_the_option_fuzzer_sees_every_command():
    commands = {where.split()[0] for where, _ in NUMBER_OPTIONS}
    assert {"bench", "tune", "profile", "sweep", "select", "convert", "eval", "scale", "predict"} <= commands
