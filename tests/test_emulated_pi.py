"""edgenet's core install on an emulated Raspberry Pi (tools/emulated-pi): ARM code, real models, real photos.

The device is built once per machine (cached under ~/.cache/edgenet/emulated-pi; about a minute the first
time on a fresh machine, seconds afterwards) from Debian's arm64 packages and the core install's aarch64
wheels, with edgenet installed from this source tree. tools/run-tests installs qemu-user-static; when the
device cannot be built the tests fail with the builder's one line, never skip.

What is checked: the emulated Pi 4 (Cortex-A72) and Pi 5 (Cortex-A76) compute bit-identical int8 outputs
and the same top-5 as x86 for ImageNet Lite0 on real photos; ``bench`` there gives a valid record labelled
emulated, which ``select``/``report`` refuse to pick on; ``eval --remote`` (over a real localhost sshd) gives
the same counts and accuracies as a local eval; a sweep with the emulated device as its target completes.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
import sshd
from click.testing import CliRunner

from edgenet import results
from edgenet.cli import main

ROOT = Path(__file__).resolve().parents[1]
local_sshd = sshd.local_sshd  # the fixture
FAST_BENCH = ["--min-runs", "3", "--min-s", "0.1", "--warmup-s", "0.05"]


def _build(profile: str) -> Path:
    env = {k: v for k, v in os.environ.items() if k not in ("PYTHONPATH", "PYTHONHOME")}
    proc = subprocess.run([sys.executable, str(ROOT / "tools" / "emulated-pi"), "build", "--profile", profile],
                          capture_output=True, text=True, timeout=1800, env=env)
    if proc.returncode != 0:
        lines = [line for line in proc.stderr.splitlines() if line.strip()] or ["no output"]
        pytest.fail(f"cannot build the emulated {profile}: {lines[-1]}", pytrace=False)
    print(proc.stderr.strip().splitlines()[-1])  # "ready in N s": the build cost on this machine
    return Path(proc.stdout.strip().splitlines()[-1])


@pytest.fixture(scope="session")
def pi4() -> Path:
    """The emulated Pi 4's device file."""
    return _build("pi4")


@pytest.fixture(scope="session")
def pi5() -> Path:
    return _build("pi5")


def _device(path: Path) -> dict:
    return json.loads(path.read_text())


@pytest.fixture(scope="module")
def lite0_int8(tmp_path_factory, lite0_checkpoint, photos) -> Path:
    """ImageNet Lite0, int8, converted by edgenet convert (the model a Pi user deploys; its fidelity check on the
    4 test photos: what is compared here is the model's outputs on two machines, not its fidelity)."""
    out = tmp_path_factory.mktemp("lite0")
    result = CliRunner().invoke(main, ["convert", "lite0", "--weights", str(lite0_checkpoint), "--samples", "16",
                                       "--holdout", str(photos["chelsea"].parent), "--quiet", "-o", str(out)])
    assert result.exit_code == 0, result.output
    (model,) = out.glob("lite0-int8*.tflite")
    return model


#: Run in each interpreter: predict through the CLI, and the raw int8 input and output of every photo.
PROBE = """
import hashlib, json, platform, sys
from pathlib import Path
from click.testing import CliRunner
from edgenet.cli import main
from edgenet.evaluation.classifier import manifest_for
from edgenet.pixels.contract import PreprocessContract
from edgenet.pixels.preprocess import preprocess
from edgenet.runtime.interpreter import TFLiteModel

model, images = sys.argv[1], sys.argv[2:]
predicted = CliRunner().invoke(main, ["predict", *images, "--model", model, "--json"])
assert predicted.exit_code == 0, predicted.output
contract = PreprocessContract.from_dict(manifest_for(Path(model))["preprocessing"])
tfl = TFLiteModel.from_path(model, threads=1)
raw = {}
for image in images:
    q = tfl.quantize_input(preprocess(image, contract)[None])
    tfl.interpreter.set_tensor(tfl.input_details[0]["index"], q)
    tfl.interpreter.invoke()
    out = tfl.interpreter.get_tensor(tfl.output_details[0]["index"])
    raw[Path(image).name] = {"input_sha256": hashlib.sha256(q.tobytes()).hexdigest(), "dtype": str(out.dtype),
                             "output": out.ravel().tolist()}
print(json.dumps({"machine": platform.machine(), "predict": json.loads(predicted.stdout), "raw": raw}))
"""


