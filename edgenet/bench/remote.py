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

__all__ = ["RemoteError", "run_remote", "run_remote_profile"]


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
        if params.xnnpack_latest:
            args.append("--xnnpack-latest")
        if params.api != "interpreter":
            args += ["--api", params.api]
        if params.xnnpack_weight_cache:
            args.append("--xnnpack-weight-cache")
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


def run_remote_profile(
    host: str,
    model_path: str | os.PathLike,
    args: Sequence[str],
    remote_command: str = "edgenet profile",
    ssh_options: Sequence[str] = (),
    connect_timeout_s: int = 10,
    timeout_s: float = 1800.0,
) -> dict:
    """Run ``edgenet profile MODEL ARGS --json`` on ``host`` and return its profile document.

    The model is copied to a fresh temporary folder that is removed afterwards, as for
    :func:`run_remote`; ``model.path`` in the answer is the local path.
    """
    import json

    opts = _ssh_base(ssh_options, connect_timeout_s)
    local = Path(model_path)

    def ssh(command: str, limit_s: float) -> subprocess.CompletedProcess:
        try:
            return subprocess.run(["ssh", *opts, host, command], capture_output=True, text=True, timeout=limit_s,
                                  stdin=subprocess.DEVNULL)
        except subprocess.TimeoutExpired:
            raise RemoteError(f"{host}: no answer within {limit_s:g} s") from None
        except FileNotFoundError:
            raise RemoteError("ssh is not installed on this machine") from None

    from ..fsutil import read_input_bytes

    read_input_bytes(local, "a .tflite model")  # a missing local file is the user's error, said here
    proc = ssh("mktemp -d", connect_timeout_s + 30)
    if proc.returncode != 0:
        raise RemoteError(f"{host}: unreachable: {one_line(proc.stderr, pick='last', empty='no output')}")
    remote_dir = proc.stdout.strip().splitlines()[-1]
    try:
        scp = subprocess.run(["scp", "-q", *opts, str(local), f"{host}:{remote_dir}/"], capture_output=True,
                             text=True, timeout=timeout_s)
        if scp.returncode != 0:
            raise RemoteError(f"{host}: copying the model failed: {one_line(scp.stderr, pick='last', empty='no output')}")
        remote_model = f"{remote_dir}/{local.name}"
        command = " ".join([remote_command, *(shlex.quote(a) for a in [remote_model, *args, "--json"])])
        run = ssh(command, timeout_s)
        try:
            document = json.loads(run.stdout)
        except json.JSONDecodeError:
            document = None
        if not isinstance(document, dict) or "blocks" not in document:
            raise RemoteError(f"{host}: remote profile produced no result: {one_line(run.stderr, pick='last', empty='no output')}")
        if isinstance(document.get("model"), dict):
            document["model"]["path"] = str(local)
        return document
    finally:
        ssh(f"rm -rf {shlex.quote(remote_dir)}", connect_timeout_s + 30)
