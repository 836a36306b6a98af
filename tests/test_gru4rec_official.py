"""GRU4Rec's official training choices (Hidasi & Czapp, 2023) as options: session-parallel
mini-batches, popularity-sampled and in-batch negatives, BPR-max and the log-Q corrected sampled
softmax, hidden dropout. Each is checked against a hand computation on a tiny example."""

from __future__ import annotations

import dataclasses
import math

import numpy as np
import pytest
import torch

from benchmark.errors import ConfigError
from benchmark.models import SequentialRecommender
from benchmark.models.gru4rec import RNNEncoder
from benchmark.models.objectives import Negatives, bpr_max, sampled_softmax
from benchmark.models.session_parallel import SessionParallel, session_parallel_steps
from test_models import TINY, TRAINER, chain_data, hr1

OFFSETS = np.array([0, 3, 4, 8, 10, 15])  # sequences of 3, 1 (no target), 4, 2 and 5 items


def all_steps(offsets: np.ndarray, batch_size: int, order: np.ndarray) -> list[np.ndarray]:
    return list(session_parallel_steps(offsets, batch_size, order))


@pytest.mark.parametrize("batch_size", [1, 2, 3, 10])
def test_session_parallel_steps_predict_every_target_once_and_keep_each_slot_on_one_sequence(batch_size):
    order = np.array([4, 1, 0, 3, 2])
    steps = all_steps(OFFSETS, batch_size, order)
    inputs = np.concatenate([s[:, 1] for s in steps])
    targets_of_each_sequence = [np.arange(lo, hi - 1) for lo, hi in zip(OFFSETS[:-1], OFFSETS[1:])]
    assert sorted(inputs.tolist()) == np.concatenate(targets_of_each_sequence).tolist()  # each target once
    starts = set(OFFSETS[:-1].tolist())
    for slot in range(batch_size):
        read = [int(s[s[:, 0] == slot, 1][0]) for s in steps if (s[:, 0] == slot).any()]
        # A slot reads item after item; it jumps only to the start of its next sequence, dealt in order.
        jumps = [b for a, b in zip(read, read[1:]) if b != a + 1]
        assert all(b in starts for b in jumps) and (not read or read[0] in starts)
    first_read = [int(np.flatnonzero(inputs == OFFSETS[s])[0]) for s in (4, 0, 3, 2)]
    assert first_read == sorted(first_read)  # sequences are dealt in the given order (1 has no target)
    assert all(len(s) <= batch_size for s in steps)


def test_session_parallel_states_are_the_gru_states_of_the_whole_prefix():
    """State carried across steps and reset at each new sequence: the output at every position
    equals the GRU run from a zero state over the sequence up to that position."""
    items = np.array([3, 1, 4, 1, 5, 9, 2, 6, 5, 3, 5, 8, 9, 7, 9]) % 9 + 1
    model = SequentialRecommender("g", "rnn", hidden=8, layers=2, dropout=0.0, training="session_parallel")
    model.net = model.build(10)
    steps = SessionParallel(model, items, OFFSETS, batch_size=2)
    seen = {}

    def capture(hidden, targets, generator):
        seen.update(zip(position.tolist(), hidden.detach()))
        return hidden.sum()

    model.objective_loss = capture
    for step in steps.batches(torch.Generator().manual_seed(0)):
        position = step[:, 1]
        steps.loss(step, torch.Generator())
    assert len(seen) == steps.n_targets == 10
    with torch.no_grad():
        for pos, state in seen.items():
            seq = int(np.searchsorted(OFFSETS, pos, side="right")) - 1
            prefix = torch.from_numpy(items[OFFSETS[seq] : pos + 1])[None]
            torch.testing.assert_close(state, model.net(prefix)[0, -1])


def test_popularity_sampler_draws_in_proportion_to_count_to_the_alpha():
    counts = torch.tensor([0, 1, 4, 9, 0])
    drawn = Negatives(sampler="popularity", alpha=0.5, counts=counts).draw((60000,), 4, torch.Generator().manual_seed(0), "cpu")
    share = torch.bincount(drawn, minlength=5)[1:].double() / 60000
    torch.testing.assert_close(share, torch.tensor([1 / 6, 2 / 6, 3 / 6, 0.0], dtype=torch.double), atol=0.01, rtol=0)
    flat = Negatives(sampler="popularity", alpha=0.0, counts=counts).draw((40000,), 4, torch.Generator().manual_seed(0), "cpu")
    assert (torch.bincount(flat, minlength=5)[1:] > 9000).all()  # alpha 0: uniform, unseen items too


def test_uniform_negatives_are_the_draws_of_before():
    drawn = Negatives().draw((5, 3), 50, torch.Generator().manual_seed(7), "cpu")
    assert torch.equal(drawn, torch.randint(1, 51, (5, 3), generator=torch.Generator().manual_seed(7)))


# A batch of two positions (targets items 1 and 2) whose only drawable negative is item 3.
H = torch.tensor([[1.0, 0.5], [-0.5, 1.0]], dtype=torch.double)
ITEMS = torch.tensor([[0.0, 0.0], [2.0, 0.0], [0.5, 1.5], [-1.0, 0.5]], dtype=torch.double)
Y = torch.tensor([1, 2])
ONLY_ITEM_3 = Negatives(n=1, sampler="popularity", counts=torch.tensor([0, 0, 0, 5]), in_batch=True)


