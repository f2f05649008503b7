"""Intervals and stability verdicts on synthetic runs from known distributions (seeded)."""

from __future__ import annotations

import math

import numpy as np
import pytest
from scipy import stats

from edgenet.decide.confidence import (
    PERCENTILES,
    binomial_cdf,
    budget_verdict,
    count_modes,
    drift,
    interval_for,
    order_statistic_ranks,
    percentile_interval,
    runs_needed,
    stability,
    throttling,
)

DRAWS = 2000


def _binomial_tolerance(p: float, trials: int, sigmas: float = 4.0) -> float:
    return sigmas * math.sqrt(p * (1 - p) / trials)


def test_binomial_cdf_matches_scipy():
    for n, p in ((1, 0.5), (7, 0.5), (200, 0.3), (1500, 0.99)):
        assert np.allclose(binomial_cdf(n, p), stats.binom.cdf(np.arange(n + 1), n, p), atol=1e-12)


@pytest.mark.parametrize(
    ("dist", "true_quantile"),
    [
        # lognormal latency around 10 ms with a long right tail
        (lambda rng, n: rng.lognormal(math.log(10.0), 0.25, n), lambda q: 10.0 * math.exp(0.25 * stats.norm.ppf(q))),
        # a shifted exponential: a floor plus queueing delay
        (lambda rng, n: 5.0 + rng.exponential(2.0, n), lambda q: 5.0 - 2.0 * math.log1p(-q)),
    ],
    ids=["lognormal", "shifted-exponential"],
)
@pytest.mark.parametrize(("stat", "n"), [("p50", 31), ("p50", 200), ("p90", 60), ("p95", 150), ("p99", 500)])
def test_interval_covers_the_true_percentile_at_the_stated_rate(dist, true_quantile, stat, n):
    """Over many seeded draws the interval holds the true percentile as often as its exact coverage
    says (within 4 binomial standard deviations), and that coverage is at least the level asked."""
    q = PERCENTILES[stat]
    truth = true_quantile(q)
    low, high, exact = order_statistic_ranks(n, q, 0.95)
    assert low is not None and high is not None and exact >= 0.95
    rng = np.random.default_rng(1234 + n)
    hits = 0
    for _ in range(DRAWS):
        iv = interval_for(dist(rng, n), stat)
        hits += iv.low_ms <= truth <= iv.high_ms
    rate = hits / DRAWS
    assert abs(rate - exact) <= _binomial_tolerance(exact, DRAWS), (rate, exact)
    assert rate >= 0.95 - _binomial_tolerance(0.95, DRAWS)


def test_a_too_narrow_rule_would_fail_the_coverage_check():
    """The coverage check can fail: the interquartile-style band x(n/2-1)..x(n/2+1) covers far less."""
    rng = np.random.default_rng(7)
    n, hits = 101, 0
    for _ in range(DRAWS):
        x = np.sort(rng.lognormal(0.0, 0.3, n))
        hits += x[49] <= 1.0 <= x[51]
    assert hits / DRAWS < 0.95 - _binomial_tolerance(0.95, DRAWS)


def test_too_few_runs_leaves_the_upper_end_unbounded():
    assert runs_needed(0.99) == 368 and runs_needed(0.5) == 6 and runs_needed(0.9) == 36
    samples = np.random.default_rng(0).lognormal(2.0, 0.2, 50)
    iv = interval_for(samples, "p99")
    assert iv.high_ms is None and iv.low_ms is not None and not iv.bounded
    assert iv.describe().endswith("-unbounded ms") and iv.runs_needed == 368
    assert interval_for(np.arange(368.0) + 1, "p99").bounded
    assert not interval_for(np.arange(367.0) + 1, "p99").bounded
    assert interval_for([], "p50") is None


