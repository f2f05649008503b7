"""How close a quantized model stays to its float original, measured right after conversion.

Post-training quantization can go wrong silently: a badly calibrated activation range (the
long tails of swish/SE in EfficientNet, tensorflow/tensorflow#49927) or a preprocessing
mismatch still yields a model that runs, just with wrong answers. So every int8 (and
int16x8) conversion compares the float Keras model with the quantized TFLite model on
images the calibrator never saw:

* ``top1_agreement``: fraction of images where both models pick the same class;
* ``top5_overlap``: mean ``|top5_float & top5_quant| / 5``;
* ``sqnr_db``: signal-to-quantization-noise ratio of the logits,
  ``10 * log10(sum(ref**2) / sum((ref - quant)**2))`` over all images and classes.

How far to trust the agreement (a few photos make a noisy number):

* ``flips``: samples whose top-1 differs (``samples - flips`` agree);
* ``near_ties``: samples the quantization noise can flip either way. With ``a``, ``b`` the float
  model's top-1 and top-2 classes of sample ``i``, its margin is ``m_i = ref[i,a] - ref[i,b]`` and the
  quantized model's error on it ``d_i = m_i - (q[i,a] - q[i,b])``; ``margin_error_rms`` is
  ``sigma``, the RMS of ``d_i`` (logit units) over the samples whose margin is below the median margin
  (the ones that could flip; all samples when none is: confident samples have larger logits and larger
  logit errors, and counting them overstates the noise where it matters about 2x), the same rule as
  ``benchmarks/weight_rounding.py``'s, and a sample is a near-tie when
  ``m_i < 2 * sigma``. ``flips_near_tie`` counts the flips among them: when every flip is a near-tie,
  the int8 model disagrees only where the float model itself barely decided, and another rounding of
  the same quality may flip a different handful;
* ``expected_agreement``: a smooth estimate of the agreement, far less noisy than counting flips:
  with ``d_i`` taken as normal noise of RMS ``sigma``, sample ``i`` flips with probability
  ``Phi(-m_i / sigma)``, so ``expected_agreement = 1 - mean_i Phi(-m_i / sigma)`` (1 when
  ``sigma`` is 0). On the real Lite0 (104 samples, 6 rounding seeds of one repair,
  ``benchmarks/results/weight_rounding.json``) the flips counted were 1, 4, 5, 4, 6, 3 (mean 3.8) and
  this estimate said 3.3-4.4 (mean 3.7);
* ``top1_agreement_ci95``: a 95 % interval for the agreement. The views of one photo are not
  independent samples (they flip together), so when the sample -> image grouping is known
  (``groups``) it is a cluster bootstrap over the distinct images: images drawn with replacement
  :data:`BOOTSTRAP_RESAMPLES` times (seed :data:`BOOTSTRAP_SEED`, so it is reproducible), the
  agreement of each resample's views, the 2.5th-97.5th percentiles. When the resamples cannot vary
  (every image agrees on the same share of its views, e.g. no flip at all) the bootstrap collapses
  to a point and says nothing, so Wilson's score interval on the images stands in (each image one
  observation: the limit of fully correlated views). Correlation can only add uncertainty, and a
  percentile bootstrap over a handful of images is too narrow (3 photos with 6, 6 and 7 of 8 views
  agreeing give 75.0-87.5 %), so the interval is never narrower than Wilson's score interval on the
  samples (as if every view were an independent image): it spans both. Without ``groups``: Wilson's
  interval on the samples. ``ci_method`` names the rule. Measured (``benchmarks/fidelity_interval.py``):
  it contains the true agreement 92-100 % of the time where the bootstrap alone does 24-94 %; on a
  handful of photos it is conservative (wide), which is what a handful of photos can tell.

These measure *fidelity to the float model*, not accuracy: with random weights they are
numbers about noise. Held-out images must not be calibration images (the quantizer has
fitted its ranges to those, so they flatter the result). The embedded default set keeps
a few photographs apart for this (:func:`edgenet.convert.calibration.holdout_images`); because
there are only a handful, each is also seen through a fixed set of crops and flips
(:data:`VIEWS`, as many as it takes to reach :data:`MIN_HOLDOUT_SAMPLES`), which gives enough tensors for a
stable SQNR without touching the calibration photos.

Two models measured on the same held-out samples are compared by their *paired* flips: the samples only one of
them flips (:func:`paired_flips`), never by the difference of two agreement rates, whose intervals overlap even
when one model is better on every sample where they differ. The views of one photo flip together, so the test is
over photos (:func:`sign_flip_exact`: per photo, the views only A flips minus those only B flips, signs swapped at
random under "equally good"); with one view per photo, or when the photos are unknown, it is the exact McNemar
test on the samples (:func:`mcnemar_exact`). Counting 13 against 3 views as 16 independent samples (p = 0.021)
overstates the evidence when those views come from a few photos. Flips are rare, so the comparison also tests
the error that decides them: per photo, the squared error on the float top-1/top-2 margin over its close calls
(``close_margin_sq_error``), paired by a sign-flip test over the photos (:func:`sign_flip_test`); a model that
flips no more samples and is closer there is the better one (:attr:`PairedFlips.closer`).

Only numpy and Pillow at module level; the models are passed in as callables.
"""

