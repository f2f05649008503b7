"""Native log chatter (edgenet/logs.py): TensorFlow's and LiteRT's own lines stay out of a command's
output unless --verbose. The CLI checks run real commands in fresh processes, as a user would."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

import edgenet
from edgenet import logs

# The lines users saw, verbatim (from `edgenet eval` before the fix).
TF_LINES = (
    "WARNING: All log messages before absl::InitializeLog() is called are written to STDERR",
    "I0000 00:00:1796054710.820152   19887 port.cc:153] oneDNN custom operations are on. You may see slightly "
    "different numerical results due to floating-point round-off errors from different computation orders.",
    "I0000 00:00:1712345678.123456   12345 cpu_feature_guard.cc:227] This TensorFlow binary is optimized",
)
LITERT_LINE = "INFO: Created TensorFlow Lite XNNPACK delegate for CPU."
MARKERS = ("absl::InitializeLog", "port.cc:", "oneDNN custom operations", "XNNPACK delegate for CPU")


def test_the_known_lines_are_noise_and_errors_are_not():
    for line in (*TF_LINES, LITERT_LINE):
        assert logs.is_noise(line), line
    for line in ("ERROR: Didn't find op for builtin opcode 'CONV_2D'", "E0000 00:00:1.2  1 op.cc:1] failed",
                 "note: b0: no --weights given", "Traceback (most recent call last):"):
        assert not logs.is_noise(line), line


def test_filter_drops_native_noise_and_passes_everything_else(capfd, monkeypatch):
    monkeypatch.delenv(logs.VERBOSE_ENV, raising=False)
    with logs.native_stderr_filtered():
        os.write(2, (LITERT_LINE + "\n" + TF_LINES[1] + "\nERROR: something real\n").encode())
    err = capfd.readouterr().err
    assert err == "ERROR: something real\n"


def test_verbose_lets_everything_through(capfd, monkeypatch):
    monkeypatch.setenv(logs.VERBOSE_ENV, "1")
    with logs.native_stderr_filtered():
        os.write(2, (LITERT_LINE + "\n").encode())
    assert capfd.readouterr().err == LITERT_LINE + "\n"


def _edgenet(*args: str) -> subprocess.CompletedProcess:
    env = dict(os.environ)
    env.pop(logs.VERBOSE_ENV, None)
    env.pop("TF_CPP_MIN_LOG_LEVEL", None)  # as a user's shell has it
    root = str(Path(edgenet.__file__).resolve().parents[1])
    env["PYTHONPATH"] = os.pathsep.join(p for p in (root, env.get("PYTHONPATH")) if p)
    return subprocess.run([sys.executable, "-m", "edgenet", *args], capture_output=True, text=True, env=env,
                          timeout=600)


def _noise(stderr: str) -> list[str]:
    return [line for line in stderr.splitlines() if any(m in line for m in MARKERS)]


@pytest.fixture(scope="module")
def eval_args(digits_model):
    d = digits_model
    return [str(d.int8), d.spec, "--weights", str(d.weights), "--data", str(d.data.test_dir), "--limit", "4",
            "--quiet"]


def test_eval_prints_no_native_logs_by_default_and_all_with_verbose(eval_args):
    """eval builds a Keras reference (imports TensorFlow) and a LiteRT interpreter: both used to leak."""
    quiet = _edgenet("eval", *eval_args)
    assert quiet.returncode == 0, quiet.stderr
    assert _noise(quiet.stderr) == [] and _noise(quiet.stdout) == []
    assert "top-1 %" in quiet.stdout  # the command's own output is all there
    loud = _edgenet("--verbose", "eval", *eval_args)
    assert loud.returncode == 0, loud.stderr
    assert LITERT_LINE in loud.stderr.splitlines()
    assert any(logs.is_noise(line) for line in loud.stderr.splitlines() if line != LITERT_LINE)  # TensorFlow's
    assert loud.stdout == quiet.stdout  # results on stdout are unchanged by --verbose


def test_predict_prints_no_native_logs_by_default_and_all_with_verbose(digits_model):
    image = next(p for p in sorted(digits_model.data.test_dir.rglob("*.png")))
    quiet = _edgenet("predict", "--model", str(digits_model.int8), str(image))
    assert quiet.returncode == 0, quiet.stderr
    assert _noise(quiet.stderr) == []
    loud = _edgenet("--verbose", "predict", "--model", str(digits_model.int8), str(image))
    assert loud.returncode == 0, loud.stderr
    assert LITERT_LINE in loud.stderr.splitlines()
