"""Top-1/top-5 accuracy of Keras variants and .tflite models on a labelled image set.

Every image goes through :func:`edgenet.pixels.preprocess.preprocess` under the model's own contract
(through :class:`edgenet.evaluation.classifier.Classifier`), the same path ``predict``, calibration and the
conversion check use. That matters most for quantized models: an int8 model evaluated through a
second, slightly different resize or normalisation "loses" accuracy the quantizer never lost.

Data sources (:func:`load_dataset`):

* an ImageNet-style folder ``DIR/<class>/<image>``: classes are the sub-folder names sorted, index
  0..N-1, unless a labels file maps them (:func:`read_class_map`);
* a text file of ``path label`` lines (``#`` comments and blank lines ignored; relative paths are
  resolved against the file's folder; ``label`` is an integer class index).

An unreadable image is counted and listed in :attr:`EvalResult.skipped`, never fatal: one bad JPEG
must not throw away an hour of evaluation on a Raspberry Pi.

For a float and a quantized model of the same variant, :func:`compare` gives the accuracy drop in
top-1 points and the top-1 agreement (the share of images where both predict the same class),
which shows quantization damage more directly than two accuracies that can hide swapped errors.

Only numpy, Pillow and tqdm at import time: this runs on edge devices without TensorFlow.
"""

from __future__ import annotations

import os
import re
import sys
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from ..errors import EdgenetError, InputFileError
from ..fsutil import read_input_text
from ..pixels.images import IMAGE_EXTENSIONS, check_unreadable_share, describe_skipped, walk_image_files
from .classifier import Classifier

__all__ = [
    "FLOAT_QUANTS",
    "Sample",
    "Dataset",
    "EvalResult",
    "Comparison",
    "read_class_map",
    "load_dataset",
    "evaluate",
    "compare",
    "is_float",
    "pick_references",
    "eval_record",
]

#: ``quant`` values that mean "not quantized" (the reference side of a float/quantized pair).
FLOAT_QUANTS = frozenset({"float32", "fp32", "float", "none"})
TOP_K = 5


@dataclass(frozen=True)
class Sample:
    path: Path
    label: int


@dataclass(frozen=True)
class Dataset:
    """Labelled images in a fixed order (sorted class folders, or the list file's line order)."""

    source: Path
    kind: str  # "folder" | "list"
    samples: tuple[Sample, ...]
    classes: tuple[str, ...] | None = None  # folder names by index (folder source only)
    skipped: tuple[tuple[Path, str], ...] = ()  # what the folder walk could not use, with its reason

    @property
    def name(self) -> str:
        return str(self.source)

    def __len__(self) -> int:
        return len(self.samples)


@dataclass(frozen=True)
class EvalResult:
    """Accuracy of one model on one data set (accuracies are fractions 0..1)."""

    model: str
    dataset: str
    top1: float | None
    top5: float | None
    count: int  # images evaluated (skipped ones excluded)
    skipped: tuple[tuple[str, str], ...]  # (path, one-line reason)
    paths: tuple[str, ...]  # evaluated images, in order
    labels: tuple[int, ...]
    predictions: tuple[tuple[int, ...], ...]  # top-5 class indices per image, best first

    @property
    def top1_indices(self) -> dict[str, int]:
        return {p: pred[0] for p, pred in zip(self.paths, self.predictions, strict=True)}


@dataclass(frozen=True)
class Comparison:
    """A model against its float reference on the images both evaluated."""

    reference: str
    drop_top1_points: float | None  # reference top-1 minus this model's, in percentage points
    agreement_top1: float | None  # fraction of common images with the same top-1 class
    common: int


def _class_lines(path: Path) -> list[str]:
    text = read_input_text(path)
    return [line.strip() for line in text.splitlines() if line.strip() and not line.strip().startswith("#")]


_NAME_INDEX = re.compile(r"^(.+?)\s+(-?\d+)$")