from __future__ import annotations

import math
import os
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass
from pathlib import Path
from statistics import NormalDist

import numpy as np
from PIL import Image

from ..errors import EdgenetError, InputFileError
from ..pixels.contract import PreprocessContract
from ..pixels.images import list_image_files, load_image
from ..pixels.preprocess import centre_crop_box, pixels_to_input, resize_box
from .calibration import DEFAULT_SOURCE, holdout_images

__all__ = ["Fidelity", "HoldoutSet", "PairedFlips", "VIEWS", "agreement_interval", "agreement_line",
           "cluster_bootstrap", "fidelity_metrics", "holdout_set", "holdout_view", "mcnemar_exact", "measure_fidelity",
           "paired_flips", "sign_flip_exact", "sign_flip_test", "wilson_interval"]

#: (crop side as a fraction of the shorter side, horizontal anchor 0..1, vertical anchor 0..1, flip).
#: The first view is the evaluation crop of :func:`edgenet.pixels.preprocess.preprocess`'s geometry.
VIEWS: tuple[tuple[float | None, float, float, bool], ...] = (
    (None, 0.5, 0.5, False),
    (None, 0.5, 0.5, True),
    (0.8, 0.0, 0.0, False),
    (0.8, 1.0, 0.0, True),
    (0.8, 0.0, 1.0, True),
    (0.8, 1.0, 1.0, False),
    (0.6, 0.5, 0.5, False),
    (0.6, 0.5, 0.5, True),
)
#: Held-out images are seen through as many of :data:`VIEWS` as it takes to reach this many samples (all 8 views
#: below 32 images, one from 256 images on): the budget judges on hundreds of views, not a few dozen.
MIN_HOLDOUT_SAMPLES = 256
#: At most this many held-out images from a user folder (keeps the check to about a minute for Lite2 on 2 cores).
MAX_HOLDOUT_IMAGES = 512
#: A sample is a near-tie when its float top-1/top-2 margin is below this many RMS margin errors.
NEAR_TIE_SIGMAS = 2.0
#: Cluster bootstrap of the agreement interval: resamples, seed, and the interval's coverage.
BOOTSTRAP_RESAMPLES = 2000
BOOTSTRAP_SEED = 0
CI_LEVEL = 0.95
#: The sign-flip test on the close-call margin errors: exact up to this many photos, else this many seeded draws.
SIGN_FLIP_EXACT_MAX = 16
SIGN_FLIP_DRAWS = 20_000


