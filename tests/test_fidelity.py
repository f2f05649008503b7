"""Fidelity metrics, held-out image selection, and the real Lite0 int8 conversion."""

from __future__ import annotations

import math
from pathlib import Path

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from PIL import Image

from edgenet.convert.calibration import calibration_images, holdout_images, load_calibration
from edgenet.convert.fidelity import (
    MIN_HOLDOUT_SAMPLES,
    VIEWS,
    HoldoutSet,
    PairedFlips,
    agreement_interval,
    agreement_line,
    cluster_bootstrap,
    fidelity_metrics,
    holdout_set,
    mcnemar_exact,
    paired_flips,
    sign_flip_exact,
    sign_flip_test,
)
from edgenet.errors import EdgenetError
from edgenet.family.variants import parse_variant

# Floors for the real Lite0 weights on the default held-out photos. Measured with the 157-photo set (48 held out,
# 6 views each, many of them scenes and textures with close float top-1/top-2 margins): top-1 agreement 0.882,
# top-5 overlap 0.890, SQNR 17.5 dB (TF 2.21, 100 samples, seed 0); with the former 3 held-out photos 0.917, 0.933,
# 20.5 dB.
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


def _margins(margins, errors, classes: int = 3):
    """Logits whose float top-1/top-2 margin is ``margins[i]`` and the quantized model's error on it ``errors[i]``."""
    ref = np.zeros((len(margins), classes))
    ref[:, 0], ref[:, 1] = 10.0 + np.asarray(margins, dtype=float), 10.0
    quant = ref.copy()
    quant[:, 0] -= np.asarray(errors, dtype=float)  # quantized margin = margin - error
    return ref, quant


def test_near_ties_are_margins_below_twice_the_rms_margin_error():
    # Margin errors of +-0.1 everywhere: sigma = 0.1, near-tie below 0.2.
    ref, quant = _margins([0.01, 5.0, 0.15, 0.25], [0.1, -0.1, -0.1, 0.1])
    fid = fidelity_metrics(ref, quant)
    assert fid.margin_error_rms == pytest.approx(0.1)
    assert fid.near_ties == 2  # margins 0.01 and 0.15; not 0.25 (>= 0.2) nor 5
    assert fid.flips == 1 and fid.flips_near_tie == 1  # 0.01 - 0.1 < 0: the near-tie flipped
    assert fid.top1_agreement == 0.75 and fid.samples - fid.flips == 3


def test_a_large_error_flips_a_sample_that_is_no_near_tie():
    # One big error (1.5) among 19 exact margins; sigma is over the 10 margins below the median (3.85):
    # sqrt(1.5**2 / 10) = 0.474, so margin 1.0 (> 2 sigma) is clear.
    ref, quant = _margins([1.0] + [3.0 + 0.1 * k for k in range(19)], [1.5] + [0.0] * 19)
    fid = fidelity_metrics(ref, quant)
    assert fid.margin_error_rms == pytest.approx(math.sqrt(1.5**2 / 10))
    assert fid.flips == 1 and fid.near_ties == 0 and fid.flips_near_tie == 0


def test_margin_noise_is_measured_where_samples_could_flip():
    # Confident samples carry large logit errors (1.0) that cannot flip them; the close half carries 0.05.
    ref, quant = _margins([0.02, 0.05, 0.08, 0.12, 8.0, 9.0, 10.0, 11.0], [0.05, -0.05, 0.05, -0.05, 1, -1, 1, -1])
    fid = fidelity_metrics(ref, quant)
    assert fid.margin_error_rms == pytest.approx(0.05)  # not the 0.73 RMS over all eight
    assert fid.near_ties == 3  # margins below 2 sigma = 0.1: 0.02, 0.05, 0.08
    assert fid.flips == 1 and fid.flips_near_tie == 1  # 0.02 - 0.05 < 0


def test_expected_agreement_is_one_minus_the_mean_flip_probability():
    from scipy.stats import norm

    # Every margin 0.1, margin errors +-0.1: each sample flips with probability Phi(-1).
    ref, quant = _margins([0.1] * 6, [0.1, -0.1] * 3)
    fid = fidelity_metrics(ref, quant)
    assert fid.expected_agreement == pytest.approx(1 - norm.cdf(-1.0))
    assert fidelity_metrics(ref, ref.copy()).expected_agreement == 1.0  # no noise: nothing can flip