def read_class_map(path: str | os.PathLike) -> dict[str, int]:
    """A labels file -> {class name: index}.

    Two layouts: ``name index`` lines (every line ends in an integer), or one class name per
    line with index = line number counted from 0 (blank and ``#`` lines are not counted). In the
    second layout a line's first word is also accepted as the name, so ImageNet's
    ``LOC_synset_mapping.txt`` (``n01440764 tench, Tinca tinca``) maps synset folders directly.
    """
    path = Path(path)
    lines = _class_lines(path)
    if not lines:
        raise InputFileError(path, "no class names in the labels file")
    pairs = [_NAME_INDEX.match(line) for line in lines]
    mapping: dict[str, int] = {}
    if all(pairs):
        for number, match in enumerate(pairs, start=1):
            name, index = match.group(1).strip(), int(match.group(2))
            if index < 0:
                raise InputFileError(path, f"line {number}: negative class index {index}")
            if name in mapping and mapping[name] != index:
                raise InputFileError(path, f"line {number}: class {name!r} mapped twice")
            mapping[name] = index
        return mapping
    for index, line in enumerate(lines):
        mapping.setdefault(line, index)
        first = line.split()[0]
        mapping.setdefault(first, index)
    return mapping


def _folder_dataset(root: Path, labels: str | os.PathLike | None) -> Dataset:
    classes = sorted(p.name for p in root.iterdir() if p.is_dir() and not p.name.startswith("."))
    if not classes:
        raise InputFileError(root, "no class sub-folders (expected DIR/<class>/<image>)")
    if labels is None:
        index_of = {name: i for i, name in enumerate(classes)}
    else:
        mapping = read_class_map(labels)
        missing = [c for c in classes if c not in mapping]
        if missing:
            raise InputFileError(labels, f"no class index for folder {missing[0]!r} "
                                         f"({len(missing)} of {len(classes)} folders unmapped)")
        index_of = {c: mapping[c] for c in classes}
    samples: list[Sample] = []
    skipped: list[tuple[Path, str]] = []
    for name in classes:
        walk = walk_image_files(root / name)
        samples += [Sample(path, index_of[name]) for path in walk.files]
        skipped += walk.skipped
    if not samples:
        unusable = f"; skipped {describe_skipped(skipped)}" if skipped else ""
        raise InputFileError(root, f"no image files ({', '.join(sorted(IMAGE_EXTENSIONS))}) in its class "
                                   f"folders{unusable}")
    by_index = {i: c for c, i in index_of.items()}
    names = tuple(by_index.get(i, "") for i in range(max(by_index) + 1))
    return Dataset(root, "folder", tuple(samples), names, tuple(skipped))


def _list_dataset(path: Path) -> Dataset:
    base = path.parent
    samples = []
    for number, line in enumerate(_raw_lines(path), start=1):
        text = line.strip()
        if not text or text.startswith("#"):
            continue
        parts = text.rsplit(None, 1)
        if len(parts) != 2 or not re.fullmatch(r"\d+", parts[1]):
            raise InputFileError(path, f"line {number}: expected 'IMAGE_PATH LABEL_INDEX', got {text[:60]!r}")
        image = Path(parts[0])
        samples.append(Sample(image if image.is_absolute() else base / image, int(parts[1])))
    if not samples:
        raise InputFileError(path, "no 'IMAGE_PATH LABEL_INDEX' lines")
    return Dataset(path, "list", tuple(samples))


def _raw_lines(path: Path) -> list[str]:
    return read_input_text(path, "a text file of 'IMAGE_PATH LABEL_INDEX' lines").splitlines()


def load_dataset(path: str | os.PathLike, labels: str | os.PathLike | None = None) -> Dataset:
    """An ImageNet-style folder or a ``path label`` list file (see the module docstring)."""
    path = Path(path)
    if not path.exists():
        raise InputFileError(path, "no such file or folder")
    if path.is_dir():
        return _folder_dataset(path, labels)
    if labels is not None:
        raise EdgenetError(f"--labels applies to a class-folder data set; {path} already holds label indices")
    return _list_dataset(path)


