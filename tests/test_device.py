"""THE device: one schema for a device file, a devices.toml entry and ``--remote user@host``; a local device
(edgenet run as a command on this machine)."""

from __future__ import annotations

import json
import shlex
import sys
from pathlib import Path

import pytest
from click.testing import CliRunner

from edgenet import results
from edgenet.cli import main
from edgenet.devices import Device, DeviceSpecError, load_device, load_devices, load_inventory, resolve_device
from edgenet.errors import EdgenetError

ROOT = Path(__file__).resolve().parents[1]


def test_the_three_spellings_of_a_device_are_one_equal_device(tmp_path, capsys):
    """``--remote user@host``, a JSON device file and a devices.toml entry (old keys included) give one Device."""
    spelled = Device("pi@10.0.0.7", host="pi@10.0.0.7")
    assert resolve_device("pi@10.0.0.7") == spelled
    as_json = tmp_path / "pi.json"
    as_json.write_text(json.dumps({"host": "pi@10.0.0.7", "command": "edgenet"}))
    assert load_device(as_json) == spelled
    new_toml, old_toml = tmp_path / "new.toml", tmp_path / "old.toml"
    new_toml.write_text('[[device]]\nname = "pi@10.0.0.7"\nhost = "pi@10.0.0.7"\n')
    old_toml.write_text('[[device]]\nname = "pi@10.0.0.7"\nlink = "ssh"\nhost = "pi@10.0.0.7"\nedgenet = "edgenet"\n')
    capsys.readouterr()
    assert load_inventory(new_toml) == (spelled,) and capsys.readouterr().err == ""
    assert load_inventory(old_toml) == (spelled,)
    warned = capsys.readouterr().err.splitlines()  # one deprecation line per old key, naming the file and entry
    assert len(warned) == 2 and all(str(old_toml) in w and "deprecated" in w for w in warned)
    assert "'edgenet' is deprecated, write 'command'" in warned[0] + warned[1]
    # --remote X is an inventory of one: the same loader for every spelling, and a round trip through the schema.
    assert {load_devices(x)[0] for x in ("pi@10.0.0.7", str(as_json), str(new_toml))} == {spelled}
    full = Device("lab", "pi@h", "/opt/edgenet/bin/edgenet", ("Port=2222",), "edgetpu", "libedgetpu.so.1", (1, 4),
                  {"board": "rpi4"}, "lab-pc")
    assert Device.from_dict(json.loads(json.dumps(full.to_dict()))) == full
    device = resolve_device(str(as_json), ssh_options=["ConnectTimeout=3"])
    assert device.ssh_options == ("ConnectTimeout=3",) and not device.local and device.emulation is None


@pytest.mark.parametrize("fields, cause", [
    ({"name": "a b"}, "name must be"),
    ({"name": "a", "host": "-oProxyCommand=touch /tmp/x"}, "not starting with '-'"),
    ({"name": "a", "command": "edgenet 'bench"}, "not a valid command line (No closing quotation)"),
    ({"name": "a", "command": "edgenet\nrm -rf ~"}, "control characters"),
    ({"name": "a", "ssh_options": ["-oProxyCommand=x"]}, "ssh_options must be"),
    ({"name": "a", "threads": [0]}, "threads must be"),
    ({"name": "a", "delegate": "gpu"}, "delegate must be one of"),
    ({"name": "a", "colour": "red"}, "unknown key 'colour'"),
])
def test_a_device_validates_itself(fields, cause):
    with pytest.raises(DeviceSpecError, match=__import__("re").escape(cause)):
        Device.from_dict(fields)


