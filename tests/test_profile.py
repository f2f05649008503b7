"""edgenet profile: a real tiny EfficientNet cut at its block boundaries, timed in a real child process.

No timing thresholds: the tests check the structure (every block present, parts covering the
graph once, the sum reported against the whole) and that the parts compute what the model does.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path

import numpy as np
import pytest
from click.testing import CliRunner
from conftest import TINY_SPEC
from fixtures_tflite import tiny_tflite_models
from test_bench import local_sshd  # noqa: F401 - the real sshd fixture, reused

import edgenet
from edgenet.bench.params import BenchParams
from edgenet.bench.profile import plan_parts, profile_in_child, profile_rows, summary_lines
from edgenet.cli.profile import profile as profile_cmd
from edgenet.runtime.tflite_graph import read_graph

FAST = BenchParams(threads=1, warmup_s=0.0, min_s=0.0, max_s=5.0)


@pytest.fixture(scope="session")
def tiny_int8(tmp_path_factory) -> Path:
    """The tiny EfficientNet (swish, squeeze-excitation, all 7 stages) as a full-int8 .tflite."""
    from edgenet._tf import keras
    from edgenet.convert.worker import keras_to_tflite
    from edgenet.family.model import build_model
    from edgenet.family.variants import parse_variant

    variant = parse_variant(TINY_SPEC)
    keras.utils.set_random_seed(0)
    model = build_model(variant, batch_size=1)
    calib = np.random.default_rng(0).uniform(0, 255, (8, *model.input_shape[1:])).astype(np.float32)
    path = tmp_path_factory.mktemp("profile") / "tiny-int8.tflite"
    path.write_bytes(keras_to_tflite(model, "int8", "int8", calib, name="tiny")[0])
    return path


def _expected_blocks() -> list[str]:
    from edgenet.family.architecture import architecture
    from edgenet.family.variants import parse_variant

    return [b.name for b in architecture(parse_variant(TINY_SPEC)).blocks]


def test_parts_cover_the_graph_once_and_name_every_block(tiny_int8):
    graph = read_graph(tiny_int8)
    parts = plan_parts(graph)
    assert parts[0].start == 0 and parts[-1].stop == len(graph.operators)
    assert all(a.stop == b.start for a, b in zip(parts, parts[1:], strict=False))
    blocks = _expected_blocks()
    assert parts[0].name == "stem"
    assert parts[-1].name == "head"
    assert list(dict.fromkeys(p.block for p in parts)) == ["stem", *blocks, "head"]
    # every block of a B-family model has its squeeze-excitation as a part of its own
    assert sorted(p.block for p in parts if p.kind == "se") == sorted(blocks)
    for p in parts:
        if p.kind == "se":
            assert "MEAN" in p.op_types and "MUL" in p.op_types
    assert sum(p.macs for p in parts) == sum(graph.macs_of(op) for op in graph.operators)


def test_profile_adds_up_and_says_how_far_off(tiny_int8):
    rounds = 3
    result = profile_in_child(tiny_int8, FAST, rounds=rounds, runs=3)
    assert result["schema"] == "edgenet.profile/1"
    assert [b["name"] for b in result["blocks"]] == ["stem", *_expected_blocks(), "head"]
    # the chained parts compute exactly what the whole int8 model computes
    assert result["parts_output_max_abs_diff"] == 0.0
    assert result["rounds"] == rounds and len(result["whole_ms"]["rounds"]) == rounds
    assert len(result["sum_over_whole"]["rounds"]) == rounds
    assert all(len(p["rounds_ms"]) == rounds for p in result["parts"])
    net = sum(p["net_ms"] for p in result["parts"])
    assert result["net_sum_ms"] == pytest.approx(net)
    assert sum(b["ms"] for b in result["blocks"]) == pytest.approx(net)
    assert result["net_sum_over_whole"] == pytest.approx(net / result["whole_ms"]["median"])
    assert sum(b["share"] for b in result["blocks"]) == pytest.approx(1.0)
    assert all(b["se_ms"] is not None for b in result["blocks"][1:-1])
    assert result["settings"]["threads"] == 1 and result["stat"] == "min"
    lines = summary_lines(result)
    assert "x the whole" in lines[1] and "%" in lines[1]
    assert len(profile_rows(result)) == len(result["blocks"])


def test_graph_without_block_names_is_cut_at_narrow_points():
    tiny = tiny_tflite_models()
    graph = read_graph(tiny.int8)
    parts = plan_parts(graph)
    assert all(p.kind == "segment" for p in parts)
    assert parts[0].start == 0 and parts[-1].stop == len(graph.operators)
    result = profile_in_child(tiny.int8, FAST, rounds=2, runs=2)
    assert result["parts_output_max_abs_diff"] == 0.0
    assert len(result["blocks"]) == len(parts)


def test_cli_table_json_and_png(tiny_int8, tmp_path):
    png, out = tmp_path / "p.png", tmp_path / "p.json"
    res = CliRunner().invoke(profile_cmd, [str(tiny_int8), "--rounds", "2", "--runs", "2", "--warmup-s", "0",
                                           "--json", "--png", str(png), "-o", str(out)])
    assert res.exit_code == 0, res.output
    document = json.loads(res.stdout)
    assert document == json.loads(out.read_text())
    assert document["device"]["cores"] >= 1
    assert png.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    assert "block1a" in res.stderr and "x the whole" in res.stderr


def test_cli_bad_model_is_one_line(tmp_path):
    missing = tmp_path / "missing.tflite"
    res = CliRunner().invoke(profile_cmd, [str(missing), "--rounds", "2"])
    assert res.exit_code == 1 and "missing.tflite" in res.output and "Traceback" not in res.output
    garbage = tmp_path / "garbage.tflite"
    garbage.write_bytes(np.random.default_rng(0).bytes(2048))
    res = CliRunner().invoke(profile_cmd, [str(garbage), "--rounds", "2"])
    assert res.exit_code == 1 and "garbage.tflite" in res.output and "Traceback" not in res.output
    assert len(res.output.strip().splitlines()) == 1


def test_cli_remote_profile_over_ssh(tiny_int8, local_sshd):  # noqa: F811 - the imported fixture
    host, options = local_sshd
    root = Path(edgenet.__file__).resolve().parent.parent
    ssh_args = [arg for option in options for arg in ("--ssh-option", option)]
    res = CliRunner().invoke(profile_cmd, [str(tiny_int8), "--rounds", "2", "--runs", "2", "--warmup-s", "0",
                                           "--remote", host, *ssh_args, "--json", "--remote-command",
                                           f"env PYTHONPATH={root} {sys.executable} -m edgenet.cli.profile"])
    assert res.exit_code == 0, res.output
    document = json.loads(res.stdout)
    assert document["model"]["path"] == str(tiny_int8)
    assert [b["name"] for b in document["blocks"]] == ["stem", *_expected_blocks(), "head"]