def _top_k(logits: np.ndarray, k: int) -> np.ndarray:
    k = min(k, logits.shape[1])
    # argsort of the negated scores, stable: ties resolve to the lower class index on every device.
    return np.argsort(-logits, axis=1, kind="stable")[:, :k]


def evaluate(
    classifier: Classifier,
    dataset: Dataset,
    limit: int | None = None,
    progress: bool = True,
    batch_size: int = 32,
) -> EvalResult:
    """Top-1/top-5 of ``classifier`` on the first ``limit`` samples of ``dataset``.

    Unreadable images are listed in ``skipped`` and left out of ``count``. A label beyond the
    model's outputs raises :class:`EdgenetError` (the wrong labels file or model, not a bad image).
    """
    from tqdm import tqdm

    from ..pixels.preprocess import preprocess

    samples = dataset.samples[:limit] if limit is not None else dataset.samples
    paths: list[str] = []
    labels: list[int] = []
    predictions: list[np.ndarray] = []
    skipped: list[tuple[str, str]] = [(str(path), why) for path, why in dataset.skipped]
    bar = tqdm(total=len(samples), desc=classifier.name, unit="img", file=sys.stderr, disable=not progress,
               leave=False)
    try:
        for start in range(0, len(samples), batch_size):
            chunk, rows = [], []
            for sample in samples[start : start + batch_size]:
                try:
                    rows.append(preprocess(sample.path, classifier.contract))
                except InputFileError as exc:
                    skipped.append((str(sample.path), exc.cause))
                else:
                    chunk.append(sample)
            if rows:
                logits = np.asarray(classifier.run(np.stack(rows)), dtype=np.float32)
                logits = logits.reshape(len(rows), -1)
                worst = max(s.label for s in chunk)
                if worst >= logits.shape[1]:
                    raise EdgenetError(f"{dataset.name}: class index {worst} but {classifier.name} has only "
                                       f"{logits.shape[1]} outputs (wrong labels file or model?)")
                predictions.append(_top_k(logits, TOP_K))
                paths.extend(str(s.path) for s in chunk)
                labels.extend(s.label for s in chunk)
            bar.update(min(batch_size, len(samples) - start))
    finally:
        bar.close()
    check_unreadable_share(dataset.name, len(paths), skipped)  # the one images policy
    top = np.concatenate(predictions) if predictions else np.zeros((0, TOP_K), dtype=np.int64)
    y = np.asarray(labels, dtype=np.int64)
    count = len(y)
    top1, top5 = topk_accuracy(top, y)
    return EvalResult(
        model=classifier.name, dataset=dataset.name, top1=top1, top5=top5, count=count,
        skipped=tuple(skipped), paths=tuple(paths), labels=tuple(int(v) for v in y),
        predictions=tuple(tuple(int(v) for v in row) for row in top),
    )


def compare(result: EvalResult, reference: EvalResult) -> Comparison:
    """Accuracy drop (points) and top-1 agreement of ``result`` against ``reference``.

    Both are computed on the images both models evaluated, so an image skipped by one side
    cannot make a model look better or worse.
    """
    ours, theirs = result.top1_indices, reference.top1_indices
    common = [p for p in ours if p in theirs]
    if not common:
        return Comparison(reference.model, None, None, 0)
    labels = dict(zip(result.paths, result.labels, strict=True))
    ours_ok = np.mean([ours[p] == labels[p] for p in common])
    theirs_ok = np.mean([theirs[p] == labels[p] for p in common])
    agreement = float(np.mean([ours[p] == theirs[p] for p in common]))
    return Comparison(reference.model, float((theirs_ok - ours_ok) * 100.0), agreement, len(common))


