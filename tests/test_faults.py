"""A fault corpus: hostile inputs and interruptions, one test per fault class, built from scratch here.

Every case checks what the issue promises: the exit code, exactly one error line naming the file and
the cause, no traceback, nothing partial written, earlier outputs intact, no child process left.
"""

from __future__ import annotations

import os
import re
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import h5py
import numpy as np
import pytest
from click.testing import CliRunner
from test_bench import local_sshd  # noqa: F401 - the suite's throw-away sshd on 127.0.0.1

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
    """The error lines, without the count a multi-setting command ends with ("1 of 2 setting(s) failed")."""
    return [line for line in stderr.splitlines() if line.startswith(("Error:", "error:"))
            and not re.match(r"Error: \d+ of \d+ \w+\(s\) failed", line)]


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


@pytest.mark.skipif(shutil.which("strace") is None, reason="strace is not installed (tools/run-tests installs it)")
def test_a_hostile_weights_file_opens_no_other_file(tiny_weights, tmp_path):
    """Traced for real: the files an external link, a virtual dataset and external storage point at are never
    opened (not even by HDF5 to look), only the weights file itself."""
    _, good = tiny_weights
    cases = []
    for case in ("external link", "virtual dataset", "external raw storage"):
        folder = tmp_path / case.replace(" ", "_")
        folder.mkdir()
        cases.append(_mutated(good, folder / "hostile.weights.h5", HOSTILE_H5[case][0]))
    script = ("import sys\nfrom edgenet.weights.keras_files import open_keras_weights\n"
              "for path in sys.argv[1:]:\n    try:\n        with open_keras_weights(path) as (layout, entries):\n"
              "            [v.read() for vs in entries.values() for item in vs for v in (item if isinstance(item, list)"
              " else [item])]\n    except Exception as exc:\n        print(type(exc).__name__, exc)\n")
    trace = tmp_path / "trace.txt"
    done = subprocess.run(["strace", "-f", "-qq", "-e", "trace=open,openat,openat2", "-o", str(trace),
                           sys.executable, "-c", script, *map(str, cases)], capture_output=True, text=True,
                          env=_env(), timeout=120)
    assert done.stdout.count("InputFileError") == 3, done.stdout + done.stderr
    opened = trace.read_text()
    for path in cases:
        assert str(path) in opened  # the trace works: the weights file itself was opened
        for other in ("other.h5", "secret.bin"):
            assert str(path.parent / other) not in opened, other


