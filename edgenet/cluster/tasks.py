"""The work a cluster node does: plain functions that :class:`edgenet.cluster.executor.RayExecutor`
wraps with ``ray.remote`` (so this module imports without Ray, and the local executor calls the
same functions in-process).

Nothing here reads a path of the machine that submitted the work: models and images arrive as
bytes through Ray's object store and results go back the same way; the submitting machine writes
the files (atomically), so a node that dies mid-task leaves nothing partial anywhere.
"""

from __future__ import annotations

import contextlib
import json
import os
import shutil
import socket
import tempfile
import time
from collections.abc import Sequence
from dataclasses import replace
from pathlib import Path

from ..bench.params import BenchParams
from ..devices import Device

__all__ = ["convert_task", "eval_shard_task", "latency_task", "run_on_device", "check_task"]

TMP_PREFIX = "edgenet-cluster-"


def node_name() -> str:
    """``host`` or, inside a Ray worker, ``host/<first 8 hex digits of the Ray node id>``."""
    import sys

    ray = sys.modules.get("ray")
    if ray is not None and ray.is_initialized():
        with contextlib.suppress(Exception):  # a driver without a node context: the host name will do
            return f"{socket.gethostname()}/{ray.get_runtime_context().get_node_id()[:8]}"
    return socket.gethostname()


# --- conversion -------------------------------------------------------------------------------------------------


def convert_task(spec: str, request) -> dict:
    """Convert one variant on this node into a private folder; return the model and manifest bytes.

    The submitter has already decided that the variant is not up to date (the local path's own check),
    so the node converts.
    """
    from ..convert.api import convert_variants
    from ..convert.manifest import manifest_path_for
    from ..family.variants import parse_variant

    variant = parse_variant(spec)
    started = time.time()
    workdir = Path(tempfile.mkdtemp(prefix=f"{TMP_PREFIX}convert-{os.getpid()}-"))
    try:
        (result,) = convert_variants([variant], replace(request, out_dir=workdir, progress=False))
        out = {"result": result.to_dict(), "model": None, "manifest": None, "node": node_name()}
        if result.ok:
            out["model"] = Path(result.model_path).read_bytes()
            out["manifest"] = manifest_path_for(result.model_path).read_text(encoding="utf-8")
        out.update(started=started, ended=time.time())
        return out
    finally:
        shutil.rmtree(workdir, ignore_errors=True)


# --- evaluation -------------------------------------------------------------------------------------------------

_MODEL_CACHE: dict[tuple, tuple] = {}  # (sha256, threads) -> (folder, classifier): one interpreter per worker


def _classifier_for(model_bytes: bytes, manifest: dict | None, name: str, threads: int):
    from ..evaluation.classifier import open_classifier
    from ..fsutil import sha256_bytes

    key = (sha256_bytes(model_bytes), threads)
    if key not in _MODEL_CACHE:
        for folder, _ in _MODEL_CACHE.values():
            shutil.rmtree(folder, ignore_errors=True)
        _MODEL_CACHE.clear()
        folder = Path(tempfile.mkdtemp(prefix=f"{TMP_PREFIX}model-{os.getpid()}-"))
        path = folder / name
        path.write_bytes(model_bytes)
        if manifest is not None:
            path.with_suffix(".json").write_text(json.dumps(manifest), encoding="utf-8")
        _MODEL_CACHE[key] = (folder, open_classifier(str(path), threads=threads))
    return _MODEL_CACHE[key][1]


