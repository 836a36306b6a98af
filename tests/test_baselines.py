"""Non-sequential baselines against brute-force references computed here (CLI runs of every
preset, these included, are in test_models.py)."""

import numpy as np
import pytest
import torch

from baselines.bprmf import BPRMF
from baselines.ease import EASE
from baselines.itemknn import ItemKNN
from benchmark.config import TrainerConfig
from benchmark.data.split import Sequences, leave_one_out
from benchmark.errors import ConfigError
from benchmark.evaluation import evaluate
from benchmark.models.base import Batch


def split_of(sequences: list[list[int]], n_items: int):
    """A leave-one-out split of the given item sequences (ids 1..n_items)."""
    items = np.concatenate([np.asarray(s, dtype=np.int64) for s in sequences])
    offsets = np.concatenate([[0], np.cumsum([len(s) for s in sequences])]).astype(np.int64)
    seqs = Sequences(items, offsets, np.arange(len(items), dtype=np.int64))
    user_ids = np.array([f"u{u}" for u in range(len(sequences))])
    item_ids = np.array([""] + [f"i{i}" for i in range(1, n_items + 1)])
    return leave_one_out(seqs, user_ids, item_ids)


def random_split(seed: int = 0, n_users: int = 12, n_items: int = 9):
    rng = np.random.default_rng(seed)
    sequences = [list(rng.choice(np.arange(1, n_items + 1), size=rng.integers(4, 8), replace=False)) for _ in range(n_users)]
    return split_of(sequences, n_items)


def dense_train(split) -> np.ndarray:
    x = np.zeros((split.n_users, split.n_items))
    for u in range(split.n_users):
        for i in split.train.items[split.train.offsets[u] : split.train.offsets[u + 1]]:
            x[u, i - 1] = 1.0
    return x


def test_ease_matches_closed_form():
    split, l2 = random_split(), 3.0
    model = EASE(l2=l2)
    model.fit(split)
    x = dense_train(split)
    p = np.linalg.inv(x.T @ x + l2 * np.eye(split.n_items))
    b = np.eye(split.n_items) - p @ np.diag(1.0 / np.diag(p))
    np.fill_diagonal(b, 0.0)
    history = split.test.histories.padded()
    scores = model.score(Batch(torch.arange(split.n_users), history)).numpy()
    x_hist = np.zeros((split.n_users, split.n_items))
    for u, row in enumerate(history.numpy()):
        x_hist[u, row[row > 0] - 1] = 1.0
    np.testing.assert_allclose(scores[:, 1:], x_hist @ b, rtol=1e-4, atol=1e-5)
    assert (scores[:, 0] == 0).all()


def test_ease_refuses_a_catalogue_above_max_items():
    with pytest.raises(ConfigError, match="max_items=5.*itemknn"):
        EASE(l2=1.0, max_items=5).fit(random_split())


def test_ease_sizes_its_item_limit_from_the_memory_available(monkeypatch):
    """max_items null: the limit is what 1.5 float64 n x n matrices fit in the memory available now
    (a 24 GiB machine fits ~46,000 items, not the old fixed 20,000)."""
    import baselines.ease as ease

    assert ease.items_that_fit(24 * 2**30) > 46_000 and ease.peak_bytes(25_000) == 7_500_000_000
    split = random_split()
    monkeypatch.setattr(ease, "available_memory", lambda: ease.peak_bytes(split.n_items) - 1)
    with pytest.raises(ConfigError) as err:
        EASE(l2=1.0).fit(split)
    msg = str(err.value)
    assert f"dense {split.n_items} x {split.n_items}" in msg and "GiB is available" in msg
    assert f"model.max_items={split.n_items} to try anyway" in msg and "\n" not in msg
    EASE(l2=1.0, max_items=split.n_items).fit(split)  # an explicit limit is the user's call
    monkeypatch.setattr(ease, "available_memory", lambda: ease.peak_bytes(split.n_items))
    assert EASE(l2=1.0).fit(split) == []