@pytest.mark.parametrize("content, cause", [
    ("{not json", "not valid JSON"),
    ("[1, 2]", "one JSON object"),
    ('{"host": 7}', "host must be"),
    ('{"ssh_options": "Port=22"}', "ssh_options must be"),
    ('{"name": "pi", "host": "pi@h", "command": "edgenet \\"bench"}', "device 'pi': command"),
    ('{"inventory_tag": "x"}', "unknown key 'inventory_tag'"),
    ("[" * 100_000 + "]" * 100_000, "nested more than"),
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


# --- ONE transport: the localhost sshd the suite starts serves bench, eval, profile and sweep ----------

import sshd  # noqa: E402

local_sshd = sshd.local_sshd  # the fixture
COMMAND = f"env PYTHONPATH={shlex.quote(str(ROOT))} {shlex.quote(sys.executable)} -m edgenet"
FAST = ["--warmup-s", "0.05", "--min-runs", "5", "--min-s", "0.05", "--max-s", "0.3"]


@pytest.fixture(scope="module")
def tiny():
    from fixtures_tflite import tiny_tflite_models

    return tiny_tflite_models()


def _images(folder: Path) -> Path:
    import numpy as np
    from PIL import Image

    for c, cls in enumerate(("a", "b")):
        (folder / cls).mkdir(parents=True)
        for i in range(3):
            pixels = np.random.default_rng(10 * c + i).integers(0, 255, (40, 40, 3), dtype=np.uint8)
            Image.fromarray(pixels).save(folder / cls / f"{i}.png")
    return folder


def test_ssh_is_started_in_one_place_only():
    sources = {p.relative_to(ROOT / "edgenet").as_posix(): p.read_text() for p in (ROOT / "edgenet").rglob("*.py")}
    starting_ssh = sorted(name for name, text in sources.items() if '["ssh"' in text or '"scp"' in text)
    assert starting_ssh == ["devices/session.py"]


def test_one_ssh_path_serves_bench_eval_profile_and_sweep(local_sshd, tiny, tmp_path):
    from conftest import TINY_SPEC

    from edgenet.runtime.envinfo import model_info

    host, options = local_sshd
    device = tmp_path / "loopback.json"
    device.write_text(json.dumps({"name": "loopback", "host": host, "command": COMMAND, "ssh_options": options}))
    # bench: the records come back with the identity of the file that was shipped
    bench_out = tmp_path / "bench.jsonl"
    res = CliRunner().invoke(main, ["bench", str(tiny.int8), *FAST, "--remote", str(device), "--results", str(bench_out)])
    assert res.exit_code == 0, res.output
    (record,) = results.read_records(bench_out)
    assert record["model"] == model_info(tiny.int8) and record["error"] is None and record["latency_ms"]["p50"] > 0
    # eval: the same numbers as here
    data = _images(tmp_path / "images")
    here, there = tmp_path / "here.jsonl", tmp_path / "there.jsonl"
    args = [str(tiny.int8), "--data", str(data), "--no-progress"]
    assert CliRunner().invoke(main, ["eval", *args, "--results", str(here)]).exit_code == 0
    res = CliRunner().invoke(main, ["eval", *args, "--remote", str(device), "--timeout-s", "120", "--results", str(there)])
    assert res.exit_code == 0, res.output
    (a,), (b,) = results.read_records(here), results.read_records(there)
    assert b["model"]["path"] == str(tiny.int8) and a["accuracy"] == b["accuracy"]
    # profile: a device file too (it took only user@host before)
    res = CliRunner().invoke(main, ["profile", str(tiny.int8), "--remote", str(device), "--rounds", "2", "--runs", "2",
                                    "--warmup-s", "0", "--max-s", "0.2", "--timeout-s", "120", "--json"])
    assert res.exit_code == 0, res.output
    profile = json.loads(res.stdout)
    assert profile["model"] == model_info(tiny.int8) and profile["whole_ms"]["median"] > 0
    # sweep: its measurements go through the same session
    rundir = tmp_path / "run"
    res = CliRunner().invoke(main, ["sweep", "--budget-ms", "50", "--variants", TINY_SPEC, "--samples", "4",
                                    "--min-runs", "3", "--min-s", "0.1", "--remote", str(device),
                                    "-o", str(rundir)])
    assert res.exit_code == 0, res.output
    swept = [r for r in results.read_records(rundir / "results.jsonl") if r["kind"] == "bench"]
    assert swept and all(r["device"]["label"] == "loopback" and r["error"] is None for r in swept)