def test_expected_agreement_tracks_the_flips_of_normal_margin_noise():
    """Margins spread like a real classifier's, normal noise on each: expectation ~ the counted agreement."""
    rng = np.random.default_rng(5)
    margins = rng.exponential(1.0, size=4000)
    ref, quant = _margins(margins, rng.normal(scale=0.3, size=4000))
    fid = fidelity_metrics(ref, quant)
    assert fid.flips > 100  # enough flips to compare
    assert fid.expected_agreement == pytest.approx(fid.top1_agreement, abs=0.01)


@pytest.mark.parametrize("agreed, n", [(8, 10), (103, 104), (24, 24), (0, 5), (22, 24)])
def test_wilson_interval_matches_scipy(agreed, n):
    from scipy.stats import binomtest

    (low, high), method = agreement_interval(np.array([True] * agreed + [False] * (n - agreed)))
    reference = binomtest(agreed, n).proportion_ci(0.95, method="wilson")
    assert (low, high) == pytest.approx((reference.low, reference.high), abs=1e-9)
    assert method == f"Wilson on {n} samples"


@settings(max_examples=40, deadline=None)
@given(st.lists(st.tuples(st.integers(1, 8), st.integers(0, 8)), min_size=1, max_size=30))
def test_cluster_interval_is_ordered_and_holds_the_point(photos):
    """Any photos x views with any flips: 0 <= low <= agreement <= high <= 1."""
    agree = np.concatenate([np.arange(views) >= min(flips, views) for views, flips in photos])
    groups = np.repeat(np.arange(len(photos)), [views for views, _ in photos])
    (low, high), _ = agreement_interval(agree, groups)
    assert 0.0 <= low <= float(agree.mean()) + 1e-12 and float(agree.mean()) - 1e-12 <= high <= 1.0


def test_cluster_bootstrap_widens_when_the_flips_share_a_photo():
    groups = np.repeat(np.arange(13), 8)  # 13 photos x 8 views = 104 samples
    spread = np.ones(104, dtype=bool)
    spread[[0, 8, 16, 24]] = False  # 4 flips, one view each of 4 photos
    together = np.ones(104, dtype=bool)
    together[[0, 1, 2, 3]] = False  # the same 4 flips, all views of one photo
    (lo_s, hi_s), method = agreement_interval(spread, groups)
    (lo_t, hi_t), _ = agreement_interval(together, groups)
    assert method == "cluster bootstrap over 13 images, at least Wilson on 104 samples"
    point = 100 / 104
    assert lo_s <= point <= hi_s and lo_t <= point <= hi_t
    assert lo_t < lo_s and hi_t - lo_t > hi_s - lo_s  # correlated views: less information, wider
    # Samples treated as independent (Wilson) understate the uncertainty of the correlated flips.
    (lo_w, _), _ = agreement_interval(together)
    assert lo_w > lo_t
    # Fixed seed: the same data give the same interval.
    assert agreement_interval(together, groups) == agreement_interval(together, groups)


def test_few_photos_never_give_an_interval_narrower_than_independent_views():
    # 3 photos, 8 views each, 6, 6 and 7 agreeing: the bootstrap alone would say 75.0-87.5 %.
    agree = np.concatenate([np.arange(8) >= 2, np.arange(8) >= 2, np.arange(8) >= 1])
    groups = np.repeat(np.arange(3), 8)
    (low, high), _ = agreement_interval(agree, groups)
    (w_low, w_high), _ = agreement_interval(agree)
    assert (low, high) == (w_low, w_high) and low < 0.75 and high > 0.875


def test_no_flip_gives_wilson_on_the_photos_not_a_point():
    groups = np.repeat(np.arange(3), 8)
    (low, high), method = agreement_interval(np.ones(24, dtype=bool), groups)
    # Every resample would agree 100 %: the interval is Wilson's on 3 observations, n / (n + z**2).
    assert method == "Wilson on 3 images, at least Wilson on 24 samples" and high == 1.0
    assert low == pytest.approx(3 / (3 + 1.959964**2), rel=1e-5)
    (low_views, _), _ = agreement_interval(np.ones(24, dtype=bool))
    assert low < low_views  # 3 photos say less than 24 independent samples would


