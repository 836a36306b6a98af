"""Paired tests, corrections and Friedman/Nemenyi against scipy and against their definitions."""

import numpy as np
import pytest
from scipy import stats as sps

from benchmark import stats


def test_ttest_matches_scipy_including_batched_rows():
    rng = np.random.default_rng(0)
    a, b = rng.normal(size=(5, 40)), rng.normal(0.2, 1.0, size=(5, 40))
    t, p = stats.ttest(a - b)
    ref = sps.ttest_rel(a, b, axis=1)
    np.testing.assert_allclose(t, ref.statistic, rtol=1e-10)
    np.testing.assert_allclose(p, ref.pvalue, rtol=1e-10)
    r = stats.paired_test(a[0], b[0], "ttest")
    assert r.p_value == pytest.approx(ref.pvalue[0], rel=1e-10)
    ci = ref.confidence_interval()  # scipy's CI of the mean difference
    assert (r.ci_low, r.ci_high) == pytest.approx((ci.low[0], ci.high[0]), rel=1e-10)
    assert r.effect_size == pytest.approx(np.mean(a[0] - b[0]) / np.std(a[0] - b[0], ddof=1))


def test_identical_models_get_p_one_not_nan():
    x = np.random.default_rng(1).random(50)
    for test in stats.TESTS:
        r = stats.paired_test(x, x.copy(), test, n_resamples=500)
        assert r.p_value == pytest.approx(1.0) and r.mean_diff == 0.0, test


@pytest.mark.parametrize("n, discrete", [(12, False), (45, False), (300, True), (80, False)])
def test_wilcoxon_matches_scipy(n, discrete):
    rng = np.random.default_rng(n)
    if discrete:  # per-user metric style: many zeros and ties, normal approximation path
        a, b = rng.integers(0, 4, n) / 3, rng.integers(0, 4, n) / 3
    else:  # continuous, exact path for n <= 50
        a, b = rng.normal(size=n), rng.normal(0.3, 1.0, n)
    statistic, p, r = stats.wilcoxon(a - b)
    ref = sps.wilcoxon(a, b)
    assert statistic == pytest.approx(ref.statistic) and p == pytest.approx(ref.pvalue, rel=1e-9)
    d = (a - b)[a != b]
    ranks = sps.rankdata(np.abs(d))
    assert r == pytest.approx((ranks[d > 0].sum() - ranks[d < 0].sum()) / ranks.sum())
    assert stats.paired_test(a, b, "wilcoxon").effect_name == "rank-biserial"


def test_randomization_exact_matches_scipy_permutation_test():
    rng = np.random.default_rng(3)
    for n in (6, 11):
        d = rng.normal(0.4, 1.0, n)
        ref = sps.permutation_test((d,), np.mean, permutation_type="samples", n_resamples=np.inf)
        assert stats.randomization(d, n_resamples=10_000) == pytest.approx(ref.pvalue, rel=1e-12)


def test_randomization_agrees_with_ttest_on_large_normal_samples():
    rng = np.random.default_rng(4)
    for shift in (0.0, 0.05, 0.1, 0.15):
        d = rng.normal(shift, 1.0, 800)
        p_rand = stats.randomization(d, n_resamples=20_000, seed=1)
        p_t = float(stats.ttest(d)[1])
        assert abs(p_rand - p_t) < 0.015, (shift, p_rand, p_t)


def test_bootstrap_interval_matches_scipy_percentile_bootstrap():
    rng = np.random.default_rng(5)
    d = rng.exponential(1.0, 200) - 0.8
    low, high, _ = stats.bootstrap(d, n_resamples=20_000, seed=0)
    ref = sps.bootstrap((d,), np.mean, method="percentile", n_resamples=20_000, random_state=1).confidence_interval
    width = ref.high - ref.low
    assert abs(low - ref.low) < 0.03 * width and abs(high - ref.high) < 0.03 * width


def _null_metrics(rng, sims, n):
    """Two models with the same per-user metric distribution (NDCG-like: many zeros)."""
    def draw():
        ranks = rng.geometric(0.08, size=(sims, n))
        return np.where(ranks <= 10, 1 / np.log2(ranks + 1), 0.0)

    return draw(), draw()