@dataclass(frozen=True)
class Fidelity:
    """Quantized-vs-float agreement on held-out images (see the module docstring)."""

    top1_agreement: float
    top5_overlap: float
    sqnr_db: float
    samples: int
    images: int
    source: str
    max_abs_logit_error: float
    flips: int  # samples whose top-1 differs
    near_ties: int  # samples whose float top-1/top-2 margin is < NEAR_TIE_SIGMAS x margin_error_rms
    flips_near_tie: int  # flips among the near-ties
    margin_error_rms: float  # RMS of the quantized model's error on the float top-1/top-2 margin (below-median margins)
    expected_agreement: float  # 1 - mean Phi(-margin / margin_error_rms): the agreement without the counting noise
    top1_agreement_ci95: tuple[float, float]  # 95 % interval of top1_agreement (see ci_method)
    ci_method: str  # how the interval was made, e.g. "cluster bootstrap over 28 images, at least Wilson on 104 samples"
    #: Indices (rows of the held-out set) of the flipped samples: two models measured on the same held-out set are
    #: compared by their paired flips (:func:`paired_flips`, :func:`mcnemar_exact`), not by two rates.
    flipped_samples: tuple[int, ...] = ()
    #: The photo id of each flipped sample (parallel to ``flipped_samples``; ``None``: photos unknown): the paired
    #: test counts the views of one photo as that photo's evidence, not as independent samples.
    flipped_images: tuple[int, ...] | None = None
    #: Per photo (in the order of the sorted photo ids; per sample without them): the sum of the squared margin
    #: errors ``d_i**2`` over its close calls (the samples whose float margin is below the median, the same samples
    #: for every model of one float model and held-out set). What decides which close calls flip, paired by photo.
    close_margin_sq_error: tuple[float, ...] = ()

    def to_dict(self) -> dict:
        out = asdict(self)
        out["top1_agreement_ci95"] = list(self.top1_agreement_ci95)
        out["flipped_samples"] = list(self.flipped_samples)
        out["flipped_images"] = None if self.flipped_images is None else list(self.flipped_images)
        out["close_margin_sq_error"] = list(self.close_margin_sq_error)
        return out


@dataclass(frozen=True, eq=False)
class HoldoutSet:
    """Held-out input tensors (N, res, res, 3) float32 with a description of where they came from."""

    array: np.ndarray
    images: int
    source: str
    note: str
    #: Image id (0 .. images-1) of each row of ``array``: the views of one photo share it. ``None``: unknown.
    groups: np.ndarray | None = None

    def split(self) -> tuple[HoldoutSet, HoldoutSet | None]:
        """``(choose, report)``: two disjoint halves by image (even image ids choose, odd ones report), all views of
        a photo on one side; ``(self, None)`` with fewer than 2 images or no grouping. The accuracy budget picks its
        rung on ``choose`` and states the kept model's agreement on ``report``, which no choice has seen."""
        if self.groups is None or self.images < 2:
            return self, None
        _, ids = np.unique(self.groups, return_inverse=True)
        halves = []
        for parity, name in ((0, "choose"), (1, "report")):
            rows = np.flatnonzero(ids % 2 == parity)
            _, regrouped = np.unique(ids[rows], return_inverse=True)
            halves.append(HoldoutSet(self.array[rows], int(regrouped.max()) + 1, f"{self.source} ({name} half)",
                                     self.note, regrouped.astype(np.int64)))
        return halves[0], halves[1]


def _count(n: int, noun: str) -> str:
    return f"{n} {noun}{'' if n == 1 else 's'}"


def _phi(x: float) -> float:
    """The standard normal CDF."""
    return 0.5 * math.erfc(-x / math.sqrt(2.0))


def wilson_interval(successes: float, n: int, level: float = CI_LEVEL) -> tuple[float, float]:
    """Wilson's score interval for a proportion ``successes / n`` (``successes`` may be fractional)."""
    z = NormalDist().inv_cdf(0.5 + level / 2)
    p = successes / n
    centre = (p + z * z / (2 * n)) / (1 + z * z / n)
    half = z / (1 + z * z / n) * math.sqrt(max(0.0, p * (1 - p) / n + z * z / (4 * n * n)))
    return max(0.0, centre - half), min(1.0, centre + half)


def _by_image(agree: np.ndarray, groups) -> tuple[np.ndarray, np.ndarray]:
    """Per distinct image: (views, views agreeing)."""
    _, index = np.unique(np.asarray(groups).reshape(-1), return_inverse=True)
    images = int(index.max()) + 1
    views = np.bincount(index, minlength=images).astype(np.float64)
    return views, np.bincount(index, weights=np.asarray(agree, dtype=np.float64), minlength=images)


