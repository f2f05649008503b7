"""``edgenet devices`` and the executor behind ``--cluster`` (the option itself: edgenet.cli.options)."""

from __future__ import annotations

import contextlib
import json

import click

from . import options
from .common import emit_json, info, user_errors

__all__ = ["executor_for", "devices"]


@contextlib.contextmanager
def executor_for(cluster: str):
    """Open the executor; on Ctrl-C or an error, cancel its cluster tasks before leaving."""
    from ..cluster.executor import open_executor

    with open_executor(cluster) as executor:
        if executor.name != "local":
            info(f"cluster: {executor.describe()}")
        yield executor


@click.command("devices")
@click.argument("inventory", required=False, type=click.Path(dir_okay=False),
                metavar="[devices.toml|DEVICE.json|USER@HOST]")
@options.deprecated("--inventory", "-i", "old_inventory", type=click.Path(dir_okay=False), default=None,
                    instead="edgenet devices FILE (the inventory as the argument)")
@click.option("--ray-resources", is_flag=True,
              help="Print the --resources JSON for 'ray start' on the node that owns these devices' links.")
@click.option("--node", default=None, help="With --ray-resources: only devices whose node = NODE.")
@click.option("--probe", is_flag=True,
              help="Print THIS machine's runtime as JSON and whether --delegate loads (what `edgenet devices` runs "
                   "on each device over ssh).")
@options.harness("delegate", "edgetpu_lib")
@options.json_flag(help="Print the checks as JSON.")
@options.timeout_s(default=70.0, reason="a device check is a connection and a probe: about a minute",
                   help="Bound on each device's check, connection included (the device side runs under it too).")
@options.cluster()
@user_errors
def devices(inventory, old_inventory, ray_resources, node, probe, delegate, edgetpu_lib, as_json, timeout_s,
            cluster) -> None:
    """List the devices of an inventory and check each one, one line per device.

    Checks that the device is reachable (SSH for remote boards), which TFLite runtime and version
    it has, and that its delegate (Edge TPU) loads. With --cluster, each check runs on the node
    that holds the device. Exit code 1 when any device fails its check.

    \b
    Example:
      edgenet devices devices.toml
      ray start --address HEAD:6379 --resources "$(edgenet devices --ray-resources --node lab-pc)"
    """
    if probe:
        from ..devices import probe_here

        click.echo(json.dumps(probe_here(delegate, edgetpu_lib)))
        return
    from ..cluster.devices import ray_resources as resources_for
    from ..devices import load_devices

    fleet = load_devices(inventory or old_inventory or "devices.toml")
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