def test_false_positive_rate_at_005_is_calibrated():
    # 2000 simulated null comparisons of 100 users: the rate's Monte Carlo sd is ~0.005,
    # so [0.03, 0.07] is four sd either side. Seeds are fixed: the outcome is deterministic.
    rng = np.random.default_rng(6)
    a, b = _null_metrics(rng, 2000, 100)
    d = a - b
    rates = {
        "ttest": np.mean(stats.ttest(d)[1] <= 0.05),
        "randomization": np.mean(stats.randomization(d, n_resamples=1000, seed=7) <= 0.05),
        "bootstrap": np.mean(stats.bootstrap(d, n_resamples=1000, seed=8)[2] <= 0.05),
    }
    for name, rate in rates.items():
        assert 0.03 <= rate <= 0.07, (name, rate)


def test_holm_and_bonferroni_keep_family_wise_error_at_alpha():
    # 20,000 families of 10 null t-tests: uncorrected, ~40% of families have a false positive.
    rng = np.random.default_rng(9)
    d = rng.normal(size=(20_000, 10, 30))
    p = stats.ttest(d)[1]
    assert np.mean((p <= 0.05).any(1)) > 0.3
    for method in ("holm", "bonferroni"):
        adjusted = np.apply_along_axis(stats.correct, 1, p, method)
        fwer = np.mean((adjusted <= 0.05).any(1))
        assert fwer <= 0.05 + 0.005, (method, fwer)  # 0.005 = 3 Monte Carlo sd


def test_corrections_match_their_definitions_and_scipy_bh():
    p = np.random.default_rng(10).random(12) ** 3
    m = len(p)
    order = np.argsort(p)
    holm = np.empty(m)
    holm[order] = [min(1, max((m - j) * p[order[j]] for j in range(i + 1))) for i in range(m)]
    np.testing.assert_allclose(stats.correct(p, "holm"), holm)
    np.testing.assert_allclose(stats.correct(p, "bonferroni"), np.minimum(1, p * m))
    np.testing.assert_allclose(stats.correct(p, "bh"), sps.false_discovery_control(p, method="bh"))
    np.testing.assert_allclose(stats.correct(p, "none"), p)


def test_planted_improvement_is_detected_by_every_test():
    rng = np.random.default_rng(11)
    base = np.where(rng.random(400) < 0.3, rng.random(400), 0.0)
    better = base + np.where(rng.random(400) < 0.3, 0.2, 0.0)
    for test in stats.TESTS:
        r = stats.paired_test(better, base, test, n_resamples=2000)
        assert r.p_value < 1e-3 and r.mean_diff > 0 and r.ci_low > 0 and r.effect_size > 0, test


def test_friedman_matches_scipy_and_nemenyi_matches_demsar_table():
    rng = np.random.default_rng(12)
    scores = np.round(rng.random((6, 4)), 1)  # rounding makes ties inside datasets
    res = stats.friedman_nemenyi(scores, list("abcd"))
    ref = sps.friedmanchisquare(*scores.T)
    assert res.statistic == pytest.approx(ref.statistic) and res.p_value == pytest.approx(ref.pvalue)
    # Critical values q_0.05 for k = 2..6 from Demsar (2006), Table 5(a).
    for k, q in zip(range(2, 7), (1.960, 2.343, 2.569, 2.728, 2.850)):
        assert stats.nemenyi_q(k) == pytest.approx(q, abs=1e-3)
    assert res.cd == pytest.approx(2.569 * np.sqrt(4 * 5 / (6 * 6)), abs=1e-3)
    best_first = np.array([[4.0, 3.0, 2.0, 1.0]] * 10)
    clear = stats.friedman_nemenyi(best_first, list("abcd"))
    assert list(clear.avg_ranks) == [1, 2, 3, 4] and clear.nemenyi_p[0, 3] < 0.05 < clear.nemenyi_p[0, 1]


def test_non_finite_values_and_nan_p_values_are_refused_not_read_as_significant():
    a, b = np.linspace(0, 1, 20), np.linspace(0, 1, 20)
    a[3] = np.nan
    for test in stats.TESTS:
        with pytest.raises(ValueError, match="finite"):
            stats.paired_test(a, b, test, n_resamples=100)
    with pytest.raises(ValueError, match="NaN"):
        stats.correct(np.array([0.01, np.nan, 0.02]), "bh")


def test_effect_size_of_a_constant_difference_is_infinite_with_its_sign():
    up = stats.paired_test(np.arange(5.0) + 0.5, np.arange(5.0))
    down = stats.paired_test(np.arange(5.0), np.arange(5.0) + 0.5)
    assert (up.p_value, up.effect_size, down.effect_size) == (0.0, np.inf, -np.inf)
    assert stats.paired_test(np.arange(5.0), np.arange(5.0)).effect_size == 0.0
