"""``edgenet eval``: top-1/top-5 of models on a labelled image set, float vs quantized."""

from __future__ import annotations

import contextlib

import click

from .. import numbers
from . import options
from .cluster import executor_for
from .common import info, table, user_errors, weights_for


def _pct(value: float | None) -> float | None:
    return None if value is None else value * 100.0


@click.command("eval")
@click.argument("models", nargs=-1, required=True)
@options.data(required=True,
              help="A folder of class sub-folders (DIR/<class>/<image>) or a file of 'IMAGE_PATH LABEL' lines.")
@options.labels()
@click.option("--limit", type=options.number(numbers.COUNT), default=None, help="Evaluate only the first N images.")
@options.weights(help="Weights for the Keras variant models (.weights.h5, .h5, .pth, .safetensors), or 'imagenet': "
                      "each variant's published weights.")
@options.threads()
@options.harness("delegate", "edgetpu_lib")
@options.json_records()
@options.results_file(help="Append one 'eval' record per model to this JSON-lines results file.")
@options.quiet(old_names=("--no-progress",))
@options.remote(help="Evaluate on another device (ssh, or a device file such as an emulated Pi's): the models and "
                     "images are shipped once and the records come back here.")
@options.remote_command("eval")
@options.ssh_option()
@options.timeout_s(default=7200.0, reason="a remote eval ships images and runs every model: two hours",
                   help="With --remote: bound on the whole remote run (shipping the images included); the device "
                        "side runs under it too.")
@click.option("--shard-images", type=options.number(numbers.COUNT), default=None,
              help="With --cluster: images per shard (task)  [default: 256].")
@options.cluster()
@user_errors
def evaluate(models, data, labels, limit, weights, threads, delegate, edgetpu_lib, as_json, results_path, quiet,
             remote, remote_command, ssh_options, timeout_s, shard_images, cluster) -> None:
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
          --results results.jsonl
      edgenet eval out/b0-int8_edgetpu.tflite --delegate edgetpu --data val.txt     # on the Coral itself
      edgenet eval out/lite0-int8.tflite --data val.txt --remote pi@raspberrypi.local --results pi.jsonl
    """
    from ..evaluation.classifier import open_classifier
    from ..evaluation.evaluate import compare, eval_record, evaluate, load_dataset, pick_references

    to_stdout, json_path, models = options.json_and_results(as_json, results_path, models)
    no_progress = quiet
    dataset = load_dataset(data, labels)
    if remote:
        return _remote(models, dataset, limit, weights, threads, delegate, edgetpu_lib, to_stdout, json_path,
                       remote, remote_command, ssh_options, timeout_s)
    classifiers, weight_files = [], []
    for model in models:
        is_tflite = str(model).endswith(".tflite")
        model_weights = None if is_tflite else weights_for(weights, model)
        clf = open_classifier(model, weights=model_weights, threads=threads, delegate=delegate,
                              edgetpu_lib=edgetpu_lib)
        for note in clf.notes:
            info(f"note: {note}")
        classifiers.append(clf)
        weight_files.append(model_weights)

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
    for i, (clf, result, ref, model_weights) in enumerate(
            zip(classifiers, results, pick_references(classifiers), weight_files, strict=True)):
        comparison = compare(result, results[ref]) if ref is not None else None
        rows.append({
            "model": clf.name, "quant": clf.quant or "", "top1": _pct(result.top1), "top5": _pct(result.top5),
            "count": result.count, "skipped": len(result.skipped),
            "drop": None if comparison is None else comparison.drop_top1_points,
            "agreement": None if comparison is None else _pct(comparison.agreement_top1),
            "reference": "" if ref is None else f"#{ref + 1} {classifiers[ref].name}",
        })
        records.append(eval_record(clf, result, comparison, weights=model_weights, threads=threads,
                                   delegate=delegate))
        rows[-1]["model"] = f"#{i + 1} {clf.name}"
    _output(rows, records, to_stdout, json_path)
    if all(r.count == 0 for r in results):
        raise click.ClickException(f"{dataset.name}: no readable images to evaluate")


HEADERS = {"model": "model", "quant": "quant", "top1": "top-1 %", "top5": "top-5 %", "count": "count",
           "skipped": "skipped", "drop": "drop (pts)", "agreement": "agreement %", "reference": "vs"}


def _output(rows: list[dict], records: list[dict], to_stdout: bool, json_path: str | None) -> None:
    """The table (stderr when the records go to stdout) and the records."""
    import sys

    from ..results import append_records, write_records

    click.echo(table(rows, HEADERS, floatfmt=".2f"), err=to_stdout)
    if to_stdout:
        write_records(sys.stdout, records)
    if json_path:
        path = append_records(json_path, records)
        info(f"appended {len(records)} eval record(s) to {path}")


def _remote(models, dataset, limit, weights, threads, delegate, edgetpu_lib, to_stdout, json_path, remote,
            remote_command, ssh_options, timeout_s) -> None:
    from ..evaluation.remote import run_remote_eval

    if weights:
        raise click.UsageError("--weights applies to Keras variants, which --remote cannot run (no TensorFlow "
                               "on the device): evaluate .tflite models there")
    info(f"evaluating {len(models)} model(s) on {remote}")
    out = run_remote_eval(remote, models, dataset, limit=limit, threads=threads, delegate=delegate,
                          edgetpu_lib=edgetpu_lib, remote_command=remote_command, ssh_options=ssh_options,
                          timeout_s=timeout_s)
    for path, reason in out.skipped:
        info(f"skipped: {path}: {reason}")
    rows = []
    for i, record in enumerate(out.records):
        acc, model = record.get("accuracy") or {}, record.get("model") or {}
        rows.append({"model": f"#{i + 1} {model.get('name')}", "quant": model.get("quant") or "",
                     "top1": _pct(acc.get("top1")), "top5": _pct(acc.get("top5")), "count": acc.get("count"),
                     "skipped": len(out.skipped), "drop": acc.get("drop_top1_points"),
                     "agreement": _pct(acc.get("agreement_top1")), "reference": acc.get("reference") or ""})
    _output(rows, list(out.records), to_stdout, json_path)
    if all(not (r.get("accuracy") or {}).get("count") for r in out.records):
        raise click.ClickException(f"{dataset.name}: no readable images to evaluate")
