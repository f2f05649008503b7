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


# --- what a device sends back (edgenet.devices.Session): a valid reply or one MalformedReply line ------

_JSON_LEAF = (st.none() | st.booleans() | st.integers(-10**12, 10**12) | st.floats(allow_nan=True, allow_infinity=True)
              | st.text(max_size=12))
_JSON = st.recursive(_JSON_LEAF, lambda inner: st.lists(inner, max_size=3)
                     | st.dictionaries(st.text(max_size=6), inner, max_size=3), max_leaves=8)


def _paths(value, prefix=()):
    yield prefix
    if isinstance(value, dict):
        for key, sub in value.items():
            yield from _paths(sub, (*prefix, key))


@pytest.fixture(scope="module")
def reply_session(fuzz_dir):
    from edgenet.devices import Device, Session
    from edgenet.results import make_record

    model = fuzz_dir / "m.tflite"
    model.write_bytes(b"TFL3 shipped model bytes")
    session = Session(Device("fuzz", host="pi@board"), timeout_s=60)
    session.ship(model)
    seeds = {
        "bench": make_record("bench", model={"path": "/w/m.tflite", "name": "m"}, device={"label": "pi", "cores": 4},
                             settings={"threads": 1, "xnnpack": True, "delegate": "cpu"},
                             latency_ms={"p50": 1.5, "min": 1.2, "max": 2.0}, runs=20, samples_ms=[1.5, 1.2, 2.0]),
        "eval": make_record("eval", model={"path": "/w/m.tflite"}, accuracy={"top1": 0.75, "top5": 0.9, "count": 40}),
    }
    return session, model, seeds


@FUZZ
@given(data=st.data())
def test_device_replies_are_validated_records_or_one_malformed_line(reply_session, data):
    import copy
    import json
    import math

    from edgenet.devices import DeviceError, Reply
    from edgenet.results import validate_record
    from edgenet.runtime.envinfo import model_info

    session, model, seeds = reply_session
    kind = data.draw(st.sampled_from(sorted(seeds)))
    record = copy.deepcopy(seeds[kind])
    for _ in range(data.draw(st.integers(0, 3))):
        path = data.draw(st.sampled_from([p for p in _paths(record) if p]))
        node = record
        for key in path[:-1]:
            node = node[key]
        node[path[-1]] = data.draw(_JSON)
    line = json.dumps(record) if data.draw(st.integers(0, 9)) else data.draw(st.text(max_size=40))
    try:
        records = session.records(Reply(line + "\n", "", 0, workdir="/w"), kind)
    except DeviceError as exc:
        assert str(exc).startswith("fuzz: ") and "\n" not in str(exc)
        return
    for accepted in records:  # what passes is what the schema promises, and the model is the shipped file
        validate_record(accepted, kind)
        json.dumps(accepted, allow_nan=False)
        assert accepted["model"] == model_info(model)
        for value in (accepted.get("latency_ms") or {}).values():
            assert value is None or (math.isfinite(value) and value >= 0)


@FUZZ
@given(reply=_JSON)
def test_probe_replies_are_checked_or_one_malformed_line(reply_session, reply):
    import json

    from edgenet.devices import MalformedReply, Reply
    from edgenet.devices.probe import check_probe

    session = reply_session[0]
    try:
        found = session.document(Reply(json.dumps(reply) + "\n", "", 0, workdir="/w"), check_probe, "probe")
    except MalformedReply as exc:
        assert str(exc).startswith("fuzz: malformed reply (") and "\n" not in str(exc)
        return
    assert isinstance(found, dict) and all(isinstance(found.get(k), (str, type(None))) for k in ("runtime", "machine"))
