"""Run ``edgenet bench`` on another device (over ssh, or an emulated board) and bring the records back.

Models (with their manifests, so the records know the variant) are shipped once through
:class:`edgenet.devices.Session`, the device's edgenet writes JSON lines to stdout (``--json -``),
and ``model.path`` in the records is mapped back to the local file.
"""

from __future__ import annotations

import os
from collections.abc import Sequence
from pathlib import Path

from .. import results
from ..devices import Device, DeviceError, Session, resolve_device
from ..errors import EdgenetError, one_line
from .params import BenchParams

__all__ = ["RemoteError", "run_remote", "with_manifests"]

#: The device could not be reached or did not produce results (kept under its first name).
RemoteError = DeviceError



def with_manifests(paths: Sequence[Path]) -> list[Path]:
    """The models followed by the manifests that exist beside them (``MODEL.json``)."""
    return list(paths) + [p.with_suffix(".json") for p in paths if p.with_suffix(".json").is_file()]


def run_remote(
    host: str | Device,
    model_paths: Sequence[str | os.PathLike],
    threads: Sequence[int],
    params: BenchParams,
    label: str | None = None,
    remote_command: str | None = None,
    ssh_options: Sequence[str] = (),
    connect_timeout_s: int = 10,
) -> list[dict]:
    """Benchmark ``model_paths`` on ``host`` (``user@host``, a device file or a :class:`Device`).

    ``ssh_options`` are ssh ``-o`` settings (``Port=2222``, ``IdentityFile=~/.ssh/pi``) used for
    both ssh and scp. ``remote_command`` starts the bench command (default: the device's edgenet
    command + ``bench``). ``model.path`` in the returned records is the local path. The run's own
    timeout covers every setting plus copying.
    """
    device = resolve_device(host, ssh_options)
    budget_s = len(model_paths) * len(threads) * (params.effective_timeout_s + 10) + 120
    command = remote_command or f"{device.command} bench"
    local = [Path(p) for p in model_paths]
    with Session(device, connect_timeout_s) as session:
        shipped = session.put(with_manifests(local), timeout_s=budget_s)[: len(local)]
        args = [*shipped]
        args += ["--threads", ",".join(str(t) for t in threads), "--delegate", params.delegate]
        args += ["--warmup-s", str(params.warmup_s), "--min-runs", str(params.min_runs)]
        args += ["--min-s", str(params.min_s), "--max-s", str(params.max_s), "--json", "-"]
        args += ["--edgetpu-lib", params.edgetpu_lib]
        if params.timeout_s is not None:
            args += ["--timeout-s", str(params.timeout_s)]
        if not params.xnnpack:
            args.append("--no-xnnpack")
        if label:
            args += ["--label", label]
        run = session.run(command, args, budget_s)
        try:
            records = results.parse_records(run.stdout, source=f"{device.where}:{command}")
        except EdgenetError:
            records = []
        if not records:
            raise RemoteError(f"{device.where}: remote bench produced no results: "
                              + one_line(run.stderr, pick="last", empty="no output"))
        by_remote = dict(zip(shipped, local, strict=True))
        return [
            results.with_model_path(record, str(by_remote[view.model.path]))
            if view.model.path in by_remote else record
            for record, view in zip(records, results.as_records(records), strict=True)
        ]