def is_float(classifier: Classifier) -> bool:
    """True for an unquantized model (a Keras variant, or a .tflite whose manifest/input says so)."""
    if classifier.quant is not None:
        return str(classifier.quant).lower() in FLOAT_QUANTS
    if classifier.kind == "keras":
        return True
    quant = getattr(classifier.runner, "input_quant", None)
    return quant is not None and not quant.quantized


def pick_references(classifiers: list[Classifier]) -> list[int | None]:
    """For each model, the index of its reference: the first float model of the same variant.

    Models without a known variant are matched on their preprocessing contract instead. A
    reference has no reference of its own.
    """
    def same(a: Classifier, b: Classifier) -> bool:
        if a.variant and b.variant:
            return a.variant == b.variant
        return a.contract == b.contract

    refs: list[int | None] = []
    for i, clf in enumerate(classifiers):
        # The first float model of a group is the reference; a later float model of the same
        # variant (Keras vs fp32 .tflite) is compared to it too, which checks the conversion.
        ref = next((j for j, other in enumerate(classifiers[:i]) if is_float(other) and same(clf, other)), None)
        if ref is None and not is_float(clf):
            ref = next((j for j, other in enumerate(classifiers) if j > i and is_float(other) and same(clf, other)),
                       None)
        refs.append(ref)
    return refs


def eval_record(
    classifier: Classifier,
    result: EvalResult,
    comparison: Comparison | None = None,
    weights: str | None = None,
    threads: int | None = None,
    delegate: str = "cpu",
) -> dict:
    """The ``kind: "eval"`` record of the shared results schema (accuracies as fractions).

    ``delegate`` is the one the classifier's interpreter ran with (opening it fails otherwise), so
    an Edge TPU accuracy is labelled ``edgetpu`` only when the Edge TPU computed it.
    """
    from ..results import NESTED_FIELDS, make_record
    from ..runtime.envinfo import device_info, model_info

    if classifier.kind == "tflite" and classifier.path:
        model = model_info(classifier.path, getattr(classifier.runner, "model_bytes", None))
        runtime = getattr(getattr(classifier.runner, "runtime", None), "info", None)
        runtime = runtime.to_dict() if runtime is not None else None
    else:
        model = {"path": weights, "name": classifier.name, "sha256": None, "size_bytes": None}
        if weights:
            from ..fsutil import sha256_file

            model["sha256"] = sha256_file(weights)
            model["size_bytes"] = Path(weights).stat().st_size
        runtime = {"name": "keras", "version": _version("keras")}
    model.update(variant=classifier.variant or model.get("variant"), quant=classifier.quant or model.get("quant"),
                 resolution=model.get("resolution") or classifier.contract.resolution)
    accuracy = {"top1": result.top1, "top5": result.top5, "count": result.count, "dataset": result.dataset,
                "agreement_top1": comparison.agreement_top1 if comparison else None}
    if "reference" in NESTED_FIELDS["accuracy"]:  # newer schema: name the reference model too
        accuracy["reference"] = comparison.reference if comparison else None
    ran_on = None
    if classifier.kind == "tflite" and delegate not in (None, "cpu"):
        ran_on = {"name": delegate, "version": None}
    return make_record("eval", model=model, device=device_info(runtime=runtime, delegate=ran_on),
                       settings={"threads": threads, "delegate": delegate or "cpu"}, accuracy=accuracy)


def _version(dist: str) -> str | None:
    from importlib.metadata import PackageNotFoundError, version

    try:
        return version(dist)
    except PackageNotFoundError:
        return None


def topk_accuracy(top, labels) -> tuple[float | None, float | None]:
    """Top-1 and top-5 fractions from (N, TOP_K) predicted class indices and N labels; None for no images."""
    import numpy as np

    if not len(labels):
        return None, None
    return float(np.mean(top[:, 0] == labels)), float(np.mean(np.any(top == labels[:, None], axis=1)))
