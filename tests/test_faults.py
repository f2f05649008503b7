"""A fault corpus: hostile inputs and interruptions, one test per fault class, built from scratch here.

Every case checks what the issue promises: the exit code, exactly one error line naming the file and
the cause, no traceback, nothing partial written, earlier outputs intact, no child process left.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import h5py
import numpy as np
import pytest
from click.testing import CliRunner

import edgenet
from edgenet.cli import main as cli_main
from edgenet.errors import EdgenetError, InputFileError

PACKAGE_ROOT = str(Path(edgenet.__file__).resolve().parents[1])


# --- helpers ---------------------------------------------------------------------------------------

def _env(**extra) -> dict:
    env = dict(os.environ)
    env["PYTHONPATH"] = PACKAGE_ROOT + (os.pathsep + env["PYTHONPATH"] if env.get("PYTHONPATH") else "")
    env.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
    env.update(extra)
    return env


def edgenet_cli(*args, timeout_s: float = 300, **env) -> subprocess.CompletedProcess:
    """A real ``python -m edgenet ...`` run."""
    return subprocess.run([sys.executable, "-m", "edgenet", *map(str, args)], capture_output=True, text=True,
                          timeout=timeout_s, env=_env(**env), stdin=subprocess.DEVNULL)


def invoke(*args):
    """The CLI in this process (fast: TensorFlow stays loaded)."""
    return CliRunner().invoke(cli_main, [str(a) for a in args])


def error_lines(stderr: str) -> list[str]:
    return [line for line in stderr.splitlines() if line.startswith(("Error:", "error:"))]


def assert_one_error(result, code: int, *needles: str) -> str:
    """Exit ``code``, no traceback, exactly one error line, holding every needle."""
    stderr = result.stderr if isinstance(result, subprocess.CompletedProcess) else result.output
    rc = result.returncode if isinstance(result, subprocess.CompletedProcess) else result.exit_code
    assert rc == code, (rc, stderr[-2000:])
    assert "Traceback" not in stderr, stderr[-3000:]
    if not isinstance(result, subprocess.CompletedProcess):
        assert result.exception is None or isinstance(result.exception, SystemExit), repr(result.exception)
    lines = error_lines(stderr)
    assert len(lines) == 1, stderr[-2000:]
    for needle in needles:
        assert needle in lines[0], (needle, lines[0])
    return lines[0]


def descendants(pid: int) -> list[int]:
    """Every live process whose parent chain reaches ``pid`` (read from /proc)."""
    parents = {}
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            try:
                fields = (entry / "stat").read_text().rsplit(")", 1)[1].split()
            except OSError:
                continue
            if fields[0] != "Z":
                parents[int(entry.name)] = int(fields[1])
    found, frontier = [], [pid]
    while frontier:
        current = frontier.pop()
        kids = [p for p, pp in parents.items() if pp == current]
        found += kids
        frontier += kids
    return found


def processes_with(marker: str) -> list[int]:
    """Live processes whose command line or environment mentions ``marker`` (an orphan keeps its env)."""
    out = []
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit() or int(entry.name) == os.getpid():
            continue
        try:
            if (entry / "stat").read_text().rsplit(")", 1)[1].split()[0] == "Z":
                continue
            blob = (entry / "cmdline").read_bytes() + (entry / "environ").read_bytes()
        except OSError:
            continue
        if marker.encode() in blob:
            out.append(int(entry.name))
    return out


def snapshot(folder: Path) -> dict[str, bytes]:
    return {str(p.relative_to(folder)): p.read_bytes() for p in sorted(folder.rglob("*")) if p.is_file()}


# --- 1. weights files that reach outside themselves ------------------------------------------------

@pytest.fixture(scope="module")
def tiny_weights(tmp_path_factory, tiny_variant):
    from edgenet.family.model import build_model
    from edgenet.weights.keras_files import save_weights

    model = build_model(tiny_variant)
    path = save_weights(model, tmp_path_factory.mktemp("weights") / "tiny.weights.h5")
    return model, path


def _first_vars(h5) -> str:
    """Path of the first weight dataset in a Keras 3 weights file (a conv kernel)."""
    for key in h5["layers"]:
        if "vars" in h5["layers"][key] and len(h5["layers"][key]["vars"]):
            return f"layers/{key}/vars/0"
    raise AssertionError("no weights")


def _mutated(src: Path, dst: Path, mutate) -> Path:
    dst.write_bytes(src.read_bytes())
    with h5py.File(dst, "r+") as h5:
        name = _first_vars(h5)
        shape, dtype = h5[name].shape, h5[name].dtype
        del h5[name]
        mutate(h5, name, shape, dtype, dst.parent)
    return dst


def _secret(folder: Path, shape, dtype) -> Path:
    """A file outside the weights that a hostile link points at (distinctive bytes)."""
    path = folder / "secret.bin"
    path.write_bytes(np.full(shape, 7, dtype=dtype).tobytes())
    return path


def _other_h5(folder: Path, shape, dtype) -> Path:
    path = folder / "other.h5"
    with h5py.File(path, "w") as h5:
        h5["data"] = np.full(shape, 7, dtype=dtype)
    return path


HOSTILE_H5 = {
    "external link": (lambda h5, n, s, d, f: h5.__setitem__(n, h5py.ExternalLink(str(_other_h5(f, s, d)), "data")),
                      "external link to"),
    "dangling soft link": (lambda h5, n, s, d, f: h5.__setitem__(n, h5py.SoftLink("/nowhere/at/all")),
                           "soft link to /nowhere/at/all"),
    "soft link": (lambda h5, n, s, d, f: (h5.create_dataset("elsewhere", data=np.zeros(s, d)),
                                          h5.__setitem__(n, h5py.SoftLink("/elsewhere"))), "soft link to /elsewhere"),
    "virtual dataset": (lambda h5, n, s, d, f: h5.create_virtual_dataset(
        n, _virtual_layout(f, s, d)), "virtual dataset"),
    "external raw storage": (lambda h5, n, s, d, f: h5.create_dataset(
        n, shape=s, dtype=d, external=[(str(_secret(f, s, d)), 0, int(np.prod(s)) * d.itemsize)]),
        "external raw storage"),
    "256 TiB declared, chunked": (lambda h5, n, s, d, f: h5.create_dataset(
        n, shape=(2**46,), dtype="f4", chunks=(1024,)), "the model expects"),
    "2 GiB declared, contiguous": (lambda h5, n, s, d, f: h5.create_dataset(
        n, shape=(2**29,), dtype="f4"), "declares 2147483648 bytes"),
    "strings, not numbers": (lambda h5, n, s, d, f: h5.__setitem__(n, np.array([b"x"] * 3)), "not numbers"),
    "a group, not a dataset": (lambda h5, n, s, d, f: h5.create_group(n), "found a group"),
    "NaN weights": (lambda h5, n, s, d, f: h5.__setitem__(n, np.full(s, np.nan, d)), "NaN or infinite"),
    "Inf weights": (lambda h5, n, s, d, f: h5.__setitem__(n, np.where(np.arange(int(np.prod(s))).reshape(s) == 3,
                                                                      np.inf, 0).astype(d)), "1 NaN or infinite"),
}


def _virtual_layout(folder: Path, shape, dtype):
    other = _other_h5(folder, shape, dtype)
    layout = h5py.VirtualLayout(shape=shape, dtype=dtype)
    layout[...] = h5py.VirtualSource(str(other), "data", shape=shape)
    return layout


def test_weights_that_reach_outside_the_file_are_refused_in_one_line(tiny_weights, tiny_variant, tmp_path):
    from edgenet.weights.keras_files import load_weights

    model, good = tiny_weights
    before = [w.copy() for w in model.get_weights()]
    for index, (case, (mutate, cause)) in enumerate(HOSTILE_H5.items()):
        folder = tmp_path / f"case{index}"
        folder.mkdir()
        path = _mutated(good, folder / "hostile.weights.h5", mutate)
        with pytest.raises(EdgenetError) as info:
            load_weights(model, tiny_variant, path)
        message = str(info.value)
        assert str(path) in message and cause in message and "\n" not in message, (case, message)
        # Nothing was loaded from a refused file (a refusal comes before any assignment or at the
        # first bad layer, and the secret bytes 7.0 never reach the model).
        assert not any(np.any(w == 7) for w in model.get_weights()), case
    model.set_weights(before)


def test_hostile_weights_through_the_cli(tiny_weights, tmp_path):
    from conftest import TINY_SPEC

    _, good = tiny_weights
    image = tmp_path / "img.png"
    from PIL import Image

    Image.new("RGB", (64, 64), (120, 30, 200)).save(image)
    path = _mutated(good, tmp_path / "linked.weights.h5", HOSTILE_H5["external link"][0])
    result = invoke("predict", image, "--model", TINY_SPEC, "--weights", path)
    assert_one_error(result, 1, str(path), "external link to", "other.h5")
    # A dangling link in the legacy walk path, and a truncated file.
    truncated = tmp_path / "truncated.weights.h5"
    truncated.write_bytes(good.read_bytes()[: good.stat().st_size // 2])
    result = invoke("predict", image, "--model", TINY_SPEC, "--weights", truncated)
    assert_one_error(result, 1, str(truncated))