def test_mean_min_max_intervals():
    samples = np.random.default_rng(3).normal(10.0, 1.0, 400)
    iv = interval_for(samples, "mean")
    assert iv.method == "normal approximation" and iv.low_ms < 10.0 < iv.high_ms
    assert iv.high_ms - iv.low_ms == pytest.approx(2 * 1.96 / 20, rel=0.1)
    assert interval_for(samples, "min").method == "none"


def test_budget_verdicts():
    iv = percentile_interval([9.0, 9.2, 9.4, 9.5, 9.6, 9.8, 10.4], 0.5)  # 7 runs: x(1)..x(7)
    assert (iv.low_ms, iv.high_ms) == (9.0, 10.4)
    assert budget_verdict(iv, 9.5, 11.0) == "fits"
    assert budget_verdict(iv, 9.5, 10.0) == "too close to call"
    assert budget_verdict(iv, 9.5, 8.9) == "does not fit"
    unbounded = interval_for(np.linspace(1, 2, 50), "p99")
    assert budget_verdict(unbounded, 1.99, 100.0) == "too close to call"  # p99 of 50 runs proves nothing
    assert budget_verdict(None, 9.5, 10.0) == "fits"  # no raw runs: the point decides


def test_drift_is_found_when_large_and_beyond_noise():
    rng = np.random.default_rng(5)
    steady = rng.lognormal(2.0, 0.05, 200)
    assert drift(steady) == 0.0
    slower = np.concatenate([rng.normal(7.0, 0.2, 100), rng.normal(8.0, 0.2, 100)])
    assert drift(slower) == pytest.approx(100 / 7, abs=2.0)
    tiny = np.concatenate([rng.normal(7.0, 0.05, 100), rng.normal(7.2, 0.05, 100)])  # real but < 5 %
    assert drift(tiny) == 0.0
    assert drift(steady[:10]) is None


def test_modes_two_clusters_but_not_a_tail_or_a_skew():
    rng = np.random.default_rng(11)
    false_alarms = 0
    for _ in range(100):
        false_alarms += len(count_modes(rng.lognormal(2.0, 0.15, 200))) > 1
        false_alarms += len(count_modes(3.0 + rng.exponential(1.0, 200))) > 1
        # a few slow outliers (3 %) are a tail, not a mode
        false_alarms += len(count_modes(np.concatenate([rng.lognormal(2.0, 0.05, 194), rng.lognormal(2.7, 0.1, 6)]))) > 1
    assert false_alarms <= 3
    # the issue's picture: runs spread from 6.7 to 10.9 ms in two clusters
    found = [count_modes(np.concatenate([rng.normal(7.0, 0.2, 90), rng.normal(10.5, 0.3, 60)])) for _ in range(50)]
    assert sum(len(m) == 2 for m in found) >= 48
    assert found[0][0] == pytest.approx(7.0, rel=0.03) and found[0][1] == pytest.approx(10.5, rel=0.03)


def test_throttling_flags_of_a_pi():
    assert throttling(None, None) is None  # not a Pi
    assert throttling("0x0", "0x0") is None
    assert throttling("0x50000", "0x50000") is None  # throttled before this run, not during it
    assert "under-voltage" in throttling("0x0", "0x10000")
    assert "throttled" in throttling("0x0", "0x4") and "frequency capped" in throttling("0x0", "0x2")


def test_stability_verdict_names_every_issue():
    rng = np.random.default_rng(2)
    calm = stability(rng.lognormal(2.0, 0.05, 400), "p50")
    assert calm.stable and calm.verdict == "stable" and len(calm.modes_ms) == 1
    bad = stability(np.concatenate([rng.normal(7.0, 0.2, 100), rng.normal(10.5, 0.3, 100)]), "p99",
                    throttled_before="0x0", throttled_after="0x20002")
    text = bad.verdict
    assert not bad.stable
    assert "drifted +" in text and "2 modes" in text and "frequency capped" in text
    assert "too few runs for p99: 200, a 95% interval needs 368" in text
    assert stability([], "p50").issues == ("no raw runs recorded",)
