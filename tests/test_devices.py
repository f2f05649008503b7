"""The devices.toml inventory and ``edgenet devices`` with the local executor (no Ray needed)."""

from __future__ import annotations

import json

import pytest
from click.testing import CliRunner

from edgenet.cli import main
from edgenet.cluster.devices import ray_resources, resource_name
from edgenet.devices import Device, check_device, load_inventory
from edgenet.errors import InputFileError

INVENTORY = """
[[device]]
name = "laptop"
threads = [1, 2]
labels = { board = "x86", arch = "x86_64" }

[[device]]
name = "pi4-a"
link = "ssh"
host = "pi@10.0.0.21"
ssh_options = ["Port=22", "IdentityFile=~/.ssh/pi"]
threads = 4
node = "lab-pc"

[[device]]
name = "coral"
delegate = "edgetpu"
edgetpu_lib = "libedgetpu-not-installed.so.1"
node = "lab-pc"
"""


def test_inventory_parses_every_field(tmp_path):
    path = tmp_path / "devices.toml"
    path.write_text(INVENTORY)
    laptop, pi, coral = load_inventory(path)
    assert (laptop.link, laptop.threads, laptop.labels) == ("local", (1, 2), {"board": "x86", "arch": "x86_64"})
    assert (pi.link, pi.host, pi.ssh_options, pi.threads, pi.command) == (
        "ssh", "pi@10.0.0.21", ("Port=22", "IdentityFile=~/.ssh/pi"), (4,), "edgenet")
    assert coral.delegate == "edgetpu" and ray_resources([coral]) == {resource_name("coral"): 1}
    assert laptop.constraints == {} and Device.from_dict(dict(laptop.to_dict(), constraints={"max_memory_mb": 300}))\
        .constraints == {"max_memory_mb": 300}
    assert ray_resources([laptop, pi, coral], node="lab-pc") == {resource_name("pi4-a"): 1, resource_name("coral"): 1}


@pytest.mark.parametrize("text, message", [
    ("[[device]]\nname = 'a'\nlink = 'usb'\n", "link must be one of local, ssh"),
    ("[[device]]\nname = 'a'\nhost = 'pi@h'\ncommand = 'edgenet \"bench'\n", "not a valid command line"),
    ("[[device]]\nname = 'a'\nhost = '-oProxyCommand=x'\n", "not starting with '-'"),
    ("[[device]]\nname = 'a'\nthreads = [1, true]\n", "threads must be"),
    ("[[device]]\nname = 'a'\nedgenet = 'x'\ncommand = 'y'\n", "keep 'command'"),
    ("x = " + "[" * 100_000 + "]" * 100_000 + "\n", "nested more than"),
    ("[[device]]\nname = 'a'\nlabels = " + "{ a = " * 50_000 + "1" + " }" * 50_000 + "\n", "nested more than"),
    ("[[device]]\nname = 'a'\nlink = 'ssh'\n", "needs host"),
    ("[[device]]\nname = 'a b'\n", "name must be"),
    ("[[device]]\nname = 'a'\nthreads = [0]\n", "threads must be"),
    ("[[device]]\nname = 'a'\ncolour = 'red'\n", "unknown key 'colour'"),
    ("[[device]]\nname = 'a'\nconstraints = { max_memory_mb = 'lots' }\n", "constraints must be a table of numbers"),
    ("[[device]]\nname = 'a'\nconstraints = 3\n", "constraints must be a table of numbers"),
    ("[[device]]\nname = 'a'\n[[device]]\nname = 'a'\n", "listed twice"),
    ("device = [", "not valid TOML"),
    ("", "no devices"),
])
def test_bad_inventory_is_one_line_naming_the_file(tmp_path, text, message):
    path = tmp_path / "devices.toml"
    path.write_text(text)
    with pytest.raises(InputFileError) as info:
        load_inventory(path)
    assert message in str(info.value) and str(path) in str(info.value) and "\n" not in str(info.value)


def test_local_device_check_reports_runtime_and_missing_delegate(tmp_path):
    path = tmp_path / "devices.toml"
    path.write_text(INVENTORY)
    laptop, _, coral = load_inventory(path)
    ok = check_device(laptop)
    assert ok.ok and ok.reachable and ok.runtime and ok.runtime_version
    missing = check_device(coral)
    assert not missing.ok and missing.delegate_ok is False and "libedgetpu-not-installed" in missing.detail


def test_cli_devices_one_line_per_device_and_exit_code(tmp_path):
    path = tmp_path / "devices.toml"
    path.write_text(INVENTORY.replace("pi@10.0.0.21", "nobody@127.0.0.1").replace(
        '"Port=22"', '"Port=9", "ConnectTimeout=3"'))
    res = CliRunner().invoke(main, ["devices", str(path)])
    assert res.exit_code == 1 and "Traceback" not in res.output
    lines = [ln for ln in res.stdout.splitlines() if ln.strip()]
    assert len(lines) == 3
    assert lines[0].startswith("laptop: ok")
    assert lines[1].startswith("pi4-a: FAILED") and "unreachable" in lines[1]
    assert lines[2].startswith("coral: FAILED") and "edgetpu delegate MISSING" in lines[2]
    assert "2 of 3 device(s) failed" in res.stderr

    res = CliRunner().invoke(main, ["devices", str(path), "--ray-resources", "--node", "lab-pc"])
    assert res.exit_code == 0 and json.loads(res.stdout) == {resource_name("pi4-a"): 1, resource_name("coral"): 1}


def test_cli_devices_missing_inventory_is_one_line(tmp_path):
    res = CliRunner().invoke(main, ["devices", str(tmp_path / "nope.toml")])
    assert res.exit_code == 1 and "nope.toml" in res.output and "Traceback" not in res.output


def test_cli_bench_on_the_devices_of_an_inventory(tmp_path):
    from fixtures_tflite import tiny_tflite_models

    from edgenet import results

    tiny = tiny_tflite_models()
    path = tmp_path / "devices.toml"
    path.write_text('[[device]]\nname = "here"\nthreads = [1, 2]\n\n[[device]]\nname = "gone"\nlink = "ssh"\n'
                    'host = "nobody@127.0.0.1"\nssh_options = ["Port=9", "ConnectTimeout=3"]\n')
    out = tmp_path / "fleet.jsonl"
    res = CliRunner().invoke(main, ["bench", str(tiny.int8), "--devices", str(path), "--results", str(out),
                                    "--warmup-s", "0.05", "--min-runs", "5", "--min-s", "0.05", "--max-s", "0.5"])
    assert res.exit_code == 1 and "Traceback" not in res.output  # one device unreachable: reported, not fatal
    records = results.read_records(out)
    here = [r for r in records if r["device"]["label"] == "here"]
    assert [(r["settings"]["threads"], r["error"]) for r in here] == [(1, None), (2, None)]
    assert here[0]["model"]["path"] == str(tiny.int8)
    (gone,) = [r for r in records if r["device"]["label"] == "gone"]
    assert "unreachable" in gone["error"]