@pytest.mark.parametrize("k,shrink", [(2, 0.0), (3, 5.0), (100, 1.0)])
def test_itemknn_matches_brute_force_cosine(k, shrink):
    split = random_split(seed=1)
    model = ItemKNN(k=k, shrink=shrink)
    model.fit(split)
    x = dense_train(split)
    n = split.n_items
    sim = np.zeros((n, n))
    for i in range(n):
        for j in range(n):
            if i != j:
                sim[i, j] = x[:, i] @ x[:, j] / (np.sqrt(x[:, i].sum()) * np.sqrt(x[:, j].sum()) + shrink + 1e-12)
    pruned = np.zeros_like(sim)
    for i in range(n):
        neighbours = sorted(range(n), key=lambda j: (-sim[i, j], j))[:k]  # ties: lower id first
        pruned[i, neighbours] = sim[i, neighbours]
    history = split.test.histories.padded()
    scores = model.score(Batch(torch.arange(split.n_users), history)).numpy()
    expected = np.stack([pruned[row[row > 0] - 1].sum(0) for row in history.numpy()])
    np.testing.assert_allclose(scores[:, 1:], expected, rtol=1e-5, atol=1e-6)


def test_bprmf_learns_co_occurrence():
    # Two communities: users 0..19 consume items 1..6, users 20..39 items 7..12, in random order.
    rng = np.random.default_rng(0)
    sequences = [list(rng.permutation(6) + 1 + 6 * (u >= 20))[:5] for u in range(40)]
    split = split_of(sequences, 12)
    model = BPRMF(dim=8, l2=1e-5)
    trainer = TrainerConfig(lr=0.05, batch_size=32, max_epochs=40, patience=40, device="cpu", valid_metric="hr@5")
    logs = model.fit(split, trainer)
    assert logs and logs[-1].loss < 0.5 * logs[0].loss
    scores = model.score(Batch(torch.arange(40), split.test.histories.padded())).numpy()
    own = np.where(np.arange(40)[:, None] < 20, scores[:, 1:7].mean(1, keepdims=True), scores[:, 7:13].mean(1, keepdims=True))
    other = np.where(np.arange(40)[:, None] < 20, scores[:, 7:13].mean(1, keepdims=True), scores[:, 1:7].mean(1, keepdims=True))
    assert (own > other).all()
    # 8 candidates per user, 2 of them in-community: chance gives hr@2 = 0.25.
    assert evaluate(model, split, split.test, ks=(2,)).aggregate["hr@2"] >= 0.9


def test_bprmf_early_stops_on_the_runs_masking_and_metric():
    """Validation reads trainer.mask_history (music datasets rank past items) and valid_metric's cutoff."""
    split = random_split(seed=3, n_users=30)
    model = BPRMF(dim=8)
    logs = model.fit(split, TrainerConfig(lr=0.05, batch_size=32, max_epochs=1, device="cpu", valid_metric="mrr@3",
                                          mask_history=False))
    unmasked = evaluate(model, split, split.valid, ks=(3,), mask_history=False).aggregate["mrr@3"]
    masked = evaluate(model, split, split.valid, ks=(3,), mask_history=True).aggregate["mrr@3"]
    assert logs[0].valid_metric == unmasked != masked


@pytest.mark.parametrize("make", [
    lambda: EASE(l2=float("nan")), lambda: EASE(l2=float("inf")), lambda: ItemKNN(shrink=float("nan")),
    lambda: BPRMF(dim=0), lambda: BPRMF(l2=-1.0), lambda: BPRMF(l2=float("nan")),
], ids=["ease-l2-nan", "ease-l2-inf", "itemknn-shrink-nan", "bprmf-dim-0", "bprmf-l2-negative", "bprmf-l2-nan"])
def test_baselines_refuse_settings_they_cannot_fit_with(make):
    """From Python too (not only through the config check): NaN passes every comparison, and a
    zero-dimensional BPR-MF is a popularity model under another name."""
    with pytest.raises(ConfigError, match="model\\."):
        make()


def test_ease_fits_in_one_float64_matrix(monkeypatch):
    """The Gram matrix is factored and inverted in place: a fit allocates about one n x n float64
    matrix (the old inv-based fit held four), which is what lets 25,000 items fit in 24 GiB."""
    import tracemalloc

    import scipy.sparse as sp

    import baselines.ease as ease

    monkeypatch.setattr(ease, "BLOCK", 64)  # mirrored in blocks of 64 rows, as 25,000 items are in blocks of 2,048

    n = 600
    x = sp.random(2_000, n, density=0.02, format="csr", dtype=np.float32, random_state=0)
    x.data[:] = 1.0
    tracemalloc.start()
    ease.ease_weights(x, 10.0)
    peak = tracemalloc.get_traced_memory()[1]
    tracemalloc.stop()
    assert peak < 1.3 * 8 * n**2
