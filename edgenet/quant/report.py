"""Where quantization hurts: the error each quantized tensor adds, on held-out real images (``quant-report``).

The measurement (cumulative, local and own-range SQNR, clipping, RMSE per quantized tensor, named by
Keras layer and block; what each figure means) lives in :mod:`edgenet.convert.tensor_errors`, one
level below so that the conversion's accuracy budget can rank tensors with it too, and is
re-exported here. This module is the command's side: :func:`quant_report` runs the measurement on
user models in a child process, and :class:`QuantReport` renders a ranked Markdown table, JSON and a
picture (matplotlib, the ``plot`` extra).
"""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np

from ..convert.tensor_errors import QuantReport, TensorError, block_of, layer_of, measure_report
from ..errors import EdgenetError, InputFileError, MissingDependencyError

__all__ = ["TensorError", "QuantReport", "layer_of", "block_of", "measure_report", "quant_report"]


# --------------------------------------------------------------------------------------------
# The API behind ``edgenet quant-report``
# --------------------------------------------------------------------------------------------


def float_model_bytes(float_source: str, weights: str | None) -> tuple[bytes, str]:
    """A float .tflite file's bytes, or a variant built in Keras (with ``weights``) converted to fp32."""
    if str(float_source).endswith(".tflite"):
        from ..fsutil import read_input_bytes

        if weights:
            raise EdgenetError("--weights applies to a variant; a float .tflite carries its own weights")
        return read_input_bytes(Path(float_source), "a float .tflite model"), str(float_source)
    from ..convert.worker import keras_to_tflite
    from ..family.model import build_model
    from ..family.variants import parse_variant
    from ..weights.keras_files import classifier_classes, load_weights

    variant = parse_variant(float_source)
    model = build_model(variant, batch_size=1, num_classes=(weights and classifier_classes(weights)) or 1000)
    if weights:
        load_weights(model, variant, weights)
    data, _ = keras_to_tflite(model, "fp32", name=variant.name)
    described = f"{variant.name} (Keras, {'weights ' + Path(weights).name if weights else 'random weights'}, fp32)"
    return data, described


def _child(request: dict) -> tuple[str, object]:
    """Child-process body: errors come back as one line, never as a pickled exception."""
    try:
        float_bytes, described = float_model_bytes(request["float_source"], request["weights"])
        inputs = np.load(request["inputs_npy"])
        report = measure_report(float_bytes, request["model_bytes"], inputs, model=request["model"],
                                float_source=described, images=request["images"], source=request["source"],
                                threads=request.get("threads"), groups=request.get("groups"))
        return "ok", report
    except EdgenetError as exc:
        return "error", str(exc)
    except (ValueError, RuntimeError) as exc:
        return "error", f"{request['model']}: {' '.join(str(exc).split())[:300]}"


def _contract_for(model_path: Path, float_source: str, input_side: int):
    from ..evaluation.classifier import manifest_for
    from ..family.variants import parse_variant
    from ..pixels.contract import PreprocessContract

    manifest = manifest_for(model_path)
    if manifest and "preprocessing" in manifest:
        return PreprocessContract.from_dict(manifest["preprocessing"]), None
    if not str(float_source).endswith(".tflite"):
        return parse_variant(float_source).contract, None
    return (PreprocessContract(input_side, (0.0,) * 3, (1.0,) * 3),
            f"{model_path}: no manifest beside it; assuming RGB pixels 0..255 with normalisation in the model")


def quant_report(float_source: str, model_path: str | os.PathLike, *, weights: str | None = None,
                 images: str | os.PathLike | None = None, threads: int | None = None) -> tuple[QuantReport, list[str]]:
    """Per-tensor error of ``model_path`` against ``float_source`` (variant + weights, or float .tflite).

    ``images``: a folder of held-out photos (default: edgenet's embedded held-out photos, never the
    calibration ones); few images are seen through fixed crops/flips. The interpreters and the Keras
    build run in a child process: a crash there is one error line. Returns the report and notes.
    """
    import importlib.util
    import tempfile
    from concurrent.futures.process import BrokenProcessPool

    from .. import process
    from ..convert.calibration import DEFAULT_SOURCE
    from ..convert.fidelity import holdout_set
    from ..fsutil import read_input_bytes
    from ..runtime.tflite_graph import read_graph

    if importlib.util.find_spec("tensorflow") is None:
        # One-operator float models are cut with TF's flatbuffer tools (and a variant is built in Keras).
        raise MissingDependencyError("tensorflow", "tf", "the quantization report")
    model_path = Path(model_path)
    data = read_input_bytes(model_path, "a quantized .tflite model")
    graph = read_graph(model_path)  # by path, so an error names the file
    if not graph.inputs:
        raise InputFileError(model_path, "the model has no input")
    shape = graph.tensors[graph.inputs[0]].shape
    if len(shape) != 4:
        raise InputFileError(model_path, f"expected an image model with a (1, H, W, 3) input, got {shape}")
    if not any(t.quantization.is_quantized and not t.is_constant and t.dtype in ("int8", "int16", "uint8")
               for t in graph.tensors):
        raise InputFileError(model_path, "not a quantized model (no int8/int16 activation tensors)")
    contract, note = _contract_for(model_path, float_source, int(shape[1]))
    notes = [note] if note else []
    if weights is None and not str(float_source).endswith(".tflite"):
        notes.append(f"{float_source}: no --weights given; the float reference has random weights")
    if images is not None and not Path(images).is_dir():
        raise InputFileError(images, "images folder does not exist or is not a folder")
    hold = holdout_set(DEFAULT_SOURCE, contract, (), images)
    if hold is None:
        raise EdgenetError("no held-out images to measure on")
    with tempfile.TemporaryDirectory(prefix="edgenet-quant-report-") as tmp:
        inputs_npy = Path(tmp) / "inputs.npy"
        np.save(inputs_npy, hold.array)
        request = {"float_source": str(float_source), "weights": str(weights) if weights else None,
                   "model_bytes": data, "model": str(model_path), "inputs_npy": str(inputs_npy),
                   "images": hold.images, "source": hold.source, "threads": threads, "groups": hold.groups}
        os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
        try:
            # The worker dies with us (SIGKILL included) and is ended at once on SIGINT/SIGTERM/SIGHUP.
            with process.worker_pool(1) as pool:
                status, payload = pool.submit(_child, request).result()
        except BrokenProcessPool:
            raise EdgenetError(f"{model_path}: the measuring process crashed (interpreter or converter); "
                               "nothing was written") from None
    if status != "ok":
        raise EdgenetError(str(payload))
    return payload, notes
