"""Where a sweep measures: :class:`edgenet.devices.Device`, the one device type.

A one-device sweep is a fleet of one: this machine (:func:`this_machine`), or the board ``--remote``
names (:func:`remote_device`: ``user@host``, or a device file such as an emulated Pi's).
"""

from __future__ import annotations

from dataclasses import replace

from ..devices import Device

__all__ = ["Device", "remote_device", "this_machine"]


def this_machine(threads: int = 1) -> Device:
    """This machine's CPU, named by its hostname (the label its bench records always carried)."""
    import socket

    return Device(name=socket.gethostname(), threads=(threads,))


def remote_device(spec: str, threads: int = 1) -> Device:
    """``--remote user@host`` or a device file, measured at ``threads``."""
    from ..devices import resolve_device

    return replace(resolve_device(spec), threads=(threads,))
