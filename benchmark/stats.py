"""Paired significance tests on per-user metrics, multiple-comparison corrections, Friedman + Nemenyi.

Every test takes the per-user differences ``d = a - b`` of two models on the same users (aligned by
user id by the caller). The core functions work along the last axis of ``d`` so that one call can
test thousands of simulated comparisons at once (the calibration tests rely on it).
All tests are two-sided.
"""

from __future__ import annotations

import math
from dataclasses import dataclass


import numpy as np
from scipy import stats as sps

TESTS = ("ttest", "wilcoxon", "randomization", "bootstrap")
CORRECTIONS = ("holm", "bonferroni", "bh", "none")
TEST_NAMES = {
    "ttest": "paired t-test",
    "wilcoxon": "Wilcoxon signed-rank test",
    "randomization": "paired randomization (sign-flip) test",
    "bootstrap": "paired bootstrap test",
}
CORRECTION_NAMES = {"holm": "Holm", "bonferroni": "Bonferroni", "bh": "Benjamini-Hochberg", "none": "no"}
_CHUNK = 1024  # resamples per matrix product: bounds memory at ~_CHUNK x n_users floats


@dataclass(frozen=True)
class PairedResult:
    test: str
    n: int  # paired users
    mean_diff: float  # mean of a - b
    ci_low: float  # (1 - alpha) CI of the mean difference: t interval, or bootstrap percentile
    ci_high: float
    effect_size: float  # its sign is the direction the test found (for Wilcoxon, W+ - W-, not the mean)
    effect_name: str  # "d_z" (Cohen's d for paired samples) or "rank-biserial"
    statistic: float
    p_value: float


def _t_interval(d: np.ndarray, alpha: float) -> tuple[np.ndarray, np.ndarray]:
    n = d.shape[-1]
    half = sps.t.ppf(1 - alpha / 2, n - 1) * d.std(-1, ddof=1) / math.sqrt(n)
    mean = d.mean(-1)
    return mean - half, mean + half