def cluster_bootstrap(agree: np.ndarray, groups: np.ndarray | Sequence[int], *,
                      resamples: int = BOOTSTRAP_RESAMPLES, seed: int = BOOTSTRAP_SEED,
                      level: float = CI_LEVEL) -> tuple[float, float]:
    """The plain percentile cluster bootstrap of the mean of ``agree`` over the distinct images of ``groups`` (images
    drawn with replacement), without :func:`agreement_interval`'s floors. ``agree`` may be numeric: per-sample
    differences (e.g. float correct minus int8 correct, -1/0/1) give the interval of a paired top-1 drop."""
    views, agreed = _by_image(np.asarray(agree, dtype=np.float64).reshape(-1), groups)
    drawn = np.random.default_rng(seed).integers(0, len(views), size=(resamples, len(views)))
    boot = agreed[drawn].sum(axis=1) / views[drawn].sum(axis=1)
    tail = 100.0 * (1 - level) / 2
    low, high = np.percentile(boot, [tail, 100.0 - tail])
    return float(low), float(high)


def agreement_interval(agree: np.ndarray, groups: np.ndarray | Sequence[int] | None = None, *,
                       resamples: int = BOOTSTRAP_RESAMPLES, seed: int = BOOTSTRAP_SEED,
                       level: float = CI_LEVEL) -> tuple[tuple[float, float], str]:
    """``((low, high), method)``: an interval for the mean of ``agree`` (one bool per sample).

    With ``groups`` (an image id per sample) a cluster bootstrap over the distinct images (Wilson on the images
    when the resamples cannot vary), widened to at least Wilson on the samples; without, Wilson on the samples
    (module docstring).
    """
    agree = np.asarray(agree, dtype=bool).reshape(-1)
    n = len(agree)
    if n == 0:
        raise ValueError("an agreement interval needs at least one sample")
    if groups is None:
        return wilson_interval(float(agree.sum()), n, level), f"Wilson on {_count(n, 'sample')}"
    groups = np.asarray(groups).reshape(-1)
    if len(groups) != n:
        raise ValueError(f"groups has {len(groups)} entries for {n} samples")
    views, agreed = _by_image(agree, groups)
    images = len(views)
    shares = agreed / views
    floor_low, floor_high = wilson_interval(float(agree.sum()), n, level)  # views at best independent: never narrower
    floor = f"at least Wilson on {_count(n, 'sample')}"
    if np.all(shares == shares[0]):  # every resample gives the same agreement: the bootstrap says nothing
        low, high = wilson_interval(float(shares.sum()), images, level)
        return (min(low, floor_low), max(high, floor_high)), f"Wilson on {_count(images, 'image')}, {floor}"
    low, high = cluster_bootstrap(agree, groups, resamples=resamples, seed=seed, level=level)
    return ((min(low, floor_low), max(high, floor_high)),
            f"cluster bootstrap over {_count(images, 'image')}, {floor}")


