"""The simple sequential and neighbourhood baselines (rules/Markov, V-SKNN/STAN, recent popularity, RP3beta),
each on planted data where its signal is clear, and their place in the families table."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch

from baselines.recentpop import RecentPop
from baselines.rp3beta import RP3Beta
from baselines.rules import SequentialRules
from baselines.sknn import SessionKNN
from benchmark.data.split import EvalSet, Sequences, SplitData
from benchmark.errors import ConfigError
from benchmark.models.base import Batch
from benchmark.record import find_records
from benchmark.report.build import ReportOptions, build_report
from benchmark.report.table import render_markdown
from report_records import planted_ranks, write_run


def train_split(sequences: list[list[int]], n_items: int, times: list[list[int]] | None = None) -> SplitData:
    """A SplitData whose training sequences are exactly ``sequences`` (evaluation sets are unused here)."""
    items = np.concatenate([np.asarray(s, dtype=np.int64) for s in sequences])
    offsets = np.concatenate([[0], np.cumsum([len(s) for s in sequences])]).astype(np.int64)
    stamps = np.arange(len(items)) if times is None else np.concatenate([np.asarray(t) for t in times])
    train = Sequences(items, offsets, stamps.astype(np.int64))
    users = np.arange(len(sequences), dtype=np.int64)
    empty = EvalSet(users, train, np.zeros((len(users), 1), np.int64), np.zeros((len(users), 1), np.int64))
    return SplitData(train, empty, empty, np.array([f"u{u}" for u in users]),
                     np.array([""] + [f"i{i}" for i in range(1, n_items + 1)]), protocol="loo")


def batch_of(histories: list[list[int]], users: list[int]) -> Batch:
    width = max(map(len, histories))
    padded = [[0] * (width - len(h)) + h for h in histories]
    return Batch(torch.tensor(users), torch.tensor(padded, dtype=torch.long))


def test_markov_recovers_a_deterministic_transition():
    rng = np.random.default_rng(0)
    successor = np.r_[0, rng.permutation(np.arange(1, 21))]  # item i is always followed by successor[i]
    sequences = []
    for _ in range(40):
        item, seq = int(rng.integers(1, 21)), []
        for _ in range(6):
            seq.append(item)
            item = int(successor[item])
        sequences.append(seq)
    model = SequentialRules("markov", steps=1, weighting="same")
    model.fit(train_split(sequences, 20))
    histories = [[int(rng.integers(1, 21)), last] for last in range(1, 21)]
    scores = model.score(batch_of(histories, list(range(20))))
    seen = {a for s in sequences for a in s[:-1]}  # items that were followed by something in training
    for last in seen:
        assert int(scores[last - 1].argmax()) == successor[last]
        assert scores[last - 1, successor[last]] >= 1.0  # the count itself, not the tie-break


def test_sequential_rules_weight_each_gap_as_declared():
    model = SequentialRules("sr", steps=2, weighting="div")
    model.fit(train_split([[1, 2, 3], [2, 3]], 4))
    rules = model.rules.toarray()
    assert rules[1, 2] == 1.0 and rules[1, 3] == 0.5 and rules[2, 3] == 2.0 and rules[3].sum() == 0
    # Items no rule reaches from the newest item are ordered by popularity, below every rule's weight.
    scores = model.score(batch_of([[1]], [0]))[0]
    assert scores[2] > scores[3] > scores[1] > scores[4] and scores[1] < 1e-6


def test_stan_weights_match_a_hand_computation_on_three_sessions():
    # Sessions (users 0-2) and the current user 3; times: newest timestamps 100, 40, 90, current 100.
    sessions = [[1, 2, 3], [2, 4, 5], [6, 3, 7], [1, 3]]
    times = [[98, 99, 100], [38, 39, 40], [88, 89, 90], [99, 100]]
    l1, l2, l3 = 2.0, 50.0, 1.5
    model = SessionKNN("stan", k=2, lambda_session=l1, lambda_time=l2, lambda_position=l3)
    model.fit(train_split(sessions, 7, times))
    scores = model.score(batch_of([[1, 3]], [3]))[0].numpy()
    # Current session: item 1 at position 1, item 3 at position 2 (the newest) of l = 2.
    w = {1: math.exp((1 - 2) / l1), 3: math.exp(0.0)}
    sim = {0: (w[1] + w[3]) / math.sqrt(2 * 3) * math.exp(-0 / l2),  # holds 1 and 3
           1: 0.0,  # shares nothing: never a neighbour
           2: w[3] / math.sqrt(2 * 3) * math.exp(-10 / l2)}  # holds 3
    # Item weights around the newest shared item c = 3: at position 2 in session 0, position 1 in session 2.
    expected = np.zeros(8)
    for i, pos in ((1, 0), (2, 1), (3, 2)):
        expected[i] += sim[0] * math.exp(-abs(pos - 2) / l3)
    for i, pos in ((6, 0), (3, 1), (7, 2)):
        expected[i] += sim[2] * math.exp(-abs(pos - 1) / l3)
    np.testing.assert_allclose(scores, expected, atol=1e-6)  # the popularity tie-break is below 1e-6
    # The user is not their own neighbour: its own session (sim 1) would otherwise dominate.
    assert scores[4] == scores[5] == pytest.approx(0.0, abs=1e-6)


def test_stan_counts_an_item_a_neighbour_holds_twice_once_at_its_nearest_occurrence():
    model = SessionKNN("stan", k=1, lambda_session=1.0, lambda_position=2.0)
    model.fit(train_split([[1, 5, 2, 6, 5], [2]], 6))
    scores = model.score(batch_of([[2]], [1]))[0].numpy()
    sim = 1.0 / math.sqrt(1 * 4)  # the neighbour holds 4 distinct items; anchor: item 2 at position 2
    assert scores[5] == pytest.approx(sim * math.exp(-1 / 2.0), abs=1e-6)  # positions 1 and 4: the nearer, once
    assert scores[1] == pytest.approx(sim * math.exp(-2 / 2.0), abs=1e-6)
    assert scores[2] == pytest.approx(sim, abs=1e-6)


def test_vsknn_prefers_the_neighbour_sharing_the_newest_item():
    # Both neighbours share one item with the current session [1, 2]; the one sharing the newest (2) wins.
    model = SessionKNN("vsknn", k=2)
    model.fit(train_split([[1, 5], [2, 6], [1, 2]], 6))
    scores = model.score(batch_of([[1, 2]], [2]))[0].numpy()
    assert scores[6] == pytest.approx(1.0 / math.sqrt(2 * 2), abs=1e-6)  # linear decay: w(2) = 2/2
    assert scores[5] == pytest.approx(0.5 / math.sqrt(2 * 2), abs=1e-6)  # w(1) = 1/2


def test_rp3beta_matches_a_dense_random_walk_on_a_5x6_matrix():
    x = np.array([[1, 1, 0, 0, 1, 0], [0, 1, 1, 0, 0, 0], [1, 0, 1, 1, 0, 1],
                  [0, 0, 0, 1, 1, 0], [1, 1, 1, 0, 0, 1]], dtype=np.float64)
    sequences = [list(np.flatnonzero(row) + 1) for row in x]
    for alpha, beta in ((1.0, 0.0), (1.0, 0.5), (0.5, 0.8)):
        model = RP3Beta("rp3beta", alpha=alpha, beta=beta, k=None)
        model.fit(train_split(sequences, 6))
        p_ui = (x / x.sum(1, keepdims=True)) ** alpha  # element-wise power of the probabilities (0 stays 0)
        p_iu = (x.T / x.sum(0)[:, None]) ** alpha
        walk = p_ui @ p_iu @ p_ui / x.sum(0) ** beta  # user -> item -> user -> item, popularity-penalised
        scores = model.score(batch_of(sequences, list(range(5)))).numpy()
        np.testing.assert_allclose(scores[:, 1:], walk, rtol=1e-5)
        if alpha == 1.0 and beta == 0.0:  # a random walk: each user's probabilities sum to 1
            np.testing.assert_allclose(scores.sum(1), 1.0, rtol=1e-5)


def test_rp3beta_keeps_k_weights_per_item():
    model = RP3Beta("rp3beta", k=2)
    model.fit(train_split([[1, 2, 3, 4], [1, 2], [3, 4, 5]], 5))
    assert (np.diff(model.weights.indptr) <= 2).all()


def test_recent_popularity_counts_only_the_window():
    # Item 1 is the most popular overall, item 2 the only one in the last 2 interactions (by time).
    split = train_split([[1, 1, 1, 2], [3, 2]], 3, times=[[0, 1, 2, 9], [3, 8]])
    model = RecentPop("recentpop", window=2)
    model.fit(split)
    scores = model.score(batch_of([[1]], [0]))[0]
    assert scores.argmax() == 2 and scores[1] > scores[3]  # 1 and 3 tie in the window (0 each): popularity breaks it
    days = RecentPop("recentpop", window=1, unit="days")
    days.fit(train_split([[1, 1, 2]], 2, times=[[0, 10, 3 * 86_400]]))
    assert days.score(batch_of([[1]], [0]))[0].argmax() == 2


@pytest.mark.parametrize("make", [lambda: SequentialRules(steps=0), lambda: SequentialRules(weighting="exp"),
                                  lambda: SessionKNN(k=0), lambda: SessionKNN(lambda_time=0.0),
                                  lambda: RecentPop(unit="weeks"), lambda: RP3Beta(alpha=0.0), lambda: RP3Beta(k=0)])
def test_simple_baselines_refuse_impossible_settings(make):
    with pytest.raises(ConfigError, match=r"model\.\w+"):
        make()


def test_families_table_shows_the_non_neural_sequential_family(tmp_path):
    # Markov (sequence-aware) must not become the reference even though it scores best: rp3beta is the best
    # non-sequential baseline; stan and markov form their own family.
    targets = {"rp3beta": "baselines.rp3beta.RP3Beta", "markov": "baselines.rules.SequentialRules",
               "stan": "baselines.sknn.SessionKNN", "recentpop": "baselines.recentpop.RecentPop"}
    for model, quality in (("recentpop", 0.0), ("rp3beta", 0.3), ("markov", 1.5), ("stan", 1.0)):
        write_run(tmp_path, "ds-a", model, 0, planted_ranks(80, quality, 0), model_config={"_target_": targets[model]},
                  valid={"ndcg@10": 0.1 + quality})
    report = build_report(find_records(tmp_path), ReportOptions(), "seqrec-report R", "R")
    table, rows = report.families
    assert list(rows["family"]) == ["non-neural sequential"]
    assert rows.iloc[0]["model"] == "markov" and rows.iloc[0]["reference"] == "rp3beta"
    assert rows.iloc[0]["candidates"] == "markov,stan"
    text = render_markdown(table)
    assert "non-neural sequential" in text and "markov" in text and "rp3beta" in text