def ttest(d: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Paired t-test on differences along the last axis -> (t, p). Zero variance: p = 1 if the
    mean difference is 0 (identical models), else 0 (where scipy would return NaN)."""
    d = np.asarray(d, dtype=np.float64)
    n = d.shape[-1]
    mean, sd = d.mean(-1), d.std(-1, ddof=1)
    with np.errstate(divide="ignore", invalid="ignore"):
        t = mean / (sd / math.sqrt(n))
    t = np.where(sd > 0, t, np.where(mean == 0, 0.0, np.copysign(np.inf, mean)))
    return t, 2 * sps.t.sf(np.abs(t), n - 1)


def cohens_dz(d: np.ndarray) -> np.ndarray:
    """Standardised mean difference of paired samples: mean(d) / sd(d); a constant difference is
    +-inf (0 if it is 0), as the t-test's p = 0 beside it says."""
    d = np.asarray(d, dtype=np.float64)
    mean, sd = d.mean(-1), d.std(-1, ddof=1)
    with np.errstate(divide="ignore", invalid="ignore"):
        return np.where(sd > 0, mean / sd, np.where(mean == 0, 0.0, np.copysign(np.inf, mean)))


def _signed_rank_counts(n: int) -> np.ndarray:
    """Number of sign patterns of ranks 1..n giving each rank sum W+ = 0..n(n+1)/2."""
    counts = np.zeros(n * (n + 1) // 2 + 1)
    counts[0] = 1.0
    for k in range(1, n + 1):
        counts[k:] = counts[k:] + counts[:-k].copy()
    return counts


def wilcoxon(d: np.ndarray) -> tuple[float, float, float]:
    """Wilcoxon signed-rank test on 1-D differences -> (statistic min(W+, W-), p, rank-biserial r).

    Zero differences are dropped (zero_method='wilcox'). The exact null distribution of the nonzero
    differences is used for n <= 50 without ties among them, the normal approximation with tie
    correction (no continuity correction) otherwise; per-user metrics nearly always take the second
    path. (scipy's method='auto' also takes the approximation when zeros were dropped.)
    """
    d = np.asarray(d, dtype=np.float64)
    d = d[d != 0]
    n = len(d)
    if n == 0:
        return 0.0, 1.0, 0.0
    ranks = sps.rankdata(np.abs(d))
    w_plus, w_minus = float(ranks[d > 0].sum()), float(ranks[d < 0].sum())
    r = (w_plus - w_minus) / (w_plus + w_minus)
    statistic = min(w_plus, w_minus)
    _, tie_sizes = np.unique(np.abs(d), return_counts=True)
    if n <= 50 and (tie_sizes == 1).all():
        dist = _signed_rank_counts(n) / 2.0**n
        p = min(1.0, 2 * float(dist[: int(statistic) + 1].sum()))
        return statistic, p, r
    mean = n * (n + 1) / 4
    var = n * (n + 1) * (2 * n + 1) / 24 - float((tie_sizes**3 - tie_sizes).sum()) / 48
    z = (w_plus - mean) / math.sqrt(var) if var > 0 else 0.0
    return statistic, float(2 * sps.norm.sf(abs(z))), r


def _sign_batches(n: int, n_resamples: int, seed: int):
    """Yields [m, n] matrices of +-1: all 2^n patterns when there are at most n_resamples of them
    (exact test), else n_resamples random patterns in chunks."""
    if n <= 30 and 2**n <= n_resamples:
        codes = np.arange(2**n)[:, None] >> np.arange(n) & 1
        yield 1.0 - 2.0 * codes
        return
    rng = np.random.default_rng(seed)
    for lo in range(0, n_resamples, _CHUNK):
        yield rng.choice(np.array([-1.0, 1.0]), size=(min(_CHUNK, n_resamples - lo), n))


def randomization(d: np.ndarray, n_resamples: int = 10_000, seed: int = 0) -> np.ndarray:
    """Sign-flip permutation test of mean(d) = 0 along the last axis -> p.

    Under the null each user's difference is as likely to be +d as -d. Exact over all 2^n sign
    patterns when that is at most n_resamples; otherwise Monte Carlo with p = (1 + hits)/(1 + R),
    which counts the observed statistic among the resamples and so never returns 0.
    """
    d = np.asarray(d, dtype=np.float64)
    n = d.shape[-1]
    observed = np.abs(d.sum(-1))
    tol = 1e-9 * np.maximum(np.abs(d).sum(-1), 1e-300)  # sums equal up to rounding count as ties
    hits = np.zeros(observed.shape)
    total = 0
    exact = n <= 30 and 2**n <= n_resamples
    for signs in _sign_batches(n, n_resamples, seed):
        null = np.abs(d @ signs.T)  # [..., m]
        hits += (null >= (observed - tol)[..., None]).sum(-1)
        total += len(signs)
    return hits / total if exact else (1 + hits) / (1 + total)


def bootstrap(d: np.ndarray, n_resamples: int = 10_000, seed: int = 0, alpha: float = 0.05) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Paired bootstrap of the mean difference along the last axis -> (ci_low, ci_high, p).

    Users are resampled with replacement (as count vectors, so that one matrix product evaluates
    every resample). The CI is the percentile interval; the p-value is the share of centred
    bootstrap means at least as far from the observed mean as the observed mean is from 0.
    Like any bootstrap it is anticonservative for very few users (3 positive differences: p = 1 / (1 +
    n_resamples), where the sign-flip randomization cannot go below 0.25): prefer randomization there.
    """
    d = np.asarray(d, dtype=np.float64)
    n = d.shape[-1]
    rng = np.random.default_rng(seed)
    observed = d.mean(-1)
    means = []
    for lo in range(0, n_resamples, _CHUNK):
        m = min(_CHUNK, n_resamples - lo)
        picks = rng.integers(0, n, size=(m, n)) + n * np.arange(m)[:, None]
        counts = np.bincount(picks.ravel(), minlength=m * n).reshape(m, n).astype(np.float64)
        means.append(d @ counts.T / n)  # [..., m]
    boot = np.concatenate(means, axis=-1)
    low, high = np.quantile(boot, [alpha / 2, 1 - alpha / 2], axis=-1)
    tol = 1e-12 * np.maximum(np.abs(d).max(-1), 1e-300)
    hits = (np.abs(boot - observed[..., None]) >= (np.abs(observed) - tol)[..., None]).sum(-1)
    return low, high, (1 + hits) / (1 + n_resamples)


def paired_test(a: np.ndarray, b: np.ndarray, test: str = "ttest", alpha: float = 0.05,
                n_resamples: int = 10_000, seed: int = 0) -> PairedResult:
    """Compares model a with model b on the same users (a[i], b[i] belong to user i)."""
    if test not in TESTS:
        raise ValueError(f"unknown test {test!r}; choose one of {', '.join(TESTS)}")
    a, b = np.asarray(a, dtype=np.float64), np.asarray(b, dtype=np.float64)
    if a.shape != b.shape or a.ndim != 1 or len(a) < 2:
        raise ValueError(f"paired test needs two 1-D arrays of equal length >= 2, got {a.shape} and {b.shape}")
    if not (np.isfinite(a).all() and np.isfinite(b).all()):  # NaN would read as p = 0 or 1 / (1 + R)
        raise ValueError(f"paired test needs finite values; got {np.count_nonzero(~np.isfinite(a))} and "
                         f"{np.count_nonzero(~np.isfinite(b))} non-finite")
    d = a - b
    low, high = _t_interval(d, alpha)
    effect, effect_name = float(cohens_dz(d)), "d_z"
    if test == "ttest":
        statistic, p = ttest(d)
    elif test == "wilcoxon":
        statistic, p, effect = wilcoxon(d)
        effect_name = "rank-biserial"
    elif test == "randomization":
        statistic, p = d.mean(), randomization(d, n_resamples, seed)
    else:
        statistic = d.mean()
        low, high, p = bootstrap(d, n_resamples, seed, alpha)
    return PairedResult(test, len(d), float(d.mean()), float(low), float(high), float(effect), effect_name,
                        float(statistic), float(p))


def correct(p_values: np.ndarray, method: str = "holm") -> np.ndarray:
    """Adjusted p-values over one family of comparisons (reject where adjusted p <= alpha)."""
    p = np.asarray(p_values, dtype=np.float64)
    m = len(p)
    if method not in CORRECTIONS:
        raise ValueError(f"unknown correction {method!r}; choose one of {', '.join(CORRECTIONS)}")
    if np.isnan(p).any():  # NaN sorts last and would spread to every BH-adjusted value
        raise ValueError(f"cannot correct NaN p-values ({np.count_nonzero(np.isnan(p))} of {m})")
    if m == 0 or method == "none":
        return p.copy()
    if method == "bonferroni":
        return np.minimum(1.0, p * m)
    order = np.argsort(p, kind="stable")
    ranked = p[order]
    if method == "holm":  # step-down: p_(i) * (m - i + 1), made monotone from the smallest up
        adjusted = np.minimum(1.0, np.maximum.accumulate(ranked * (m - np.arange(m))))
    else:  # bh step-up: p_(i) * m / i, made monotone from the largest down
        adjusted = np.minimum(1.0, np.minimum.accumulate((ranked * m / np.arange(1, m + 1))[::-1])[::-1])
    out = np.empty(m)
    out[order] = adjusted
    return out


@dataclass
class FriedmanResult:
    models: list[str]
    avg_ranks: np.ndarray  # [k], 1 = best
    statistic: float  # Friedman chi-square (tie-corrected)
    p_value: float
    n_blocks: int  # datasets
    cd: float  # Nemenyi critical difference of average ranks at alpha
    alpha: float
    nemenyi_p: np.ndarray  # [k, k] pairwise p-values


def nemenyi_q(k: int, alpha: float = 0.05) -> float:
    """Critical value q_alpha of the Nemenyi test (studentized range / sqrt 2), Demsar (2006)."""
    return float(sps.studentized_range.ppf(1 - alpha, k, np.inf) / math.sqrt(2))


def friedman_nemenyi(scores: np.ndarray, models: list[str], alpha: float = 0.05, higher_is_better: bool = True) -> FriedmanResult:
    """Friedman test over blocks (rows = datasets) of k models (columns), then Nemenyi post-hoc."""
    scores = np.asarray(scores, dtype=np.float64)
    n, k = scores.shape
    if n < 2 or k < 2:
        raise ValueError(f"Friedman test needs >= 2 datasets and >= 2 models, got {n} and {k}")
    ranks = sps.rankdata(-scores if higher_is_better else scores, axis=1)
    avg = ranks.mean(0)
    chi2 = 12 * n / (k * (k + 1)) * float(((avg - (k + 1) / 2) ** 2).sum())
    ties = sum(float((c**3 - c).sum()) for c in (np.unique(row, return_counts=True)[1] for row in ranks))
    denom = 1 - ties / (n * k * (k * k - 1))
    chi2 = chi2 / denom if denom > 0 else 0.0
    se = math.sqrt(k * (k + 1) / (6 * n))
    q = np.abs(avg[:, None] - avg[None, :]) / se * math.sqrt(2)
    nemenyi_p = np.minimum(1.0, sps.studentized_range.sf(q, k, np.inf))
    np.fill_diagonal(nemenyi_p, 1.0)
    return FriedmanResult(list(models), avg, chi2, float(sps.chi2.sf(chi2, k - 1)), n, nemenyi_q(k, alpha) * se, alpha, nemenyi_p)


