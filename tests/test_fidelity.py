"""Fidelity metrics, held-out image selection, and the real Lite0 int8 conversion."""

from __future__ import annotations

import math
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from edgenet.convert.calibration import calibration_images, holdout_images, load_calibration
from edgenet.convert.fidelity import VIEWS, fidelity_metrics, holdout_set
from edgenet.errors import EdgenetError
from edgenet.family.variants import parse_variant

# Floors for the real Lite0 weights on the default held-out photos (3 photos x 8 views).
# Measured: top-1 agreement 22/24 = 0.917, top-5 overlap 0.933, SQNR 20.5 dB (TF 2.21, 100 samples, seed 0).
LITE0_MIN_TOP1_AGREEMENT = 0.75
LITE0_MIN_TOP5_OVERLAP = 0.8
LITE0_MIN_SQNR_DB = 15.0


def test_identical_logits_agree_perfectly():
    ref = np.random.default_rng(0).normal(size=(4, 10))
    fid = fidelity_metrics(ref, ref.copy())
    assert fid.top1_agreement == 1.0 and fid.top5_overlap == 1.0
    assert fid.sqnr_db == math.inf and fid.max_abs_logit_error == 0.0


def test_sqnr_matches_the_definition():
    rng = np.random.default_rng(1)
    ref = rng.normal(size=(8, 1000))
    noise = rng.normal(scale=0.1, size=ref.shape)
    fid = fidelity_metrics(ref, ref + noise)
    assert fid.sqnr_db == pytest.approx(10 * math.log10(np.sum(ref**2) / np.sum(noise**2)))
    assert 19.0 < fid.sqnr_db < 21.0  # noise at 1/10 of the signal's std: ~20 dB


def test_top1_and_top5_overlap_by_hand():
    ref = np.array([[9, 8, 7, 6, 5, 0, 0], [0, 1, 2, 3, 4, 5, 6]], dtype=float)
    quant = np.array([[8, 9, 7, 6, 0, 5.5, 0], [0, 1, 2, 3, 4, 5, 6]], dtype=float)
    fid = fidelity_metrics(ref, quant)
    assert fid.top1_agreement == 0.5  # first row's argmax moved from 0 to 1
    assert fid.top5_overlap == pytest.approx((4 / 5 + 5 / 5) / 2)  # class 4 left row 0's top-5
    with pytest.raises(ValueError):
        fidelity_metrics(ref, quant[:1])


def test_default_holdout_never_overlaps_calibration():
    contract = parse_variant("phi=0,width=0.25,depth=0.25,resolution=64").contract
    hold = holdout_set("default", contract)
    assert hold.images == len(holdout_images()) == 3
    assert hold.array.shape == (3 * len(VIEWS), 64, 64, 3)
    assert not {p.name for p in holdout_images()} & {p.name for p in calibration_images()}
    # The first view is exactly what preprocess() gives (same crop, resize and range).
    from edgenet.pixels.preprocess import preprocess

    np.testing.assert_array_equal(hold.array[0], preprocess(holdout_images()[0], contract))
    assert float(hold.array.min()) >= 0.0 and float(hold.array.max()) <= 255.0


def test_user_folder_holds_out_what_calibration_did_not_use(tmp_path):
    contract = parse_variant("phi=0,width=0.25,depth=0.25,resolution=64").contract
    for path in calibration_images()[:4]:
        Image.open(path).convert("RGB").resize((80, 72)).save(tmp_path / path.name)
    calib = load_calibration(tmp_path, contract, samples=3, seed=0)
    hold = holdout_set(str(tmp_path), contract, calib.files)
    assert hold.images == 1
    everything = load_calibration(tmp_path, contract, samples=4, seed=0)
    assert holdout_set(str(tmp_path), contract, everything.files) is None
    # An explicit --holdout folder wins; an unusable one is an error.
    assert holdout_set(str(tmp_path), contract, everything.files, holdout=None) is None
    empty = tmp_path / "empty"
    empty.mkdir()
    with pytest.raises(EdgenetError):
        holdout_set(str(tmp_path), contract, everything.files, holdout=empty)


@pytest.mark.slow
def test_real_lite0_int8_stays_close_to_float(tmp_path, lite0_checkpoint):
    """The published Lite0 weights, int8 with the default calibration set, vs the float model."""
    from edgenet.convert.api import ConvertOptions, convert_variants
    from edgenet.convert.manifest import read_manifest

    lite0_pth = Path(lite0_checkpoint)  # the installed package's file, found through Python
    assert lite0_pth.is_file()
    (result,) = convert_variants([parse_variant("lite0")],
                                 ConvertOptions(quant="int8", weights=lite0_pth, out_dir=tmp_path, progress=False))
    assert result.status == "converted", result.error
    fid = result.fidelity
    print(f"lite0 int8 fidelity: top1 {fid['top1_agreement']:.3f} top5 {fid['top5_overlap']:.3f} "
          f"SQNR {fid['sqnr_db']:.2f} dB on {fid['samples']} tensors")
    assert fid["top1_agreement"] >= LITE0_MIN_TOP1_AGREEMENT
    assert fid["top5_overlap"] >= LITE0_MIN_TOP5_OVERLAP
    assert fid["sqnr_db"] > LITE0_MIN_SQNR_DB
    manifest = read_manifest(result.manifest_path)
    assert manifest["weights"]["format"].startswith("checkpoint")
    assert manifest["random_weights"] is False
    assert manifest["input"]["scale"] == pytest.approx(1.0, abs=1e-3) and manifest["input"]["zero_point"] == -128
    assert manifest["fidelity_note"].startswith("3 held-out image(s)")
