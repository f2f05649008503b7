"""Outgrow one machine: run edgenet's work on a Ray cluster, and measure a fleet of devices.

* :mod:`edgenet.cluster.executor` -- ``--cluster local|auto|ray://HOST:PORT``: the local executor
  (today's behaviour) and the Ray executor (conversions with declared memory, sharded evaluation,
  one latency job at a time per device);
* :mod:`edgenet.cluster.devices` -- a device as a Ray resource (the device itself: :mod:`edgenet.devices`);
* :mod:`edgenet.cluster.tasks` -- what a node runs (plain functions; Ray wraps them);
* :mod:`edgenet.cluster.memory` -- the memory a conversion declares, from measured peaks.

Importable without Ray: only :class:`~edgenet.cluster.executor.RayExecutor` imports it.
"""
