"""``edgenet predict`` and ``edgenet import-weights``."""

from __future__ import annotations

import click

from .. import numbers
from ..errors import format_path
from . import options
from .common import WEIGHTS, emit_json, info, user_errors, weights_for


@click.command()
@click.argument("images", nargs=-1, required=True, type=click.Path(dir_okay=False))
@click.option("--model", "model", required=True, help="A variant name/spec (built in Keras) or a .tflite file.")
@options.weights(help="Weights for a Keras variant: .weights.h5, legacy .h5, PyTorch .pth/.pt, .safetensors, or "
                   "'imagenet' (published weights, cached; see 'edgenet weights list').")
@options.top(default=5, reason="a handful of classes per image", help="Classes per image.")
@options.threads()
@options.json_flag()
@user_errors
def predict(images, model, weights, top, threads, as_json) -> None:
    """Top-5 ImageNet classes with scores for each image.

    Images go through the same preprocessing as calibration and evaluation, driven by
    the model's contract (a .tflite model reads it from the manifest beside it). An
    unreadable image gets one line and the others are still classified.

    \b
    Example:
      edgenet predict cat.jpg --model lite0 --weights efficientnet-lite0.pth
      edgenet predict cat.jpg --model b0 --weights imagenet
      edgenet predict cat.jpg dog.png --model out/lite0-int8.tflite --json
    """
    from ..evaluation.classifier import open_classifier
    from ..evaluation.predict import predict_images

    if weights is not None and not str(model).endswith(".tflite"):
        weights = weights_for(weights, model)
    classifier = open_classifier(model, weights=weights, threads=threads)
    for note in classifier.notes:
        info(f"note: {note}")
    try:
        results = predict_images(classifier, images, k=top)
    finally:
        classifier.close()
    failed = [r for r in results if r.error]
    if as_json:
        emit_json({"model": classifier.name, "variant": classifier.variant, "quant": classifier.quant,
                   "predictions": [r.to_dict() for r in results]})
    else:
        for r in results:
            if r.error:
                continue
            click.echo(format_path(r.path))
            for index, label, score in r.top:
                click.echo(f"  {score:7.2%}  {index:4d}  {label}")
    for r in failed:
        info(f"error: {format_path(r.path)}: {r.error}")
    if failed:
        raise SystemExit(1)


@click.command("import-weights")
@click.argument("checkpoint", type=WEIGHTS)
@options.variant(help="The variant the checkpoint was trained as.")
@options.output("The edgenet weights file to write (OUT.weights.h5).", required=True,
                reason="import-weights writes nowhere by default")
@click.option("--num-classes", type=options.number(numbers.Bounds(1, 100_000, integer=True)), default=1000,
              show_default=True)
@user_errors
def import_weights(checkpoint, variant, output, num_classes) -> None:
    """Convert a checkpoint (or 'imagenet': the published weights) into an edgenet .weights.h5 file.

    Reads PyTorch legacy and zip checkpoints and safetensors without torch, through a
    restricted reader that rebuilds tensors and refuses anything else. Both the
    efficientnet-pytorch and the timm naming are understood; every shape is checked.

    \b
    Example:
      edgenet import-weights efficientnet-lite0.pth --variant lite0 -o lite0.weights.h5
      edgenet import-weights imagenet --variant b0 -o b0.weights.h5
    """
    from ..family.model import build_model
    from ..weights.keras_files import load_weights, save_weights

    checkpoint = weights_for(checkpoint, variant)
    model = build_model(variant, num_classes=num_classes)
    result = load_weights(model, variant, checkpoint)
    for note in result.get("notes", []):
        info(f"note: {note}")
    path = save_weights(model, output)
    info(f"imported {result['layers']} layers ({result['format']}) into {variant.name}: wrote {path}")
