"""The core install (no TensorFlow), as on a Raspberry Pi, gives the same .tflite commands.

A fresh plain virtual environment (not ``--system-site-packages``, which would see the
development TensorFlow) gets ``pip install <edgenet source>``: numpy, Pillow, click,
ai-edge-litert, flatbuffers, tqdm, tabulate from the package index. There, ``predict``,
``eval``, ``bench`` and ``edgetpu check`` must work on the digits int8 model, and ``convert``
must say in one line which extra to install. A second check runs the same command code
in-process in the development environment, where TensorFlow *is* installed, and asserts
nothing imported it: on a workstation a stray import would otherwise go unnoticed.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
#: What a source install needs; copied so the build never writes build/ into the work tree.
SOURCE_ITEMS = ("edgenet", "setup.cfg", "pyproject.toml", "README.md", "LICENSE")




def _clean_env() -> dict:
    env = {k: v for k, v in os.environ.items() if k not in ("PYTHONPATH", "PYTHONHOME", "VIRTUAL_ENV")}
    env["TF_CPP_MIN_LOG_LEVEL"] = "2"
    return env


@pytest.fixture(scope="module")
def core_venv(tmp_path_factory):
    """A plain venv with only the core install of edgenet; returns its bin/ folder."""
    root = tmp_path_factory.mktemp("core")
    src = root / "src"
    src.mkdir()
    for item in SOURCE_ITEMS:
        path = ROOT / item
        if path.is_dir():
            shutil.copytree(path, src / item, ignore=shutil.ignore_patterns("__pycache__", "*.pyc"))
        elif path.exists():
            shutil.copy2(path, src / item)
    venv = root / "venv"
    started = time.perf_counter()
    subprocess.run([sys.executable, "-m", "venv", str(venv)], check=True, env=_clean_env())
    install = subprocess.run([str(venv / "bin" / "python"), "-m", "pip", "install", "--quiet", str(src)],
                             capture_output=True, text=True, env=_clean_env(), timeout=600)
    elapsed = time.perf_counter() - started
    assert install.returncode == 0, install.stderr[-3000:]
    print(f"core venv created and installed in {elapsed:.1f} s")
    return venv / "bin"


def run(bin_dir: Path, *args, cwd=None) -> subprocess.CompletedProcess:
    """Run a program of the venv. The working folder is the venv's, never the source tree: ``python -c``
    puts the working folder first on ``sys.path`` and would import the development ``edgenet``."""
    exe = args[0] if os.path.isabs(str(args[0])) else str(bin_dir / str(args[0]))
    return subprocess.run([exe, *map(str, args[1:])], capture_output=True, text=True, env=_clean_env(),
                          cwd=cwd or bin_dir.parent, timeout=300)


@pytest.fixture(scope="module")
def board_model(digits_model, tmp_path_factory) -> Path:
    """The digits int8 model with its manifest, copied as a user would copy it to a board."""
    folder = tmp_path_factory.mktemp("board")
    model = folder / "digits-int8.tflite"
    shutil.copy2(digits_model.int8, model)
    shutil.copy2(digits_model.int8.with_suffix(".json"), model.with_suffix(".json"))
    return model


def test_core_install_has_no_tensorflow(core_venv):
    probe = run(core_venv, "python", "-c", "import tensorflow")
    assert probe.returncode != 0 and "No module named 'tensorflow'" in probe.stderr
    probe = run(core_venv, "python", "-c", "import keras")
    assert probe.returncode != 0
    where = run(core_venv, "python", "-c", "import edgenet, sys; print(edgenet.__file__); print(sys.prefix)")
    file, prefix = where.stdout.split()
    assert file.startswith(prefix) and not file.startswith(str(ROOT))  # the installed copy, not the tree
    listed = run(core_venv, "python", "-m", "pip", "list", "--format=json")
    names = {p["name"].lower() for p in json.loads(listed.stdout)}
    assert {"numpy", "pillow", "click", "ai-edge-litert", "tqdm", "tabulate"} <= names
    assert not names & {"tensorflow", "tensorflow-cpu", "keras", "tf-keras", "h5py"}


def test_tflite_commands_work_in_the_core_install(core_venv, board_model, digits_model, tmp_path):
    image = next((digits_model.data.test_dir / "7").glob("*.png"))
    predicted = run(core_venv, "edgenet", "predict", image, "--model", board_model, "--json")
    assert predicted.returncode == 0, predicted.stderr
    top = json.loads(predicted.stdout)["predictions"][0]["top"]
    assert len(top) == 5 and json.loads(predicted.stdout)["quant"] == "int8"

    results = tmp_path / "eval.jsonl"
    evaluated = run(core_venv, "edgenet", "eval", board_model, "--data", digits_model.data.test_dir,
                    "--results", results, "--quiet")
    assert evaluated.returncode == 0, evaluated.stderr
    (record,) = [json.loads(line) for line in results.read_text().splitlines()]
    assert record["kind"] == "eval" and record["accuracy"]["count"] == digits_model.data.test_count
    assert record["accuracy"]["top1"] > 0.9 and record["model"]["quant"] == "int8"
    assert record["device"]["runtime"]["name"] == "ai_edge_litert"

    timing = tmp_path / "bench.jsonl"
    benched = run(core_venv, "edgenet", "bench", board_model, "--min-runs", 5, "--min-s", 0.1,
                  "--warmup-s", 0.05, "--results", timing)
    assert benched.returncode == 0, benched.stderr
    (bench,) = [json.loads(line) for line in timing.read_text().splitlines()]
    assert bench["kind"] == "bench" and bench["error"] is None and bench["runs"] >= 5
    assert bench["device"]["runtime"]["name"] == "ai_edge_litert"

    checked = run(core_venv, "edgenet", "edgetpu", "check", board_model)
    assert checked.returncode == 0, checked.stderr
    assert "ops on Edge TPU" in checked.stdout


def test_convert_in_the_core_install_names_the_tf_extra(core_venv, tmp_path):
    converted = run(core_venv, "edgenet", "convert", "b0", "--samples", 2, "--quiet", "-o", tmp_path / "out")
    assert converted.returncode != 0
    hints = [line for line in converted.stderr.splitlines() if "pip install 'edgenet[tf]'" in line]
    assert len(hints) == 1 and "Traceback" not in converted.stderr + converted.stdout
    assert not list((tmp_path / "out").glob("*.tflite"))
    layout = run(core_venv, "edgenet", "layout", "b0")
    assert layout.returncode == 0 and layout.stdout.startswith("b0: ") and "MACs" in layout.stdout
    build = run(core_venv, "python", "-c", "from edgenet.family.model import build_model")
    assert build.returncode != 0 and "pip install 'edgenet[tf]'" in build.stderr


def test_cluster_in_the_core_install_names_the_ray_extra(core_venv, board_model, digits_model):
    asked = run(core_venv, "edgenet", "eval", board_model, "--data", digits_model.data.test_dir, "--cluster", "auto")
    assert asked.returncode == 1
    assert [ln for ln in asked.stderr.splitlines() if ln.strip()] == [
        "Error: --cluster needs ray, which is not installed: pip install 'edgenet[ray]'"]
    probe = run(core_venv, "edgenet", "devices", "--probe")  # what `edgenet devices` asks a board over SSH
    assert probe.returncode == 0 and json.loads(probe.stdout)["runtime"] == "ai_edge_litert"


IN_PROCESS = textwrap.dedent("""
    import json, sys
    from click.testing import CliRunner
    from edgenet.cli import main

    model, image, data, out = sys.argv[1:5]
    runner = CliRunner()
    for args in (
        ["predict", image, "--model", model, "--json"],
        ["eval", model, "--data", data, "--limit", "20", "--results", out, "--quiet"],
        ["bench", model, "--min-runs", "5", "--min-s", "0.1", "--warmup-s", "0.05", "--results", out],
        ["edgetpu", "check", model],
    ):
        result = runner.invoke(main, args)
        if result.exit_code != 0:
            sys.exit(f"{args[0]} failed: {result.output} {result.exception!r}")
    heavy = sorted(m for m in sys.modules if m.split(".")[0] in ("tensorflow", "keras", "tf_keras", "h5py"))
    print(json.dumps(heavy))
""")


def test_tflite_commands_never_import_tensorflow_even_when_installed(board_model, digits_model, tmp_path):
    """In the development environment TensorFlow is importable; the commands still must not load it."""
    import importlib.util

    assert importlib.util.find_spec("tensorflow") is not None  # so the check below means something
    image = next((digits_model.data.test_dir / "1").glob("*.png"))
    probe = subprocess.run([sys.executable, "-c", IN_PROCESS, str(board_model), str(image),
                            str(digits_model.data.test_dir), str(tmp_path / "r.jsonl")],
                           capture_output=True, text=True, env=_clean_env(), timeout=300)
    assert probe.returncode == 0, probe.stderr[-3000:]
    assert json.loads(probe.stdout.strip().splitlines()[-1]) == []
