"""Run ``edgenet bench`` on another machine over ssh and bring the records back.

One ssh session does everything: the models travel as a tar stream on its stdin into a fresh
``mktemp -d`` folder, the remote edgenet writes JSON lines to stdout (``--json -``) and a shell
``trap`` removes the folder however the session ends. ssh runs with ``BatchMode=yes`` (never
prompt for a password: a sweep must not hang on input), a ``ConnectTimeout`` (which OpenSSH also
applies to the banner exchange) and ``ServerAliveInterval`` probes; the user's ``--ssh-option``
values come first, so they win (ssh takes the first value it is given for an option).

The run is bounded by one budget, settings x the per-setting timeout, connection and copying
included: locally the ssh process group is ended at the budget (plus :data:`GRACE_S`), and on the
remote host the bench runs under ``timeout`` with what is left of the budget, so no remote process
outlives it.
"""

from __future__ import annotations

import io
import os
import shlex
import subprocess
import tarfile
from collections.abc import Sequence
from pathlib import Path

from .. import process, results
from ..devices import Device, resolve_device, with_manifests
from ..errors import EdgenetError, one_line
from .params import BenchParams

__all__ = ["RemoteError", "run_remote", "run_remote_profile", "remote_budget_s"]

#: Seconds the local side waits past the budget for the remote side to stop and clean up.
GRACE_S = 5.0

_DEFAULT_OPTIONS = {"batchmode": "yes", "serveraliveinterval": "5", "serveralivecountmax": "2"}


class RemoteError(EdgenetError):
    """The remote host could not be reached or did not produce results."""


def remote_budget_s(settings: int, params: BenchParams) -> float:
    """The bound on a whole remote run: every setting's timeout, connection and copying included."""
    return max(1, settings) * params.effective_timeout_s


def _ssh_options(options: Sequence[str], connect_timeout_s: float) -> list[str]:
    """User options first (ssh keeps the first value of each option), then edgenet's defaults."""
    given = {str(o).split("=", 1)[0].strip().lower() for o in options}
    defaults = dict(_DEFAULT_OPTIONS, connecttimeout=str(max(1, int(connect_timeout_s))))
    out: list[str] = []
    for option in options:
        out += ["-o", option]
    for key, value in defaults.items():
        if key not in given:
            out += ["-o", f"{key}={value}"]
    return out


def _tar(paths: Sequence[Path]) -> bytes:
    buffer = io.BytesIO()
    with tarfile.open(fileobj=buffer, mode="w") as tar:
        for path in paths:
            try:
                tar.add(str(path), arcname=path.name, recursive=False)
            except OSError as exc:
                raise RemoteError(f"{path}: cannot read: {exc.strerror or exc}") from None
    return buffer.getvalue()