def fidelity_metrics(reference: np.ndarray, quantized: np.ndarray, *, images: int | None = None,
                     source: str = "", groups: np.ndarray | Sequence[int] | None = None) -> Fidelity:
    """Compare logits ``reference`` (float model) and ``quantized`` (N, classes).

    ``groups``: the image id of each sample (views of one photo share one), for the agreement's interval;
    ``images`` defaults to the number of distinct ids (else to N).
    """
    ref = np.asarray(reference, dtype=np.float64).reshape(len(reference), -1)
    q = np.asarray(quantized, dtype=np.float64).reshape(len(quantized), -1)
    if ref.shape != q.shape or ref.shape[0] == 0:
        raise ValueError(f"fidelity needs two equal, non-empty logit arrays, got {ref.shape} and {q.shape}")
    k = min(5, ref.shape[1])
    agree = np.argmax(ref, axis=1) == np.argmax(q, axis=1)
    top1 = float(np.mean(agree))
    top_ref = np.argsort(-ref, axis=1, kind="stable")[:, :k]
    top_q = np.argsort(-q, axis=1, kind="stable")[:, :k]
    overlap = float(np.mean([len(set(a) & set(b)) / k for a, b in zip(top_ref, top_q, strict=True)]))
    signal = float(np.sum(ref**2))
    noise = float(np.sum((ref - q) ** 2))
    if noise == 0.0:
        sqnr = math.inf
    elif signal == 0.0:
        sqnr = -math.inf
    else:
        sqnr = 10.0 * math.log10(signal / noise)
    if ref.shape[1] >= 2:
        rows = np.arange(len(ref))
        a, b = top_ref[:, 0], top_ref[:, 1]
        margin = ref[rows, a] - ref[rows, b]
        margin_error = margin - (q[rows, a] - q[rows, b])
        # The noise where it matters: over the samples with a margin below the median (module docstring).
        close = margin < np.median(margin)
        if not close.any():  # every margin equal (or one sample)
            close = np.ones(len(margin), dtype=bool)
        sigma = float(np.sqrt(np.mean(margin_error[close] ** 2)))
        near = margin < NEAR_TIE_SIGMAS * sigma
        expected = 1.0 if sigma == 0.0 else 1.0 - float(np.mean([_phi(-m / sigma) for m in margin]))
        close_sq = np.where(close, margin_error**2, 0.0)
    else:  # one class: nothing to flip
        sigma, near, expected = 0.0, np.zeros(len(ref), dtype=bool), 1.0
        close_sq = np.zeros(len(ref))
    if groups is None:
        close_by_image = close_sq
    else:
        _, index = np.unique(np.asarray(groups).reshape(-1), return_inverse=True)
        close_by_image = np.bincount(index, weights=close_sq)
    interval, method = agreement_interval(agree, groups)
    if images is None:
        images = len(np.unique(np.asarray(groups))) if groups is not None else ref.shape[0]
    return Fidelity(
        top1_agreement=top1,
        top5_overlap=overlap,
        sqnr_db=sqnr,
        samples=int(ref.shape[0]),
        images=int(images),
        source=source,
        max_abs_logit_error=float(np.max(np.abs(ref - q))),
        flips=int(np.count_nonzero(~agree)),
        near_ties=int(np.count_nonzero(near)),
        flips_near_tie=int(np.count_nonzero(near & ~agree)),
        margin_error_rms=sigma,
        expected_agreement=expected,
        top1_agreement_ci95=interval,
        ci_method=method,
        flipped_samples=tuple(int(i) for i in np.flatnonzero(~agree)),
        flipped_images=None if groups is None else
        tuple(int(g) for g in np.asarray(groups).reshape(-1)[np.flatnonzero(~agree)]),
        close_margin_sq_error=tuple(float(f"{v:.6g}") for v in close_by_image),
    )


def mcnemar_exact(only_a: int, only_b: int) -> float:
    """The two-sided exact McNemar p-value for a paired comparison of two models on the same samples.

    ``only_a``: samples that only model A gets wrong (flips), ``only_b``: those only model B gets wrong; samples
    both get right or both get wrong carry no information about which is better. Under "equally good" each of the
    ``n = only_a + only_b`` discordant samples is A's or B's with probability 1/2, so the p-value is
    ``min(1, 2 * P(X <= min(only_a, only_b)))`` with ``X ~ Binomial(n, 1/2)`` (1 when ``n`` is 0).
    """
    a, b = int(only_a), int(only_b)
    if a < 0 or b < 0:
        raise ValueError(f"discordant counts must be non-negative, got {only_a} and {only_b}")
    n = a + b
    if n == 0:
        return 1.0
    tail = sum(math.comb(n, k) for k in range(min(a, b) + 1)) / 2.0**n
    return min(1.0, 2.0 * tail)


def sign_flip_exact(net_by_image: Sequence[int]) -> float:
    """The two-sided exact p-value of a paired comparison whose samples come in correlated clusters (photos).

    ``net_by_image``: per photo, the samples (views) only model A flips minus those only model B flips. Under
    "equally good" swapping the two models' answers on a photo flips the sign of its net, independently per photo,
    so the sum's null distribution is that of ``sum(+-|net_g|)`` over the 2^G sign patterns (exact, by dynamic
    programming over the integer sums). The p-value is ``P(|sum'| >= |sum|)``. With one sample per photo every net
    is 0 or +-1 and this is exactly :func:`mcnemar_exact`; several views of one photo count as one photo's evidence,
    which they are (they flip together), not as independent samples.
    """
    nets = [abs(int(v)) for v in net_by_image]
    observed = abs(sum(int(v) for v in net_by_image))
    nets = [v for v in nets if v]
    if not nets or observed == 0:
        return 1.0
    total = sum(nets)
    # counts[s] = number of sign patterns whose sum is s - total (index offset by total); doubles hold 2^G exactly
    # up to G = 1023 and keep the ratio exact enough beyond.
    counts = np.zeros(2 * total + 1, dtype=np.float64)
    counts[total] = 1.0
    for v in nets:
        shifted = np.zeros_like(counts)
        shifted[v:] += counts[:-v]
        shifted[:-v] += counts[v:]
        counts = shifted
    sums = np.arange(-total, total + 1)
    return float(min(1.0, counts[np.abs(sums) >= observed].sum() / counts.sum()))


