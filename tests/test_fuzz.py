"""Property-based fuzzing (Hypothesis) of the readers of untrusted bytes that run everywhere (the image
loader and the .tflite reader), of every state the weights cache can be found in, and of the one walk
of users' folders.

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
# --- the weights cache and users' folders (issue 25) ---------------------------------------------------

#: What can stand where the cache expects a file (or a folder).
_STATES = ("absent", "good", "garbage", "empty", "folder", "link-outside", "link-zero", "link-loop", "dangling",
           "fifo")
_PIN_STATES = (*_STATES, "pin-empty", "pin-not-utf8", "pin-good", "pin-wrong")


@pytest.fixture(scope="module")
def weights_mirror(fuzz_dir):
    from weights_server import WeightsServer

    served = fuzz_dir / "served"
    served.mkdir()
    body = np.random.default_rng(1).bytes(50_000)
    (served / "w.safetensors").write_bytes(body)
    with WeightsServer(served) as server:
        yield server.url, body


def _place(path: Path, state: str, good: bytes, outside: Path) -> None:
    import hashlib

    if state == "absent":
        return
    if state in ("good", "garbage", "empty"):
        path.write_bytes({"good": good, "garbage": good[::-1][:1000], "empty": b""}[state])
    elif state == "folder":
        path.mkdir()
    elif state == "link-outside":
        path.symlink_to(outside)
    elif state == "link-zero":
        path.symlink_to("/dev/zero")
    elif state == "link-loop":
        path.symlink_to(path.name)
    elif state == "dangling":
        path.symlink_to(path.with_name("missing-target"))
    elif state == "fifo":
        os.mkfifo(path)
    else:  # pins
        text = {"pin-empty": b"", "pin-not-utf8": b"\xff\xfe\x00", "pin-good": hashlib.sha256(good).hexdigest().encode(),
                "pin-wrong": b"0" * 64}[state]
        path.write_bytes(text + (b"  w.safetensors\n" if text else b""))


@FUZZ
@given(root=st.sampled_from(["folder", "file", "absent"]), file=st.sampled_from(_STATES),
       part=st.sampled_from(_STATES), lock=st.sampled_from(_STATES), pin=st.sampled_from(_PIN_STATES),
       hashed=st.booleans(), offline=st.booleans())
def test_every_cache_state_ends_verified_or_in_one_line(fuzz_dir, weights_mirror, root, file, part, lock, pin,
                                                         hashed, offline):
    import hashlib

    from edgenet.weights.fetch import FetchSettings, read_verified, resolve
    from edgenet.weights.registry import PublishedWeights

    url, good = weights_mirror
    case = Path(tempfile.mkdtemp(dir=fuzz_dir))
    outside = case / "outside.txt"
    outside.write_bytes(b"precious")
    cache = case / "cache"
    if root == "file":
        cache.write_text("in the way")
    elif root == "folder":
        (cache / "weights").mkdir(parents=True)
        folder = cache / "weights"
        _place(folder / "w.safetensors", file, good, outside)
        _place(folder / "w.safetensors.part", part, good, outside)
        _place(folder / "w.safetensors.lock", lock, good, outside)
        _place(folder / "w.safetensors.sha256", pin, good, outside)
    entry = PublishedWeights(variant="lite3", source="fuzz", filename="w.safetensors", file_format="safetensors",
                             licence="Apache-2.0", hash=f"sha256:{hashlib.sha256(good).hexdigest()}" if hashed else None,
                             hash_source="fuzz", size_bytes=len(good) if hashed else None)
    settings_ = FetchSettings.from_env({"EDGENET_CACHE": str(cache), "EDGENET_IGNORE_PACKAGES": "1",
                                        "EDGENET_WEIGHTS_URL": url, "EDGENET_OFFLINE": "1" if offline else "0"})
    try:
        located = resolve("lite3", settings_, entry=entry, trust_on_first_use=True, progress=False)
    except EdgenetError as exc:
        assert str(exc) and "\n" not in str(exc), str(exc)
    else:
        data = read_verified(located.path, settings_)
        if hashed:
            assert data == good
    assert outside.read_bytes() == b"precious"  # nothing outside the cache is ever written
    assert not (case / "missing-target").exists() and not Path(str(case) + "-created").exists()


@FUZZ
@given(entries=st.lists(st.tuples(st.sampled_from(["img", "link-loop", "dangling", "fifo", "folder-loop", "zero",
                                                    "link-good"]),
                                  st.binary(min_size=1, max_size=6)), max_size=8))
def test_the_folder_walk_never_raises_on_what_a_folder_holds(fuzz_dir, entries):
    from edgenet.fsutil import walk_files
    from edgenet.pixels.images import IMAGE_EXTENSIONS

    folder = Path(tempfile.mkdtemp(dir=fuzz_dir))
    for i, (kind, raw) in enumerate(entries):
        name = os.fsdecode(raw.replace(b"/", b"_").replace(b"\0", b"_").lstrip(b".") or b"x") + f"-{i}.png"
        path = folder / name
        if kind == "img":
            path.write_bytes(SEEDS[".png"])
        elif kind == "link-loop":
            path.symlink_to(name)
        elif kind == "dangling":
            path.symlink_to("nowhere")
        elif kind == "fifo":
            os.mkfifo(path)
        elif kind == "folder-loop":
            (folder / f"sub{i}").symlink_to(".")
        elif kind == "zero":
            path.symlink_to("/dev/zero")
        else:
            path.symlink_to(f"target{i}.png")
            (folder / f"target{i}.png").write_bytes(SEEDS[".png"])
    walk = walk_files(folder, IMAGE_EXTENSIONS)
    for path in walk.files:
        assert path.is_file() and os.fsencode(path.name).decode("utf-8")
    for _path, why in walk.skipped:
        assert why and "\n" not in why
