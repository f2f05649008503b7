"""Device descriptions (``--remote DEVICE.json``) and a local device: edgenet run as a command on this machine."""

from __future__ import annotations

import json
import shlex
import sys
from pathlib import Path

import pytest
from click.testing import CliRunner

from edgenet import results
from edgenet.cli import main
from edgenet.devices import Device, load_device, resolve_device
from edgenet.errors import EdgenetError

ROOT = Path(__file__).resolve().parents[1]


def test_device_files_and_host_names(tmp_path):
    assert resolve_device("pi@raspberrypi.local") == Device("pi@raspberrypi.local", host="pi@raspberrypi.local")
    path = tmp_path / "pi.json"
    path.write_text(json.dumps({"name": "lab-pi", "host": "pi@10.0.0.7", "command": "/opt/edgenet/bin/edgenet",
                                "ssh_options": ["Port=2222"], "inventory_tag": "ignored"}))
    device = resolve_device(str(path), ssh_options=["ConnectTimeout=3"])
    assert device == Device("lab-pi", "pi@10.0.0.7", "/opt/edgenet/bin/edgenet", ("Port=2222", "ConnectTimeout=3"))
    assert not device.local and load_device(path).emulation is None


@pytest.mark.parametrize("content, cause", [
    ("{not json", "not valid JSON"),
    ("[1, 2]", "one JSON object"),
    ('{"host": 7}', "'host' must be"),
    ('{"ssh_options": "Port=22"}', "'ssh_options' a list of strings"),
])
def test_bad_device_files_are_one_line(tmp_path, content, cause):
    path = tmp_path / "dev.json"
    path.write_text(content)
    with pytest.raises(EdgenetError, match=cause) as info:
        load_device(path)
    assert str(path) in str(info.value) and "\n" not in str(info.value)
    res = CliRunner().invoke(main, ["bench", str(ROOT / "README.md"), "--remote", str(path)])
    assert res.exit_code == 1 and cause.split()[0] in res.output and "Traceback" not in res.output


def test_missing_device_file_and_missing_command_are_one_line(tmp_path, digits_model):
    res = CliRunner().invoke(main, ["bench", str(digits_model.int8), "--remote", str(tmp_path / "nope.json")])
    assert res.exit_code == 1 and "nope.json" in res.output and "Traceback" not in res.output
    path = tmp_path / "gone.json"
    path.write_text(json.dumps({"name": "gone", "host": None, "command": str(tmp_path / "absent" / "edgenet")}))
    res = CliRunner().invoke(main, ["bench", str(digits_model.int8), "--remote", str(path)])
    assert res.exit_code == 1 and "not found (build the device first" in res.output


def test_eval_remote_on_a_local_device_equals_eval_here(digits_model, tmp_path):
    """A device with no host runs its command on this machine, reading the files in place."""
    command = f"env PYTHONPATH={shlex.quote(str(ROOT))} {shlex.quote(sys.executable)} -m edgenet"
    device = tmp_path / "here.json"
    device.write_text(json.dumps({"name": "here", "host": None, "command": command}))
    args = [str(digits_model.int8), "--data", str(digits_model.data.test_dir), "--limit", "60", "--quiet"]
    here, there = tmp_path / "here.jsonl", tmp_path / "there.jsonl"
    assert CliRunner().invoke(main, ["eval", *args, "--results", str(here)]).exit_code == 0
    res = CliRunner().invoke(main, ["eval", *args, "--remote", str(device), "--results", str(there)])
    assert res.exit_code == 0, res.output
    (a,), (b,) = results.read_records(here), results.read_records(there)
    assert b["model"]["path"] == a["model"]["path"] == str(digits_model.int8)
    for key in ("top1", "top5", "count", "dataset"):
        assert a["accuracy"][key] == b["accuracy"][key], key
    assert a["created_utc"] != b["created_utc"]  # two runs, the second in the device's own process
