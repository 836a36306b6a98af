"""The horizon protocol, list metrics, recommend(), and sampled candidate sets."""

import json
import math

import numpy as np
import pandas as pd
import pytest
import torch

from benchmark.candidates import Candidates, sample_negatives
from benchmark.data.dataset import DatasetSpec, prepare_split
from benchmark.data.split import Sequences, horizon
from benchmark.errors import ConfigError, DataError
from benchmark.evaluation import evaluate, list_metrics
from benchmark.models.base import Batch, Recommender, top_n
from conftest import run_cli


def sequences_of(rows: list[list[int]]) -> Sequences:
    items = np.concatenate([np.asarray(r, dtype=np.int64) for r in rows])
    offsets = np.concatenate([[0], np.cumsum([len(r) for r in rows])]).astype(np.int64)
    return Sequences(items, offsets, 100 + np.arange(len(items), dtype=np.int64))


def horizon_split(rows: list[list[int]], n_items: int, k: int):
    return horizon(sequences_of(rows), np.array([f"u{u}" for u in range(len(rows))]),
                   np.array([""] + [f"i{i}" for i in range(1, n_items + 1)]), k=k)


class FixedScores(Recommender):
    """Scores every item by a fixed vector (the same for every user)."""

    def __init__(self, scores: list[float]) -> None:
        super().__init__("fixed")
        self.scores = torch.tensor(scores, dtype=torch.float32)

    def fit(self, data, trainer=None):
        return []

    def score(self, batch: Batch) -> torch.Tensor:
        return self.scores.expand(len(batch.users), -1)


def test_horizon_holds_out_the_last_k_for_test_and_the_k_before_for_validation():
    split = horizon_split([[1, 2, 3, 4, 5, 6, 7], [7, 6, 5, 4, 3]], n_items=7, k=2)
    assert split.protocol == "horizon"
    np.testing.assert_array_equal(split.test.targets, [[6, 7], [4, 3]])
    np.testing.assert_array_equal(split.valid.targets, [[4, 5], [6, 5]])
    np.testing.assert_array_equal(split.train.items, [1, 2, 3, 7])
    np.testing.assert_array_equal(split.test.histories.padded().numpy(), [[1, 2, 3, 4, 5], [0, 0, 7, 6, 5]])
    np.testing.assert_array_equal(split.valid.histories.padded().numpy(), [[1, 2, 3], [0, 0, 7]])


def test_horizon_names_the_fix_for_short_users():
    with pytest.raises(DataError, match="needs >= 7 interactions.*'u1' has 6.*min_seq_len to 7"):
        horizon_split([[1, 2, 3, 4, 5, 6, 7], [1, 2, 3, 4, 5, 6]], n_items=7, k=3)


def test_list_metrics_hand_computed():
    lists = np.array([[3, 7, 1, 9], [5, 0, 0, 0], [2, 4, 6, 8]])
    targets = np.array([[7, 9, 5], [5, 0, 0], [1, 3, 0]])
    m = list_metrics(lists, targets, ks=(2, 4))
    d = [1 / math.log2(i + 2) for i in range(4)]  # discount of list positions 1..4
    np.testing.assert_allclose(m["recall@2"], [1 / 3, 1.0, 0.0])
    np.testing.assert_allclose(m["recall@4"], [2 / 3, 1.0, 0.0])
    np.testing.assert_allclose(m["ndcg@2"], [d[1] / (d[0] + d[1]), 1.0, 0.0])
    np.testing.assert_allclose(m["ndcg@4"], [(d[1] + d[3]) / (d[0] + d[1] + d[2]), 1.0, 0.0])


def test_list_metrics_count_a_repeated_target_once():
    m = list_metrics(np.array([[4, 2]]), np.array([[4, 4, 0]]), ks=(2,))
    assert m["recall@2"][0] == 1.0 and m["ndcg@2"][0] == 1.0


def test_top_n_breaks_ties_by_lower_id_and_never_lists_excluded_items():
    scores = torch.tensor([[9.0, 0.5, 0.7, 0.5, 0.7, 0.5], [1.0, 1.0, 1.0, 1.0, 1.0, 1.0]])
    excluded = torch.zeros(2, 6, dtype=torch.bool)
    excluded[:, 0] = True
    excluded[1, [2, 3, 4]] = True
    assert top_n(scores, 4, excluded).tolist() == [[2, 4, 1, 3], [1, 5, 0, 0]]
    # A permutation of the columns must not change which items win (no dependence on layout).
    assert top_n(scores[:, [0, 5, 4, 3, 2, 1]], 3, excluded[:, [0, 5, 4, 3, 2, 1]])[0].tolist() == [2, 4, 1]


