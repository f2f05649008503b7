"""``edgenet eval``: top-1/top-5 of models on a labelled image set, float vs quantized."""

from __future__ import annotations

import contextlib

import click

from .cluster import cluster_option, executor_for
from .common import info, table, user_errors


def _pct(value: float | None) -> float | None:
    return None if value is None else value * 100.0


@click.command("eval")
@click.argument("models", nargs=-1, required=True)
@click.option("--data", "data", required=True, metavar="DIR|FILE",
              help="A folder of class sub-folders (DIR/<class>/<image>) or a file of 'IMAGE_PATH LABEL' lines.")
@click.option("--labels", "labels", default=None, metavar="FILE",
              help="Class folder -> index: 'folder index' lines, or one class name per line (index = line "
                   "number from 0). Default: sorted folder names -> 0..N-1.")
@click.option("--limit", type=click.IntRange(min=1), default=None, help="Evaluate only the first N images.")
@click.option("--weights", type=click.Path(dir_okay=False), default=None,
              help="Weights for the Keras variant models (.weights.h5, .h5, .pth, .safetensors).")
@click.option("--threads", type=click.IntRange(1, 64), default=1, show_default=True, help="Interpreter threads.")
@click.option("--json", "json_path", default=None, metavar="FILE",
              help="Append one 'eval' record per model to this JSON-lines results file.")
@click.option("--no-progress", is_flag=True, help="No progress bar on stderr.")
@click.option("--shard-images", type=click.IntRange(min=1), default=None,
              help="With --cluster: images per shard (task)  [default: 256].")
@cluster_option
@user_errors
def evaluate(models, data, labels, limit, weights, threads, json_path, no_progress, shard_images, cluster) -> None:
    """Top-1 and top-5 accuracy of .tflite models and Keras variants on labelled images.

    Each image goes through the one preprocessing path under each model's own contract
    (a .tflite model reads it from the manifest beside it); int8 inputs and outputs are
    (de)quantized with the model's parameters. A quantized model is compared with the
    first float model of the same variant: the top-1 drop in points and the share of
    images where both predict the same class (agreement). Unreadable images are listed
    on stderr and skipped.

    \b
    Example:
      edgenet eval out/b0-fp32.tflite out/b0-int8.tflite --data imagenet/val --labels synsets.txt
      edgenet eval lite0 out/lite0-int8.tflite --weights lite0.weights.h5 --data val.txt --limit 1000 \\
          --json results.jsonl
    """
    from ..evaluation.classifier import open_classifier
    from ..evaluation.evaluate import compare, eval_record, evaluate, load_dataset, pick_references
    from ..results import append_records

    dataset = load_dataset(data, labels)
    classifiers = []
    for model in models:
        is_tflite = str(model).endswith(".tflite")
        clf = open_classifier(model, weights=None if is_tflite else weights, threads=threads)
        for note in clf.notes:
            info(f"note: {note}")
        classifiers.append(clf)

    results = []
    reported: set[str] = set()
    with contextlib.ExitStack() as stack:
        executor = stack.enter_context(executor_for(cluster)) if cluster != "local" else None
        for clf in classifiers:
            try:
                if executor is None:
                    results.append(evaluate(clf, dataset, limit=limit, progress=not no_progress))
                else:  # shards as Ray tasks, merged in order: the same counts as a local run
                    results.append(executor.evaluate(clf, dataset, limit=limit, progress=not no_progress,
                                                     shard_images=shard_images, threads=threads))
            finally:
                clf.close()
    for result in results:
        for path, reason in result.skipped:
            if path not in reported:  # once per image, not once per model
                reported.add(path)
                info(f"skipped: {path}: {reason}")

    rows, records = [], []
    for i, (clf, result, ref) in enumerate(zip(classifiers, results, pick_references(classifiers), strict=True)):
        comparison = compare(result, results[ref]) if ref is not None else None
        rows.append({
            "model": clf.name, "quant": clf.quant or "", "top1": _pct(result.top1), "top5": _pct(result.top5),
            "count": result.count, "skipped": len(result.skipped),
            "drop": None if comparison is None else comparison.drop_top1_points,
            "agreement": None if comparison is None else _pct(comparison.agreement_top1),
            "reference": "" if ref is None else f"#{ref + 1} {classifiers[ref].name}",
        })
        records.append(eval_record(clf, result, comparison, weights=None if clf.kind == "tflite" else weights,
                                   threads=threads))
        rows[-1]["model"] = f"#{i + 1} {clf.name}"
    click.echo(table(rows, {"model": "model", "quant": "quant", "top1": "top-1 %", "top5": "top-5 %",
                            "count": "count", "skipped": "skipped", "drop": "drop (pts)",
                            "agreement": "agreement %", "reference": "vs"}, floatfmt=".2f"))
    if json_path:
        path = append_records(json_path, records)
        info(f"appended {len(records)} eval record(s) to {path}")
    if all(r.count == 0 for r in results):
        raise click.ClickException(f"{dataset.name}: no readable images to evaluate")
