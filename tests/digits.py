"""A small real labelled dataset and a tiny edgenet model trained on it, for the accuracy tests.

scikit-learn ships the UCI handwritten digits (1797 8x8 grey images, 10 classes). They are
upscaled and written as PNG files into ImageNet-style ``train/<digit>/`` and ``test/<digit>/``
folders (seeded split), so ``edgenet eval`` reads them exactly as it reads a user's data set.

Geometry: each digit is upscaled to 32x32 and centred on a black 64x64 canvas. The contract's
tpu-style centre crop keeps ``32 / (32 + 32)`` of the side at resolution 32, so the crop is
exactly the digit and the resize is the identity: the model sees every stroke, and the pixels
it is trained on are the ones :func:`edgenet.pixels.preprocess.preprocess` gives at evaluation time.

:func:`train_digits` trains ``phi=0,width=0.25,depth=0.25,resolution=32`` (a real EfficientNet:
swish, SE, every stage) for a few epochs on 2 CPU cores, saves its weights with
:func:`edgenet.weights.keras_files.save_weights` and converts it with ``edgenet convert`` to fp32 and full-int8
``.tflite`` files with manifests. Session fixtures wrap these helpers so every test reuses ONE trained model.
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

DIGITS_SPEC = "phi=0,width=0.25,depth=0.25,resolution=32"
DIGIT_SIDE = 32
CANVAS_SIDE = 64
NUM_CLASSES = 10


@dataclass(frozen=True)
class DigitsData:
    """Where the digits PNG files were written."""

    root: Path
    train_dir: Path
    test_dir: Path
    train_count: int
    test_count: int


@dataclass(frozen=True)
class DigitsModel:
    """The trained tiny model: weights, fp32 and int8 .tflite (each with a manifest), timings."""

    spec: str
    weights: Path
    fp32: Path
    int8: Path
    data: DigitsData
    keras_test_top1: float
    train_s: float
    convert_s: float
    history: dict = field(default_factory=dict, compare=False)


def digit_image(pixels_0_16: np.ndarray):
    """One 8x8 digit (values 0..16) -> a 64x64 RGB PIL image: the digit 32x32 centred on black."""
    from PIL import Image

    grey = np.round(np.asarray(pixels_0_16, dtype=np.float64) * (255.0 / 16.0)).astype(np.uint8)
    digit = Image.fromarray(grey, mode="L").resize((DIGIT_SIDE, DIGIT_SIDE), Image.Resampling.BILINEAR)
    canvas = Image.new("L", (CANVAS_SIDE, CANVAS_SIDE), 0)
    offset = (CANVAS_SIDE - DIGIT_SIDE) // 2
    canvas.paste(digit, (offset, offset))
    return canvas.convert("RGB")


def write_digits(root: Path, test_fraction: float = 0.3, seed: int = 0) -> DigitsData:
    """Write the digits as ``root/{train,test}/<digit>/<index>.png`` with a seeded, stratified split."""
    from sklearn.datasets import load_digits

    digits = load_digits()
    rng = np.random.default_rng(seed)
    test_mask = np.zeros(len(digits.target), dtype=bool)
    for label in range(NUM_CLASSES):
        members = np.flatnonzero(digits.target == label)
        chosen = rng.choice(members, size=int(round(len(members) * test_fraction)), replace=False)
        test_mask[chosen] = True
    root = Path(root)
    for index, (pixels, label) in enumerate(zip(digits.images, digits.target, strict=True)):
        split = "test" if test_mask[index] else "train"
        folder = root / split / str(int(label))
        folder.mkdir(parents=True, exist_ok=True)
        digit_image(pixels).save(folder / f"{index:04d}.png")
    return DigitsData(root, root / "train", root / "test", int((~test_mask).sum()), int(test_mask.sum()))


def load_split(folder: Path, contract) -> tuple[np.ndarray, np.ndarray]:
    """Every image of an ImageNet-style split through the one preprocessing path, with labels."""
    from edgenet.pixels.preprocess import preprocess

    xs, ys = [], []
    for label in range(NUM_CLASSES):
        for path in sorted((folder / str(label)).glob("*.png")):
            xs.append(preprocess(path, contract))
            ys.append(label)
    return np.stack(xs), np.asarray(ys, dtype=np.int64)


def convert_tflite(weights: Path, variant, data: DigitsData, out_dir: Path, samples: int = 200,
                   seed: int = 0) -> tuple[Path, Path]:
    """fp32 and full-int8 (int8 input and output) .tflite files with manifests, by ``edgenet convert``.

    The very pipeline users run (:func:`edgenet.convert.api.convert_variants`: a child process,
    static batch 1, edgenet's calibrator), calibrated on ``samples`` training digits and
    checked for fidelity on the test digits.
    """
    from edgenet.convert.api import ConvertRequest, convert_variants

    paths = []
    for quant in ("fp32", "int8"):
        options = ConvertRequest(quant=quant, weights=weights, calib=str(data.train_dir), samples=samples, seed=seed,
                                 holdout=data.test_dir, out_dir=out_dir, progress=False)
        (result,) = convert_variants([variant], options)
        if not result.ok:
            raise RuntimeError(f"digits {quant}: {result.error}")
        paths.append(Path(result.model_path))
    return paths[0], paths[1]


def train_digits(root: Path, epochs: int = 15, seed: int = 0, calibration_images: int = 200) -> DigitsModel:
    """Write the dataset, train the tiny variant, save weights, convert to fp32 and int8 .tflite."""
    import keras

    from edgenet.family.model import build_model
    from edgenet.family.variants import parse_variant
    from edgenet.weights.keras_files import save_weights

    root = Path(root)
    data = write_digits(root / "digits", seed=seed)
    variant = parse_variant(DIGITS_SPEC)
    x_train, y_train = load_split(data.train_dir, variant.contract)
    x_test, y_test = load_split(data.test_dir, variant.contract)

    start = time.perf_counter()
    keras.utils.set_random_seed(seed)
    model = build_model(variant, num_classes=NUM_CLASSES)
    # Cosine decay to zero: the last epochs settle the weights and BatchNorm's moving statistics
    # instead of leaving them wherever a large final step put them.
    steps = epochs * -(-len(x_train) // 32)
    schedule = keras.optimizers.schedules.CosineDecay(3e-3, decay_steps=steps)
    model.compile(optimizer=keras.optimizers.Adam(schedule),
                  loss=keras.losses.SparseCategoricalCrossentropy(from_logits=True),
                  metrics=["accuracy"])
    history = model.fit(x_train, y_train, batch_size=32, epochs=epochs, shuffle=True, verbose=0)
    logits = model.predict(x_test, batch_size=128, verbose=0)
    keras_top1 = float(np.mean(np.argmax(logits, axis=1) == y_test))
    train_s = time.perf_counter() - start
    weights = save_weights(model, root / "digits.weights.h5")

    start = time.perf_counter()
    fp32, int8 = convert_tflite(weights, variant, data, root / "models", calibration_images, seed)
    convert_s = time.perf_counter() - start
    return DigitsModel(DIGITS_SPEC, weights, fp32, int8, data, keras_top1, train_s, convert_s,
                       history={k: [float(v) for v in vs] for k, vs in history.history.items()})


_CACHE: dict[str, DigitsModel] = {}


def _to_json(model: DigitsModel) -> str:
    import json
    from dataclasses import asdict

    return json.dumps(asdict(model), default=str)


def _from_json(text: str) -> DigitsModel:
    import json

    raw = json.loads(text)
    data = DigitsData(**{k: (Path(v) if k.endswith(("root", "_dir")) else v) for k, v in raw.pop("data").items()})
    return DigitsModel(**{k: (Path(v) if k in ("weights", "fp32", "int8") else v) for k, v in raw.items()}, data=data)


def digits_model_once(tmp_path_factory) -> DigitsModel:
    """The trained digits model, trained once per test run and shared by every module's fixture.

    Under pytest-xdist each worker is its own process: the first to ask trains into the run's shared temporary
    folder under a file lock, the others wait and read what it wrote.
    """
    if "model" not in _CACHE:
        import os

        if os.environ.get("PYTEST_XDIST_WORKER") is None:
            _CACHE["model"] = train_digits(tmp_path_factory.mktemp("digits"))
        else:
            from filelock import FileLock

            shared = tmp_path_factory.getbasetemp().parent  # one folder per run, the same for every worker
            with FileLock(str(shared / "digits.lock")):
                record = shared / "digits.json"
                if not record.is_file():
                    record.write_text(_to_json(train_digits(shared / "digits")))
                _CACHE["model"] = _from_json(record.read_text())
    return _CACHE["model"]