def sign_flip_test(differences: Sequence[float], *, seed: int = BOOTSTRAP_SEED) -> float:
    """The two-sided p-value of the sign-flip (paired permutation) test of ``sum(differences) == 0`` in distribution.

    ``differences``: per photo, model A's value minus model B's; under "equally good" each photo's sign is a coin
    toss. Exact over every sign pattern up to :data:`SIGN_FLIP_EXACT_MAX` non-zero photos, else
    :data:`SIGN_FLIP_DRAWS` seeded draws (``(1 + hits) / (1 + draws)``, never 0). Integer differences have the exact
    :func:`sign_flip_exact`.
    """
    values = np.abs(np.asarray(differences, dtype=np.float64).reshape(-1))
    observed = abs(float(np.sum(differences)))
    values = values[values > 0]
    if len(values) == 0 or observed == 0.0:
        return 1.0
    tolerance = 1e-12 * max(1.0, float(values.sum()))
    if len(values) <= SIGN_FLIP_EXACT_MAX:
        signs = 1.0 - 2.0 * ((np.arange(2 ** len(values))[:, None] >> np.arange(len(values))) & 1)
        return float(np.mean(np.abs(signs @ values) >= observed - tolerance))
    rng = np.random.default_rng(seed)
    hits = 0
    for start in range(0, SIGN_FLIP_DRAWS, 2000):
        signs = rng.choice((-1.0, 1.0), size=(min(2000, SIGN_FLIP_DRAWS - start), len(values)))
        hits += int(np.count_nonzero(np.abs(signs @ values) >= observed - tolerance))
    return (1 + hits) / (1 + SIGN_FLIP_DRAWS)


@dataclass(frozen=True)
class PairedFlips:
    """Two models (A, B) against the same float model on the same samples, compared sample by sample."""

    only_a: int  # samples A flips and B does not
    only_b: int  # samples B flips and A does not
    both: int  # samples both flip
    p_value: float  # two-sided: sign_flip_exact over the photos when known, else mcnemar_exact over the samples
    #: Photos with a sample only one model flips (``None``: the photos were not known; samples taken as independent).
    discordant_images: int | None = None
    #: B's summed squared margin error on the close calls over A's (below 1: B is closer where flips happen), and the
    #: sign-flip test of the per-photo differences (``None`` when a fidelity did not record them).
    close_error_ratio: float | None = None
    close_error_p_value: float | None = None

    @property
    def test(self) -> str:
        """How ``p_value`` was computed."""
        if self.discordant_images is None:
            return "exact McNemar on the samples"
        return f"exact sign-flip test over {_count(self.discordant_images, 'photo')} (views of a photo count once)"

    @property
    def fewer_flips(self) -> bool:
        """B flips fewer samples than A and the difference is not chance (p < 0.05)."""
        return self.only_b < self.only_a and self.p_value < 1.0 - CI_LEVEL

    @property
    def closer(self) -> bool:
        """B flips no more samples than A and its error on the close calls is lower, not by chance (p < 0.05)."""
        return (self.only_b <= self.only_a and self.close_error_ratio is not None and self.close_error_ratio < 1.0
                and self.close_error_p_value is not None and self.close_error_p_value < 1.0 - CI_LEVEL)

    @property
    def b_better(self) -> bool:
        """B beats A on paired evidence: fewer flips (:attr:`fewer_flips`), or no more flips and a lower error on
        the close calls, which decides the flips on other photos (:attr:`closer`)."""
        return self.fewer_flips or self.closer

    def to_dict(self) -> dict:
        return {**asdict(self), "test": self.test, "fewer_flips": self.fewer_flips, "closer": self.closer,
                "b_better": self.b_better}