def test_horizon_evaluation_uses_the_recommended_list_with_history_masked():
    # Items 1..6; a fixed preference 6 > 5 > 4 > 3 > 2 > 1.
    split = horizon_split([[6, 1, 2, 3, 5], [1, 2, 3, 4, 5]], n_items=6, k=2)
    model = FixedScores([0, 1, 2, 3, 4, 5, 6])
    result = evaluate(model, split, split.test, ks=(1, 2))
    # User 0: history {6, 1, 2} masked -> list [5, 4]; targets {3, 5}: one hit at position 1.
    # User 1: history {1, 2, 3} masked -> list [6, 5]; targets {4, 5}: one hit at position 2.
    np.testing.assert_allclose(result.per_user["recall@1"], [0.5, 0.0])
    np.testing.assert_allclose(result.per_user["recall@2"], [0.5, 0.5])
    np.testing.assert_allclose(result.per_user["ndcg@2"], [1 / (1 + 1 / math.log2(3)), (1 / math.log2(3)) / (1 + 1 / math.log2(3))])
    assert result.ranks is None and "hr@1" not in result.per_user


def test_sampled_negatives_are_reproducible_and_avoid_the_users_items():
    rng = np.random.default_rng(0)
    rows = [list(rng.choice(np.arange(1, 41), size=12, replace=False)) for _ in range(30)]
    split = horizon_split(rows, n_items=40, k=2)
    a = sample_negatives(split, 15, "uniform", seed=7)
    assert a.shape == (30, 15)
    np.testing.assert_array_equal(a, sample_negatives(split, 15, "uniform", seed=7))
    assert not np.array_equal(a, sample_negatives(split, 15, "uniform", seed=8))
    for u, row in enumerate(rows):
        assert len(set(a[u])) == 15 and not set(a[u]) & set(row) and 0 not in a[u]
    # Popularity sampling never draws an item without training interactions.
    pop = split.item_popularity()
    b = sample_negatives(split, 5, "popularity", seed=7)
    assert (pop[b] > 0).all()
    with pytest.raises(DataError, match="protocol.n_negatives=29"):
        sample_negatives(split, 29, "uniform")  # each user has only 40 - 12 = 28 drawable items


def test_sampled_rank_counts_only_the_negatives():
    split = horizon_split([[1, 2, 3, 4, 5]] * 2, n_items=9, k=1)
    split.protocol = "loo"  # one target per user: rank-based metrics
    model = FixedScores([0, 1, 2, 3, 4, 0.5, 0.1, 7, 8, 9])  # the target (item 5) scores 0.5
    negatives = np.array([[7, 8], [6, 9]])  # user 0: both beat the target (rank 3); user 1: one (rank 2)
    result = evaluate(model, split, split.test, ks=(2, 3), negatives=negatives)
    np.testing.assert_array_equal(result.per_user["sampled_hr@2"], [0.0, 1.0])
    np.testing.assert_array_equal(result.per_user["sampled_hr@3"], [1.0, 1.0])
    np.testing.assert_array_equal(result.per_user["hr@3"], [0.0, 0.0])  # full ranking: items 7, 8, 9 beat it


