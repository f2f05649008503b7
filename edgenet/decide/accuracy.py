"""Measured accuracy of the sweep's converted candidates, for the accuracy objective.

* ``--data DIR|FILE`` (labelled: class folders or ``path label`` lines, as ``edgenet eval``):
  top-1/top-5 of each converted model on the user's images -- the int8 model's own accuracy.
* ``--agreement-images DIR`` (unlabelled): the share of images on which the converted model's
  top-1 class is its float model's (the same variant and weights converted to fp32), which shows
  quantization damage without labels. It is no accuracy: the objective never ranks by it.

Both go through :func:`edgenet.evaluation.evaluate.evaluate`, the path ``edgenet eval`` uses, and
are stored as ``eval`` records in the run's ``results.jsonl`` (matched to bench records by the
model's sha256), so an interrupted sweep does not evaluate a model twice.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

from ..results import make_record

__all__ = ["agreement_record", "already_evaluated", "evaluate_model", "unlabelled_dataset"]


def already_evaluated(records: list, sha256: str, dataset: str, field: str) -> bool:
    """An eval record of this model on this data set that holds ``field`` ("top1" / "agreement_top1")."""
    from ..results.records import EvalRecord, as_records

    for r in as_records(records):
        if (isinstance(r, EvalRecord) and r.ok and r.model.sha256 == sha256 and r.dataset == dataset
                and getattr(r, f"{field}_fraction") is not None):
            return True
    return False


def evaluate_model(model_path: Path, data: Path, threads: int, labels: Path | None = None,
                   log: Callable[[str], None] = lambda _m: None) -> dict:
    """Top-1/top-5 of one .tflite on a labelled set, as an ``eval`` record."""
    from ..evaluation.classifier import open_classifier
    from ..evaluation.evaluate import eval_record, evaluate, load_dataset

    dataset = load_dataset(data, labels)
    classifier = open_classifier(str(model_path), threads=threads)
    result = evaluate(classifier, dataset, progress=False)
    if result.skipped:
        log(f"eval {model_path.name}: {len(result.skipped)} unreadable image(s) skipped, e.g. {result.skipped[0][0]}")
    return eval_record(classifier, result, threads=threads)


def unlabelled_dataset(folder: Path):
    """Every image under ``folder`` as a data set whose labels are placeholders (never read)."""
    from ..evaluation.evaluate import Dataset, Sample
    from ..pixels.images import describe_skipped, walk_image_files

    walk = walk_image_files(folder)
    if not walk.files:
        from ..errors import InputFileError

        unusable = f"; skipped {describe_skipped(walk.skipped)}" if walk.skipped else ""
        raise InputFileError(folder, f"no image files for --agreement-images{unusable}")
    return Dataset(Path(folder), "folder", tuple(Sample(p, 0) for p in walk.files), skipped=walk.skipped)


def agreement_record(model_path: Path, float_path: Path, images: Path, threads: int) -> dict:
    """Top-1 agreement of a converted model with its float model on unlabelled images, as an ``eval``
    record whose ``top1``/``top5`` are null (there are no labels) and ``agreement_top1`` is the share."""
    from ..evaluation.classifier import open_classifier
    from ..evaluation.evaluate import compare, eval_record, evaluate

    dataset = unlabelled_dataset(images)
    ours = open_classifier(str(model_path), threads=threads)
    ref = open_classifier(str(float_path), threads=threads)
    ours_result = evaluate(ours, dataset, progress=False)
    comparison = compare(ours_result, evaluate(ref, dataset, progress=False))
    record = eval_record(ours, ours_result, comparison, threads=threads)
    accuracy = dict(record["accuracy"], top1=None, top5=None, reference=f"{float_path.name} (fp32)")
    return make_record("eval", model=record["model"], device=record["device"], settings=record["settings"],
                       accuracy=accuracy, created_utc=record["created_utc"])