def _flip_images(fid: dict | Fidelity) -> dict[int, int] | None:
    """Flipped sample -> its photo id, or ``None`` when the fidelity did not record the photos."""
    samples = fid.flipped_samples if isinstance(fid, Fidelity) else fid["flipped_samples"]
    images = fid.flipped_images if isinstance(fid, Fidelity) else fid.get("flipped_images")
    if images is None or len(images) != len(samples):
        return None
    return {int(s): int(g) for s, g in zip(samples, images, strict=True)}


def paired_flips(a: dict | Fidelity, b: dict | Fidelity) -> PairedFlips:
    """Compare two fidelities measured on the same held-out samples by their flipped samples.

    When both recorded the photo of each flipped sample (``flipped_images``), the test is over photos
    (:func:`sign_flip_exact`): the views of one photo flip together, so counting them as independent samples would
    overstate the evidence. Otherwise (or with one view per photo, where the two agree) exact McNemar on the samples.
    """
    fa = set(a.flipped_samples if isinstance(a, Fidelity) else a["flipped_samples"])
    fb = set(b.flipped_samples if isinstance(b, Fidelity) else b["flipped_samples"])
    only_a, only_b = fa - fb, fb - fa
    errors = {}
    ea, eb = (np.asarray(f.close_margin_sq_error if isinstance(f, Fidelity) else f.get("close_margin_sq_error") or (),
                         dtype=np.float64) for f in (a, b))
    if len(ea) and len(ea) == len(eb):
        errors = {"close_error_ratio": float(eb.sum() / ea.sum()) if ea.sum() > 0 else None,
                  "close_error_p_value": sign_flip_test(ea - eb)}
    ia, ib = _flip_images(a), _flip_images(b)
    if ia is None or ib is None or any(ia[s] != ib[s] for s in fa & fb):
        return PairedFlips(len(only_a), len(only_b), len(fa & fb), mcnemar_exact(len(only_a), len(only_b)), **errors)
    photo = {**ia, **ib}
    net: dict[int, int] = {}
    for s in only_a:
        net[photo[s]] = net.get(photo[s], 0) + 1
    for s in only_b:
        net[photo[s]] = net.get(photo[s], 0) - 1
    return PairedFlips(len(only_a), len(only_b), len(fa & fb), sign_flip_exact(list(net.values())),
                       discordant_images=len(net), **errors)


def agreement_line(fidelity: dict) -> str:
    """One line for a person: ``top-1 agreement 99.0 %, expected 96.5 % (103/104 views of 28 images, 95 % CI
    94.8-100.0 %; 1 flip, at a near-tie; 15 near-ties)``.

    ``fidelity`` is :meth:`Fidelity.to_dict` (a manifest's ``fidelity``); one written before the flips and the
    interval were recorded gives the agreement and counts only.
    """
    samples, images = int(fidelity["samples"]), int(fidelity.get("images") or fidelity["samples"])
    agreed = samples - int(fidelity["flips"]) if "flips" in fidelity else round(fidelity["top1_agreement"] * samples)
    what = f"{agreed}/{samples} views of {_count(images, 'image')}" if samples > images else \
        f"{agreed}/{_count(samples, 'image')}"
    ci = fidelity.get("top1_agreement_ci95")
    if ci:
        what += f", 95 % CI {100 * ci[0]:.1f}-{100 * ci[1]:.1f} %"
    expected = fidelity.get("expected_agreement")
    line = f"top-1 agreement {100 * fidelity['top1_agreement']:.1f} %" + (
        f", expected {100 * expected:.1f} %" if expected is not None else "") + f" ({what}"
    if "flips" not in fidelity:
        return line + ")"
    flips, near, at_ties = int(fidelity["flips"]), int(fidelity["near_ties"]), int(fidelity["flips_near_tie"])
    ties = _count(near, "near-tie")
    if flips == 0:
        return f"{line}; no flip; {ties})"
    if flips == 1:
        return f"{line}; 1 flip, {'at a' if at_ties else 'not at a'} near-tie; {ties})"
    return f"{line}; {flips} flips, {at_ties} at near-ties; {ties})"


