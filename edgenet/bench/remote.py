"""Run ``edgenet bench`` on another machine over ssh and bring the records back.

Models are copied with scp to a fresh temporary folder on the remote host, the remote edgenet
writes JSON lines to stdout (``--json -``), and the folder is removed afterwards. ssh runs with
``BatchMode=yes`` (never prompt for a password: a sweep must not hang on input) and a
``ConnectTimeout`` so an unreachable board costs seconds, not minutes.
"""

from __future__ import annotations

import os
import shlex
import subprocess
from collections.abc import Sequence
from pathlib import Path

from .. import results
from ..errors import EdgenetError, one_line
from .params import BenchParams

__all__ = ["RemoteError", "run_remote"]


class RemoteError(EdgenetError):
    """The remote host could not be reached or did not produce results."""


def _ssh_base(options: Sequence[str], connect_timeout_s: int) -> list[str]:
    base = ["-o", "BatchMode=yes", "-o", f"ConnectTimeout={connect_timeout_s}"]
    for option in options:
        base += ["-o", option]
    return base


def run_remote(
    host: str,
    model_paths: Sequence[str | os.PathLike],
    threads: Sequence[int],
    params: BenchParams,
    label: str | None = None,
    remote_command: str = "edgenet bench",
    ssh_options: Sequence[str] = (),
    connect_timeout_s: int = 10,
) -> list[dict]:
    """Benchmark ``model_paths`` on ``host`` (``user@host``); returns schema records.

    ``ssh_options`` are ssh ``-o`` settings (``Port=2222``, ``IdentityFile=~/.ssh/pi``) used for
    both ssh and scp. ``model.path`` in the returned records is the local path. The run's own
    timeout covers every setting plus copying.
    """
    opts = _ssh_base(ssh_options, connect_timeout_s)
    budget_s = len(model_paths) * len(threads) * (params.effective_timeout_s + 10) + 120

    def ssh(command: str, timeout_s: float) -> subprocess.CompletedProcess:
        try:
            return subprocess.run(
                ["ssh", *opts, host, command], capture_output=True, text=True, timeout=timeout_s, stdin=subprocess.DEVNULL
            )
        except subprocess.TimeoutExpired:
            raise RemoteError(f"{host}: no answer within {timeout_s:g} s") from None
        except FileNotFoundError:
            raise RemoteError("ssh is not installed on this machine") from None

    proc = ssh("mktemp -d", connect_timeout_s + 30)
    if proc.returncode != 0:
        raise RemoteError(f"{host}: unreachable: {one_line(proc.stderr, pick='last', empty='no output')}")
    remote_dir = proc.stdout.strip().splitlines()[-1]
    try:
        local = [Path(p) for p in model_paths]
        if len({p.name for p in local}) != len(local):
            raise RemoteError("--remote needs models with distinct file names (they share one remote folder)")
        scp = subprocess.run(
            ["scp", "-q", *opts, *[str(p) for p in local], f"{host}:{remote_dir}/"],
            capture_output=True,
            text=True,
            timeout=budget_s,
        )
        if scp.returncode != 0:
            raise RemoteError(f"{host}: copying models failed: {one_line(scp.stderr, pick='last', empty='no output')}")
        args = [f"{remote_dir}/{p.name}" for p in local]
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
        command = remote_command + " " + " ".join(shlex.quote(a) for a in args)
        run = ssh(command, budget_s)
        try:
            records = results.parse_records(run.stdout, source=f"{host}:{remote_command}")
        except EdgenetError:
            records = []
        if not records:
            raise RemoteError(f"{host}: remote bench produced no results: {one_line(run.stderr, pick='last', empty='no output')}")
        by_remote = {f"{remote_dir}/{p.name}": p for p in local}
        return [
            results.with_model_path(record, str(by_remote[view.model.path]))
            if view.model.path in by_remote else record
            for record, view in zip(records, results.as_records(records), strict=True)
        ]
    finally:
        ssh(f"rm -rf {shlex.quote(remote_dir)}", connect_timeout_s + 30)
