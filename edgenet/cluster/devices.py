"""What a device is to Ray: a custom resource of capacity 1 per device.

The device itself (its schema, the ``devices.toml`` loader, the ssh transport and the check) lives in
:mod:`edgenet.devices`; this module only names the Ray side. Each device is a Ray custom resource
of capacity 1 (:func:`resource_name`), held by the node that owns the device's link
(``ray start ... --resources "$(edgenet devices --ray-resources)"``), so latency jobs on one board
run one at a time. The SSH key stays on that node: a task carries only the ``IdentityFile`` *path*.
"""

from __future__ import annotations

from collections.abc import Sequence

from ..devices import Device

__all__ = ["RESOURCE_PREFIX", "resource_name", "ray_resources"]

RESOURCE_PREFIX = "edgenet-device-"


def resource_name(device_name: str) -> str:
    """The Ray custom resource that stands for a device (capacity 1 on the node owning its link)."""
    return RESOURCE_PREFIX + device_name


def ray_resources(devices: Sequence[Device], node: str | None = None) -> dict[str, int]:
    """The ``--resources`` JSON for ``ray start`` on the node that owns these devices' links."""
    return {resource_name(d.name): 1 for d in devices if node is None or d.node == node}