def hand_scores(h: list[float]) -> list[float]:
    """Scores of items 1, 2, 3 (the columns: both targets in the batch, then the sample)."""
    return [h[0] * e[0] + h[1] * e[1] for e in ITEMS[1:].tolist()]


def hand_bpr_max(h_rows: list[list[float]], bpreg: float) -> float:
    total = 0.0
    for row, target in zip(h_rows, (0, 1)):
        scores = hand_scores(row)
        negatives = [s for j, s in enumerate(scores) if j != target]
        weights = [math.exp(s) / sum(math.exp(t) for t in negatives) for s in negatives]
        ranked = sum(w / (1 + math.exp(-(scores[target] - s))) for w, s in zip(weights, negatives))
        total += -math.log(ranked) + bpreg * sum(w * s * s for w, s in zip(weights, negatives))
    return total / len(h_rows)


def hand_softmax_logq(h_rows: list[list[float]], logq: float) -> float:
    counts = [0, 0, 5]  # of items 1, 2, 3; in-batch columns are corrected by log count (clamped at 1)
    total = 0.0
    for row, target in zip(h_rows, (0, 1)):
        scores = hand_scores(row)
        logits = [s - logq * math.log(max(c, 1)) for s, c in zip(scores, counts)]
        # columns: the target, the other target, then the sample; the target's in-batch copy is masked
        kept = [logits[target]] + [x for j, x in enumerate(logits) if j != target]
        total += -(kept[0] - math.log(sum(math.exp(x) for x in kept)))
    return total / len(h_rows)


def numeric_gradient(loss, h: torch.Tensor, eps: float = 1e-6) -> torch.Tensor:
    grad = torch.zeros_like(h)
    for idx in np.ndindex(*h.shape):
        up, down = h.clone(), h.clone()
        up[idx] += eps
        down[idx] -= eps
        grad[idx] = (loss(up.tolist()) - loss(down.tolist())) / (2 * eps)
    return grad


@pytest.mark.parametrize("bpreg", [0.0, 0.7])
def test_bpr_max_loss_and_gradient_against_a_hand_computation(bpreg):
    h = H.clone().requires_grad_()
    loss = bpr_max(h, Y, ITEMS, torch.Generator(), dataclasses.replace(ONLY_ITEM_3, bpreg=bpreg))
    loss.backward()
    assert loss.item() == pytest.approx(hand_bpr_max(H.tolist(), bpreg), rel=1e-9)
    torch.testing.assert_close(h.grad, numeric_gradient(lambda x: hand_bpr_max(x, bpreg), H), rtol=1e-5, atol=1e-7)


@pytest.mark.parametrize("logq", [0.0, 1.0])
def test_sampled_softmax_with_in_batch_negatives_and_logq_against_a_hand_computation(logq):
    h = H.clone().requires_grad_()
    loss = sampled_softmax(h, Y, ITEMS, torch.Generator(), dataclasses.replace(ONLY_ITEM_3, logq=logq))
    loss.backward()
    assert loss.item() == pytest.approx(hand_softmax_logq(H.tolist(), logq), rel=1e-6)  # log Q in float32
    torch.testing.assert_close(h.grad, numeric_gradient(lambda x: hand_softmax_logq(x, logq), H), rtol=1e-5, atol=1e-7)


def test_hidden_dropout_drops_the_grus_output_states_in_training_only():
    encoder = RNNEncoder(hidden=64, dropout=0.0, hidden_dropout=0.5)
    x, mask = torch.randn(4, 10, 64), torch.ones(4, 10, dtype=torch.bool)
    zeros = (encoder.train()(x, mask) == 0).double().mean().item()
    assert 0.4 < zeros < 0.6 and (encoder.eval()(x, mask) != 0).all()


@pytest.mark.parametrize("settings, message", [
    (dict(encoder="attention", training="session_parallel"), "model.training=session_parallel carries a GRU's state"),
    (dict(encoder="rnn", cell="lstm", training="session_parallel"), "model.cell=gru"),
    (dict(encoder="rnn", training="bptt"), "model.training='bptt' is unknown; choose one of windows, session_parallel"),
    (dict(encoder="rnn", sampler="zipf"), "model.sampler='zipf' is unknown; choose one of uniform, popularity"),
])
def test_impossible_official_options_are_config_errors(settings, message):
    with pytest.raises(ConfigError, match=message):
        SequentialRecommender("bad", **settings)


def test_session_parallel_bpr_max_with_popularity_negatives_learns_the_order():
    data, _ = chain_data()
    model = SequentialRecommender("g", **{**TINY, "encoder": "rnn", "training": "session_parallel", "objective": "bpr_max",
                                          "sampler": "popularity", "sample_alpha": 0.5, "in_batch_negatives": True,
                                          "n_negatives": 8, "bpreg": 0.5, "hidden_dropout": 0.1})
    torch.set_num_threads(1)
    model.fit(data, dataclasses.replace(TRAINER, batch_size=32, max_epochs=6, optimizer="adagrad", lr=0.2, momentum=0.3))
    assert hr1(model, data) > 0.9
