"""Where edgenet commands run: this machine, a board over ssh, or an emulated board.

A :class:`Device` is a small piece of data (what a device inventory stores): how to reach the machine
(``host``, ``ssh_options``), how to start edgenet there (``command``) and, for an emulated board,
what is emulated. ``--remote`` takes ``user@host`` or the path of a device file (JSON with the same
fields; ``tools/emulated-pi`` writes one per emulated board). :class:`Session` ships files to the
device once and runs edgenet commands there: over ssh/scp for a host, directly for a local device
(which reads this machine's files in place).
"""

from __future__ import annotations

from .device import Device, DeviceError, Session, load_device, resolve_device, with_manifests

__all__ = ["Device", "DeviceError", "Session", "load_device", "resolve_device", "with_manifests"]
