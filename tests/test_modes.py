"""The quantization-mode table (edgenet/convert/modes.py) and what derives from it."""

from __future__ import annotations

import pytest
from click.testing import CliRunner

from edgenet.cli.convert import convert as convert_cmd
from edgenet.cli.sweep import sweep as sweep_cmd
from edgenet.convert import api
from edgenet.convert.modes import CALIBRATED_MODES, IO_TYPES, MODES, QUANT_MODES, default_io, mode, resolve_io
from edgenet.errors import EdgenetError


def test_the_table_is_the_one_source():
    assert QUANT_MODES == ("fp32", "fp16", "dynamic", "int8", "int16x8")
    assert CALIBRATED_MODES == ("int8", "int16x8") == tuple(n for n in QUANT_MODES if MODES[n].calibrated)
    assert [n for n in QUANT_MODES if MODES[n].integer_io] == ["int8"]
    # the Python API re-exports the same objects, not copies
    assert api.QUANT_MODES is QUANT_MODES and api.CALIBRATED_MODES is CALIBRATED_MODES and api.IO_TYPES is IO_TYPES


@pytest.mark.parametrize("command", [convert_cmd, sweep_cmd])
def test_cli_choices_come_from_the_table(command):
    quant = next(p for p in command.params if p.name == "quant")
    assert tuple(quant.type.choices) == QUANT_MODES and quant.default == "int8" and quant.show_default
    help_text = CliRunner().invoke(command, ["--help"]).output
    assert "[fp32|fp16|dynamic|int8|int16x8]" in help_text.replace("\n", "").replace(" ", "")


def test_io_rules():
    assert default_io("int8") == "int8" and default_io("fp16") == "float"
    assert resolve_io("int8", "uint8") == "uint8" and resolve_io("dynamic", None) == "float"
    with pytest.raises(EdgenetError, match=r"--io int8 needs --quant int8 \(a fp16 model"):
        resolve_io("fp16", "int8")
    with pytest.raises(EdgenetError, match="unknown --io 'int4'"):
        resolve_io("int8", "int4")
    with pytest.raises(EdgenetError, match="unknown quantization 'int4'; choose from fp32, fp16"):
        mode("int4")


def test_cli_io_rule_is_the_api_rule(tmp_path):
    res = CliRunner().invoke(convert_cmd, ["b0", "--quant", "fp16", "--io", "uint8", "-o", str(tmp_path)])
    assert res.exit_code == 2
    with pytest.raises(EdgenetError) as info:
        resolve_io("fp16", "uint8")
    assert str(info.value) in res.output
