"""Devices: where edgenet commands run (this machine, a board over ssh, an emulated board), and how to reach them.

* :mod:`.device` -- THE :class:`Device` (one frozen, self-validating schema) and its loaders: a JSON
  device file, a ``devices.toml`` inventory, ``--remote user@host`` (:func:`load_devices`);
* :mod:`.session` -- THE transport: a :class:`Session` ships files, runs edgenet on the device under
  a time bound, and validates what comes back (bench, eval, profile, sweep and ``devices`` use it);
* :mod:`.probe` -- ``edgenet devices``: each device's runtime and delegate (:func:`check_device`).
"""

from __future__ import annotations

from .device import (
    DEFAULT_COMMAND,
    Device,
    DeviceError,
    DeviceSpecError,
    load_device,
    load_devices,
    load_inventory,
    resolve_device,
    with_manifests,
)
from .probe import DeviceCheck, check_device, check_devices, probe_here
from .session import MalformedReply, Reply, Session, Shipped

__all__ = [
    "DEFAULT_COMMAND", "Device", "DeviceCheck", "DeviceError", "DeviceSpecError", "MalformedReply", "Reply", "Session",
    "Shipped", "check_device", "check_devices", "load_device", "load_devices", "load_inventory", "probe_here",
    "resolve_device", "with_manifests",
]