def _probe(python: list[str], model: Path, images: list[Path], env: dict | None = None) -> dict:
    proc = subprocess.run([*python, "-c", PROBE, str(model), *map(str, images)], capture_output=True, text=True,
                          timeout=900, env=env, cwd=model.parent)
    assert proc.returncode == 0, proc.stderr[-3000:]
    return json.loads(proc.stdout.strip().splitlines()[-1])


@pytest.fixture(scope="module")
def x86_lite0(lite0_int8, photos) -> dict:
    images = [photos["chelsea"], photos["coffee"]]
    env = dict(os.environ, PYTHONPATH=str(ROOT))
    return _probe([sys.executable], lite0_int8, images, env)


@pytest.mark.parametrize("profile", ["pi4", "pi5"])
def test_lite0_int8_on_the_emulated_pi_is_bit_identical_to_x86(profile, request, lite0_int8, photos, x86_lite0):
    device = _device(request.getfixturevalue(profile))
    arm = _probe([device["python"]], lite0_int8, [photos["chelsea"], photos["coffee"]])
    assert arm["machine"] == "aarch64" and x86_lite0["machine"] == "x86_64"
    assert arm["raw"] == x86_lite0["raw"]  # same quantized pixels in, same int8 logits out
    assert x86_lite0["raw"]["chelsea.png"]["dtype"] == "int8"
    tops = [[(t["index"], t["score"]) for t in p["top"]] for p in arm["predict"]["predictions"]]
    assert tops == [[(t["index"], t["score"]) for t in p["top"]] for p in x86_lite0["predict"]["predictions"]]
    assert tops[0][0][0] in (281, 282, 285) and tops[1][0][0] == 967  # a cat; espresso


def test_bench_on_the_emulated_pi_is_labelled_and_never_picked(pi4, digits_model, tmp_path):
    out = tmp_path / "pi.jsonl"
    res = CliRunner().invoke(main, ["bench", str(digits_model.int8), *FAST_BENCH, "--remote", str(pi4),
                                    "--results", str(out)])
    assert res.exit_code == 0, res.output
    (record,) = results.read_records(out)
    assert record["error"] is None and record["runs"] >= 3 and record["latency_ms"]["p50"] > 0
    assert record["model"]["path"] == str(digits_model.int8) and record["model"]["variant"]  # manifest shipped
    device = record["device"]
    assert device["machine"] == "aarch64" and device["label"] == "emulated-pi4"
    assert device["emulation"]["cpu"] == "cortex-a72" and device["emulation"]["profile"] == "pi4"
    assert device["emulation"]["emulator"].startswith("qemu-user")
    assert "emulated Raspberry Pi 4" in device["cpu_model"] and device["freq_mhz"] is None
    assert device["runtime"]["name"] == "ai_edge_litert"

    picked = CliRunner().invoke(main, ["select", str(out), "--budget-ms", "1000"])
    assert picked.exit_code != 0 and "emulated device left out" in picked.output


def test_emulation_is_detected_without_the_wrapper(pi4):
    """qemu run by hand (no wrapper, no EDGENET_EMULATION) still marks the records as emulated."""
    device = pi4.parent
    site = next((device / "lib").glob("python3*/site-packages"))
    env = {"PATH": os.environ.get("PATH", "/usr/bin:/bin"), "PYTHONPATH": str(site)}
    proc = subprocess.run(["qemu-aarch64-static", "-L", str(device / "root"), "-cpu", "cortex-a72",
                           str(device / "root" / "usr" / "bin" / "python3.11"), "-c",
                           "import json; from edgenet.runtime.envinfo import emulation; print(json.dumps(emulation()))"],
                          capture_output=True, text=True, env=env, timeout=300)
    assert proc.returncode == 0, proc.stderr
    assert json.loads(proc.stdout) == {"emulator": "qemu-user", "cpu": None, "profile": None}


