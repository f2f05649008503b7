"""The sweep: convert variants once, measure them on one device or a fleet, decide per device.

One engine (:mod:`edgenet.sweep.engine`) whatever the targets: this machine, a board over ssh, an
emulated board, the devices of a ``devices.toml`` on the local executor or on Ray. Above
:mod:`edgenet.decide` (the pure decisions over records it calls) and below the CLI.
"""

from __future__ import annotations

from .engine import SWEEP_SCHEMA, DeviceOutcome, SweepOutcome, describe, run_sweep, summary_rows
from .params import SWEEP_BENCH, Step, SweepParams, weights_for
from .targets import Device, remote_device, this_machine

__all__ = ["SWEEP_BENCH", "SWEEP_SCHEMA", "Device", "DeviceOutcome", "Step", "SweepOutcome", "SweepParams",
           "describe", "remote_device", "run_sweep", "summary_rows", "this_machine", "weights_for"]
