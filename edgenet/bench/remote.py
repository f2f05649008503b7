"""``bench --remote`` and ``profile --remote``: the measurement on a device, through its one :class:`Session`.

The device (``user@host``, a device file, an inventory of one, a :class:`Device`) gets the models and
their manifests, runs ``edgenet bench --json -`` (or ``profile --json``) and sends the results back;
the Session bounds the whole run and validates the reply (see :mod:`edgenet.devices.session`).
"""

from __future__ import annotations

import math
import os
from collections.abc import Sequence
from pathlib import Path

from ..devices import Device, DeviceError, Session, resolve_device, with_manifests
from .params import BenchParams

__all__ = ["check_profile", "run_remote", "run_remote_profile", "remote_budget_s"]


def remote_budget_s(settings: int, params: BenchParams) -> float:
    """The bound on a whole remote run: every setting's timeout, connection and copying included."""
    return max(1, settings) * params.effective_timeout_s


def _bench_args(threads: Sequence[int], params: BenchParams, label: str | None) -> list[str]:
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
    return args


def run_remote(
    device: str | Device,
    model_paths: Sequence[str | os.PathLike],
    threads: Sequence[int],
    params: BenchParams,
    label: str | None = None,
    remote_command: str | None = None,
    ssh_options: Sequence[str] = (),
) -> list[dict]:
    """Benchmark ``model_paths`` x ``threads`` on ``device``; validated records whose ``model`` is the local file.

    ``ssh_options`` (``Port=2222``, ``IdentityFile=~/.ssh/pi``) are added to the device's own;
    ``remote_command`` starts the bench command (default: the device's command + ``bench``). The run
    is bounded by :func:`remote_budget_s`.
    """
    device = resolve_device(device, ssh_options)
    local = [Path(p) for p in model_paths]
    session = Session(device, timeout_s=remote_budget_s(len(local) * len(threads), params))
    shipped = [session.ship(p) for p in local]
    for manifest in with_manifests(local)[len(local):]:
        session.ship(manifest)
    reply = session.run(remote_command or f"{device.command} bench", [*shipped, *_bench_args(threads, params, label)],
                        what="bench")
    return session.records(reply, "bench", what="remote bench")


def check_profile(document: object) -> None:
    """A profile document (``edgenet profile --json``) with the types its readers use; ``ValueError`` if not."""
    from ..results import check_fields

    if not isinstance(document, dict):
        raise ValueError(f"expected a profile object, got {type(document).__name__}")
    check_fields(document, {
        "rounds": "int+", "runs_per_round": "int+", "stat": "str", "call_overhead_ms": "num+", "sum_ms": "num+",
        "net_sum_ms": "num+", "net_sum_over_whole": "num+", "peak_rss_mb": "num+",
        "whole_ms": {"median": "num+", "min": "num+"}, "sum_over_whole": {"median": "num+", "min": "num+",
                                                                          "max": "num+"},
        "settings": {"threads": "int1"}, "model": {"name": "str"},
    }, "profile")
    for key in ("blocks", "parts", "whole_ms"):
        if not isinstance(document.get(key), (list, dict)):
            raise ValueError(f"profile.{key} is missing")
    if not isinstance(document["blocks"], list) or not isinstance(document["parts"], list):
        raise ValueError("profile.blocks and profile.parts must be lists")
    for i, block in enumerate(document["blocks"]):
        check_fields(block, {"name": "str", "op_count": "int+", "macs": "int+", "ms": "num+", "se_ms": "num+",
                             "share": "num+"}, f"profile.blocks[{i}]")
        if any(block.get(k) is None for k in ("name", "op_count", "macs", "ms")):
            raise ValueError(f"profile.blocks[{i}] lacks name, op_count, macs or ms")
    for key in ("rounds", "runs_per_round", "stat", "net_sum_ms", "net_sum_over_whole", "sum_ms", "call_overhead_ms"):
        if document.get(key) is None:
            raise ValueError(f"profile.{key} is missing")
    if any(document["whole_ms"].get(k) is None for k in ("median", "min")) or any(
            document["sum_over_whole"].get(k) is None for k in ("median", "min", "max")):
        raise ValueError("profile.whole_ms or profile.sum_over_whole is incomplete")


def run_remote_profile(
    device: str | Device,
    model_path: str | os.PathLike,
    args: Sequence[str],
    remote_command: str | None = None,
    ssh_options: Sequence[str] = (),
    timeout_s: float = 1800.0,
) -> dict:
    """``edgenet profile MODEL ARGS --json`` on ``device``; the validated profile, ``model`` from the local file."""
    from ..runtime.envinfo import model_info

    device = resolve_device(device, ssh_options)
    if not math.isfinite(timeout_s) or timeout_s <= 0:
        raise DeviceError(f"--timeout-s must be a finite number of seconds above 0, got {timeout_s!r}")
    session = Session(device, timeout_s=timeout_s)
    local = Path(model_path)
    shipped = session.ship(local)
    reply = session.run(remote_command or f"{device.command} profile", [shipped, *args, "--json"], what="profile")
    document = session.document(reply, check_profile, "remote profile")
    document["model"] = model_info(local)  # what was shipped, never what the device says it measured
    return document
