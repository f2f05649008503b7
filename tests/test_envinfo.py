"""The device and model fingerprints of a result record (edgenet/runtime/envinfo.py), read from this
machine and from real /proc/cpuinfo texts of the boards edgenet targets."""

from __future__ import annotations

import json
import os
import socket

import pytest

from edgenet import results
from edgenet.errors import EdgenetError
from edgenet.fsutil import sha256_bytes
from edgenet.results import make_record
from edgenet.results.records import as_record, bench_group
from edgenet.runtime import envinfo

# /proc/cpuinfo of a Raspberry Pi 4 on 64-bit Raspberry Pi OS (abridged: one core of four)
PI4_CPUINFO = """processor\t: 0
BogoMIPS\t: 108.00
Features\t: fp asimd evtstrm crc32 cpuid
CPU implementer\t: 0x41
CPU architecture: 8
CPU variant\t: 0x0
CPU part\t: 0xd08
CPU revision\t: 3

Revision\t: c03114
Serial\t\t: 10000000a1b2c3d4
Model\t\t: Raspberry Pi 4 Model B Rev 1.4
"""
X86_CPUINFO = """processor\t: 0
vendor_id\t: AuthenticAMD
cpu family\t: 25
model\t\t: 1
model name\t: AMD EPYC 7B13
"""


def test_cpu_model_names_the_board_or_the_processor():
    assert envinfo.cpu_model(PI4_CPUINFO) == "Raspberry Pi 4 Model B Rev 1.4"
    assert envinfo.cpu_model(X86_CPUINFO) == "AMD EPYC 7B13"  # "model : 1" is a number, not a name


def test_this_machine():
    cores = envinfo.cpu_cores()
    assert cores["logical"] == os.cpu_count() and 1 <= cores["usable"] <= cores["logical"]
    freq = envinfo.cpufreq()
    assert set(freq) == {"governor", "cur_mhz", "max_mhz"}
    assert freq["max_mhz"] is None or freq["max_mhz"] > 100
    if os.path.exists("/proc/cpuinfo"):
        with open("/proc/cpuinfo", encoding="utf-8") as fh:
            assert envinfo.cpu_model() == envinfo.cpu_model(fh.read())
    env = envinfo.environment()
    assert env["hostname"] == socket.gethostname() and env["cores"] == cores


def test_device_info_is_a_complete_schema_object():
    device = envinfo.device_info(runtime={"name": "ai_edge_litert", "version": "2.3.0"}, throttled_before="0x0")
    assert list(device) == list(results.NESTED_FIELDS["device"])
    assert device["label"] == device["hostname"] == socket.gethostname()  # no --label: the hostname
    assert envinfo.device_info(label="pi4")["label"] == "pi4"
    record = results.make_record("bench", device=device)  # make_record accepts it as is
    assert results.as_record(record).device_name == socket.gethostname()


def test_model_info_reads_the_manifest_beside_the_model_leniently(tmp_path):
    model = tmp_path / "b0-int8.tflite"
    data = b"TFL3 not really a model, the fingerprint only hashes it"
    model.write_bytes(data)
    info = envinfo.model_info(model)
    assert info["sha256"] == sha256_bytes(data) and info["size_bytes"] == len(data) and info["name"] == "b0-int8"
    assert info["variant"] is None and info["manifest"] is None
    assert envinfo.manifest_path(model) == tmp_path / "b0-int8.json"
    envinfo.manifest_path(model).write_text(json.dumps({"variant": {"name": "phi1.5", "spec": "phi=1.5"},
                                                        "quant": "int8", "resolution": 276, "macs": 123}))
    info = envinfo.model_info(model, data)
    assert (info["variant"], info["quant"], info["resolution"], info["macs"]) == ("phi=1.5", "int8", 276, 123)
    envinfo.manifest_path(model).write_text("{truncated")
    assert envinfo.model_info(model)["manifest"] is None  # an unreadable manifest is recorded as absent


# --- an emulated board (the qemu side runs in tests/test_emulated_pi.py) ----------------------------


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


# /proc/cpuinfo flags of the two x86 machines of one kind that differ 5x in int8 speed, and a Pi 5 (Cortex-A76).
AVX2_ONLY_FLAGS = "flags\t\t: fpu sse sse2 ssse3 sse4_1 sse4_2 avx avx2 fma bmi2\n"
VNNI_FLAGS = "flags\t\t: fpu sse2 avx avx2 avx512f avx512bw avx512vl avx512_vnni\n"
SAPPHIRE_FLAGS = VNNI_FLAGS.rstrip("\n") + " amx_bf16 amx_tile amx_int8\n"
PI5_FEATURES = "Features\t: fp asimd evtstrm aes pmull sha1 sha2 crc32 atomics fphp asimdhp cpuid asimdrdm lrcpc dcpop asimddp\n"


def test_the_isa_features_that_decide_int8_speed():
    assert envinfo.isa_features(X86_CPUINFO + AVX2_ONLY_FLAGS, "x86_64") == {
        "AVX2": True, "AVX-512 VNNI": False, "AVX-VNNI": False, "AMX": False}
    assert envinfo.isa_features(VNNI_FLAGS, "x86_64")["AVX-512 VNNI"] is True
    assert envinfo.isa_features(SAPPHIRE_FLAGS, "x86_64")["AMX"] is True
    assert envinfo.isa_features(PI4_CPUINFO, "aarch64") == {"dotprod": False, "i8mm": False}
    assert envinfo.isa_features(PI5_FEATURES, "aarch64") == {"dotprod": True, "i8mm": False}
    assert envinfo.isa_features("model name\t: x\n", "x86_64") is None  # no flags line: unknown, not "none"
    assert envinfo.isa_features(VNNI_FLAGS, "riscv64") is None


def test_measured_on_is_one_line_built_from_the_device_block():
    block = {"cpu_model": "AMD EPYC 7B13", "machine": "x86_64", "cores": 2, "load_1m": 1.5,
             "isa": envinfo.isa_features(AVX2_ONLY_FLAGS, "x86_64")}
    assert envinfo.measured_on(block) == "AMD EPYC 7B13 (x86_64); AVX2, no AVX-512 VNNI, no AMX; 2 cores; load 1.50"
    block["isa"] = envinfo.isa_features(SAPPHIRE_FLAGS, "x86_64")
    assert "; AVX2, AVX-512 VNNI, AMX; " in envinfo.measured_on(block)
    pi = {"cpu_model": "Raspberry Pi 5", "machine": "aarch64", "cores": 4, "load_1m": 0.0,
          "isa": envinfo.isa_features(PI5_FEATURES, "aarch64")}
    assert envinfo.measured_on(pi) == "Raspberry Pi 5 (aarch64); dotprod, no i8mm; 4 cores; load 0.00"
    assert envinfo.measured_on({}) == "unknown CPU; ISA features unknown; cores unknown; load unknown"
    emulated = envinfo.measured_on({"cpu_model": "x", "emulation": {"emulator": "qemu-user", "cpu": "cortex-a72",
                                                                     "profile": "pi4"}, "isa": None})
    assert "emulated: pi4 cortex-a72 qemu-user" in emulated
    # This machine: the record's device block carries the line, built from its own fields.
    device = envinfo.device_info()
    assert device["measured_on"] == envinfo.measured_on(device) and "\n" not in device["measured_on"]
    assert as_record(make_record("bench", device=device)).device.measured_on == device["measured_on"]
