"""variants, scale and layout: outputs, JSON, pictures, and one-line user errors."""

import json

import pytest
from click.testing import CliRunner
from PIL import Image

from edgenet.cli import main
from edgenet.family.architecture import architecture
from edgenet.family.variants import VARIANTS


def run(*args):
    return CliRunner().invoke(main, list(args))


def test_variants_json_lists_every_variant_with_counts():
    result = run("variants", "--json")
    assert result.exit_code == 0
    rows = {r["name"]: r for r in json.loads(result.stdout)}
    assert set(rows) == set(VARIANTS)
    assert rows["b0"]["params"] == 5_330_571 and rows["b0"]["resolution"] == 224
    assert rows["b7"]["macs"] == architecture(VARIANTS["b7"]).macs
    assert rows["lite0"]["int8_size_mb"] > 4 and rows["mobilenetv2"]["params"] == 3_538_984


def test_variants_table():
    result = run("variants")
    assert result.exit_code == 0
    assert "| b0 " in result.stdout and "lite4" in result.stdout and "5.33M" in result.stdout


def test_scale_side_by_side_and_custom():
    result = run("scale", "--json")
    rows = json.loads(result.stdout)
    assert [r["variant"] for r in rows] == [f"b{i}" for i in range(8)]
    assert rows[1]["published"] == "1/1.1/240" and rows[1]["formula"] == "1.100/1.200/258"
    custom = json.loads(run("scale", "--phi", "1.5", "--json").stdout)
    assert custom["spec"] == "phi=1.5" and custom["resolution"] == round(224 * 1.15**1.5)
    over = json.loads(run("scale", "--phi", "1", "--resolution", "300", "--json").stdout)
    assert over["resolution"] == 300


def test_layout_text_json_and_png(tmp_path):
    result = run("layout", "b0")
    assert result.exit_code == 0 and "MBConv6" in result.stdout and "1280" in result.stdout
    data = json.loads(run("layout", "lite0", "--json").stdout)
    assert not any(s["se"] for s in data["stages"])
    png = tmp_path / "b0.png"
    assert run("layout", "b0", "--png", str(png)).exit_code == 0
    with Image.open(png) as im:
        assert im.format == "PNG" and im.size[0] > 200


@pytest.mark.parametrize("args,needle", [
    (("layout", "b9"), "unknown variant 'b9'"),
    (("layout", "phi=12"), "outside the sane range"),
    (("scale", "--phi", "20"), "20"),
    (("scale", "--resolution", "300"), "need --phi"),
    (("layout", "phi=1,colour=red"), "is not one of"),
])
def test_user_errors_are_one_line_without_traceback(args, needle):
    result = run(*args)
    assert result.exit_code == 2
    assert needle in result.stderr
    assert "Traceback" not in result.output and result.exception is None or isinstance(result.exception, SystemExit)


def test_every_command_has_help_with_an_example():
    for name, command in main.commands.items():
        commands = command.commands.values() if hasattr(command, "commands") else [command]
        for cmd in commands:
            assert "Example" in (cmd.help or ""), f"{name} {cmd.name} has no example in its help"
