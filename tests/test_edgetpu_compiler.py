"""Parsing edgetpu_compiler reports, and the compiler wrapper's behaviour where the compiler is absent.

The logs under tests/data/edgetpu_logs reproduce the documented console format of
edgetpu_compiler 15/16 (as printed in Coral's docs and issue reports); no real compiler
runs in this test suite because it exists only as an x86-64 Debian package.
"""

from __future__ import annotations

import json
import os
import stat
from pathlib import Path

import pytest

from edgenet.edgetpu.compiler import (
    CompilerUnavailableError,
    compile_models,
    compiler_available,
    parse_compiler_log,
    parse_size,
)

LOGS = Path(__file__).parent / "data" / "edgetpu_logs"


def _log(name: str) -> dict:
    return parse_compiler_log((LOGS / name).read_text())


def test_sizes():
    assert parse_size("0.00B") == 0
    assert parse_size("768.00B") == 768
    assert parse_size("1.75KiB") == 1792
    assert parse_size("4.41MiB") == round(4.41 * 1024 * 1024)
    with pytest.raises(ValueError):
        parse_size("4.41 parsecs")


def test_fully_mapped():
    report = _log("fully_mapped_lite0.log")
    assert report["success"] and report["error"] is None
    assert report["version"] == "16.0.384591198" and report["compile_time_ms"] == 1102
    (model,) = report["models"]
    assert model["input_model"] == "efficientnet_lite0_int8.tflite"
    assert model["output_model"] == "efficientnet_lite0_int8_edgetpu.tflite"
    assert model["subgraphs"] == 1 and model["ops_total"] == 64
    assert model["ops_tpu"] == 64 and model["ops_cpu"] == 0
    assert model["on_chip_used_bytes"] == round(4.98 * 2**20)
    assert model["on_chip_remaining_bytes"] == round(2.74 * 2**20)
    assert model["off_chip_used_bytes"] == 0
    assert model["operation_log"] == "efficientnet_lite0_int8_edgetpu.log"
    assert [r["op"] for r in model["operations"]][:3] == ["QUANTIZE", "CONV_2D", "DEPTHWISE_CONV_2D"]
    assert all(r["mapped"] for r in model["operations"])
    assert report["ops_mapped"] == 64 and report["ops_not_mapped"] == 0 and report["not_mapped_by_reason"] == {}


def test_partially_mapped_with_several_reasons():
    report = _log("partially_mapped_b0.log")
    assert report["success"] and report["version"] == "15.0.340273435"
    (model,) = report["models"]
    assert (model["ops_total"], model["ops_tpu"], model["ops_cpu"]) == (212, 24, 188)
    assert report["ops_mapped"] == 24 and report["ops_not_mapped"] == 188
    assert report["not_mapped_by_reason"] == {
        "More than one subgraph is not supported": 137,
        "Operation not supported": 49,
        "Operation is otherwise supported, but not mapped due to some unspecified limitation": 1,
        "Operation is working on an unsupported data type": 1,
    }
    rows = {(r["op"], r["status"]): r["count"] for r in model["operations"]}
    assert rows[("HARD_SWISH", "Operation not supported")] == 49
    assert rows[("CONV_2D", "Mapped to Edge TPU")] == 9
    assert rows[("CONV_2D", "More than one subgraph is not supported")] == 72


def test_off_chip_streaming_without_table():
    (model,) = _log("large_offchip_b4.log")["models"]
    assert model["on_chip_remaining_bytes"] == 768
    assert model["off_chip_used_bytes"] == round(11.83 * 2**20)
    assert model["ops_tpu"] == model["ops_total"] == 473 and model["operations"] == []


@pytest.mark.parametrize(
    ("name", "needle"),
    [("not_quantized.log", "Model not quantized"), ("dynamic_shape.log", "dynamic-sized tensors")],
)
def test_failures(name, needle):
    report = _log(name)
    assert report["success"] is False and report["models"] == []
    assert needle in report["error"] and "\n" not in report["error"]
    assert report["version"] == "16.0.384591198"


def test_garbage_is_not_a_success():
    report = parse_compiler_log("segmentation fault\n")
    assert report["success"] is False and report["models"] == [] and report["version"] is None


def test_compile_without_compiler_says_how_to_install(tmp_path, monkeypatch):
    monkeypatch.setenv("PATH", str(tmp_path))  # an empty PATH: no edgetpu_compiler anywhere
    available, why = compiler_available()
    assert not available and "apt-get install edgetpu-compiler" in why and "x86-64" in why
    with pytest.raises(CompilerUnavailableError) as info:
        compile_models([tmp_path / "m.tflite"], tmp_path / "out")
    assert "\n" not in str(info.value)


def test_compile_plumbing_with_a_stand_in_executable(tmp_path, monkeypatch):
    """Exercise argument passing and the JSON written beside the output.

    The stand-in is a shell script that prints one of the documented logs and creates the
    output file; it tests edgenet's plumbing only, not the real compiler's behaviour.
    """
    import platform

    if platform.machine().lower() not in ("x86_64", "amd64"):
        pytest.fail("this test expects an x86-64 host (the compiler's only platform)")
    bindir = tmp_path / "bin"
    bindir.mkdir()
    fake = bindir / "edgetpu_compiler"
    fake.write_text(
        "#!/bin/sh\n"
        f'echo "$@" > "{tmp_path}/args.txt"\n'
        'out="$3"; model="$4"; stem=$(basename "$model" .tflite)\n'
        ': > "$out/${stem}_edgetpu.tflite"\n'
        f'cat "{LOGS / "fully_mapped_lite0.log"}"\n'
    )
    fake.chmod(fake.stat().st_mode | stat.S_IEXEC)
    monkeypatch.setenv("PATH", f"{bindir}{os.pathsep}{os.environ['PATH']}")
    model = tmp_path / "efficientnet_lite0_int8.tflite"
    model.write_bytes(b"placeholder")
    out = tmp_path / "out"
    (result,) = compile_models([model], out)
    assert (tmp_path / "args.txt").read_text().split() == ["-s", "-o", str(out), str(model)]
    assert result.ok and result.output_path == str(out / "efficientnet_lite0_int8_edgetpu.tflite")
    summary = json.loads(Path(result.report_path).read_text())
    assert summary["ops_mapped"] == 64 and summary["models"][0]["subgraphs"] == 1
    assert Path(result.log_path).read_text().startswith("Edge TPU Compiler version")
