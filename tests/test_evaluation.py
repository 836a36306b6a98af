"""Full-ranking metrics on hand-computed cases: ties, masking, constant scores."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch

from benchmark.data.split import EvalSet, Sequences, SplitData
from benchmark.config import TrainerConfig
from benchmark.evaluation import evaluate, metrics_from_ranks, rank_targets, validation_metric
from benchmark.models.base import Batch, Recommender, top_n_excluding
from benchmark.training import training_windows


def test_rank_counts_ties_against_the_target():
    scores = torch.tensor([[0.0, 0.5, 0.9, 0.5, 0.1]])  # column 0 = padding
    targets = torch.tensor([[3]])
    # items 2 (0.9) and 1 (0.5, a tie) are at or above 0.5 -> rank 3
    assert rank_targets(scores, targets, torch.tensor([[0]])).item() == 3


@pytest.mark.parametrize("dtype", [torch.float64, torch.int64])
def test_ranks_compare_scores_in_their_own_precision(dtype):
    """float64 scores 1e-12 apart (or int64 counts above 2^24) must not become float32 ties."""
    from benchmark.evaluation import rank_among

    base = 1.0 if dtype == torch.float64 else float(2**25)
    step = 1e-12 if dtype == torch.float64 else 1.0
    scores = torch.tensor([[0.0, base, base + step, base - step]], dtype=torch.float64).to(dtype)
    targets = torch.tensor([[2]])
    assert rank_targets(scores, targets, torch.tensor([[0]])).item() == 1
    assert rank_among(scores, targets, torch.tensor([[1, 3]])).item() == 1
    assert rank_targets(scores, torch.tensor([[3]]), torch.tensor([[0]])).item() == 3


@pytest.mark.parametrize("dtype", [torch.float64, torch.int64])
def test_top_n_lists_order_scores_in_their_own_precision(dtype):
    """Horizon lists, coverage@K and arp@K come from top_n: a model may score in any real dtype (the
    ranks compare in it), so float64 scores 1e-12 apart or int64 counts above 2^24 must keep their
    order, not become float32 ties broken by the lower id."""
    from benchmark.models.base import top_n

    base = 1.0 if dtype == torch.float64 else float(2**25)
    step = 1e-12 if dtype == torch.float64 else 1.0
    scores = torch.tensor([[0.0, base, base + step, base + 2 * step, base - step]], dtype=torch.float64).to(dtype)
    padding = torch.tensor([[True, False, False, False, False]])
    assert top_n(scores, 3, padding).tolist() == [[3, 2, 1]]
    assert top_n(scores, 5, padding).tolist() == [[3, 2, 1, 4, 0]]  # the exact path (n = width)
    assert top_n_excluding(scores.clone(), 2, torch.tensor([[3]])).tolist() == [[2, 1]]

    class Fixed(Constant):
        def score(self, batch: Batch) -> torch.Tensor:
            return scores.expand(len(batch.users), -1).clone()

    split = toy_split([[4], [4]], [3, 3], n_items=4)
    split.protocol = "horizon"
    res = evaluate(Fixed(4), split, split.test, ks=(1,))
    assert res.per_user["recall@1"].tolist() == [1.0, 1.0]
    assert res.aggregate["coverage@1"] == pytest.approx(1 / 4)  # item 3 only


def test_history_is_masked_unless_repeats_allowed():
    scores = torch.tensor([[0.0, 0.9, 0.8, 0.5, 0.1]])
    history, targets = torch.tensor([[0, 1, 2]]), torch.tensor([[3]])
    masked = rank_targets(scores, targets, history)
    unmasked = rank_targets(scores, targets, history[:, :0])
    assert masked.item() == 1 and unmasked.item() == 3


def test_nan_scores_count_as_worst():
    scores = torch.tensor([[0.0, float("nan"), 0.2, 0.1]])
    targets = torch.tensor([[1]])
    assert rank_targets(scores, targets, torch.tensor([[0]])).item() == 3


def test_metric_formulas():
    m = metrics_from_ranks(np.array([1, 3, 10, 11]), ks=(10,))
    assert m["hr@10"].tolist() == [1, 1, 1, 0]
    assert m["ndcg@10"] == pytest.approx([1.0, 1 / math.log2(4), 1 / math.log2(11), 0.0])
    assert m["mrr@10"] == pytest.approx([1.0, 1 / 3, 0.1, 0.0])


class Constant(Recommender):
    def __init__(self, n_items: int) -> None:
        super().__init__("constant")
        self.n_items = n_items

    def fit(self, data, trainer=None):
        return []

    def score(self, batch: Batch) -> torch.Tensor:
        return torch.ones(len(batch.users), self.n_items + 1)


def toy_split(histories: list[list[int]], targets: list[int], n_items: int) -> SplitData:
    lengths = [len(h) for h in histories]
    seqs = Sequences(np.array(sum(histories, []), dtype=np.int64), np.concatenate([[0], np.cumsum(lengths)]).astype(np.int64),
                     np.zeros(sum(lengths), dtype=np.int64))
    users = np.arange(len(histories), dtype=np.int64)
    es = EvalSet(users, seqs, np.array(targets, dtype=np.int64)[:, None], np.zeros((len(users), 1), dtype=np.int64))
    ids = np.array([""] + [f"i{i}" for i in range(1, n_items + 1)])
    return SplitData(seqs, es, es, np.array([f"u{u}" for u in users]), ids, "loo")


def test_constant_model_gets_rank_equal_to_number_of_candidates():
    split = toy_split([[1, 2], [3], [4, 5, 6]], [7, 8, 9], n_items=10)
    res = evaluate(Constant(10), split, split.test, ks=(5,), batch_size=2)
    # candidates = 10 items minus each user's history; the target is last among equals
    assert res.ranks[:, 0].tolist() == [8, 9, 7]
    assert res.per_user["hr@5"].tolist() == [0, 0, 0]
    res = evaluate(Constant(10), split, split.test, ks=(5,), mask_history=False)
    assert res.ranks[:, 0].tolist() == [10, 10, 10]


class Favourite(Constant):
    """Scores item 1 highest, then the padding column, then every other item alike."""

    def score(self, batch: Batch) -> torch.Tensor:
        scores = torch.zeros(len(batch.users), self.n_items + 1)
        scores[:, 1], scores[:, 0] = 2.0, 1.0
        return scores


@pytest.mark.parametrize("protocol", ["loo", "horizon"])
def test_a_target_in_the_masked_history_is_a_miss_in_both_protocols(protocol):
    """Sequence 1, 2, 3, then 1 again: masking the history masks the repeated target with it (the
    horizon list cannot contain it, so leave-one-out may not rank it either); unmasked it is first."""
    split = toy_split([[1, 2, 3], [2, 3]], [1, 1], n_items=6)
    split.protocol = protocol
    masked = evaluate(Favourite(6), split, split.test, ks=(1,), mask_history=True)
    unmasked = evaluate(Favourite(6), split, split.test, ks=(1,), mask_history=False)
    hit = "hr@1" if protocol == "loo" else "recall@1"
    assert masked.per_user[hit].tolist() == [0.0, 1.0] and unmasked.per_user[hit].tolist() == [1.0, 1.0]
    if protocol == "loo":
        assert masked.ranks[:, 0].tolist() == [7, 1]  # below every item


def test_top_n_lists_never_hold_padding_when_nothing_is_excluded():
    """mask_history=false passes no excluded ids; padding 0 must still stay out of the list."""
    scores = torch.tensor([[5.0, 1.0, 2.0, 3.0]])  # padding scored highest
    assert top_n_excluding(scores.clone(), 2, torch.zeros(1, 0, dtype=torch.long)).tolist() == [[3, 2]]
    split = toy_split([[2], [3]], [4, 5], n_items=6)
    res = evaluate(Favourite(6), split, split.test, ks=(1, 2), mask_history=False)
    assert res.aggregate["coverage@1"] == pytest.approx(1 / 6)  # item 1 for both users, not padding


def test_arp_is_the_mean_training_popularity_of_each_list_in_float64():
    """arp@K averages the training counts of the listed items per user, then over users; in float64
    (float32 rounded 7/3 to 2.3333332539)."""

    class Ordered(Constant):  # item 1 first, then 2, 3, 4
        def score(self, batch: Batch) -> torch.Tensor:
            return torch.tensor([0.0, 4.0, 3.0, 2.0, 1.0]).expand(len(batch.users), -1).clone()

    split = toy_split([[1, 2, 2, 3, 3], [3, 3]], [4, 4], n_items=4)  # training counts 1, 2, 4, 0
    res = evaluate(Ordered(4), split, split.test, ks=(1, 3), mask_history=False)
    assert res.per_user["arp@3"].tolist() == [7 / 3, 7 / 3] and res.per_user["arp@1"].tolist() == [1.0, 1.0]
    masked = evaluate(Ordered(4), split, split.test, ks=(1, 3), mask_history=True)
    assert masked.per_user["arp@3"].tolist() == [0.0, 1.0]  # user 0 can list item 4 only; user 1 items 1, 2, 4
    assert masked.aggregate["arp@3"] == 0.5


def test_validation_metric_reads_the_runs_masking_and_cutoff():
    split = toy_split([[1, 2, 3], [2, 3]], [1, 1], n_items=6)
    for mask in (True, False):
        cfg = TrainerConfig(mask_history=mask, valid_metric="mrr@1")
        expected = evaluate(Favourite(6), split, split.valid, ks=(1,), mask_history=mask).aggregate["mrr@1"]
        assert validation_metric(Favourite(6), split, cfg) == expected
    assert validation_metric(Favourite(6), split, TrainerConfig(mask_history=True, valid_metric="mrr@1")) == 0.5


def random_split(n_users: int, n_items: int, max_history: int, seed: int) -> tuple[SplitData, list, list]:
    """Users with 1..max_history - 1 distinct random history items and a target outside them."""
    rng = np.random.default_rng(seed)
    items = np.arange(1, n_items + 1)
    histories = [list(rng.choice(items, size=rng.integers(1, max_history), replace=False)) for _ in range(n_users)]
    targets = [int(rng.choice([i for i in items if i not in h])) for h in histories]
    return toy_split(histories, targets, n_items), histories, targets


class RandomScores(Constant):
    """A fixed random score table [n_users, n_items + 1] drawn from ``seed``."""

    def __init__(self, n_users: int, n_items: int, seed: int) -> None:
        super().__init__(n_items)
        self.table = torch.rand(n_users, n_items + 1, generator=torch.Generator().manual_seed(seed))

    def score(self, batch: Batch) -> torch.Tensor:
        return self.table[batch.users]


def test_evaluate_batches_agree_with_one_batch():
    split, histories, targets = random_split(37, 30, 8, seed=0)
    model = RandomScores(37, 30, seed=0)
    one = evaluate(model, split, split.test, batch_size=1000)
    many = evaluate(model, split, split.test, batch_size=5)
    np.testing.assert_array_equal(one.ranks, many.ranks)
    # brute force for one user
    table = model.table.numpy()
    u = 3
    cand = [i for i in range(1, 31) if i not in histories[u] and i != targets[u]]
    assert one.ranks[u, 0] == 1 + sum(table[u, i] >= table[u, targets[u]] for i in cand)


def test_accuracy_only_evaluation_skips_list_metrics_and_keeps_ranks(monkeypatch):
    split, _, _ = random_split(23, 20, 6, seed=1)
    model = RandomScores(23, 20, seed=1)
    full = evaluate(model, split, split.test, ks=(5, 10), batch_size=7)

    def no_lists(*args):
        raise AssertionError("top-n list built")

    monkeypatch.setattr("benchmark.evaluation.top_n_excluding", no_lists)
    fast = evaluate(model, split, split.test, ks=(5, 10), batch_size=7, beyond_accuracy=False)
    np.testing.assert_array_equal(full.ranks, fast.ranks)
    assert {"coverage@10", "arp@10"} <= set(full.aggregate)
    assert set(fast.aggregate) == set(full.aggregate) - {f"{m}@{k}" for m in ("coverage", "arp") for k in (5, 10)}
    assert all(fast.aggregate[name] == full.aggregate[name] for name in fast.aggregate)


def test_training_windows_cover_every_position_once():
    seqs = [[1, 2, 3, 4, 5, 6, 7], [8, 9], [10]]
    items = np.array(sum(seqs, []))
    offsets = np.array([0, 7, 9, 10])
    inputs, targets = training_windows(items, offsets, max_len=3)
    pairs = sorted((int(x), int(y)) for xi, yi in zip(inputs, targets) for x, y in zip(xi, yi) if y > 0)
    assert pairs == [(1, 2), (2, 3), (3, 4), (4, 5), (5, 6), (6, 7), (8, 9)]
    assert inputs.shape == (3, 3)  # 6 targets -> 2 windows, 1 target -> 1 window
    assert targets[0].tolist() == [5, 6, 7] and inputs[0].tolist() == [4, 5, 6]  # newest window, full
    assert (inputs[targets == 0] == 0).all()  # padding on the left only


@pytest.mark.parametrize("stride", [1, 2, 3, 5])
def test_overlapping_training_windows_train_every_target_once_with_context(stride):
    lengths, max_len = (1, 2, 4, 9, 13), 5
    items = np.arange(1, sum(lengths) + 1)  # distinct ids: item i + 1 sits at flat index i
    offsets = np.cumsum([0, *lengths])
    inputs, targets = training_windows(items, offsets, max_len, stride=stride)
    context_of = {}
    for row_in, row_out in zip(inputs.tolist(), targets.tolist()):
        for pos, target in enumerate(row_out):
            if target:
                assert target not in context_of  # trained once
                context_of[target] = [x for x in row_in[: pos + 1] if x]
    firsts = set((offsets[:-1] + 1).tolist())
    assert sorted(context_of) == [int(i) for i in items if i not in firsts]  # every target
    for target, context in context_of.items():
        start = int(offsets[np.searchsorted(offsets, target - 1, side="right") - 1]) + 1  # first item of its sequence
        before = list(range(start, target))
        assert context == before[len(before) - len(context):]  # the items right before it, in order
        assert len(context) >= min(len(before), max_len - stride + 1)


def test_padded_history_is_left_padded_and_cut():
    s = Sequences(np.array([1, 2, 3, 4, 5]), np.array([0, 3, 5]), np.zeros(5, dtype=np.int64))
    assert s.padded().tolist() == [[1, 2, 3], [0, 4, 5]]
    assert s.padded(np.array([1, 0]), max_len=2).tolist() == [[4, 5], [2, 3]]