def test_fidelity_carries_flips_ties_and_interval_in_its_dict():
    import json

    rng = np.random.default_rng(3)
    ref = rng.normal(scale=3.0, size=(104, 50))
    quant = ref + rng.normal(scale=0.5, size=ref.shape)
    groups = np.repeat(np.arange(13), 8)
    fid = fidelity_metrics(ref, quant, groups=groups)
    d = json.loads(json.dumps(fid.to_dict()))
    assert d["images"] == 13 and d["samples"] == 104
    assert d["flips"] == round((1 - d["top1_agreement"]) * 104) and d["flips"] > 0
    assert 0 <= d["flips_near_tie"] <= d["flips"] <= d["near_ties"] + d["flips"]
    low, high = d["top1_agreement_ci95"]
    assert low <= d["top1_agreement"] <= high and low < high
    assert d["ci_method"] == "cluster bootstrap over 13 images, at least Wilson on 104 samples"
    line = agreement_line(d)
    assert line.startswith(f"top-1 agreement {100 * d['top1_agreement']:.1f} %, expected "
                           f"{100 * d['expected_agreement']:.1f} % ({104 - d['flips']}/104 views of 13 images, 95 % CI ")
    assert f"{d['flips']} flips, {d['flips_near_tie']} at near-ties; {d['near_ties']} near-ties)" in line
    with pytest.raises(ValueError):
        fidelity_metrics(ref, quant, groups=groups[:-1])


@pytest.mark.parametrize(("only_a", "only_b", "p"), [
    (0, 0, 1.0), (3, 3, 1.0), (6, 0, 2 / 64), (1, 5, 14 / 64), (5, 1, 14 / 64), (10, 0, 2 / 1024),
    (2, 9, 2 * (1 + 11 + 55) / 2048),  # 2 * P(X <= 2), X ~ Bin(11, 1/2)
    (0, 1, 1.0),  # one discordant sample: p = 2 * 1/2, capped at 1
])
def test_mcnemar_exact_on_constructed_tables(only_a, only_b, p):
    assert mcnemar_exact(only_a, only_b) == pytest.approx(p, rel=1e-12)


def test_mcnemar_matches_scipys_binomial_test():
    from scipy.stats import binomtest

    for a, b in [(4, 17), (12, 12), (30, 11), (1, 40)]:
        assert mcnemar_exact(a, b) == pytest.approx(binomtest(min(a, b), a + b, 0.5).pvalue, rel=1e-9)
    with pytest.raises(ValueError):
        mcnemar_exact(-1, 3)


def _flipped(n: int, flips) -> dict:
    ref = np.zeros((n, 3))
    ref[:, 0] = 2.0
    quant = ref.copy()
    quant[list(flips), 1] = 3.0
    return fidelity_metrics(ref, quant, groups=np.arange(n)).to_dict()


def test_paired_flips_count_only_the_samples_where_the_models_differ():
    plain = _flipped(400, range(10))
    assert plain["flipped_samples"] == list(range(10))
    # 9 of plain's 10 flips fixed, 1 new: McNemar says it is no chance (p = 2 * 11/1024 < 0.05).
    better = paired_flips(plain, _flipped(400, [0, 100]))
    assert (better.only_a, better.only_b, better.both) == (9, 1, 1)
    assert better.p_value == pytest.approx(2 * 11 / 1024) and better.b_better
    # 7 fixed and 1 new is a better rate too, but 8 discordant samples cannot tell (p = 2 * 9/256 = 0.07).
    assert not paired_flips(_flipped(400, range(8)), _flipped(400, [0, 100])).b_better
    # Four fewer flips but on different samples: 10 vs 6 discordant is chance (p = 0.45), not better.
    other = paired_flips(_flipped(400, range(10)), _flipped(400, range(200, 206)))
    assert (other.only_a, other.only_b) == (10, 6) and other.p_value > 0.4 and not other.b_better


def test_sign_flip_test_is_mcnemar_when_each_photo_has_one_view():
    for a, b in [(0, 0), (6, 0), (1, 5), (9, 1), (2, 9), (13, 3), (0, 1)]:
        assert sign_flip_exact([1] * a + [-1] * b) == pytest.approx(mcnemar_exact(a, b), rel=1e-12)


