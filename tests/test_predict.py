"""predict and import-weights on the real ImageNet-trained Lite0 and real photos."""

import json

import numpy as np
import pytest
from click.testing import CliRunner

from edgenet.cli import main


@pytest.fixture(scope="module")
def lite0_weights(tmp_path_factory, lite0_checkpoint):
    out = tmp_path_factory.mktemp("w") / "lite0.weights.h5"
    result = CliRunner().invoke(main, ["import-weights", lite0_checkpoint, "--variant", "lite0", "-o", str(out)])
    assert result.exit_code == 0, result.output
    assert out.is_file()
    return out


def test_predict_real_photos(lite0_weights, photos, tmp_path):
    bad = tmp_path / "broken.jpg"
    bad.write_bytes(b"\xff\xd8\xff\xe0 not really a jpeg")
    args = ["predict", str(photos["chelsea"]), str(bad), str(photos["coffee"]),
            "--model", "lite0", "--weights", str(lite0_weights), "--json"]
    result = CliRunner().invoke(main, args)
    assert result.exit_code == 1  # one image failed, the others were classified
    payload = json.loads(result.stdout)
    by_name = {p["image"].rsplit("/", 1)[-1]: p for p in payload["predictions"]}
    assert 281 <= by_name["chelsea.png"]["top"][0]["index"] <= 285
    assert by_name["coffee.png"]["top"][0]["index"] in (967, 968)
    assert by_name["broken.jpg"]["error"]
    assert "broken.jpg" in result.stderr and "Traceback" not in result.output
    scores = [t["score"] for t in by_name["coffee.png"]["top"]]
    assert scores == sorted(scores, reverse=True) and 0 < sum(scores) <= 1.0 + 1e-6


def test_predict_directly_from_checkpoint_matches_imported(lite0_checkpoint, lite0_weights, photos):
    from edgenet.evaluation.classifier import open_classifier
    from edgenet.pixels.preprocess import preprocess

    a = open_classifier("lite0", weights=lite0_checkpoint)
    b = open_classifier("lite0", weights=str(lite0_weights))
    x = preprocess(photos["astronaut"], a.contract)[None]
    np.testing.assert_allclose(a.run(x), b.run(x), atol=1e-5)


def test_random_weights_warn(photos):
    result = CliRunner().invoke(main, ["predict", str(photos["coffee"]), "--model", "phi=0,width=0.25,depth=0.25,"
                                       "resolution=64"])
    assert result.exit_code == 0
    assert "randomly initialised" in result.stderr


def test_import_weights_errors(tmp_path, lite0_checkpoint):
    runner = CliRunner()
    r = runner.invoke(main, ["import-weights", lite0_checkpoint, "--variant", "b0", "-o", str(tmp_path / "x.weights.h5")])
    assert r.exit_code == 1 and "Traceback" not in r.output
    assert len(r.stderr.strip().splitlines()) == 1 and "b0" in r.stderr
    assert not (tmp_path / "x.weights.h5").exists()
    r = runner.invoke(main, ["import-weights", str(tmp_path / "nope.pth"), "--variant", "lite0", "-o",
                             str(tmp_path / "x.weights.h5")])
    assert r.exit_code == 1 and "nope.pth" in r.stderr and "no such file" in r.stderr
    r = runner.invoke(main, ["import-weights", lite0_checkpoint, "--variant", "b9", "-o", str(tmp_path / "y")])
    assert r.exit_code == 2 and "unknown variant" in r.stderr