def holdout_view(image: Image.Image, view: tuple[float | None, float, float, bool],
                 contract: PreprocessContract) -> np.ndarray:
    """One of :data:`VIEWS` of ``image`` as the model's input under ``contract``: a crop (``None``: the
    contract's centre crop; else that fraction of the shorter side at relative offsets), resized, mirrored."""
    fraction, ax, ay, flip = view
    if fraction is None:
        box = centre_crop_box(image.width, image.height, contract.resolution, contract.crop_padding)
    else:
        side = max(1, int(fraction * min(image.width, image.height)))
        left = int(round(ax * (image.width - side)))
        top = int(round(ay * (image.height - side)))
        box = (left, top, left + side, top + side)
    resized = resize_box(image, box, contract)
    if flip:
        resized = resized.transpose(Image.Transpose.FLIP_LEFT_RIGHT)
    return pixels_to_input(np.asarray(resized, dtype=np.uint8), contract)


def _tensors(paths: Sequence[Path], contract: PreprocessContract) -> tuple[list[np.ndarray], list[int], int]:
    """Decode ``paths`` (skipping unreadable ones) into tensors, with views when there are few.

    Returns the tensors, the image id (0, 1, ...) of each, and the number of images decoded.
    """
    decoded = []
    for path in paths:
        try:
            decoded.append(load_image(path))
        except InputFileError:
            continue
    views = VIEWS[: max(1, min(len(VIEWS), math.ceil(MIN_HOLDOUT_SAMPLES / max(1, len(decoded)))))]
    pairs = [(holdout_view(image, view, contract), i) for i, image in enumerate(decoded) for view in views]
    return [row for row, _ in pairs], [i for _, i in pairs], len(decoded)


def holdout_set(
    calib_source: str | os.PathLike,
    contract: PreprocessContract,
    calibration_files: Sequence[Path] = (),
    holdout: str | os.PathLike | None = None,
) -> HoldoutSet | None:
    """The images for the fidelity check, never overlapping the calibration images.

    ``holdout`` (a folder) wins; else the embedded held-out photos for ``"default"``; else the
    images of the user's calibration folder that calibration did not use (at most
    :data:`MAX_HOLDOUT_IMAGES`, in sorted order). ``None`` when nothing is left over (every image
    was used for calibration): the caller reports that fidelity was not measured.
    """
    # realpath, not Path.resolve: it never raises (a link loop is the walk's skip, not a crash here).
    used = {os.path.realpath(p) for p in calibration_files}
    if holdout is not None:
        root = Path(holdout)
        if not root.is_dir():
            raise InputFileError(root, "holdout folder does not exist or is not a folder")
        paths = [p for p in list_image_files(root) if os.path.realpath(p) not in used][:MAX_HOLDOUT_IMAGES]
        source = str(root)
    elif str(calib_source) == DEFAULT_SOURCE:
        paths = list(holdout_images())
        source = "default holdout"
    else:
        paths = [p for p in list_image_files(Path(calib_source)) if os.path.realpath(p) not in used][:MAX_HOLDOUT_IMAGES]
        source = f"{calib_source} (images not used for calibration)"
    rows, groups, images = _tensors(paths, contract)
    if not rows:
        if holdout is not None:
            raise EdgenetError(f"holdout folder {holdout}: no readable images that are not calibration images")
        return None
    note = f"{images} held-out image(s) from {source}"
    if len(rows) > images:
        note += f", {len(rows) // images} fixed crops/flips each"
    return HoldoutSet(np.stack(rows).astype(np.float32), images, source, note, np.asarray(groups, dtype=np.int64))


def measure_fidelity(
    reference: Callable[[np.ndarray], np.ndarray],
    quantized: Callable[[np.ndarray], np.ndarray],
    holdout: HoldoutSet,
) -> Fidelity:
    """Run both models (callables taking a float batch, returning logits) on ``holdout``."""
    ref = np.concatenate([np.asarray(reference(holdout.array[i : i + 1])) for i in range(len(holdout.array))])
    quant = np.concatenate([np.asarray(quantized(holdout.array[i : i + 1])) for i in range(len(holdout.array))])
    return fidelity_metrics(ref, quant, images=holdout.images, source=holdout.source, groups=holdout.groups)
