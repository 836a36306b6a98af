"""evaluate() and the paired statistics against brute-force references written from the definitions
(README "Evaluation rules", docs/protocols.md), one user and one item at a time, on random inputs:
ties, NaN and infinite scores, float32 and float64 scores closer than float32's precision, masked
and unmasked histories with repeated targets, sampled candidates, any batch size."""

from __future__ import annotations

import itertools
import math

import numpy as np
import torch
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from benchmark import stats
from benchmark.data.split import EvalSet, Sequences, SplitData
from benchmark.evaluation import evaluate
from benchmark.models.base import Batch, Recommender

SETTINGS = settings(max_examples=120, deadline=None, suppress_health_check=[HealthCheck.too_slow])


class Table(Recommender):
    def __init__(self, table: torch.Tensor) -> None:
        super().__init__("table")
        self.table = table

    def fit(self, data, trainer=None):
        return []

    def score(self, batch: Batch) -> torch.Tensor:
        return self.table[batch.users].clone()


def sequences(lists: list[list[int]]) -> Sequences:
    lengths = [len(x) for x in lists]
    return Sequences(np.array(sum(lists, []), dtype=np.int64), np.concatenate([[0], np.cumsum(lengths)]).astype(np.int64),
                     np.zeros(sum(lengths), dtype=np.int64))