@settings(max_examples=60, deadline=None)
@given(st.lists(st.integers(-4, 4), min_size=0, max_size=10))
def test_sign_flip_test_equals_the_enumeration_of_every_sign_pattern(nets):
    from itertools import product

    observed = abs(sum(nets))
    patterns = list(product((1, -1), repeat=len(nets)))
    extreme = sum(abs(sum(s * abs(v) for s, v in zip(signs, nets, strict=True))) >= observed for signs in patterns)
    assert sign_flip_exact(nets) == pytest.approx(extreme / len(patterns) if observed else 1.0, rel=1e-12)


def test_paired_flips_count_the_views_of_a_photo_as_one_photos_evidence():
    # 8 photos x 6 views. Plain int8 flips every view of photos 0 and 1 (12 views), the rung one view of photo 2.
    groups = np.repeat(np.arange(8), 6)
    ref = np.zeros((48, 3))
    ref[:, 0] = 2.0

    def flipping(rows):
        quant = ref.copy()
        quant[list(rows), 1] = 3.0
        return fidelity_metrics(ref, quant, groups=groups).to_dict()

    plain, rung = flipping(range(12)), flipping([12])
    assert plain["flipped_images"] == [0] * 6 + [1] * 6 and rung["flipped_images"] == [2]
    paired = paired_flips(plain, rung)
    # As 13 independent samples this would be p = 2 * 13/8192 = 0.003; it is 2 photos against 1: p = 0.5.
    assert (paired.only_a, paired.only_b, paired.discordant_images) == (12, 1, 3)
    assert paired.p_value == pytest.approx(0.5) and not paired.b_better
    assert "3 photos" in paired.test and paired.to_dict()["test"] == paired.test
    # Without the photos (a manifest written before they were recorded) the samples count as independent.
    old = {k: v for k, v in plain.items() if k != "flipped_images"}
    fallback = paired_flips(old, rung)
    assert fallback.discordant_images is None and fallback.p_value == pytest.approx(mcnemar_exact(12, 1))
    # Ten photos each fully fixed, against one view of another: that is evidence (p = 2 * 2/2^11 = 0.002).
    groups10 = np.repeat(np.arange(12), 2)
    ref10 = np.zeros((24, 3))
    ref10[:, 0] = 2.0
    q_plain, q_rung = ref10.copy(), ref10.copy()
    q_plain[:20, 1], q_rung[20, 1] = 3.0, 3.0
    strong = paired_flips(fidelity_metrics(ref10, q_plain, groups=groups10),
                          fidelity_metrics(ref10, q_rung, groups=groups10))
    assert strong.discordant_images == 11 and strong.b_better and strong.p_value == pytest.approx(4 / 2**11)


def test_sign_flip_test_exact_then_drawn():
    from itertools import product

    values = [0.5, -1.25, 2.0, 0.0, 3.5, -0.75]
    patterns = list(product((1, -1), repeat=5))
    nonzero = [abs(v) for v in values if v]
    observed = abs(sum(values))
    exact = sum(abs(sum(s * v for s, v in zip(signs, nonzero, strict=True))) >= observed for signs in patterns)
    assert sign_flip_test(values) == pytest.approx(exact / len(patterns))
    assert sign_flip_test([1.0, -1.0] * 15) == 1.0 and sign_flip_test([]) == 1.0
    # 30 photos all one way: drawn (above SIGN_FLIP_EXACT_MAX), never below 1 / (1 + draws), reproducible.
    one_way = sign_flip_test([0.1 * (k + 1) for k in range(30)])
    assert 0 < one_way < 1e-3 and sign_flip_test([0.1 * (k + 1) for k in range(30)]) == one_way


def _close_calls(scale: float):
    """60 views of 30 photos with spread float margins; the quantized model's error is ``scale`` x one fixed noise,
    so a smaller scale flips a subset of a larger one's samples."""
    rng = np.random.default_rng(3)
    ref = rng.normal(size=(60, 5))
    quant = ref + scale * rng.normal(scale=0.2, size=(60, 5))
    return fidelity_metrics(ref, quant, groups=np.repeat(np.arange(30), 2)).to_dict()


