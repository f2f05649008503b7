"""The device fingerprint: real hardware vs an emulated board (the qemu side runs in tests/test_emulated_pi.py)."""

from __future__ import annotations

import json

import pytest

from edgenet.errors import EdgenetError
from edgenet.results import make_record
from edgenet.results.records import as_record, bench_group
from edgenet.runtime import envinfo


def test_this_machine_is_not_emulated(monkeypatch):
    monkeypatch.delenv(envinfo.EMULATION_ENV, raising=False)
    assert envinfo.emulation() is None
    device = envinfo.device_info()
    assert device["emulation"] is None and device["label"] == device["hostname"]


def test_a_declared_emulation_labels_the_record_and_drops_host_clocks(monkeypatch):
    declared = {"emulator": "qemu-user 7.2.22", "cpu": "cortex-a76", "profile": "pi5"}
    monkeypatch.setenv(envinfo.EMULATION_ENV, json.dumps(declared))
    device = envinfo.device_info()
    assert device["emulation"] == declared and device["label"] == "emulated-pi5"
    assert device["governor"] is None and device["freq_mhz"] is None
    assert envinfo.device_info(label="mine")["label"] == "mine"
    monkeypatch.setenv(envinfo.EMULATION_ENV, "not json")  # a broken marker is ignored, never fatal
    assert envinfo.emulation() is None


def _bench(emulation):
    device = {"label": "pi", "hostname": "pi", "emulation": emulation}
    return make_record("bench", model={"name": "b0-int8", "variant": "b0"}, device=device,
                       settings={"threads": 1}, latency_ms={"p50": 5.0, "min": 4.0}, runs=10)


def test_emulated_latency_is_measured_but_never_usable():
    emulated = as_record(_bench({"emulator": "qemu-user 7.2.22", "cpu": "cortex-a72", "profile": "pi4"}))
    real = as_record(_bench(None))
    assert emulated.measured and not emulated.usable and emulated.emulation == "pi4 cortex-a72 (qemu-user 7.2.22)"
    assert real.usable and not real.emulated
    key, group = bench_group([_bench(None), _bench({"emulator": "qemu-user"})])
    assert [r.emulated for r in group] == [False]
    with pytest.raises(EdgenetError, match=r"1 result\(s\) from an emulated device left out"):
        bench_group([_bench({"emulator": "qemu-user"})])