def test_hostile_weights_through_the_cli(tiny_weights, tmp_path):
    from conftest import TINY_SPEC

    _, good = tiny_weights
    image = tmp_path / "img.png"
    from PIL import Image

    Image.new("RGB", (64, 64), (120, 30, 200)).save(image)
    path = _mutated(good, tmp_path / "linked.weights.h5", HOSTILE_H5["external link"][0])
    result = invoke("predict", image, "--model", TINY_SPEC, "--weights", path)
    assert_one_error(result, 1, str(path), "external link to", "other.h5")
    # A truncated file: one line naming it, whatever HDF5 says inside.
    truncated = tmp_path / "truncated.weights.h5"
    truncated.write_bytes(good.read_bytes()[: good.stat().st_size // 2])
    result = invoke("predict", image, "--model", TINY_SPEC, "--weights", truncated)
    assert_one_error(result, 1, str(truncated))


# --- 2. native crashes stay in a child process -----------------------------------------------------

@pytest.fixture(scope="module")
def tiny_tflite():
    from fixtures_tflite import tiny_tflite_models

    return tiny_tflite_models()


@pytest.fixture(scope="module")
def crashing_models(tiny_tflite, tmp_path_factory):
    from fixtures_tflite import crashing_tflite_models

    return crashing_tflite_models(tiny_tflite.fp32.read_bytes(), tmp_path_factory.mktemp("crashing"))


@pytest.fixture(scope="module")
def image(tmp_path_factory) -> Path:
    from PIL import Image

    path = tmp_path_factory.mktemp("img") / "photo.png"
    Image.fromarray(np.random.default_rng(0).integers(0, 255, (48, 48, 3), dtype=np.uint8)).save(path)
    return path


def test_a_crashing_model_costs_one_line_in_predict_eval_and_bench(crashing_models, tiny_tflite, image, tmp_path):
    data = tmp_path / "data" / "cat"
    data.mkdir(parents=True)
    (data / "a.png").write_bytes(image.read_bytes())
    for model in crashing_models:
        marker = f"edgenet-fault-{os.getpid()}-{model.stem}"
        for args in (["predict", image, "--model", model],
                     ["eval", model, "--data", data.parent, "--quiet"],
                     ["bench", model, "--warmup-s", "0", "--min-runs", "1", "--min-s", "0", "--max-s", "0.1"]):
            result = edgenet_cli(*args, EDGENET_FAULT_MARKER=marker)
            line = assert_one_error(result, 1, str(model), "crashed (SIG")
            assert "core dumped" not in result.stderr and "double free" not in result.stderr, line
            assert processes_with(marker) == []
    # The same commands still work on a sound model (the crash was the model's, not the mechanism's).
    ok = edgenet_cli("predict", image, "--model", tiny_tflite.fp32, "--top", "1")
    assert ok.returncode == 0 and "photo.png" in ok.stdout, ok.stderr


# --- 3. signals --------------------------------------------------------------------------------------

def _start(args, marker: str, **env) -> subprocess.Popen:
    return subprocess.Popen([sys.executable, "-m", "edgenet", *map(str, args)], stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, text=True, env=_env(EDGENET_FAULT_MARKER=marker, **env),
                            stdin=subprocess.DEVNULL)


def _wait_for(condition, timeout_s: float = 240.0, what: str = "") -> None:
    deadline = time.monotonic() + timeout_s
    while not condition():
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out waiting for {what}")
        time.sleep(0.1)


def _interrupt(proc: subprocess.Popen, sig: int, marker: str) -> tuple[int, str]:
    proc.send_signal(sig)
    _, stderr = proc.communicate(timeout=60)
    # Every process the run started (they carry its marker in their environment) is gone.
    _wait_for(lambda: processes_with(marker) == [], 10, "children to go")
    return proc.returncode, stderr


def _assert_interrupted(code: int, stderr: str, sig: int) -> None:
    assert code == 128 + sig, (code, stderr[-2000:])
    assert "Traceback" not in stderr, stderr[-3000:]
    lines = [line for line in stderr.splitlines() if line.startswith("interrupted")]
    assert len(lines) == 1 and signal.Signals(sig).name in lines[0], stderr[-2000:]


def test_sigterm_sigint_sighup_stop_children_remove_temporaries_and_keep_finished_work(tmp_path):
    import tempfile

    from conftest import TINY_LITE_SPEC, TINY_SPEC

    # SIGTERM after the first of two conversions finished: the first is kept, the second leaves nothing.
    out = tmp_path / "out"
    marker = f"edgenet-fault-{os.getpid()}-convert-term"
    proc = _start(["convert", TINY_SPEC, TINY_LITE_SPEC, "--quant", "fp32", "-o", out, "--quiet"], marker)
    _wait_for(lambda: len(list(out.glob("*.json"))) == 1 and len(descendants(proc.pid)) > 0, what="1st output")
    code, stderr = _interrupt(proc, signal.SIGTERM, marker)
    _assert_interrupted(code, stderr, signal.SIGTERM)
    kept = sorted(p.name for p in out.iterdir())
    assert len(kept) == 2 and all(not n.startswith(".") for n in kept), kept  # one model + its manifest
    assert not list(Path(tempfile.gettempdir()).glob(f"edgenet-convert-{proc.pid}-*"))
    again = edgenet_cli("convert", TINY_SPEC, "--quant", "fp32", "-o", out, "--quiet")
    assert again.returncode == 0 and "up to date" in again.stderr, again.stderr

    # SIGINT and SIGHUP while the conversion worker runs.
    for sig in (signal.SIGINT, signal.SIGHUP):
        folder = tmp_path / signal.Signals(sig).name
        marker = f"edgenet-fault-{os.getpid()}-convert-{sig}"
        proc = _start(["convert", TINY_SPEC, "--quant", "fp32", "-o", folder, "--quiet"], marker)
        _wait_for(lambda: len(descendants(proc.pid)) > 0, what="the worker")  # noqa: B023
        time.sleep(0.5)
        code, stderr = _interrupt(proc, sig, marker)
        _assert_interrupted(code, stderr, sig)
        assert list(folder.iterdir()) == []
        assert not list(Path(tempfile.gettempdir()).glob(f"edgenet-convert-{proc.pid}-*"))


def test_sigterm_stops_a_hanging_bench_child_and_leaves_earlier_results(tiny_tflite, tmp_path):
    from edgenet.bench.child import SLEEP_ENV

    results = tmp_path / "results.jsonl"
    results.write_text('{"earlier": true}\n')
    marker = f"edgenet-fault-{os.getpid()}-bench"
    proc = _start(["bench", tiny_tflite.int8, "--results", results], marker, **{SLEEP_ENV: "300"})
    _wait_for(lambda: len(descendants(proc.pid)) > 0, what="the bench child")
    time.sleep(0.3)
    code, stderr = _interrupt(proc, signal.SIGTERM, marker)
    _assert_interrupted(code, stderr, signal.SIGTERM)
    assert results.read_text() == '{"earlier": true}\n'
    assert sorted(p.name for p in tmp_path.iterdir()) == ["results.jsonl"]


# --- 4. outputs that cannot be written -------------------------------------------------------------

def _mount_tmpfs(path: Path, options: str) -> bool:
    path.mkdir(parents=True, exist_ok=True)
    done = subprocess.run(["mount", "-t", "tmpfs", "-o", options, "tmpfs", str(path)], capture_output=True)
    return done.returncode == 0


def _umount(path: Path) -> None:
    subprocess.run(["umount", "-l", str(path)], capture_output=True)


BENCH_FAST = ["--warmup-s", "0", "--min-runs", "3", "--min-s", "0", "--max-s", "0.2"]


def _unwritable_cases(tiny_tflite, lite0_checkpoint, folder: Path) -> list[tuple[list, Path]]:
    from conftest import TINY_SPEC

    return [
        (["bench", tiny_tflite.fp32, *BENCH_FAST, "--results", folder / "r.jsonl"], folder / "r.jsonl"),
        (["bench", tiny_tflite.fp32, *BENCH_FAST, "--csv", folder / "r.csv"], folder / "r.csv"),
        (["layout", TINY_SPEC, "--png", folder / "layout.png"], folder / "layout.png"),
        (["convert", TINY_SPEC, "--quant", "fp32", "--force", "-o", folder / "models"], folder / "models"),
        (["sweep", "--budget-ms", "5", "--variants", TINY_SPEC, "-o", folder / "run"], folder / "run"),
        (["import-weights", lite0_checkpoint, "--variant", "lite0", "-o", folder / "l0.weights.h5"],
         folder / "l0.weights.h5"),
    ]


def _check_unwritable(cases, cause: str) -> None:
    for args, target in cases:
        result = invoke(*args)
        assert_one_error(result, 1, str(target), "cannot write", cause)


def test_outputs_under_a_file_and_in_proc_are_one_line(tiny_tflite, lite0_checkpoint, tmp_path):
    blocker = tmp_path / "a-file"
    blocker.write_text("not a folder")
    _check_unwritable(_unwritable_cases(tiny_tflite, lite0_checkpoint, blocker), "")
    assert blocker.read_text() == "not a folder"
    result = invoke("bench", tiny_tflite.fp32, *BENCH_FAST, "--csv", "/proc/edgenet.csv")
    assert_one_error(result, 1, "/proc/edgenet.csv", "cannot write")


@pytest.mark.skipif(os.geteuid() != 0, reason="mounting a read-only or full tmpfs needs root (the ENOTDIR and "
                                              "/proc cases above cover unwritable outputs without it)")
def test_read_only_folder_and_full_disk_keep_earlier_outputs(tiny_tflite, lite0_checkpoint, tmp_path):
    ro = tmp_path / "ro"
    assert _mount_tmpfs(ro, "size=1m"), "root but cannot mount a tmpfs"
    try:
        earlier = {"r.jsonl": b'{"earlier": 1}\n', "r.csv": b"a,b\n1,2\n", "layout.png": b"old png"}
        for name, data in earlier.items():
            (ro / name).write_bytes(data)
        subprocess.run(["mount", "-o", "remount,ro", str(ro)], check=True)
        _check_unwritable(_unwritable_cases(tiny_tflite, lite0_checkpoint, ro), "Read-only file system")
        assert snapshot(ro) == {k: v for k, v in earlier.items()}
    finally:
        _umount(ro)
    full = tmp_path / "full"
    assert _mount_tmpfs(full, "size=64k")
    try:
        (full / "r.jsonl").write_bytes(b'{"earlier": 1}\n')
        fd = os.open(full / "filler", os.O_WRONLY | os.O_CREAT)
        try:
            with pytest.raises(OSError, match="No space"):
                while True:
                    os.write(fd, b"\0" * 4096)
        finally:
            os.close(fd)
        result = invoke("bench", tiny_tflite.fp32, *BENCH_FAST, "--results", full / "r.jsonl")
        assert_one_error(result, 1, str(full / "r.jsonl"), "No space left on device")
        assert (full / "r.jsonl").read_bytes() == b'{"earlier": 1}\n'
        assert sorted(p.name for p in full.iterdir()) == ["filler", "r.jsonl"]
    finally:
        _umount(full)


# --- 5. image folders from the real world ----------------------------------------------------------

def _photo(path: Path, seed: int, black: bool = False) -> Path:
    from PIL import Image

    pixels = np.zeros((40, 48, 3), np.uint8) if black else \
        np.random.default_rng(seed).integers(0, 255, (40, 48, 3), dtype=np.uint8)
    Image.fromarray(pixels).save(path, format="PNG")
    return path


def _hostile_folder(root: Path, good: int) -> dict[str, str]:
    """``good`` real images plus one of each pathological entry; returns name -> expected cause."""
    import socket

    root.mkdir(parents=True)
    for i in range(good):
        _photo(root / f"good{i}.png", i)
    os.symlink("loop_b.jpg", root / "loop_a.jpg")
    os.symlink("loop_a.jpg", root / "loop_b.jpg")
    os.symlink("missing.png", root / "dangling.png")
    os.mkfifo(root / "pipe.jpg")
    os.symlink("/dev/zero", root / "zero.jpg")
    server = socket.socket(socket.AF_UNIX)
    server.bind(str(root / "sock.png"))
    server.close()
    (root / "postscript.jpg").write_bytes(b"%!PS-Adobe-3.0 EPSF-3.0\n%%BoundingBox: 0 0 10 10\nshowpage\n")
    real = (root / "good0.png").read_bytes()
    (root / "line\nbreak.png").write_bytes(real[: len(real) // 2])  # a truncated PNG, odd name
    (root / os.fsdecode(b"latin\xe9.png")).write_bytes(b"not an image")
    return {"loop_a.jpg": "symbolic link loop", "loop_b.jpg": "symbolic link loop",
            "dangling.png": "symbolic link to a missing file", "pipe.jpg": "a FIFO, not an image file",
            "zero.jpg": "a character device", "sock.png": "a socket",
            "postscript.jpg": "not an image file", "line\nbreak.png": "corrupt",
            os.fsdecode(b"latin\xe9.png"): "not an image file"}


def test_image_folders_with_special_files_links_and_odd_names(tmp_path, tiny_tflite):
    from conftest import TINY_SPEC

    from edgenet.convert.calibration import load_calibration
    from edgenet.pixels.contract import PreprocessContract
    from edgenet.pixels.images import load_image

    # Every pathological entry is refused with its own cause, without hanging on the FIFO.
    folder = tmp_path / "mixed"
    expected = _hostile_folder(folder, good=12)
    for name, cause in expected.items():
        with pytest.raises(InputFileError) as info:
            load_image(folder / name)
        assert cause in str(info.value) and "\n" not in str(info.value), (name, str(info.value))
    # A content/extension mismatch within the allow-list is decoded by content (a PNG named .jpg).
    (folder / "really_png.jpg").write_bytes((folder / "good0.png").read_bytes())
    assert load_image(folder / "really_png.jpg").size == (48, 40)

    # Calibration: enough good images -> the skips are said on the terminal (one line, names escaped).
    contract = PreprocessContract(32, (0.0,) * 3, (1.0,) * 3)
    said: list[str] = []
    calib = load_calibration(folder, contract, samples=40, log=said.append)
    assert calib.count == 40 and len(calib.skipped) == len(expected)
    assert len(said) == 1 and f"{len(expected)} file(s)" in said[0] and "\n" not in said[0], said
    assert "line\\nbreak.png" in said[0] or "and 6 more" in said[0]

    # Mostly unreadable (1 good, 9 bad): convert fails before converting, in one line naming the folder.
    bad = tmp_path / "bad"
    _hostile_folder(bad, good=1)
    out = tmp_path / "out"
    result = invoke("convert", TINY_SPEC, "--calib", bad, "-o", out, "--quiet")
    assert_one_error(result, 1, str(bad), "9 of 10 image files are unreadable", "more than 50%")
    assert not out.exists() or list(out.iterdir()) == []

    # All-black calibration images: a warning about the degenerate input range.
    black = tmp_path / "black"
    black.mkdir()
    for i in range(3):
        _photo(black / f"b{i}.png", i, black=True)
    said.clear()
    load_calibration(black, contract, samples=3, log=said.append)
    assert len(said) == 1 and "span only 0.0% of the input range" in said[0], said

    # predict on a FIFO and on an undecodable name: one line each, the FIFO never opened (no hang).
    result = invoke("predict", folder / "pipe.jpg", folder / os.fsdecode(b"latin\xe9.png"), folder / "good1.png",
                    "--model", tiny_tflite.fp32)
    assert result.exit_code == 1 and "Traceback" not in result.output
    lines = error_lines(result.output)
    assert len(lines) == 2 and "a FIFO" in lines[0] and "latin\\xe9.png" in lines[1], result.output


# --- 7. stale outputs -------------------------------------------------------------------------------

def test_resume_follows_what_a_weights_link_points_at(tiny_weights, tmp_path):
    from conftest import TINY_SPEC

    from edgenet.weights.keras_files import save_weights

    model, first = tiny_weights
    original = [w.copy() for w in model.get_weights()]
    model.set_weights([w + 0.01 for w in original])
    second = save_weights(model, tmp_path / "second.weights.h5")
    model.set_weights(original)
    link = tmp_path / "current.weights.h5"
    link.symlink_to(first)
    out = tmp_path / "out"
    args = ["convert", TINY_SPEC, "--quant", "fp32", "--weights", link, "-o", out, "--quiet"]
    assert "wrote" in invoke(*args).output
    assert "up to date" in invoke(*args).output
    link.unlink()
    link.symlink_to(second)  # same name, same link, other content: must rebuild
    result = invoke(*args)
    assert result.exit_code == 0 and "wrote" in result.output and "up to date" not in result.output, result.output


# --- 8. the small ones --------------------------------------------------------------------------------

def test_small_ones_exit_codes_and_one_line_messages(tmp_path, lite0_checkpoint, tiny_weights, tiny_variant):
    # Usage errors exit 2: budgets that are not finite, '' as the variant list, a repeated spec key.
    for args in (["select", "r.jsonl", "--budget-ms", "nan"], ["select", "r.jsonl", "--budget-ms", "inf"],
                 ["sweep", "--budget-ms", "-inf"], ["sweep", "--budget-ms", "1e308"],
                 ["convert", "", "-o", tmp_path / "o"], ["convert", "phi=-8,phi=-7", "-o", tmp_path / "o"],
                 ["layout", "phi=1,width=0.5,width=0.7"]):
        result = invoke(*args)
        assert result.exit_code == 2 and "Traceback" not in result.output, (args, result.output)
        message = error_lines(result.output)
        assert len(message) == 1 and len(message[0]) < 300, (args, result.output)
    assert not (tmp_path / "o").exists()
    # The README's example list: names, a range and a custom spec in one value.
    from edgenet.family.variants import parse_variant_list

    assert [v.name for v in parse_variant_list(["lite0-lite4,phi=1.5"])][-2:] == ["lite4", "phi1.5"]

    # import-weights with a checkpoint of another variant: the file is named in the one line.
    result = invoke("import-weights", lite0_checkpoint, "--variant", "lite1", "-o", tmp_path / "x.weights.h5")
    assert_one_error(result, 1, str(lite0_checkpoint), "shape")
    assert not (tmp_path / "x.weights.h5").exists()

    # A newline in a file name does not split the error line; NaN weights are refused in one line.
    _, good = tiny_weights
    odd = tmp_path / "two\nlines.weights.h5"
    odd.write_bytes(good.read_bytes())
    with h5py.File(odd, "r+") as h5:
        name = _first_vars(h5)
        h5[name][...] = np.nan
    from conftest import TINY_SPEC

    result = invoke("predict", good, "--model", TINY_SPEC, "--weights", odd)
    assert_one_error(result, 1, "two\\nlines.weights.h5", "NaN")
    assert "two\nlines" not in result.output


# --- 9. numbers: finite, in range, the option named (issue 25) -----------------------------------------

NOT_NUMBERS = ("nan", "inf", "-inf", "1e308", "-1", "x")


@pytest.mark.parametrize("bad", NOT_NUMBERS)
@pytest.mark.parametrize("command", [
    ["bench", "m.tflite"], ["bench", "m.tflite", "--remote", "user@127.0.0.1"], ["profile", "m.tflite"],
    ["sweep", "--budget-ms", "10"], ["tune", "m.tflite"],
])
@pytest.mark.parametrize("option", ["--timeout-s", "--warmup-s", "--min-s", "--max-s"])
def test_durations_that_are_not_finite_end_in_one_usage_line(tmp_path, command, option, bad):
    if option == "--min-s" and command[0] == "profile":
        option = "--rounds"  # profile has no minimum time: its rounds
    out = tmp_path / "out"
    result = invoke(*command, option, bad, "-o" if command[0] in ("sweep", "profile") else "--csv", out)
    assert_one_error(result, 2, option)
    assert not out.exists()


@pytest.mark.parametrize("args, option", [
    (["sweep", "--budget-ms", "10", "--far-factor", "nan"], "--far-factor"),
    (["sweep", "--budget-ms", "10", "--min-top1", "nan"], "--min-top1"),
    (["select", "r.jsonl", "--budget-ms", "10", "--min-top1", "nan"], "--min-top1"),
    (["select", "r.jsonl", "--budget-ms", "10", "--threads", "1e308"], "--threads"),
    (["scale", "--phi", "nan"], "--phi"),
    (["scale", "--phi", "1", "--width", "inf"], "--width"),
    (["convert", "b0", "-o", "o", "--max-latency-cost", "inf"], "--max-latency-cost"),
    (["convert", "b0", "-o", "o", "--samples", "99999999999999999999"], "--samples"),
    (["eval", "m.tflite", "--data", ".", "--limit", "0"], "--limit"),
    (["predict", "x.jpg", "--model", "b0", "--top", "nan"], "--top"),
    (["bench", "m.tflite", "--threads", "1,nan"], "--threads"),
    (["devices", "--cluster", "ray://127.0.0.1:99999999999999999999"], "port"),
    (["devices", "--cluster", "127.0.0.1:0"], "port"),
    (["bench", "m.tflite", "--cluster", "127.0.0.1:65536"], "port"),
])
def test_other_numbers_are_refused_in_one_line(args, option):
    line = assert_one_error(invoke(*args), 2, option)
    if option == "port":
        assert "--cluster" in line and "1 to 65535" in line


def test_benchparams_holds_the_same_bounds():
    from edgenet.bench.params import BenchParams, BenchParamsError

    for field, bad in (("timeout_s", float("nan")), ("warmup_s", float("inf")), ("max_s", 1e308), ("min_runs", 0)):
        with pytest.raises(BenchParamsError, match=field):
            BenchParams(**{field: bad})


# --- 6. remote timeouts that hold, results reused only for the same device ---------------------------

@pytest.fixture()
def silent_port():
    """A TCP port on 127.0.0.1 that accepts connections and never says a word."""
    import socket
    import threading

    server = socket.socket()
    server.bind(("127.0.0.1", 0))
    server.listen(8)
    held: list = []
    stop = threading.Event()

    def accept():
        server.settimeout(0.2)
        while not stop.is_set():
            try:
                held.append(server.accept()[0])
            except OSError:
                continue

    thread = threading.Thread(target=accept, daemon=True)
    thread.start()
    yield server.getsockname()[1]
    stop.set()
    thread.join(timeout=5)
    for conn in held:
        conn.close()
    server.close()


def test_remote_timeouts_are_bounds(tiny_tflite, silent_port, tmp_path, request):
    # --timeout-s bounds the whole remote run, connection included, whatever ssh's own timeout says.
    started = time.monotonic()
    result = invoke("bench", tiny_tflite.int8, "--remote", "nobody@127.0.0.1", "--timeout-s", "3",
                    "--ssh-option", f"Port={silent_port}", "--ssh-option", "ConnectTimeout=120")
    took = time.monotonic() - started
    assert_one_error(result, 1, "127.0.0.1", "no result within 3 s")
    assert took < 3 + 5 + 10, took  # budget + grace + process start-up; it was 135 s
    # The user's ConnectTimeout is honoured (ssh keeps the first value; ours came first before).
    started = time.monotonic()
    result = invoke("bench", tiny_tflite.int8, "--remote", "nobody@127.0.0.1",
                    "--ssh-option", f"Port={silent_port}", "--ssh-option", "ConnectTimeout=2")
    took = time.monotonic() - started
    assert_one_error(result, 1, "127.0.0.1: unreachable", "timed out")
    assert took < 2 + 10, took


def test_remote_processes_and_folders_do_not_outlive_the_budget(tiny_tflite, local_sshd, tmp_path):  # noqa: F811
    host, options = local_sshd
    ssh_args = [arg for option in options for arg in ("--ssh-option", option)]
    remote_tmp = tmp_path / "remote-tmp"  # the sshd's TMPDIR (tests/sshd.py)
    # A remote command that hangs (the bench arguments after '#' are a shell comment).
    result = invoke("bench", tiny_tflite.int8, "--remote", host, *ssh_args, "--timeout-s", "3",
                    "--remote-command", "sleep 317.25 #")
    assert_one_error(result, 1, "127.0.0.1", "3 s")
    _wait_for(lambda: processes_with("317.25") == [], 10, "the remote sleep to end")
    assert list(remote_tmp.iterdir()) == []  # the remote folder is gone



def test_children_die_with_a_parent_killed_by_sigkill(tmp_path):
    marker = f"edgenet-fault-{os.getpid()}-kill9"
    code = ("import sys, time; from edgenet import process; "
            "process.popen([sys.executable, '-c', 'import time; time.sleep(300)']); print('up', flush=True); "
            "time.sleep(300)")
    proc = subprocess.Popen([sys.executable, "-c", code], stdout=subprocess.PIPE, text=True,
                            env=_env(EDGENET_FAULT_MARKER=marker))
    assert proc.stdout.readline().strip() == "up"
    assert len(processes_with(marker)) == 2
    proc.kill()
    proc.wait()
    _wait_for(lambda: processes_with(marker) == [], 10, "the orphan to die")


# --- 7. devices: their files, their replies, their time bounds (one Device, one Session) --------------

def _hostile_device(folder: Path, stdout: str, stderr: str = "", code: int = 0, host_options=None) -> Path:
    """A device file whose command answers ``stdout``/``stderr`` and exits ``code``, whatever it is asked.

    Without ``host_options`` the device is this machine (its command runs here); with ``(host, options)``
    it is reached over the suite's sshd.
    """
    import json
    import shlex

    folder.mkdir(parents=True, exist_ok=True)
    (folder / "reply.out").write_text(stdout)
    (folder / "reply.err").write_text(stderr)
    script = folder / "device.sh"
    script.write_text(f"cat {shlex.quote(str(folder / 'reply.out'))}\ncat {shlex.quote(str(folder / 'reply.err'))} >&2\n"
                      f"exit {code}\n")
    entry = {"name": "hostile", "command": f"sh {shlex.quote(str(script))}"}
    if host_options:
        entry.update(host=host_options[0], ssh_options=host_options[1])
    device = folder / "device.json"
    device.write_text(json.dumps(entry))
    return device


@pytest.fixture(scope="module")
def honest_replies(tiny_tflite, image, tmp_path_factory) -> dict:
    """What a sound device answers (real runs here): a bench record, an eval record and a profile."""
    import json

    from edgenet import results

    folder = tmp_path_factory.mktemp("honest")
    data = folder / "data" / "cat"
    data.mkdir(parents=True)
    (data / "a.png").write_bytes(image.read_bytes())
    model = str(tiny_tflite.int8.resolve())
    out = {}
    assert invoke("bench", model, "--warmup-s", "0", "--min-runs", "3", "--min-s", "0", "--max-s", "0.1",
                  "--results", folder / "b.jsonl").exit_code == 0
    assert invoke("eval", model, "--data", data.parent, "--quiet", "--results", folder / "e.jsonl").exit_code == 0
    (out["bench"],), (out["eval"],) = results.read_records(folder / "b.jsonl"), results.read_records(folder / "e.jsonl")
    res = invoke("profile", model, "--rounds", "2", "--runs", "2", "--warmup-s", "0", "--max-s", "0.1", "--json")
    assert res.exit_code == 0, res.output
    out["profile"] = json.loads(res.stdout)
    return out


def _mutate(record: dict, dotted: str, value) -> dict:
    import copy

    record = copy.deepcopy(record)
    *path, last = dotted.split(".")
    node = record
    for key in path:
        node = node[key]
    node[last] = value
    return record


#: (kind, field, value): a device's record with the wrong thing where a number (or a shipped path) belongs.
MALFORMED_RECORDS = [
    ("bench", "latency_ms.p50", "fast"), ("bench", "latency_ms.p50", [1, 2]), ("bench", "latency_ms.p50", "NaN"),
    ("bench", "latency_ms.p50", -5.0), ("bench", "runs", "many"), ("bench", "settings.threads", 0),
    ("bench", "samples_ms", [1.0, "Infinity"]), ("bench", "model.sha256", "0" * 64),
    ("eval", "accuracy.top1", "high"), ("eval", "accuracy.top1", "NaN"), ("eval", "accuracy.top1", -0.1),
    ("eval", "accuracy.top1", 150), ("eval", "accuracy.count", [3]),
]


def _line(record: dict) -> str:
    import json

    text = json.dumps(record)
    return text.replace('"NaN"', "NaN").replace('"Infinity"', "Infinity")  # the bare JSON extensions


def test_malformed_device_replies_are_one_line_and_nothing_is_merged(honest_replies, tiny_tflite, image, tmp_path):
    import json

    from edgenet import results

    data = tmp_path / "data" / "cat"
    data.mkdir(parents=True)
    (data / "a.png").write_bytes(image.read_bytes())
    store = tmp_path / "results.jsonl"
    store.write_text(json.dumps(honest_replies["bench"]) + "\n")  # earlier results that must stay as they are
    before = store.read_bytes()
    secret = tmp_path / "secret.tflite"
    secret.write_bytes(b"not for a device to name")
    cases = [(kind, _line(_mutate(honest_replies[kind], field, value)), f"{field}")
             for kind, field, value in MALFORMED_RECORDS]
    cases += [(kind, json.dumps(reply), "expected a record object") for kind in ("bench", "eval")
              for reply in ([], 42, "x")]
    cases += [("bench", json.dumps(_mutate(honest_replies["bench"], "model.path", str(secret))), "not a file that was shipped"),
              ("eval", json.dumps(_mutate(honest_replies["eval"], "model.path", "/etc/passwd")), "not a file that was shipped"),
              ("bench", json.dumps(honest_replies["eval"]), "kind 'eval', expected bench")]
    for i, (kind, reply, needle) in enumerate(cases):
        device = _hostile_device(tmp_path / f"d{i}", reply + "\n")
        args = ["bench", tiny_tflite.int8] if kind == "bench" else ["eval", tiny_tflite.int8, "--data", data.parent,
                                                                     "--quiet"]
        result = invoke(*args, "--remote", device, "--results", store)
        line = assert_one_error(result, 1, "hostile: malformed reply (", needle)
        assert store.read_bytes() == before, line  # nothing merged
        assert str(secret) not in result.output or "not a file that was shipped" in line
    assert len(results.read_records(store)) == 1


def test_malformed_probe_and_profile_replies_are_one_line(honest_replies, tiny_tflite, tmp_path):
    import json

    for i, reply in enumerate(["[]", "42", '"x"', '{"runtime": 5}', '{"runtime": "tflite", "delegate_ok": "yes"}',
                               "[" * 50_000]):
        device = _hostile_device(tmp_path / f"probe{i}", reply + "\n")
        result = invoke("devices", "-i", device)
        assert result.exit_code == 1 and "Traceback" not in result.output
        (line,) = result.stdout.splitlines()
        assert line.startswith("hostile: FAILED") and "malformed reply (" in line, line
    profile = honest_replies["profile"]
    for i, reply in enumerate(["[]", "42", json.dumps({**profile, "blocks": 5}),
                               _line(_mutate(profile, "whole_ms.median", "NaN")),
                               json.dumps(_mutate(profile, "blocks", [{"name": "stem", "ms": -1.0, "macs": 1,
                                                                       "op_count": 1}]))]):
        device = _hostile_device(tmp_path / f"profile{i}", reply + "\n")
        result = invoke("profile", tiny_tflite.int8, "--remote", device)
        assert_one_error(result, 1, "hostile: malformed reply (")


def test_terminal_escapes_from_a_device_are_escaped(honest_replies, tiny_tflite, tmp_path):
    from edgenet import results

    evil = "\x1b]0;owned\x07\x1b[2J\rboom"
    store = tmp_path / "r.jsonl"
    device = _hostile_device(tmp_path / "a", _line(_mutate(honest_replies["bench"], "error", evil)) + "\n", code=1)
    result = invoke("bench", tiny_tflite.int8, "--remote", device, "--results", store)
    assert result.exit_code == 1 and "\x1b" not in result.output and "\r" not in result.output
    (record,) = results.read_records(store)
    assert record["error"] == "\\x1b]0;owned\\x07\\x1b[2J\\rboom"
    device = _hostile_device(tmp_path / "b", "", stderr="\x1b]0;owned\x07\x1b[2J boom\n", code=3)
    for args in (["bench", tiny_tflite.int8], ["profile", tiny_tflite.int8]):
        result = invoke(*args, "--remote", device)
        assert_one_error(result, 1, "hostile:", "\\x1b]0;owned\\x07")
        assert "\x1b" not in result.output


def test_hostile_device_files_are_one_line(tiny_tflite, tmp_path):
    quote = tmp_path / "quote.json"
    quote.write_text('{"name": "pi", "host": "pi@h", "command": "edgenet \'bench"}')
    quote_toml = tmp_path / "quote.toml"
    quote_toml.write_text("[[device]]\nname = \"pi\"\nhost = \"pi@h\"\ncommand = \"edgenet 'bench\"\n")
    deep_toml = tmp_path / "deep.toml"
    deep_toml.write_text("x = " + "[" * 100_000 + "]" * 100_000 + "\n")
    deep_json = tmp_path / "deep.json"
    deep_json.write_text("[" * 100_000 + "]" * 100_000)
    for path, needle in ((quote, "device 'pi': command"), (quote_toml, "device 'pi': command"),
                         (deep_toml, "nested more than"), (deep_json, "nested more than")):
        for args in (["devices", "-i", path], ["bench", tiny_tflite.int8, "--remote", path]):
            assert_one_error(invoke(*args), 1, str(path), needle)
    assert_one_error(invoke("bench", tiny_tflite.int8, "--remote", "-oProxyCommand=touch x"), 1,
                     "not starting with '-'")


def _hung_device(folder: Path, sshd_access, marker: str) -> Path:
    """A device over the suite's sshd whose edgenet never answers (a sleep carrying ``marker``)."""
    import json

    host, options = sshd_access
    device = folder / "hung.json"
    device.write_text(json.dumps({"name": "hung", "host": host, "ssh_options": options,
                                  "command": f"sleep {marker} #"}))
    return device


def test_remote_paths_hold_their_timeout_on_a_hung_device(tiny_tflite, image, local_sshd, tmp_path):  # noqa: F811
    data = tmp_path / "data" / "cat"
    data.mkdir(parents=True)
    (data / "a.png").write_bytes(image.read_bytes())
    for marker, args, budget in (
            ("317.75", ["eval", tiny_tflite.int8, "--data", data.parent, "--quiet"], 3),
            ("317.5", ["profile", tiny_tflite.int8], 5)):
        device = _hung_device(tmp_path, local_sshd, marker)
        started = time.monotonic()
        result = invoke(*args, "--remote", device, "--timeout-s", budget)
        took = time.monotonic() - started
        assert_one_error(result, 1, "hung:", f"{budget} s")
        assert took < budget + 4, took  # the device side stops at the budget; no wait for the grace
        _wait_for(lambda m=marker: processes_with(m) == [], 10, "the device's command to end")


@pytest.mark.parametrize("command", ["devices", "bench"])
def test_sigterm_on_a_hung_device_ends_both_sides_within_2_s(command, tiny_tflite, local_sshd, tmp_path):  # noqa: F811
    marker = "318.25" if command == "devices" else "318.5"
    device = _hung_device(tmp_path, local_sshd, marker)
    args = ["devices", "-i", device] if command == "devices" else ["bench", tiny_tflite.int8, "--remote", device]
    proc = _start([*args, "--timeout-s", "300"], f"edgenet-fault-{os.getpid()}-hung")
    _wait_for(lambda: processes_with(marker) != [], 60, "the device's command to start")
    started = time.monotonic()
    proc.send_signal(signal.SIGTERM)
    _, stderr = proc.communicate(timeout=30)
    took = time.monotonic() - started
    _assert_interrupted(proc.returncode, stderr, signal.SIGTERM)
    assert took < 2.0, took
    _wait_for(lambda: processes_with(marker) == [], 5, "the device's command to stop with the local side")


# --- issue 25: the guarantees on every surface --------------------------------------------------------

def _one_line_failure(result, *needles: str) -> str:
    """A non-zero exit (1 or 2), no traceback, exactly one error line holding every needle."""
    stderr = result.stderr if isinstance(result, subprocess.CompletedProcess) else result.output
    rc = result.returncode if isinstance(result, subprocess.CompletedProcess) else result.exit_code
    assert rc in (1, 2), (rc, stderr[-2000:])
    assert "Traceback" not in stderr, stderr[-3000:]
    lines = error_lines(stderr)
    assert len(lines) == 1, stderr[-2000:]
    for needle in needles:
        assert needle in lines[0], (needle, lines[0])
    return lines[0]


def test_special_files_named_like_any_input_are_one_line_never_a_hang(tmp_path, tiny_tflite, image):
    from conftest import TINY_SPEC

    data = tmp_path / "data"
    (data / "cat").mkdir(parents=True)
    shutil.copy(image, data / "cat" / "a.png")
    for kind, make, cause in (("fifo", os.mkfifo, "a FIFO"),
                              ("zero", lambda p: os.symlink("/dev/zero", p), "a character device")):
        folder = tmp_path / kind
        folder.mkdir()

        made: list[Path] = []

        def special(name: str, folder=folder, make=make) -> Path:
            path = folder / name
            make(path)
            made.append(path)  # noqa: B023 - filled and read within the same iteration
            return path

        cases = [
            ("edgetpu", "check", special("m.tflite")),
            ("devices", special("devices.toml")),
            ("sweep", "--budget-ms", "5", "-o", tmp_path / "run", "--settings", special("tuned.json")),
            ("select", special("results.jsonl"), "--budget-ms", "5"),
            ("eval", tiny_tflite.fp32, "--data", special("val.txt")),
            ("eval", tiny_tflite.fp32, "--data", data, "--labels", special("labels.txt")),
            ("import-weights", special("ckpt.pth"), "--variant", TINY_SPEC, "-o", tmp_path / "w.weights.h5"),
            ("bench", tiny_tflite.fp32, "--remote", special("device.json")),
            ("predict", image, "--model", special("model.tflite")),
        ]
        for args, path in zip(cases, made, strict=True):
            _one_line_failure(invoke(*args), path.name, cause)
    assert not (tmp_path / "w.weights.h5").exists()

    # The size bound: a regular file larger than its kind can be is refused before it is read.
    from edgenet.fsutil import read_input_text

    big = tmp_path / "huge.json"
    with open(big, "wb") as fh:
        fh.truncate(5 << 20)  # sparse: costs nothing
    with pytest.raises(InputFileError, match="more than a settings file can be"):
        read_input_text(big, "a settings file", max_bytes=1 << 20)


def _walk_folder(root: Path, good: int) -> dict[str, str]:
    """``good`` real photos, plus one of each entry the folder walk skips, with its expected reason."""
    import socket

    root.mkdir(parents=True)
    for i in range(good):
        _photo(root / f"good{i}.png", i)
    os.symlink("b.jpg", root / "a.jpg")  # a.jpg -> b.jpg -> a.jpg
    os.symlink("a.jpg", root / "b.jpg")
    os.symlink("missing.png", root / "dangling.png")
    os.mkfifo(root / "pipe.jpg")
    os.symlink("/dev/zero", root / "zero.jpg")
    sock = socket.socket(socket.AF_UNIX)
    sock.bind(str(root / "sock.png"))
    sock.close()
    os.symlink(".", root / "loop_dir")  # a folder loop: never followed
    bad = os.fsdecode(b"bad\xff.png")
    shutil.copy(root / "good0.png", root / bad)  # a real image whose name is not UTF-8
    return {"a.jpg": "symbolic link loop", "b.jpg": "symbolic link loop",
            "dangling.png": "symbolic link to a missing file", "pipe.jpg": "a FIFO", "zero.jpg": "a character device",
            "sock.png": "a socket", bad: "not valid UTF-8"}


def test_user_folders_skip_loops_dangling_links_special_files_and_undecodable_names(tmp_path, tiny_tflite):
    from edgenet.convert.calibration import load_calibration
    from edgenet.convert.fidelity import holdout_set
    from edgenet.fsutil import walk_files
    from edgenet.pixels.contract import PreprocessContract
    from edgenet.pixels.images import IMAGE_EXTENSIONS

    folder = tmp_path / "calib"
    expected = _walk_folder(folder, good=12)
    walk = walk_files(folder, IMAGE_EXTENSIONS)
    assert sorted(p.name for p in walk.files) == sorted(f"good{i}.png" for i in range(12))
    reasons = {p.name: why for p, why in walk.skipped}
    assert set(reasons) == set(expected), reasons
    for name, cause in expected.items():
        assert cause in reasons[name], (name, reasons[name])

    # Calibration: the skips are said in one line, names escaped; the run goes on (no RuntimeError, no
    # UnicodeEncodeError in the file-list hash).
    contract = PreprocessContract(32, (0.0,) * 3, (1.0,) * 3)
    said: list[str] = []
    calib = load_calibration(folder, contract, samples=8, log=said.append)
    assert calib.count == 8 and len(calib.skipped) == len(expected) and len(calib.fingerprint["file_list_sha256"]) == 64
    assert len(said) == 1 and "\n" not in said[0] and f"{len(expected)} file(s)" in said[0], said
    # The fidelity holdout of the same folder: the loop is the walk's skip, not a crash in resolve().
    held = holdout_set(folder, contract, calib.files)
    assert held is not None and held.images == 4

    # Nothing usable left: one line naming the folder, through the CLI too.
    empty = tmp_path / "nothing"
    empty.mkdir()
    os.symlink("x.jpg", empty / "y.jpg")
    os.symlink("y.jpg", empty / "x.jpg")
    os.mkfifo(empty / "p.png")
    with pytest.raises(EdgenetError, match="no image files found.*skipped 3 file"):
        load_calibration(empty, contract, samples=2)
    data = tmp_path / "data"
    (data / "cat").mkdir(parents=True)
    os.symlink("a.png", data / "cat" / "b.png")
    os.symlink("b.png", data / "cat" / "a.png")
    result = invoke("eval", tiny_tflite.fp32, "--data", data)
    _one_line_failure(result, str(data), "symbolic link loop")


def _served_entry(folder: Path, name: str, body: bytes, *, size: bool = True, pinned: bool = True):
    """A registry entry for ``name`` (served from ``folder``) that names its sha256 and, if ``size``, its size."""
    import hashlib

    from edgenet.weights.registry import PublishedWeights

    (folder / name).write_bytes(body)
    return PublishedWeights(variant="lite0", source="test mirror", filename=name, file_format="pytorch",
                            licence="Apache-2.0", hash=f"sha256:{hashlib.sha256(body).hexdigest()}" if pinned else None,
                            hash_source="test", size_bytes=len(body) if size else None)


def test_weights_cache_states_and_hostile_mirrors_end_in_one_line(tmp_path, lite0_checkpoint):
    from weights_server import WeightsServer

    from edgenet.weights.fetch import FetchSettings, WeightsHashError, read_verified, resolve

    served = tmp_path / "served"
    served.mkdir()
    body = np.random.default_rng(0).bytes(200_000)
    entry = _served_entry(served, "w.pth", body)
    tofu = _served_entry(served, "t.safetensors", body, pinned=False)
    outside = tmp_path / "outside.txt"
    outside.write_text("precious")

    def settings(cache: Path, url: str, **kw) -> FetchSettings:
        return replace_settings(FetchSettings.from_env({"EDGENET_CACHE": str(cache), "EDGENET_IGNORE_PACKAGES": "1",
                                                        "EDGENET_WEIGHTS_URL": url}), **kw)

    def fails(cache: Path, url: str, *needles: str, which=entry, exc=EdgenetError, **kw) -> str:
        with pytest.raises(exc) as info:
            resolve("lite0", settings(cache, url, **kw), entry=which, progress=False, trust_on_first_use=True)
        line = str(info.value)
        assert "\n" not in line, line
        for needle in needles:
            assert needle in line, (needle, line)
        return line

    hostile = {"loop.pth": ("redirect", "/loop.pth"), "file.pth": ("redirect", "file:///etc/passwd"),
               "endless.pth": ("endless", None), "bomb.pth": ("gzip-bomb", 50_000_000),
               "trickle.pth": ("trickle", 0.2)}
    with WeightsServer(served, hostile=hostile) as server:
        url = server.url
        # A good download, read-only in the cache, verified again on use.
        cache = tmp_path / "good"
        located = resolve("lite0", settings(cache, url), entry=entry, progress=False)
        assert located.path.read_bytes() == body and not os.access(located.path, os.W_OK) or os.geteuid() == 0
        assert oct(located.path.stat().st_mode & 0o777) == oct(0o444)

        # The real Lite0 registry entry, fetched from the mirror: verified on every use, so a cache file
        # swapped after its hash check is refused in one line and never loaded (here, by the loader's
        # first read: the classifier size).
        from edgenet.weights.keras_files import classifier_classes
        from edgenet.weights.registry import REGISTRY

        real = REGISTRY["lite0"]
        shutil.copy(lite0_checkpoint, served / real.filename)
        cache = tmp_path / "real"
        env = {"EDGENET_CACHE": str(cache), "EDGENET_IGNORE_PACKAGES": "1", "EDGENET_WEIGHTS_URL": url}
        located = resolve("lite0", FetchSettings.from_env(env), progress=False)
        old_env = {k: os.environ.get(k) for k in env}
        os.environ.update(env)
        try:
            assert classifier_classes(located.path) == 1000
            swapped = located.path.with_name("swap")
            data = bytearray(located.path.read_bytes())
            data[-1000] ^= 1
            swapped.write_bytes(bytes(data))
            os.replace(swapped, located.path)
            with pytest.raises(WeightsHashError, match="changed after it was verified"):
                classifier_classes(located.path)
            with pytest.raises(WeightsHashError, match="changed after it was verified"):
                read_verified(located.path)
        finally:
            for k, v in old_env.items():
                os.environ.pop(k, None) if v is None else os.environ.__setitem__(k, v)
        # The cache under a regular file; a read-only place; a folder where the file should be.
        blocker = tmp_path / "blocker"
        blocker.write_text("x")
        fails(blocker, url, "blocker", "cannot write")
        fails(Path("/sys/edgenet-cache"), url, "/sys/edgenet-cache", "cannot write")
        folder_cache = tmp_path / "folder"
        (folder_cache / "weights" / "w.pth").mkdir(parents=True)
        fails(folder_cache, url, "w.pth", "a directory", "remove it")
        # An empty and a non-UTF-8 pin beside a trust-on-first-use file.
        for pin_bytes in (b"", b"\xff\xfe not a hash"):
            pinned = tmp_path / f"pin{len(pin_bytes)}"
            (pinned / "weights").mkdir(parents=True)
            (pinned / "weights" / "t.safetensors").write_bytes(body)
            (pinned / "weights" / "t.safetensors.sha256").write_bytes(pin_bytes)
            fails(pinned, url, "t.safetensors.sha256", which=tofu)

        # Planted links in the cache are never written through; nothing outside is created or changed.
        for planted in ("w.pth.part", "w.pth.lock"):
            cache = tmp_path / f"planted-{planted}"
            (cache / "weights").mkdir(parents=True)
            target = outside if planted.endswith(".part") else tmp_path / "created-outside"
            os.symlink(target, cache / "weights" / planted)
            fails(cache, url, planted, "symbolic link")
            assert outside.read_text() == "precious" and not (tmp_path / "created-outside").exists()
        # A hard link to a file outside is refused too.
        cache = tmp_path / "hardlink"
        (cache / "weights").mkdir(parents=True)
        os.link(outside, cache / "weights" / "w.pth.part")
        fails(cache, url, "hard link")
        assert outside.read_text() == "precious"

        # Hostile mirrors: a redirect loop, a redirect off http(s), an endless body, a gzip bomb, a trickle.
        def mirror(name: str, *needles: str, **kw) -> None:
            cache = tmp_path / f"m-{name}"
            which = replace(entry, filename=name, size_bytes=kw.pop("size", entry.size_bytes))
            fails(cache, url, *needles, which=which, **kw)
            part = cache / "weights" / f"{name}.part"
            assert not part.exists() or part.stat().st_size <= max(which.size_bytes or 0, 1 << 20)
            assert not (cache / "weights" / name).exists()

        mirror("loop.pth", "redirect loop")
        mirror("file.pth", "not http(s)")
        mirror("endless.pth", f"more than the {len(body)} bytes")
        mirror("trickle.pth", "deadline", deadline_s=1.0)  # the whole download's deadline
        mirror("bomb.pth", "ended after")  # stored as sent (48 kB), never decoded into its 50 MB
        started = time.monotonic()
        mirror("trickle.pth", "stalled", stall_s=1.0)
        assert time.monotonic() - started < 30


def replace_settings(settings, **kw):
    from dataclasses import replace as dc_replace

    return dc_replace(settings, **kw)


def replace(entry, **kw):
    from dataclasses import replace as dc_replace

    return dc_replace(entry, **kw)


def test_a_full_disk_while_downloading_is_one_line(tmp_path):
    """ENOSPC/EFBIG, simulated with RLIMIT_FSIZE in the child (no tmpfs or loop device needed)."""
    import resource

    from weights_server import WeightsServer

    served = tmp_path / "served"
    served.mkdir()
    (served / "efficientnet-lite0-57934424.pth").write_bytes(b"\0" * (3 << 20))

    def small_disk():
        resource.setrlimit(resource.RLIMIT_FSIZE, (1 << 20, 1 << 20))
        signal.signal(signal.SIGXFSZ, signal.SIG_IGN)  # write() fails with EFBIG instead of killing us

    with WeightsServer(served) as server:
        result = subprocess.run([sys.executable, "-m", "edgenet", "weights", "fetch", "lite0"], capture_output=True,
                                text=True, timeout=120, preexec_fn=small_disk,
                                env=_env(EDGENET_CACHE=str(tmp_path / "cache"), EDGENET_IGNORE_PACKAGES="1",
                                         EDGENET_WEIGHTS_URL=server.url))
    line = _one_line_failure(result, "efficientnet-lite0-57934424.pth")
    assert "File too large" in line or "No space" in line, line
    assert not (tmp_path / "cache" / "weights" / "efficientnet-lite0-57934424.pth").exists()


def test_signals_on_the_new_paths_end_within_2_s_with_children_and_folders_gone(tiny_tflite, image, tmp_path):
    import contextlib
    import socket
    import tempfile

    from edgenet import process

    # quant-report: SIGTERM/SIGINT/SIGHUP while its worker measures: one line, 128+signum, within 2 s of the
    # signal, no worker (nor multiprocessing's resource tracker) left.
    for sig in (signal.SIGTERM, signal.SIGINT, signal.SIGHUP):
        marker = f"edgenet-fault-{os.getpid()}-qr-{sig}"
        proc = _start(["quant-report", tiny_tflite.fp32, tiny_tflite.int8], marker)
        _wait_for(lambda: len(descendants(proc.pid)) > 0, what="the quant-report worker")  # noqa: B023
        time.sleep(1.0)
        sent = time.monotonic()
        proc.send_signal(sig)
        _, stderr = proc.communicate(timeout=60)
        assert time.monotonic() - sent < 2.0 + 1.0, time.monotonic() - sent  # 2 s, and the machine's slack
        _assert_interrupted(proc.returncode, stderr, sig)
        _wait_for(lambda: processes_with(marker) == [], 10, "the worker to go")  # noqa: B023
    # SIGKILL: nothing can run in edgenet, yet the worker and the resource tracker die with it.
    marker = f"edgenet-fault-{os.getpid()}-qr-kill"
    proc = _start(["quant-report", tiny_tflite.fp32, tiny_tflite.int8], marker)
    _wait_for(lambda: len(descendants(proc.pid)) > 0, what="the quant-report worker")
    time.sleep(1.0)
    proc.kill()
    proc.communicate(timeout=30)
    _wait_for(lambda: processes_with(marker) == [], 10, "the orphaned worker and resource tracker to die")

    # --cluster at a listener that is not Ray: one line within the connect deadline, not minutes of Ray's
    # native logs; and a signal during the connect ends it in one line with 128+signum.
    import threading

    accepted: list = []
    data = tmp_path / "data"
    (data / "cat").mkdir(parents=True)
    shutil.copy(image, data / "cat" / "a.png")
    with socket.socket() as listener:
        listener.bind(("127.0.0.1", 0))
        listener.listen(8)
        address = f"127.0.0.1:{listener.getsockname()[1]}"

        def accept() -> None:
            with contextlib.suppress(OSError):
                while True:
                    accepted.append(listener.accept()[0])

        threading.Thread(target=accept, daemon=True).start()
        result = edgenet_cli("eval", tiny_tflite.fp32, "--data", data, "--cluster", address, timeout_s=120)
        _one_line_failure(result, address, "no Ray head answers there")
        assert "Traceback" not in result.stderr and len(result.stderr.splitlines()) <= 3, result.stderr
        marker = f"edgenet-fault-{os.getpid()}-cluster"
        before = len(accepted)
        proc = _start(["eval", tiny_tflite.fp32, "--data", data, "--cluster", address], marker)
        _wait_for(lambda: len(accepted) > before, 60, "the connect")
        sent = time.monotonic()
        code, stderr = _interrupt(proc, signal.SIGTERM, marker)
        assert time.monotonic() - sent < 3.0
        _assert_interrupted(code, stderr, signal.SIGTERM)
        for conn in accepted:
            conn.close()

    # A sharded eval's worker killed mid-shard leaves its folder: the next shard removes it.
    dead = subprocess.run([sys.executable, "-c", "import os; print(os.getpid())"], capture_output=True, text=True)
    orphan = Path(tempfile.gettempdir()) / f"edgenet-cluster-shard-{int(dead.stdout)}-test"
    orphan.mkdir()
    (orphan / "000001-a.png").write_bytes(b"x")
    mine = Path(tempfile.mkdtemp(prefix=f"edgenet-cluster-shard-{os.getpid()}-"))
    try:
        assert process.remove_orphaned(tempfile.gettempdir(), "edgenet-cluster-shard-") >= 1
        assert not orphan.exists() and mine.exists()  # a live process's folder stays
    finally:
        shutil.rmtree(mine, ignore_errors=True)