def test_a_rung_closer_on_the_close_calls_beats_plain_int8_without_fewer_flips_to_count():
    plain, rung = _close_calls(1.0), _close_calls(0.5)
    assert len(plain["close_margin_sq_error"]) == 30  # one value per photo
    paired = paired_flips(plain, rung)
    # 3 flips fixed and none added is too few to count (p = 0.25), but half the error on every close call is not
    # chance: the rung is better, on evidence that decides the flips of photos not in the set.
    assert (paired.only_a, paired.only_b) == (3, 0) and not paired.fewer_flips
    assert paired.close_error_ratio == pytest.approx(0.25, rel=1e-3) and paired.close_error_p_value < 0.001
    assert paired.closer and paired.b_better
    # The same model is not better than itself, and a fidelity without the errors is judged on flips only.
    assert not paired_flips(plain, plain).b_better
    bare = {k: v for k, v in rung.items() if k != "close_margin_sq_error"}
    assert paired_flips(plain, bare).close_error_p_value is None and not paired_flips(plain, bare).b_better
    # Closer on the close calls but flipping more samples: never better by closeness alone.
    more_flips = PairedFlips(only_a=2, only_b=3, both=0, p_value=1.0, discordant_images=5, close_error_ratio=0.5,
                             close_error_p_value=0.001)
    assert not more_flips.closer and not more_flips.b_better


def test_the_paired_tests_hold_their_size_between_equally_good_models():
    """Two roundings of the same quality (independent noise of one scale) are neither "closer" nor "fewer flips"
    more often than the tests' level says: the budget's rule does not swap plain int8 for an equal rung on noise."""
    rng = np.random.default_rng(11)
    ref = rng.normal(size=(60, 5))
    groups = np.repeat(np.arange(30), 2)
    trials, closer, better = 200, 0, 0
    for _ in range(trials):
        a, b = (fidelity_metrics(ref, ref + rng.normal(scale=0.2, size=ref.shape), groups=groups).to_dict()
                for _ in range(2))
        paired = paired_flips(a, b)
        closer += paired.closer
        better += paired.b_better
    # Nominal: 2.5 % one way for each test, at most 5 % for either; Binomial(200, 0.05) exceeds 17 with p < 0.01.
    assert closer <= 12 and better <= 17, (closer, better)
    # And the power the flip count alone lacks: half the error is recognised on these 30 photos most of the time.
    found = sum(paired_flips(fidelity_metrics(ref, ref + rng.normal(scale=0.2, size=ref.shape), groups=groups),
                             fidelity_metrics(ref, ref + rng.normal(scale=0.1, size=ref.shape), groups=groups)).b_better
                for _ in range(100))
    assert found >= 75, found


def test_a_paired_drop_interval_from_numeric_differences():
    # float right and int8 wrong on 6 of 200 photos, the reverse on 2: a drop of 2 points, interval around it.
    diff = np.zeros(200)
    diff[:6], diff[6:8] = 1.0, -1.0
    low, high = cluster_bootstrap(diff, np.arange(200))
    assert -0.01 < low < 0.02 < high <= 0.051  # 4 net flips in 200 photos: the interval holds 0


