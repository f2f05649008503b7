"""Run ``edgenet eval`` on another device and bring the records back (``eval --remote``).

Accuracy is measured where the model will run: a board's runtime, its CPU's kernels, its delegate.
The models (with manifests, which carry the preprocessing contract) and the labelled images are
shipped once; the images travel as one folder with a ``path label`` list, so the labels are the ones
resolved here (class folders, ``--labels``) and ``--limit`` ships only what is evaluated. The device
writes ``eval`` records to stdout; model paths, the data set name and skipped images are mapped back
to this machine's names, so the records merge with local ones as ``bench --remote``'s do.
"""

from __future__ import annotations

import os
import shutil
import tempfile
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

from ..devices import Device, Session, resolve_device, with_manifests
from ..errors import EdgenetError
from ..runtime.delegates import EDGETPU_LIBRARY
from .evaluate import Dataset

__all__ = ["DEFAULT_TIMEOUT_S", "RemoteEval", "run_remote_eval"]

LIST_NAME = "labels.txt"
#: The default bound on a whole remote evaluation (shipping the images included): ``eval --timeout-s``.
DEFAULT_TIMEOUT_S = 7200.0


@dataclass(frozen=True)
class RemoteEval:
    """What the device returned: records (local names) and the images it could not read."""

    records: tuple[dict, ...]
    skipped: tuple[tuple[str, str], ...]  # (local path, reason)



def _stage(dataset: Dataset, limit: int | None, folder: Path) -> dict[str, str]:
    """Link (or copy) the evaluated images into ``folder`` with a ``path label`` list; staged -> local."""
    samples = dataset.samples[:limit] if limit is not None else dataset.samples
    (folder / "images").mkdir(parents=True)
    names: dict[str, str] = {}
    lines = []
    for i, sample in enumerate(samples):
        name = f"images/{i:06d}{sample.path.suffix.lower()}"
        target = folder / name
        try:
            os.link(sample.path, target)
        except OSError:
            try:
                shutil.copy2(sample.path, target)
            except OSError:
                target.write_bytes(b"")  # the device reports it unreadable, as a local eval would
        names[name] = str(sample.path)
        lines.append(f"{name} {sample.label}")
    (folder / LIST_NAME).write_text("\n".join(lines) + "\n")
    return names


def run_remote_eval(
    device: str | Device,
    models: Sequence[str | os.PathLike],
    dataset: Dataset,
    *,
    limit: int | None = None,
    threads: int = 1,
    delegate: str = "cpu",
    edgetpu_lib: str = EDGETPU_LIBRARY,
    remote_command: str | None = None,
    ssh_options: Sequence[str] = (),
    timeout_s: float = DEFAULT_TIMEOUT_S,
) -> RemoteEval:
    """Evaluate ``.tflite`` ``models`` on ``dataset`` on the device; records as a local eval gives them.

    One :class:`Session` ships the models, their manifests and the images, runs the device's eval
    under ``timeout_s`` (everything included) and validates the records it sends back.
    """
    local = [Path(m) for m in models]
    for path in local:
        if path.suffix != ".tflite":
            raise EdgenetError(f"{path}: eval --remote runs .tflite models (the device has the core install, "
                               "no TensorFlow to build a Keras variant)")
    device = resolve_device(device, ssh_options)
    session = Session(device, timeout_s=timeout_s)
    shipped = [session.ship(p) for p in local]
    for manifest in with_manifests(local)[len(local):]:
        session.ship(manifest)
    with tempfile.TemporaryDirectory(prefix="edgenet-eval-") as work:
        staged: dict[str, str] = {}
        if device.local:  # the device reads this machine's files: nothing to stage
            data_args: list = ["--data", str(dataset.source)]
            if dataset.kind == "folder" and dataset.classes is not None:
                # The folder's labels as resolved here (sorted names or --labels), whatever the device does.
                labels = Path(work) / "classes.txt"
                labels.write_text("".join(f"{name} {i}\n" for i, name in enumerate(dataset.classes) if name))
                data_args += ["--labels", str(labels)]
            if limit is not None:
                data_args += ["--limit", str(limit)]
        else:
            staged = _stage(dataset, limit, Path(work) / "data")
            session.ship(Path(work) / "data" / "images", "images", folder=True)
            data_args = ["--data", session.ship(Path(work) / "data" / LIST_NAME, LIST_NAME)]
        args = [*shipped, *data_args, "--threads", str(threads), "--json", "-", "--quiet"]
        if delegate not in (None, "cpu"):
            args += ["--delegate", delegate, "--edgetpu-lib", edgetpu_lib]
        reply = session.run(remote_command or f"{device.command} eval", args, what="eval")
    records = session.records(reply, "eval", what="remote eval")
    for record in records:
        if record.get("accuracy"):
            record["accuracy"]["dataset"] = dataset.name
    skipped = []
    for line in reply.stderr.splitlines():
        if line.startswith("skipped: "):
            where, _, reason = line[len("skipped: "):].partition(": ")
            name = session.local_name(where, reply)
            skipped.append((staged.get(name, where) if name else where, reason))
    return RemoteEval(tuple(records), tuple(skipped))
