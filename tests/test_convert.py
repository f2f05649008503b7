"""Real conversions of tiny variants: every mode, dtypes, manifests, resume, crashes, bad input, CLI."""

from __future__ import annotations

import json
import shutil
import tempfile
from pathlib import Path

import numpy as np
import pytest
from click.testing import CliRunner
from conftest import TINY_LITE_SPEC, TINY_SPEC
from PIL import Image

from edgenet.cli.convert import convert
from edgenet.convert.api import QUANT_MODES, ConvertRequest, convert_variants, output_stem
from edgenet.convert.calibration import holdout_images
from edgenet.convert.fidelity import MIN_HOLDOUT_SAMPLES, VIEWS
from edgenet.convert.manifest import SCHEMA, read_manifest
from edgenet.convert.worker import CRASH_ENV
from edgenet.errors import EdgenetError
from edgenet.fsutil import sha256_file
from edgenet.pixels.preprocess import preprocess
from edgenet.runtime.interpreter import TFLiteModel

pytestmark = pytest.mark.slow

SAMPLES = 8  # few calibration samples: these tests check plumbing, not accuracy
EXPECTED_DTYPE = {"fp32": "float32", "fp16": "float32", "dynamic": "float32", "int8": "int8", "int16x8": "float32"}


def _options(out_dir, **kw) -> ConvertRequest:
    base = dict(quant="int8", samples=SAMPLES, seed=0, out_dir=Path(out_dir), progress=False)
    base.update(kw)
    return ConvertRequest(**base)


def _one(variant, out_dir, **kw):
    (result,) = convert_variants([variant], _options(out_dir, **kw))
    return result


def _sample_input(variant) -> np.ndarray:
    from edgenet.convert.calibration import holdout_images

    return preprocess(holdout_images()[0], variant.contract)[None]


@pytest.fixture(scope="module")
def all_modes(tmp_path_factory, tiny_variant):
    """One conversion per quantization mode into one folder."""
    out = tmp_path_factory.mktemp("modes")
    return out, {quant: _one(tiny_variant, out, quant=quant) for quant in QUANT_MODES}


@pytest.mark.parametrize("quant", QUANT_MODES)
def test_every_mode_converts_and_runs_in_the_interpreter(all_modes, tiny_variant, quant):
    out, results = all_modes
    result = results[quant]
    assert result.status == "converted", result.error
    path = Path(result.model_path)
    assert path.name == f"{tiny_variant.name}-{quant}.tflite"
    model = TFLiteModel.from_path(path)
    assert np.dtype(model.input_details[0]["dtype"]).name == EXPECTED_DTYPE[quant]
    assert np.dtype(model.output_details[0]["dtype"]).name == EXPECTED_DTYPE[quant]
    assert model.input_shape == (1, 64, 64, 3)  # static batch 1 by default
    logits = model.run(_sample_input(tiny_variant))
    assert logits.shape == (1, 1000) and np.all(np.isfinite(logits))


def test_sizes_follow_the_quantization(all_modes):
    _, results = all_modes
    size = {q: r.size_bytes for q, r in results.items()}
    assert size["int8"] < size["fp16"] < size["fp32"]
    assert size["dynamic"] < size["fp16"]