def random_case(seed: int, protocol: str):
    rng = np.random.default_rng(seed)
    n_items, n_users, k = int(rng.integers(2, 25)), int(rng.integers(1, 9)), 1 if protocol == "loo" else int(rng.integers(1, 4))
    train = [rng.integers(1, n_items + 1, int(rng.integers(1, 6))).tolist() for _ in range(n_users)]
    histories = [t + rng.integers(1, n_items + 1, int(rng.integers(0, 3))).tolist() for t in train]
    targets = rng.integers(1, n_items + 1, (n_users, k))  # may repeat history items and each other
    shape = (n_users, n_items + 1)
    kind = seed % 4
    if kind == 0:  # many ties
        table = torch.from_numpy(rng.integers(0, 3, shape).astype(np.float32))
    elif kind == 1:  # NaN and infinities
        table = torch.from_numpy(np.array([0.0, 1.0, np.nan, np.inf, -np.inf], np.float32)[rng.integers(0, 5, shape)])
    elif kind == 2:  # float64 values closer than float32 can tell apart
        table = torch.from_numpy(1.0 + 1e-12 * rng.integers(0, 4, shape))
    else:
        table = torch.from_numpy(rng.normal(size=shape)).to([torch.float32, torch.float64][seed % 8 // 4])
    users = np.arange(n_users, dtype=np.int64)
    test = EvalSet(users, sequences(histories), targets, np.zeros_like(targets))
    ids = np.array([""] + [f"i{i}" for i in range(1, n_items + 1)])
    split = SplitData(sequences(train), test, test, np.array([f"u{u}" for u in users]), ids, protocol)
    negatives = rng.integers(0, n_items + 1, (n_users, int(rng.integers(1, n_items + 1)))) if rng.random() < 0.5 else None
    return split, Table(table), negatives, histories, targets


def order_key(s: np.ndarray, i: int):
    """Best first: higher score, NaN below everything, ties by the lower id."""
    return (math.isnan(s[i]), -s[i] if not math.isnan(s[i]) else 0.0, i)


def rank_of(s: np.ndarray, t: int, competitors) -> int:
    if math.isnan(s[t]):
        return 1 + len(competitors)
    return 1 + sum(1 for c in competitors if not math.isnan(s[c]) and s[c] >= s[t])


def reference(split, model, negatives, histories, targets, ks, mask):
    n, out, lists = split.n_items, {}, []
    pop = np.bincount(split.train.items, minlength=n + 1)
    for u, s in enumerate(model.table.numpy().astype(np.float64)):
        h, T = set(histories[u]) if mask else set(), targets[u].tolist()
        top = sorted((i for i in range(1, n + 1) if i not in h), key=lambda i: order_key(s, i))[: max(ks)]
        lists.append(top)
        row = {}
        if split.protocol == "loo":
            t = T[0]
            ranks = {"": math.inf if t in h else rank_of(s, t, [i for i in range(1, n + 1) if i not in h | {t}])}
            if negatives is not None:
                ranks["sampled_"] = math.inf if t in h else rank_of(s, t, sorted(set(negatives[u].tolist()) - {0, t}))
            for prefix, r in ranks.items():
                for k in ks:
                    row[f"{prefix}hr@{k}"] = float(r <= k)
                    row[f"{prefix}ndcg@{k}"] = 1 / math.log2(r + 1) if r <= k else 0.0
                    row[f"{prefix}mrr@{k}"] = 1 / r if r <= k else 0.0
        else:
            pools = {"": top}
            if negatives is not None:
                allowed = (set(negatives[u].tolist()) | set(T)) - {0} - h
                pools["sampled_"] = sorted(allowed, key=lambda i: order_key(s, i))[: max(ks)]
            for prefix, listed in pools.items():
                for k in ks:
                    hits = [p for p, i in enumerate(listed[:k], 1) if i in T]
                    ideal = sum(1 / math.log2(p + 1) for p in range(1, min(k, len(set(T))) + 1))
                    row[f"{prefix}recall@{k}"] = len(hits) / len(set(T))
                    row[f"{prefix}ndcg@{k}"] = sum(1 / math.log2(p + 1) for p in hits) / ideal
        for k in ks:
            row[f"arp@{k}"] = float(np.mean([pop[i] for i in top[:k]])) if top[:k] else 0.0
        for name, v in row.items():
            out.setdefault(name, []).append(v)
    coverage = {f"coverage@{k}": len({i for top in lists for i in top[:k]}) / n for k in ks}
    return out, coverage


@SETTINGS
@given(seed=st.integers(0, 2**32 - 1), protocol=st.sampled_from(["loo", "horizon"]), mask=st.booleans(),
       ks=st.lists(st.integers(1, 12), min_size=1, max_size=3, unique=True), batch_size=st.integers(1, 4))
def test_evaluate_matches_a_brute_force_reference(seed, protocol, mask, ks, batch_size):
    split, model, negatives, histories, targets = random_case(seed, protocol)
    ks = tuple(sorted(ks))
    res = evaluate(model, split, split.test, ks=ks, batch_size=batch_size, mask_history=mask, negatives=negatives)
    per_user, coverage = reference(split, model, negatives, histories, targets, ks, mask)
    assert set(per_user) <= set(res.per_user)
    for name, values in per_user.items():
        np.testing.assert_allclose(res.per_user[name], values, rtol=1e-12, atol=1e-12, err_msg=name)
    for name, value in coverage.items():
        assert res.aggregate[name] == value, name


@SETTINGS
@given(d=st.lists(st.sampled_from([0.0, 0.25, -0.25, 0.5, -1.0, 1 / 3, 0.1]), min_size=2, max_size=10))
def test_randomization_is_the_exact_sign_flip_p_value(d):
    d = np.array(d)
    sums = np.abs(np.array(list(itertools.product([-1.0, 1.0], repeat=len(d)))) @ d)
    expected = np.mean(sums >= abs(d.sum()) - 1e-9 * np.abs(d).sum())  # rounding-level equality is a tie
    assert stats.randomization(d, n_resamples=10_000) == expected


@SETTINGS
@given(p=st.lists(st.sampled_from([0.0, 0.001, 0.01, 0.02, 0.04, 0.3, 0.5, 1.0]) | st.floats(0, 1), min_size=1, max_size=12))
def test_corrections_match_their_step_definitions(p):
    p = np.array(p)
    m = len(p)
    holm = [min(1.0, max(min(1.0, (m - j) * q) for j, q in enumerate(np.sort(p)) if q <= x)) for x in p]
    bh = [min(1.0, min(q * m / np.sum(p <= q) for q in p if q >= x)) for x in p]
    np.testing.assert_allclose(stats.correct(p, "holm"), holm, rtol=1e-12)
    np.testing.assert_allclose(stats.correct(p, "bh"), bh, rtol=1e-12)
    np.testing.assert_allclose(stats.correct(p, "bonferroni"), np.minimum(1.0, m * p), rtol=1e-12)
