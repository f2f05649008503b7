"""Where a sweep measures: devices of the fleet's kind (:class:`edgenet.cluster.devices.Device`).

A one-device sweep is a fleet of one: this machine (:func:`this_machine`), or the board ``--remote``
names (:func:`remote_device`: ``user@host``, or a device file such as an emulated Pi's).
"""

from __future__ import annotations

from ..cluster.devices import Device

__all__ = ["Device", "remote_device", "this_machine"]


def this_machine(threads: int = 1) -> Device:
    """This machine's CPU, named by its hostname (the label its bench records always carried)."""
    import socket

    return Device(name=socket.gethostname(), threads=(threads,))


def remote_device(spec: str, threads: int = 1) -> Device:
    """``--remote user@host`` or a device file, as a fleet device measured over ssh.

    A device file without a host (an emulated board runs its command here) keeps the file as its
    address, so the bench resolves the file again and runs the board's own command.
    """
    from ..devices import resolve_device

    found = resolve_device(spec)
    return Device(name=found.name, link="ssh", host=found.host or str(spec), ssh_options=found.ssh_options,
                  edgenet=found.command, threads=(threads,))