def test_holdout_split_halves_are_disjoint_by_photo():
    groups = np.repeat(np.arange(5), 3)
    hold = HoldoutSet(np.arange(15, dtype=np.float32).reshape(15, 1, 1, 1), 5, "x", "", groups)
    choose, report = hold.split()
    assert choose.images == 3 and report.images == 2
    rows_choose, rows_report = set(choose.array.ravel()), set(report.array.ravel())
    assert not rows_choose & rows_report and rows_choose | rows_report == set(range(15))
    # All views of a photo stay on one side: photo k owns rows 3k..3k+2.
    assert {int(r) // 3 for r in rows_choose} == {0, 2, 4} and {int(r) // 3 for r in rows_report} == {1, 3}
    np.testing.assert_array_equal(report.groups, np.repeat(np.arange(2), 3))
    one = HoldoutSet(np.zeros((8, 1, 1, 1), np.float32), 1, "x", "", np.zeros(8, np.int64))
    assert one.split() == (one, None)


def test_agreement_line_for_one_flip_and_for_an_old_manifest():
    one = {"top1_agreement": 103 / 104, "samples": 104, "images": 28, "flips": 1, "near_ties": 15,
           "flips_near_tie": 1, "top1_agreement_ci95": [0.964, 1.0]}
    assert agreement_line(one) == ("top-1 agreement 99.0 % (103/104 views of 28 images, 95 % CI 96.4-100.0 %; "
                                   "1 flip, at a near-tie; 15 near-ties)")
    assert "1 flip, not at a near-tie" in agreement_line({**one, "flips_near_tie": 0})
    old = {"top1_agreement": 22 / 24, "samples": 24, "images": 3}  # written before flips were recorded
    assert agreement_line(old) == "top-1 agreement 91.7 % (22/24 views of 3 images)"


def test_default_holdout_never_overlaps_calibration():
    contract = parse_variant("phi=0,width=0.25,depth=0.25,resolution=64").contract
    hold = holdout_set("default", contract)
    count = len(holdout_images())
    assert hold.images == count >= 40
    # As many views a photo as it takes to reach MIN_HOLDOUT_SAMPLES: the budget judges on hundreds of views.
    views = math.ceil(MIN_HOLDOUT_SAMPLES / count)
    assert 1 < views < len(VIEWS) and hold.array.shape == (count * views, 64, 64, 3)
    assert not {p.name for p in holdout_images()} & {p.name for p in calibration_images()}
    # The first view is exactly what preprocess() gives (same crop, resize and range).
    from edgenet.pixels.preprocess import preprocess

    np.testing.assert_array_equal(hold.array[0], preprocess(holdout_images()[0], contract))
    # Rows come image by image, all views of one before the next: that is the grouping the interval uses.
    np.testing.assert_array_equal(hold.groups, np.repeat(np.arange(count), views))
    np.testing.assert_array_equal(hold.array[views], preprocess(holdout_images()[1], contract))
    assert float(hold.array.min()) >= 0.0 and float(hold.array.max()) <= 255.0
    # The budget's halves: photos the calibration never used, split by photo, together the whole held-out set.
    choose, report = hold.split()
    assert choose.images + report.images == count and len(choose.array) + len(report.array) == len(hold.array)
    np.testing.assert_array_equal(choose.array[0], hold.array[0])  # photo 0 chooses, photo 1 reports
    np.testing.assert_array_equal(report.array[0], hold.array[views])


@pytest.mark.parametrize("count", [MIN_HOLDOUT_SAMPLES // len(VIEWS) - 1, 40])
def test_holdout_groups_follow_the_views(tmp_path, count):
    """Few photos give all views (one id for the rows of each), more photos as many as reach MIN_HOLDOUT_SAMPLES."""
    import skimage.data

    photo = skimage.data.astronaut()
    for i in range(count):  # distinct crops of a real photo, one file each
        Image.fromarray(photo[8 * i : 8 * i + 96, 4 * i : 4 * i + 96]).save(tmp_path / f"crop{i:02d}.png")
    contract = parse_variant("phi=0,width=0.25,depth=0.25,resolution=64").contract
    hold = holdout_set(str(tmp_path), contract, holdout=tmp_path)
    views = min(len(VIEWS), -(-MIN_HOLDOUT_SAMPLES // count))
    assert views == (len(VIEWS) if count < MIN_HOLDOUT_SAMPLES // len(VIEWS) else 7)
    assert hold.images == count and len(hold.array) == count * views
    assert views == len(VIEWS) or len(hold.array) >= MIN_HOLDOUT_SAMPLES
    np.testing.assert_array_equal(hold.groups, np.repeat(np.arange(count), views))


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
    from edgenet.convert.api import ConvertRequest, convert_variants
    from edgenet.convert.manifest import read_manifest

    lite0_pth = Path(lite0_checkpoint)  # the installed package's file, found through Python
    assert lite0_pth.is_file()
    (result,) = convert_variants([parse_variant("lite0")],
                                 ConvertRequest(quant="int8", weights=lite0_pth, out_dir=tmp_path, progress=False))
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
    held = len(holdout_images())  # every third photo of the embedded set, each seen through enough views for 256
    assert manifest["fidelity_note"].startswith(f"{held} held-out image(s) from default holdout, "
                                                f"{math.ceil(MIN_HOLDOUT_SAMPLES / held)} fixed crops/flips each")
    assert fid["samples"] >= MIN_HOLDOUT_SAMPLES and fid["images"] == held
