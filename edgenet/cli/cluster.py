"""``--cluster`` (shared by convert, eval, bench and sweep) and ``edgenet devices``."""

from __future__ import annotations

import contextlib
import json

import click

from ..runtime.delegates import EDGETPU_LIBRARY
from .common import emit_json, info, user_errors

__all__ = ["cluster_option", "executor_for", "devices"]


def _check_cluster(ctx, param, value):
    """Fail before any work starts: a malformed value, or a cluster asked for without Ray installed."""
    from ..cluster.executor import parse_cluster, require_ray
    from ..errors import EdgenetError

    try:
        spec = parse_cluster(value)
        if not spec.is_local:
            require_ray(spec.address)
    except EdgenetError as exc:
        raise click.ClickException(str(exc)) from None
    return value


def cluster_option(fn):
    return click.option(
        "--cluster", default="local", show_default=True, metavar="local|auto|ray://HOST:PORT",
        callback=_check_cluster, is_eager=False,
        help="Where the work runs: this process, the Ray cluster this machine is part of (auto), or a Ray head "
             "(ray://HOST:PORT with Ray Client, HOST:PORT directly). Needs pip install 'edgenet[ray]'.")(fn)


@contextlib.contextmanager
def executor_for(cluster: str):
    """Open the executor; on Ctrl-C or an error, cancel its cluster tasks before leaving."""
    from ..cluster.executor import open_executor

    with open_executor(cluster) as executor:
        if executor.name != "local":
            info(f"cluster: {executor.describe()}")
        yield executor


@click.command("devices")
@click.option("--inventory", "-i", default="devices.toml", show_default=True, type=click.Path(dir_okay=False),
              metavar="devices.toml|DEVICE.json|USER@HOST",
              help="The device inventory (TOML, one [[device]] table per board), or one device (a device file, "
                   "user@host).")
@click.option("--ray-resources", is_flag=True,
              help="Print the --resources JSON for 'ray start' on the node that owns these devices' links.")
@click.option("--node", default=None, help="With --ray-resources: only devices whose node = NODE.")
@click.option("--probe", is_flag=True, hidden=True, help="Print this machine's runtime as JSON (used over ssh).")
@click.option("--delegate", default="cpu", hidden=True)
@click.option("--edgetpu-lib", default=EDGETPU_LIBRARY, hidden=True)
@click.option("--json", "as_json", is_flag=True, help="Print the checks as JSON.")
@click.option("--timeout-s", type=click.FloatRange(min=0, min_open=True), default=70.0, show_default=True,
              help="Bound on each device's check, connection included (the device side runs under it too).")
@cluster_option
@user_errors
def devices(inventory, ray_resources, node, probe, delegate, edgetpu_lib, as_json, timeout_s, cluster) -> None:
    """List the devices of an inventory and check each one, one line per device.

    Checks that the device is reachable (SSH for remote boards), which TFLite runtime and version
    it has, and that its delegate (Edge TPU) loads. With --cluster, each check runs on the node
    that holds the device. Exit code 1 when any device fails its check.

    \b
    Example:
      edgenet devices --inventory devices.toml
      ray start --address HEAD:6379 --resources "$(edgenet devices --ray-resources --node lab-pc)"
    """
    if probe:
        from ..devices import probe_here

        click.echo(json.dumps(probe_here(delegate, edgetpu_lib)))
        return
    import math

    from ..cluster.devices import ray_resources as resources_for
    from ..devices import load_devices

    if not math.isfinite(timeout_s):
        raise click.BadParameter(f"{timeout_s} is not a finite number of seconds", param_hint="'--timeout-s'")
    fleet = load_devices(inventory)
    if ray_resources:
        click.echo(json.dumps(resources_for(fleet, node)))
        return
    with executor_for(cluster) as executor:
        checks = executor.check_devices(fleet, timeout_s)
    if as_json:
        emit_json([c.to_dict() for c in checks])
    else:
        for check in checks:
            click.echo(check.line())
    failed = [c for c in checks if not c.ok]
    if failed:
        raise click.ClickException(f"{len(failed)} of {len(checks)} device(s) failed their check")
