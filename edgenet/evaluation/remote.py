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

from .. import results
from ..devices import Device, DeviceError, Session, resolve_device, with_manifests
from ..errors import EdgenetError, one_line
from ..runtime.delegates import EDGETPU_LIBRARY
from .evaluate import Dataset

__all__ = ["RemoteEval", "run_remote_eval"]

LIST_NAME = "labels.txt"


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
    timeout_s: float = 7200,
) -> RemoteEval:
    """Evaluate ``.tflite`` ``models`` on ``dataset`` on the device; records as a local eval gives them."""
    local = [Path(m) for m in models]
    for path in local:
        if path.suffix != ".tflite":
            raise EdgenetError(f"{path}: eval --remote runs .tflite models (the device has the core install, "
                               "no TensorFlow to build a Keras variant)")
        if not path.is_file():
            raise EdgenetError(f"{path}: no such file")
    device = resolve_device(device, ssh_options)
    command = remote_command or f"{device.command} eval"
    with Session(device) as session, tempfile.TemporaryDirectory(prefix="edgenet-eval-") as work:
        shipped = session.put(with_manifests(local), timeout_s=timeout_s)[: len(local)]
        if device.local:  # the device reads this machine's files: nothing to stage
            staged: dict[str, str] = {}
            data_args = ["--data", str(dataset.source)]
            if dataset.kind == "folder" and dataset.classes is not None:
                # The folder's labels as resolved here (sorted names or --labels), whatever the device does.
                labels = Path(work) / "classes.txt"
                labels.write_text("".join(f"{name} {i}\n" for i, name in enumerate(dataset.classes) if name))
                data_args += ["--labels", str(labels)]
            if limit is not None:
                data_args += ["--limit", str(limit)]
        else:
            staged = _stage(dataset, limit, Path(work) / "data")
            remote_data = session.put_tree(Path(work) / "data", "data", timeout_s=timeout_s)
            data_args = ["--data", f"{remote_data}/{LIST_NAME}"]
            staged = {f"{remote_data}/{name}": path for name, path in staged.items()}
        args = [*shipped, *data_args, "--threads", str(threads), "--json", "-", "--quiet"]
        if delegate not in (None, "cpu"):
            args += ["--delegate", delegate, "--edgetpu-lib", edgetpu_lib]
        run = session.run(command, args, timeout_s)
    try:
        records = results.parse_records(run.stdout, source=f"{device.where}:{command}", kind="eval")
    except EdgenetError:
        records = []
    if not records:
        raise DeviceError(f"{device.where}: remote eval produced no results: "
                          + one_line(run.stderr, pick="last", empty="no output"))
    by_remote = dict(zip(shipped, map(str, local), strict=True))
    for record in records:
        model = record.get("model") or {}
        model["path"] = by_remote.get(model.get("path"), model.get("path"))
        if record.get("accuracy"):
            record["accuracy"]["dataset"] = dataset.name
    skipped = []
    for line in run.stderr.splitlines():
        if line.startswith("skipped: "):
            where, _, reason = line[len("skipped: "):].partition(": ")
            skipped.append((staged.get(where, where), reason))
    return RemoteEval(tuple(records), tuple(skipped))