def _script(remote_command: str, args: Sequence[str], names: Sequence[str], budget_s: float) -> str:
    """POSIX sh run by the remote login shell: unpack, bench under ``timeout``, always clean up."""
    models = " ".join(f'"$d"/{shlex.quote(n)}' for n in names)
    rest = " ".join(shlex.quote(a) for a in args)
    return "\n".join([
        "start=$(date +%s)",
        "d=$(mktemp -d) || exit 97",
        "trap 'rm -rf \"$d\"' EXIT",
        "trap 'exit 143' HUP INT TERM PIPE",
        "tar -xf - -C \"$d\" || exit 98",
        f"left=$(( {int(budget_s)} - ($(date +%s) - start) ))",
        "[ \"$left\" -gt 0 ] || exit 124",
        f"timeout -k 2 \"$left\" {remote_command} {models} {rest}",
    ])


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

    ``ssh_options`` are ssh ``-o`` settings (``Port=2222``, ``IdentityFile=~/.ssh/pi``); they take
    precedence over edgenet's defaults. ``remote_command`` starts the bench command (default: the
    device's edgenet command + ``bench``). ``model.path`` in the returned records is the local path.
    The whole run is bounded by :func:`remote_budget_s` (see the module docstring). A device
    without a host (an emulated board) runs its command here, on the local files.
    """
    device = resolve_device(host, ssh_options)
    host, ssh_options = device.where, device.ssh_options
    remote_command = remote_command or f"{device.command} bench"
    local = [Path(p) for p in model_paths]
    if len({p.name for p in local}) != len(local):
        raise RemoteError("--remote needs models with distinct file names (they share one remote folder)")
    budget_s = remote_budget_s(len(local) * len(threads), params)
    opts = _ssh_options(ssh_options, min(connect_timeout_s, budget_s))
    args = ["--threads", ",".join(str(t) for t in threads), "--delegate", params.delegate]
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
    if params.ynnpack:
        args.append("--ynnpack")
    if label:
        args += ["--label", label]
    if device.local:
        argv = [*shlex.split(remote_command), *map(str, local), *args]
        script, payload = None, None
    else:
        script = _script(remote_command, args, [p.name for p in local], budget_s)
        payload = _tar(with_manifests(local))
        argv = ["ssh", *opts, host, script]
    try:
        run = process.run(argv, input=payload, timeout_s=budget_s + GRACE_S)
    except subprocess.TimeoutExpired:
        raise RemoteError(f"{host}: no result within {budget_s:g} s (the --timeout-s budget of "
                          f"{len(local) * len(threads)} setting(s)); ssh stopped") from None
    except FileNotFoundError:
        if device.local:
            raise RemoteError(f"{device.name}: {argv[0]} not found (build the device first, e.g. "
                              "tools/emulated-pi build)") from None
        raise RemoteError("ssh is not installed on this machine") from None
    stdout = run.stdout.decode("utf-8", "replace")
    stderr = run.stderr.decode("utf-8", "replace")
    if run.returncode == 255 and not device.local:
        raise RemoteError(f"{host}: unreachable: {one_line(stderr, pick='last', empty='no output')}")
    if run.returncode == 124 or run.returncode == 137:
        raise RemoteError(f"{host}: the remote bench did not finish within {budget_s:g} s and was stopped there")
    try:
        records = results.parse_records(stdout, source=f"{host}:{remote_command}")
    except EdgenetError:
        records = []
    if not records:
        raise RemoteError(f"{host}: remote bench produced no results: {one_line(stderr, pick='last', empty='no output')}")
    by_name = {p.name: p for p in local}
    return [
        results.with_model_path(record, str(by_name[Path(str(view.model.path)).name]))
        if view.model.path and Path(str(view.model.path)).name in by_name else record
        for record, view in zip(records, results.as_records(records), strict=True)
    ]


def run_remote_profile(
    host: str,
    model_path: str | os.PathLike,
    args: Sequence[str],
    remote_command: str = "edgenet profile",
    ssh_options: Sequence[str] = (),
    connect_timeout_s: int = 10,
    budget_s: float = 1800.0,
) -> dict:
    """Run ``edgenet profile MODEL ARGS --json`` on ``host``; return its profile document.

    The same one-session transport as :func:`run_remote` (tar on stdin, ``trap`` clean-up, the
    remote run under ``timeout``); ``model.path`` in the answer is the local path.
    """
    import json

    local = Path(model_path)
    opts = _ssh_options(ssh_options, min(connect_timeout_s, budget_s))
    script = _script(remote_command, [*args, "--json"], [local.name], budget_s)
    payload = _tar([local])
    try:
        run = process.run(["ssh", *opts, host, script], input=payload, timeout_s=budget_s + GRACE_S)
    except subprocess.TimeoutExpired:
        raise RemoteError(f"{host}: no profile within {budget_s:g} s; ssh stopped") from None
    except FileNotFoundError:
        raise RemoteError("ssh is not installed on this machine") from None
    stdout = run.stdout.decode("utf-8", "replace")
    stderr = run.stderr.decode("utf-8", "replace")
    if run.returncode == 255:
        raise RemoteError(f"{host}: unreachable: {one_line(stderr, pick='last', empty='no output')}")
    if run.returncode in (124, 137):
        raise RemoteError(f"{host}: the remote profile did not finish within {budget_s:g} s and was stopped there")
    try:
        document = json.loads(stdout)
    except json.JSONDecodeError:
        document = None
    if not isinstance(document, dict) or "blocks" not in document:
        raise RemoteError(f"{host}: remote profile produced no result: {one_line(stderr, pick='last', empty='no output')}")
    if isinstance(document.get("model"), dict):
        document["model"]["path"] = str(local)
    return document