def test_int8_manifest_contents(all_modes, tiny_variant):
    out, results = all_modes
    result = results["int8"]
    manifest = read_manifest(result.manifest_path)
    assert manifest["schema"] == SCHEMA
    assert Path(result.manifest_path) == out / f"{tiny_variant.name}-int8.json"
    assert manifest["model"]["sha256"] == sha256_file(result.model_path)
    assert manifest["model"]["size_bytes"] == Path(result.model_path).stat().st_size
    assert manifest["variant"]["name"] == tiny_variant.name
    assert manifest["variant"]["spec"] == TINY_SPEC
    assert manifest["coefficients"] == {"width": 0.25, "depth": 0.25, "resolution": 64, "dropout": 0.2, "phi": 0.0}
    assert manifest["quant"] == "int8" and manifest["io"] == "int8"
    assert manifest["normalization"] == "in_graph"
    assert manifest["preprocessing"] == json.loads(json.dumps(tiny_variant.contract.to_dict()))
    # In-graph normalisation: the int8 input quantizes raw pixels 0..255.
    assert manifest["input"]["dtype"] == "int8"
    assert manifest["input"]["scale"] == pytest.approx(1.0, abs=1e-3)
    assert manifest["input"]["zero_point"] == -128
    assert manifest["output"]["dtype"] == "int8" and manifest["output"]["scale"] > 0
    calib = manifest["calibration"]
    assert calib["samples"] == SAMPLES and calib["seed"] == 0 and calib["source"] == "default"
    assert len(calib["file_list_sha256"]) == 64 and calib["skipped"] == 0
    assert manifest["weights"] is None and manifest["random_weights"] is True
    assert any("random" in note for note in manifest["notes"])
    assert manifest["params"] > 0 and manifest["macs"] > 0
    assert manifest["versions"]["tensorflow"].startswith("2.21")
    assert manifest["conversion_time_s"] > 0 and manifest["peak_memory_mb"] > 0
    fid = manifest["fidelity"]
    held = len(holdout_images())
    views = min(len(VIEWS), -(-MIN_HOLDOUT_SAMPLES // held))  # as many views a photo as reach 256 samples
    assert fid["images"] == held and fid["samples"] == held * views and 0.0 <= fid["top1_agreement"] <= 1.0
    assert len(manifest["inputs_fingerprint"]) == 64
    # The manifest holds the request itself (where and how it ran aside) and derives the fingerprint from it.
    request = ConvertRequest.from_dict({**manifest["request"], "out_dir": str(out), "progress": False})
    assert request == _options(out)
    assert {k: manifest["inputs"][k] for k in request.fingerprinted()} == request.fingerprinted()
    # No staging files were left beside the outputs.
    assert not [p.name for p in out.iterdir() if p.name.startswith(".")]


def test_int8_fidelity_says_how_far_to_trust_it(all_modes, tiny_variant):
    """The manifest's fidelity carries flips, near-ties and an interval over the held-out photos, consistent."""
    from edgenet.convert.fidelity import agreement_line

    out, results = all_modes
    manifest = read_manifest(results["int8"].manifest_path)
    fid = manifest["fidelity"]
    samples, agreement = fid["samples"], fid["top1_agreement"]
    assert fid["flips"] == round((1 - agreement) * samples)
    assert 0 <= fid["flips_near_tie"] <= fid["flips"] <= samples and 0 <= fid["near_ties"] <= samples
    assert fid["margin_error_rms"] > 0  # int8 logits differ from float ones
    assert 0.0 < fid["expected_agreement"] <= 1.0
    low, high = fid["top1_agreement_ci95"]
    assert 0.0 <= low <= agreement <= high <= 1.0 and low < high
    # The worker knew which views belong to which photo: the interval is over the photos, not the samples.
    held = len(holdout_images())
    assert fid["ci_method"].startswith((f"cluster bootstrap over {held} images,", f"Wilson on {held} images,"))
    line = agreement_line(fid)
    assert manifest["fidelity_summary"] == line
    assert f"({samples - fid['flips']}/{samples} views of {held} images, 95 % CI {100 * low:.1f}-{100 * high:.1f} %" \
        in line
    # The CLI prints that line for the variant (here from the finished manifest: up to date).
    cli = CliRunner().invoke(convert, [TINY_SPEC, "--samples", str(SAMPLES), "-o", str(out), "--quiet"])
    assert cli.exit_code == 0, cli.output
    assert f"{tiny_variant.name}: {line}" in cli.stderr.splitlines()


def test_float_modes_have_no_calibration_or_fidelity(all_modes):
    _, results = all_modes
    manifest = read_manifest(results["fp32"].manifest_path)
    assert manifest["calibration"] is None and manifest["fidelity"] is None
    assert manifest["input"]["scale"] is None
    int16 = read_manifest(results["int16x8"].manifest_path)
    assert int16["fidelity"]["sqnr_db"] is None or int16["fidelity"]["sqnr_db"] > 0


@pytest.mark.parametrize("io, dtype, zero_point", [("float", "float32", None), ("uint8", "uint8", 0)])
def test_int8_io_types(tmp_path, tiny_variant, io, dtype, zero_point):
    result = _one(tiny_variant, tmp_path, io=io)
    assert result.status == "converted", result.error
    assert Path(result.model_path).name == f"{output_stem(tiny_variant, 'int8', io)}.tflite"
    assert Path(result.model_path).name.endswith(f"-int8-{io}.tflite")
    model = TFLiteModel.from_path(result.model_path)
    assert np.dtype(model.input_details[0]["dtype"]).name == dtype
    assert np.dtype(model.output_details[0]["dtype"]).name == dtype
    manifest = read_manifest(result.manifest_path)
    assert manifest["input"]["zero_point"] == zero_point
    if io == "uint8":
        assert manifest["input"]["scale"] == pytest.approx(1.0, abs=1e-3)
    assert np.all(np.isfinite(model.run(_sample_input(tiny_variant))))


def test_int8_fails_loudly_on_an_op_without_int8_kernel():
    """TF 2.21 wraps SIN in DEQUANTIZE/QUANTIZE even with only int8 builtins; edgenet refuses it."""
    from edgenet._tf import keras, tf
    from edgenet.convert.worker import keras_to_tflite

    inputs = keras.Input((8, 8, 3), batch_size=1)
    x = keras.layers.Conv2D(4, 3)(inputs)
    model = keras.Model(inputs, keras.layers.Lambda(lambda t: tf.math.sin(t))(x))
    calib = np.random.default_rng(0).uniform(0, 255, (4, 8, 8, 3)).astype(np.float32)
    data, _ = keras_to_tflite(model, "fp32", "float")  # fine in float
    assert data[4:8] == b"TFL3"
    with pytest.raises(EdgenetError) as info:
        keras_to_tflite(model, "int8", "int8", calib, name="sine")
    assert str(info.value).startswith("sine: int8 conversion left SIN computing in float")
    assert "\n" not in str(info.value)


@pytest.fixture(scope="module")
def tiny_weights(tmp_path_factory, tiny_variant):
    """A real Keras 3 weights file for the tiny variant (seeded, not the random init)."""
    from edgenet.family.model import build_model
    from edgenet.weights.keras_files import save_weights

    model = build_model(tiny_variant)
    rng = np.random.default_rng(1)
    for layer in model.layers:
        if layer.name.endswith("_conv") or layer.name == "predictions":
            layer.set_weights([w + rng.normal(0, 0.01, w.shape).astype(w.dtype) for w in layer.get_weights()])
    return save_weights(model, tmp_path_factory.mktemp("weights") / "tiny.weights.h5")


def test_resume_skips_and_changed_inputs_rebuild(all_modes, tmp_path, tiny_variant, tiny_weights):
    # Start from the default int8 conversion (all_modes: random weights), copied: weights added is a changed input.
    unweighted = all_modes[1]["int8"]
    for path in (Path(unweighted.model_path), Path(unweighted.manifest_path)):
        shutil.copy(path, tmp_path / path.name)
    assert read_manifest(unweighted.manifest_path)["weights"] is None
    first = _one(tiny_variant, tmp_path, weights=tiny_weights)
    assert first.status == "converted", first.error
    manifest = read_manifest(first.manifest_path)
    assert manifest["weights"]["sha256"] == sha256_file(tiny_weights)
    assert manifest["weights"]["format"] == "keras-keras3"
    assert manifest["random_weights"] is False
    assert sha256_file(first.model_path) != sha256_file(unweighted.model_path)
    mtime = Path(first.model_path).stat().st_mtime_ns

    again = _one(tiny_variant, tmp_path, weights=tiny_weights)
    assert again.status == "up to date"
    assert Path(first.model_path).stat().st_mtime_ns == mtime

    more = _one(tiny_variant, tmp_path, weights=tiny_weights, samples=SAMPLES + 2)
    assert more.status == "converted"
    assert read_manifest(more.manifest_path)["calibration"]["samples"] == SAMPLES + 2
    # (A changed seed rebuilds too: the crash test below relies on it.)


def test_crash_leaves_nothing_partial_and_the_run_goes_on(all_modes, tiny_variant, tiny_lite_variant, tmp_path,
                                                           monkeypatch):
    """Kill the child mid-conversion (SIGSEGV after calibration) on a rebuild of an existing output."""
    out, results = all_modes
    earlier = results["int8"]
    before = {p.name: sha256_file(p) for p in out.iterdir()}

    work = tmp_path / "tmp"
    work.mkdir()
    monkeypatch.setattr(tempfile, "tempdir", str(work))
    # Leftovers of an earlier run that was SIGKILLed (pid 999999999 cannot exist): removed.
    (work / "edgenet-convert-999999999-b0-int8-abc").mkdir()
    (out / f".{Path(earlier.model_path).name}.tmp-999999999").write_bytes(b"partial")
    monkeypatch.setenv(CRASH_ENV, tiny_variant.name)  # crash only this variant's conversion
    cli = CliRunner().invoke(convert, [TINY_SPEC, TINY_LITE_SPEC, "--samples", str(SAMPLES), "--seed", "5",
                                       "-o", str(out), "--quiet"])
    assert cli.exit_code == 1
    errors = [line for line in cli.stderr.splitlines() if line.startswith("error:")]
    assert len(errors) == 1 and "crashed (SIGSEGV)" in errors[0] and tiny_variant.name in errors[0]
    assert "FAILED" in cli.stdout and "converted" in cli.stdout  # the run went on with the next variant

    # Earlier outputs are byte-identical; the only new files are the second variant's finished pair;
    # nothing partial or temporary is left beside them or in the temp folder.
    after = {p.name: sha256_file(p) for p in out.iterdir()}
    assert {k: after[k] for k in before} == before
    assert sorted(set(after) - set(before)) == [f"{tiny_lite_variant.name}-int8.json",
                                                f"{tiny_lite_variant.name}-int8.tflite"]
    assert read_manifest(earlier.manifest_path)["calibration"]["seed"] == 0
    assert list(work.iterdir()) == []


def _corrupt_folder(root: Path) -> Path:
    root.mkdir()
    (root / "a.jpg").write_bytes(b"\xff\xd8\xff\xe0 definitely not a jpeg")
    (root / "b.png").write_bytes(b"")
    return root


@pytest.mark.parametrize("case", ["missing", "empty", "corrupt"])
def test_bad_calibration_folder_fails_before_converting(tmp_path, tiny_variant, case):
    folder = tmp_path / "calib"
    if case == "empty":
        folder.mkdir()
    elif case == "corrupt":
        _corrupt_folder(folder)
    out = tmp_path / "out"
    with pytest.raises(EdgenetError) as info:
        convert_variants([tiny_variant], _options(out, calib=str(folder)))
    message = str(info.value)
    assert "\n" not in message and str(folder) in message
    assert not list(out.glob("*.tflite"))


def test_user_folder_calibration_holds_out_unused_images(tmp_path, tiny_variant):
    from edgenet.convert.calibration import calibration_images

    folder = tmp_path / "photos"
    folder.mkdir()
    for path in calibration_images()[:5]:
        Image.open(path).convert("RGB").resize((96, 80)).save(folder / path.name)
    result = _one(tiny_variant, tmp_path / "out", calib=str(folder), samples=3)
    assert result.status == "converted", result.error
    manifest = read_manifest(result.manifest_path)
    assert manifest["calibration"]["files"] == 3
    assert manifest["fidelity"]["images"] == 2  # the two images calibration did not use
    assert "not used for calibration" in manifest["fidelity"]["source"]


def test_worker_refuses_nan_calibration(tmp_path, tiny_variant):
    """The child checks again before TensorFlow sees the data (NaN crashes the TF 2.21 converter)."""
    import subprocess
    import sys

    from edgenet.convert.request import WorkerJob

    calib = np.full((2, 64, 64, 3), 10.0, dtype=np.float32)
    calib[1, 3, 3, 0] = np.nan
    np.save(tmp_path / "calib.npy", calib)
    job = WorkerJob(ConvertRequest(progress=False), TINY_SPEC, model_out=str(tmp_path / "m.tflite"),
                    model_path=str(tmp_path / "m.tflite"), result_out=str(tmp_path / "result.json"),
                    calib_npy=str(tmp_path / "calib.npy"))
    (tmp_path / "req.json").write_text(job.to_json())
    proc = subprocess.run([sys.executable, "-m", "edgenet.convert.worker", str(tmp_path / "req.json")],
                          capture_output=True, text=True, timeout=120)
    assert proc.returncode == 1
    result = json.loads((tmp_path / "result.json").read_text())
    assert result["ok"] is False and "NaN" in result["error"] and "calibration sample 2" in result["error"]
    assert not (tmp_path / "m.tflite").exists()


def test_parent_refuses_nan_before_spawning(tiny_variant):
    from edgenet.convert.calibration import check_calibration_array

    arr = np.zeros((1, 64, 64, 3), dtype=np.float32)
    arr[0, 0, 0, 0] = np.inf
    with pytest.raises(EdgenetError, match="NaN/Inf"):
        check_calibration_array(arr, ["x.jpg"], tiny_variant.contract)


def test_cli_unknown_variant_is_a_one_line_usage_error(tmp_path):
    result = CliRunner().invoke(convert, ["b9", "-o", str(tmp_path)])
    assert result.exit_code == 2
    assert "unknown variant 'b9'" in result.output
    assert "Traceback" not in result.output


def test_cli_bad_calibration_is_one_line_exit_1(tmp_path):
    result = CliRunner().invoke(convert, [TINY_SPEC, "--calib", str(tmp_path / "nope"), "-o", str(tmp_path / "o")])
    assert result.exit_code == 1
    error_lines = [line for line in result.output.splitlines() if line.startswith("Error")]
    assert len(error_lines) == 1 and "does not exist" in error_lines[0]


def test_cli_io_without_int8_is_usage_error(tmp_path):
    result = CliRunner().invoke(convert, [TINY_SPEC, "--quant", "fp16", "--io", "uint8", "-o", str(tmp_path)])
    assert result.exit_code == 2 and "needs --quant int8" in result.output


def test_cli_json_and_resume(all_modes, tiny_variant):
    out, _ = all_modes
    runner = CliRunner()
    result = runner.invoke(convert, [TINY_SPEC, "--quant", "int8", "--samples", str(SAMPLES), "-o", str(out),
                                     "--json", "--quiet"])
    assert result.exit_code == 0, result.output
    payload = json.loads(result.stdout)
    assert payload[0]["status"] == "up to date" and payload[0]["variant"] == tiny_variant.name
    table = runner.invoke(convert, [TINY_SPEC, "--samples", str(SAMPLES), "-o", str(out), "--quiet"])
    assert table.exit_code == 0
    assert "up to date" in table.stdout and "SQNR dB" in table.stdout
    assert "RANDOM weights" in table.stderr


def test_target_edgetpu_gives_a_checked_uint8_model(tmp_path):
    """--target edgetpu: int8 with uint8 I/O, batch 1, static check stored in the manifest."""
    from click.testing import CliRunner

    from edgenet.cli import main
    from edgenet.runtime.interpreter import TFLiteModel

    out = tmp_path / "tpu"
    result = CliRunner().invoke(main, ["convert", TINY_SPEC, "--target", "edgetpu", "--samples", "4", "--quiet",
                                       "-o", str(out)])
    assert result.exit_code == 0, result.output
    (model_path,) = out.glob("*-int8-uint8.tflite")
    model = TFLiteModel.from_path(model_path)
    assert model.input_details[0]["dtype"].__name__ == "uint8" and model.input_shape[0] == 1
    manifest = json.loads(model_path.with_suffix(".json").read_text())
    check = manifest["edgetpu"]["static_check"]
    assert check["ops_tpu_share"] == 1.0 and check["first_unsupported"] is None
    assert "100% of ops" in result.stderr
    # No compiler on this machine: the run says how to get one instead of failing.
    assert "edgetpu_compiler" in result.stderr or "compiled:" in result.stderr
    # Its refusals are the request's (tests/test_request.py runs each through the CLI).


def test_default_calibrator_gives_the_true_ranges_of_the_seeded_model(all_modes, tmp_path, tiny_variant):
    """edgenet's calibrator (the default): recorded, rebuilds on change, ranges are the real ones.

    Random weights are seeded (``--seed``), so the test rebuilds the very model the child
    converted and checks that the int8 input and output scales cover exactly what the float
    model's input and logits take on the calibration photos.
    """
    from edgenet._tf import keras
    from edgenet.convert.calibration import load_calibration
    from edgenet.family.model import build_model

    # The default int8 conversion (all_modes), copied: this test converts it again with the other calibrator.
    fast = all_modes[1]["int8"]
    assert fast.ok
    (tmp_path / "edgenet").mkdir()
    for path in (Path(fast.model_path), Path(fast.manifest_path)):
        shutil.copy(path, tmp_path / "edgenet" / path.name)
    assert _one(tiny_variant, tmp_path / "edgenet").status == "up to date"
    manifest = read_manifest(Path(fast.manifest_path))
    assert manifest["converter"]["calibrator"] == "edgenet"
    assert manifest["random_weights"] and manifest["init_seed"] == 0
    model = TFLiteModel.from_path(fast.model_path)
    calib = load_calibration("default", tiny_variant.contract, SAMPLES, 0).array
    scale, zero_point = model.input_details[0]["quantization"]
    assert scale == pytest.approx((calib.max() - calib.min()) / 255.0, rel=1e-3)
    assert zero_point == -128
    keras.utils.set_random_seed(0)
    logits = build_model(tiny_variant, batch_size=1).predict(calib, batch_size=1, verbose=0)
    low, high = min(float(logits.min()), 0.0), max(float(logits.max()), 0.0)
    out_scale, _ = model.output_details[0]["quantization"]
    assert out_scale == pytest.approx((high - low) / 255.0, rel=1e-3)
    # Switching the calibrator is a changed input: the model is rebuilt, not reused.
    again = _one(tiny_variant, tmp_path / "edgenet", calibrator="tflite")
    assert again.status == "converted"
    assert read_manifest(Path(again.manifest_path))["converter"]["calibrator"] == "tflite"


def test_calibrators_agree_on_a_trained_model(tmp_path, digits_model):
    """On the trained digits model both calibrators keep the int8 model's predictions the float model's."""
    from edgenet.family.variants import parse_variant

    variant = parse_variant(digits_model.spec)
    common = dict(weights=digits_model.weights, calib=str(digits_model.data.train_dir), samples=64,
                  holdout=digits_model.data.test_dir)
    results = {c: _one(variant, tmp_path / c, calibrator=c, **common) for c in ("tflite", "edgenet")}
    for calibrator, result in results.items():
        assert result.ok, result.error
        print(calibrator, result.fidelity)
    tflite, edgenet = results["tflite"].fidelity, results["edgenet"].fidelity
    from edgenet.convert.fidelity import MAX_HOLDOUT_IMAGES
    from edgenet.pixels.images import list_image_files

    held_out = min(len(list_image_files(digits_model.data.test_dir)), MAX_HOLDOUT_IMAGES)
    assert tflite["images"] == edgenet["images"] == held_out  # every held-out image, up to the cap
    assert edgenet["top1_agreement"] >= 0.95 and tflite["top1_agreement"] >= 0.95
    assert edgenet["sqnr_db"] >= tflite["sqnr_db"] - 1.0


def _alive(pid: int) -> bool:
    try:
        state = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
    except (OSError, IndexError):
        return False
    return state != "Z"


def test_sigterm_mid_conversion_leaves_no_temp_files_and_no_child(tmp_path):
    """SIGTERM while the worker converts: exit 143, the worker gone, nothing left in the temp folder.

    TensorFlow writes autograph sources (``__autograph_generated_file*.py``) under the temp folder while it
    traces the model; the worker gets its own TMPDIR inside its workdir, which the parent removes on the way
    out. The test waits until the worker has written there, so it fails if they went anywhere else.
    """
    import os
    import signal
    import subprocess
    import sys
    import time

    repo = Path(__file__).resolve().parents[1]
    tmp = tmp_path / "tmp"
    tmp.mkdir()
    env = dict(os.environ, TMPDIR=str(tmp), PYTHONPATH=os.pathsep.join([str(repo), os.environ.get("PYTHONPATH", "")]))
    proc = subprocess.Popen([sys.executable, "-m", "edgenet", "convert", TINY_SPEC, "--quant", "fp32", "--quiet",
                             "-o", str(tmp_path / "out")], env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                            text=True)
    try:
        deadline = time.monotonic() + 300
        while not list(tmp.glob("edgenet-convert-*/tmp/__autograph_generated_file*")):
            assert proc.poll() is None, proc.communicate()
            assert time.monotonic() < deadline, "TensorFlow wrote no autograph source into the worker's temp folder"
            time.sleep(0.1)
        workers = [int(pid) for pid in os.listdir("/proc") if pid.isdigit() and _worker_of(pid, tmp)]
        assert workers
        proc.send_signal(signal.SIGTERM)
        _, err = proc.communicate(timeout=60)
    finally:
        if proc.poll() is None:
            proc.kill()
    assert proc.returncode == 143, err
    assert [ln for ln in err.splitlines() if ln.strip()][-1].startswith("interrupted (SIGTERM)")
    assert "Traceback" not in err
    assert list(tmp.iterdir()) == []  # no workdir, no autograph sources
    deadline = time.monotonic() + 10
    while any(_alive(pid) for pid in workers) and time.monotonic() < deadline:
        time.sleep(0.1)
    assert not any(_alive(pid) for pid in workers)
    assert not list((tmp_path / "out").glob("*.tflite"))


def _worker_of(pid: str, tmp: Path) -> bool:
    try:
        cmdline = Path(f"/proc/{pid}/cmdline").read_bytes().decode(errors="replace")
    except OSError:
        return False
    return "edgenet.convert.worker" in cmdline and str(tmp) in cmdline