def eval_shard_task(model_bytes: bytes, manifest: dict | None, name: str, items: Sequence[tuple],
                    threads: int = 1) -> dict:
    """Top-5 predictions for one shard: ``items`` are ``(path, image bytes or None, read error, label)``.

    The images are written under their own file names into a private folder and go through the very
    :func:`edgenet.evaluation.evaluate.evaluate` a local run uses, so the pixels are the same.
    """
    from .. import process
    from ..evaluation.evaluate import Dataset, Sample, evaluate

    # Shard folders of workers killed mid-task (a forced cancel skips their finally) go first.
    process.remove_orphaned(tempfile.gettempdir(), f"{TMP_PREFIX}shard-")
    clf = _classifier_for(model_bytes, manifest, name, threads)
    started = time.time()
    folder = Path(tempfile.mkdtemp(prefix=f"{TMP_PREFIX}shard-{os.getpid()}-"))
    try:
        samples, index_of, skipped = [], {}, []
        for i, (path, data, error, label) in enumerate(items):
            if data is None:
                skipped.append((i, path, error))
                continue
            local = folder / f"{i:06d}-{Path(path).name}"
            local.write_bytes(data)
            index_of[str(local)] = (i, path)
            samples.append(Sample(local, int(label)))
        if samples:
            result = evaluate(clf, Dataset(folder, "list", tuple(samples)), progress=False)
            paths = [index_of[p][1] for p in result.paths]
            labels, predictions = list(result.labels), [list(p) for p in result.predictions]
            skipped += [(*index_of[p], reason) for p, reason in result.skipped]
        else:
            paths, labels, predictions = [], [], []
        skipped.sort()
        return {"paths": paths, "labels": labels, "predictions": predictions,
                "skipped": [(p, reason) for _, p, reason in skipped], "node": node_name(),
                "started": started, "ended": time.time()}
    finally:
        shutil.rmtree(folder, ignore_errors=True)


# --- latency ----------------------------------------------------------------------------------------------------


def run_on_device(device: Device, model_paths: Sequence[str | os.PathLike], threads: Sequence[int],
                  params: BenchParams) -> list[dict]:
    """Measure ``model_paths`` x ``threads`` on ``device`` from this node; schema records labelled with its name."""
    params = replace(params, delegate=device.delegate, edgetpu_lib=device.edgetpu_lib)
    if not device.in_process:
        from ..bench.remote import run_remote

        return run_remote(device, list(model_paths), list(threads), params, label=device.name)
    from ..bench.runner import run_settings

    results = run_settings(list(model_paths), [replace(params, threads=t) for t in threads], label=device.name)
    return [r.to_record() for r in results]


def describe_models(records: list[dict], model_paths: Sequence[str | os.PathLike]) -> list[dict]:
    """On the submitting machine: ``model`` of each record from the local file and its manifest.

    A board measures a bare copy (the .tflite without its manifest), so its records lack the
    variant, MACs and parameters; the local file, when its sha256 matches, supplies them. Only the
    submitted ``model_paths`` are ever read: a path a record names is never opened for its own sake.
    """
    from ..runtime.envinfo import model_info

    submitted = {str(p) for p in model_paths}
    cache: dict[str, dict] = {}
    for record in records:
        model = record.get("model") or {}
        path = model.get("path")
        if path not in submitted or not Path(path).is_file():
            continue
        if path not in cache:
            cache[path] = model_info(path)
        if model.get("sha256") in (None, cache[path]["sha256"]):
            record["model"] = dict(cache[path])
    return records


def latency_task(device: Device, models: Sequence[tuple[str, bytes]], threads: Sequence[int],
                 params: BenchParams) -> dict:
    """A latency job on the node holding ``device``: the models arrive as bytes, records go back.

    ``model.path`` in the records is the submitter's path. ``started``/``ended`` bracket the job
    (wall clock), which is what the exclusivity of a device is checked against.
    """
    from ..errors import EdgenetError

    started = time.time()
    folder = Path(tempfile.mkdtemp(prefix=f"{TMP_PREFIX}bench-{os.getpid()}-"))
    try:
        local_to_origin = {}
        for origin, data in models:
            if not isinstance(data, (bytes, bytearray)):  # an ObjectRef: the bytes went once through the store
                import ray

                data = ray.get(data)
            local = folder / Path(origin).name
            local.write_bytes(data)
            local_to_origin[str(local)] = origin
        error = None
        try:
            records = run_on_device(device, list(local_to_origin), threads, params)
        except EdgenetError as exc:
            records, error = [], f"{device.name}: {exc}"
        for record in records:
            model = record.get("model") or {}
            if model.get("path") in local_to_origin:
                model["path"] = local_to_origin[model["path"]]
        return {"records": records, "error": error, "node": node_name(), "started": started, "ended": time.time()}
    finally:
        shutil.rmtree(folder, ignore_errors=True)


def check_task(device: Device, timeout_s: float | None = None) -> dict:
    from ..devices import check_device

    return check_device(device, **({"timeout_s": timeout_s} if timeout_s else {})).to_dict()