def test_a_repeat_target_masked_with_the_history_is_a_miss_among_sampled_candidates_too():
    """User 0's target (item 1) is also in its history: masked with it, a miss in full ranking, and
    so among the sampled negatives too (as horizon's sampled lists, which exclude the history, make it)."""
    split = horizon_split([[1, 2, 3, 1], [4, 5, 6, 7]], n_items=9, k=1)
    split.protocol = "loo"
    model = FixedScores([0, 9, 1, 1, 1, 1, 1, 8, 1, 1])  # item 1 scores highest, then item 7
    negatives = np.array([[8, 9], [8, 9]])
    masked = evaluate(model, split, split.test, ks=(1, 3), negatives=negatives)
    np.testing.assert_array_equal(masked.per_user["hr@3"], [0.0, 1.0])
    np.testing.assert_array_equal(masked.per_user["sampled_hr@3"], [0.0, 1.0])
    as_lists = evaluate(model, horizon_split([[1, 2, 3, 1], [4, 5, 6, 7]], n_items=9, k=1), split.test,
                        ks=(3,), negatives=negatives)
    np.testing.assert_array_equal(masked.per_user["sampled_hr@3"], as_lists.per_user["sampled_recall@3"])
    # A cut-off beyond the catalogue (9 items) or the candidates (3): the masked target is still a miss.
    large_k = evaluate(model, split, split.test, ks=(10,), negatives=negatives)
    np.testing.assert_array_equal(large_k.per_user["hr@10"], [0.0, 1.0])
    np.testing.assert_array_equal(large_k.per_user["sampled_hr@10"], [0.0, 1.0])
    repeats = evaluate(model, split, split.test, ks=(1,), negatives=negatives, mask_history=False)
    np.testing.assert_array_equal(repeats.per_user["sampled_hr@1"], [1.0, 1.0])  # repeats allowed: a hit


def test_cli_horizon_with_sampled_candidates_labels_and_stores_everything(tiny_ml, tmp_path):
    proc = run_cli("hydra.mode=MULTIRUN", f"hydra.sweep.dir={tmp_path / 'sweep'}", "model=pop", "protocol=horizon",
                   "protocol.k=2", "protocol.candidates=sampled", "protocol.n_negatives=10", "protocol.sampler=popularity",
                   "dataset.path=" + str(tiny_ml), "dataset.user_core=1", "dataset.item_core=1", "dataset.min_seq_len=5",
                   tmp=tmp_path)
    (run,) = list((tmp_path / "results").glob("ml-latest-small/horizon/pop/seed0-*"))
    metrics = json.loads((run / "metrics.json").read_text())
    assert metrics["protocol"] == "horizon" and metrics["candidates"] == "sampled"
    assert metrics["sampled_candidates"]["n_negatives"] == 10 and metrics["sampled_candidates"]["sampler"] == "popularity"
    assert {"recall@10", "ndcg@10", "sampled_recall@10", "sampled_ndcg@10"} <= set(metrics["test"])
    assert metrics["test"]["sampled_recall@10"] >= metrics["test"]["recall@10"]  # fewer competitors
    per_user = pd.read_parquet(run / "per_user.parquet")
    assert len(per_user) == metrics["n_users"] > 20 and per_user["user"].is_unique and (per_user["n_targets"] == 2).all()
    assert {"recall@10", "ndcg@10", "sampled_recall@10"} <= set(per_user.columns)
    # The stored negatives are exactly what the seed gives for this split.
    stored = pd.read_parquet(run / "negatives.parquet")
    spec = DatasetSpec.from_dict({"name": "ml-latest-small", "reader": "movielens", "path": str(tiny_ml),
                                  "user_core": 1, "item_core": 1, "min_seq_len": 5})
    split = prepare_split(spec, "horizon", {"k": 2}, cache_dir=tmp_path / "cache").split
    expected = sample_negatives(split, 10, "popularity", seed=0)
    assert list(stored["item"]) == list(split.item_ids[expected.ravel()])
    assert list(stored["user"]) == list(np.repeat(split.user_ids, 10))
    # Table and caption say the metrics are sampled.
    table = (tmp_path / "sweep" / "table.md").read_text()
    assert "SAMPLED among the target(s) and 10 popularity-sampled negatives per user" in table
    assert "sampled_recall@10" in table and "horizon-k" in table
    assert "sampled_recall@10" in proc.stdout


def test_bad_protocol_options_name_the_key(tiny_ml, tmp_path):
    with pytest.raises(ConfigError, match="protocol.candidates='some'"):
        Candidates.pop_from({"candidates": "some"})
    with pytest.raises(ConfigError, match="protocol.sampler='zipf'"):
        Candidates.pop_from({"candidates": "sampled", "sampler": "zipf"})
    protocol = {"name": "loo", "k": 3, "candidates": "full", "n_negatives": 100}
    assert Candidates.pop_from(protocol) == Candidates() and protocol == {"name": "loo", "k": 3}
    spec = DatasetSpec.from_dict({"name": "tiny", "reader": "movielens", "path": str(tiny_ml)})
    with pytest.raises(ConfigError, match="protocol.k is not an option of protocol 'loo'"):
        prepare_split(spec, "loo", {"k": 3}, cache_dir=tmp_path)