def test_eval_remote_on_the_emulated_pi_over_ssh_equals_local_eval(pi4, digits_model, local_sshd, tmp_path):
    host, options = local_sshd
    device = dict(_device(pi4), host=host, ssh_options=options, name="pi4-over-ssh")
    device_file = tmp_path / "pi4-ssh.json"
    device_file.write_text(json.dumps(device))
    models = [str(digits_model.fp32), str(digits_model.int8)]
    data = str(digits_model.data.test_dir)

    local_out, remote_out = tmp_path / "local.jsonl", tmp_path / "remote.jsonl"
    local = CliRunner().invoke(main, ["eval", *models, "--data", data, "--quiet", "--results", str(local_out)])
    assert local.exit_code == 0, local.output
    remote = CliRunner().invoke(main, ["eval", *models, "--data", data, "--remote", str(device_file),
                                       "--results", str(remote_out)])
    assert remote.exit_code == 0, remote.output

    here, there = results.read_records(local_out), results.read_records(remote_out)
    assert [r["model"]["path"] for r in there] == models
    for a, b in zip(here, there, strict=True):
        assert b["accuracy"]["count"] == a["accuracy"]["count"] == digits_model.data.test_count
        for key in ("top1", "top5", "agreement_top1", "dataset", "reference"):
            assert b["accuracy"][key] == a["accuracy"][key], key
        assert b["device"]["emulation"]["profile"] == "pi4" and a["device"]["emulation"] is None
        assert b["device"]["machine"] == "aarch64" and b["model"]["sha256"] == a["model"]["sha256"]
    assert there[1]["accuracy"]["top1"] > 0.9 and there[1]["model"]["quant"] == "int8"


def test_sweep_with_the_emulated_pi_as_target_completes(pi4, tmp_path):
    from conftest import TINY_SPEC

    rundir = tmp_path / "run"
    res = CliRunner().invoke(main, ["sweep", "--budget-ms", "5", "--variants", TINY_SPEC, "--samples", "4",
                                    "--min-runs", "3", "--min-s", "0.1", "--remote", str(pi4), "-o", str(rundir),
                                    "--json"])
    assert res.exit_code == 0, res.output
    outcome = json.loads(res.stdout[res.stdout.index("{"):])
    (device,) = outcome["devices"]
    assert device["emulated"] is True and device["decision"] is None and outcome["report"] is None
    (step,) = device["steps"]
    assert step["action"] == "measured" and step["latency_ms"] is None
    assert "not a board latency" in step["reason"] and "pi4" in step["reason"]
    (record,) = results.read_records(rundir / "results.jsonl")
    assert record["device"]["emulation"]["profile"] == "pi4" and record["error"] is None
    assert device["device"] == json.loads(pi4.read_text())["name"]
    assert not (rundir / "REPORT.md").exists()
    # the report refuses too, naming the reason
    reported = CliRunner().invoke(main, ["report", str(rundir)])
    assert reported.exit_code != 0 and "emulated device" in reported.output


def test_a_missing_piece_is_one_line(tmp_path):
    """Without qemu (an empty PATH here) the builder names what is missing and how to get it, nothing else."""
    proc = subprocess.run([sys.executable, str(ROOT / "tools" / "emulated-pi"), "build", "--cache", str(tmp_path)],
                          capture_output=True, text=True, env={"PATH": str(tmp_path / "empty")}, timeout=60)
    assert proc.returncode == 1 and proc.stdout == ""
    assert proc.stderr.strip() == ("emulated-pi: qemu-aarch64-static not found: install it with "
                                   "'apt-get install qemu-user-static'")
    missing = subprocess.run([sys.executable, str(ROOT / "tools" / "emulated-pi"), "path", "--cache", str(tmp_path)],
                             capture_output=True, text=True, timeout=60)
    assert missing.returncode == 1 and "not built; run 'tools/emulated-pi build --profile pi4'" in missing.stderr
