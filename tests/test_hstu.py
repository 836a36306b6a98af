"""HSTU encoder: its attention, its relative time bias, and its composition with every head and objective."""

from __future__ import annotations

import dataclasses

import numpy as np
import pytest
import torch

from benchmark.data.split import Sequences, leave_one_out
from benchmark.errors import ConfigError
from benchmark.evaluation import evaluate
from benchmark.models import Batch, SequentialRecommender
from benchmark.models.hstu import HSTUEncoder, time_buckets
from benchmark.models.sequential import has_times
from test_models import N_ITEMS, TINY, TRAINER, chain_data, histories

STEPS = dataclasses.replace(TRAINER, max_epochs=1, batch_size=64)
COMPOSITIONS = {
    "next_item_ce": dict(),
    "next_item_bce": dict(objective="bce", n_negatives=4),
    "next_item_sampled_softmax": dict(objective="sampled_softmax", n_negatives=8),
    "cloze": dict(causal=False, objective="cloze", mask_prob=0.4),
    "autoregressive_ce": dict(head="autoregressive", horizon=3, prefixes_per_window=4),
    "autoregressive_bce": dict(head="autoregressive", horizon=3, objective="bce", n_negatives=4),
    "autoregressive_sampled_softmax": dict(head="autoregressive", horizon=3, objective="sampled_softmax", n_negatives=8),
}


def test_attention_is_pointwise_silu_over_the_past_divided_by_max_len():
    torch.manual_seed(0)
    encoder = HSTUEncoder(8, max_len=6, layers=1, heads=1, dropout=0.0, time_bias=False).eval()
    layer = encoder.layers[0]
    with torch.no_grad():
        layer.bias.position.uniform_(-1, 1)
    x = torch.randn(1, 4, 8)
    u, v, q, k = torch.nn.functional.silu(layer.f1(layer.norm_in(x))).split(8, dim=-1)
    offset = torch.arange(4)[:, None] - torch.arange(4)[None, :]
    weights = torch.nn.functional.silu(q @ k.transpose(1, 2) + layer.bias.position[offset + 5]) / 6
    out = weights.tril() @ v  # causal: key j <= query i, no softmax
    expected = x + layer.f2(layer.norm_attn(out) * u)
    torch.testing.assert_close(layer(x, torch.ones(1, 4, 4).tril(), None), expected)


def test_causal_hstu_ignores_later_items_and_extra_left_padding():
    torch.manual_seed(0)
    encoder = HSTUEncoder(16, max_len=10, layers=2, heads=2).eval()
    x, mask, times = torch.randn(2, 10, 16), torch.ones(2, 10, dtype=torch.bool), torch.arange(10).repeat(2, 1) * 1000
    changed = x.clone()
    changed[:, 7:] = torch.randn(2, 3, 16)
    torch.testing.assert_close(encoder(x, mask, times)[:, :7], encoder(changed, mask, times)[:, :7])
    assert not torch.allclose(encoder(x, mask, times)[:, 7:], encoder(changed, mask, times)[:, 7:])
    padded = torch.cat([torch.zeros(2, 3, 16), x], 1), torch.cat([torch.zeros(2, 3, dtype=torch.bool), mask], 1)
    wide = encoder(*padded, torch.cat([torch.zeros(2, 3, dtype=torch.long), times], 1))
    torch.testing.assert_close(wide[:, 3:], encoder(x, mask, times), atol=1e-5, rtol=1e-5)


def test_time_gaps_fall_in_log2_buckets():
    times = torch.tensor([[0, 1, 3, 1000, 2**40]])
    buckets = time_buckets(times)[0, :, 0]
    assert buckets.tolist() == [0, 1, 2, 9, 40]  # floor(log2(1 + gap))
    assert time_buckets(torch.tensor([[0, 2**63 - 1]])).max() == 63  # the largest gap: the last bucket


def test_time_bias_changes_the_states_only_when_on():
    torch.manual_seed(0)
    x, mask = torch.randn(1, 5, 16), torch.ones(1, 5, dtype=torch.bool)
    near, far = torch.tensor([[0, 1, 2, 3, 4]]), torch.tensor([[0, 10, 10**4, 10**6, 10**8]])
    for time_bias in (True, False):
        encoder = HSTUEncoder(16, max_len=10, layers=1, heads=2, time_bias=time_bias).eval()
        with torch.no_grad():
            encoder.layers[0].bias.position.normal_()
            if time_bias:
                encoder.layers[0].bias.time.normal_()
        same = torch.allclose(encoder(x, mask, near), encoder(x, mask, far))
        assert same != time_bias


def test_order_only_timestamps_are_not_times():
    positions = Sequences(np.array([5, 6, 7, 8, 9]), np.array([0, 3, 5]), np.array([0, 1, 2, 0, 1]))
    assert not has_times(positions)
    assert has_times(dataclasses.replace(positions, times=np.array([10, 20, 30, 5, 9])))


def relative_time_data(n_users: int = 120, seed: int = 0):
    """Pairs (x, y): x a random item 3-8, y = 1 when x came 1 s after the previous pair, 2 when a day
    after: only the time gap before x tells y."""
    rng = np.random.default_rng(seed)
    long = rng.random((n_users, 8)) < 0.5
    starts = np.cumsum(np.where(long, 86_400, 1) + 1, axis=1)  # x's time; y follows 1 s later
    items = np.stack([rng.integers(3, 9, long.shape), np.where(long, 2, 1)], axis=2).reshape(n_users, -1)
    times = np.stack([starts, starts + 1], axis=2).reshape(n_users, -1)
    sequences = Sequences(items.ravel(), np.arange(0, items.size + 1, items.shape[1]), times.ravel())
    item_ids = np.array(["<pad>"] + [f"i{i}" for i in range(8)], dtype=object)
    return leave_one_out(sequences, np.array([f"u{u}" for u in range(n_users)], dtype=object), item_ids)


def test_hstu_learns_a_signal_carried_by_the_time_gaps_only():
    data = relative_time_data()
    # Items 1 and 2 are in every history: unmasked, or every target would be a masked repeat.
    trainer = dataclasses.replace(TRAINER, lr=0.005, max_epochs=16, patience=16, mask_history=False)
    hr = {}
    for time_bias in (True, False):
        model = SequentialRecommender("hstu", "hstu", **{**TINY, "layers": 2, "time_bias": time_bias, "dropout": 0.0})
        model.fit(data, trainer)
        assert model.uses_times == time_bias
        hr[time_bias] = evaluate(model, data, data.test, ks=(1,), mask_history=False).aggregate["hr@1"]
    assert hr[True] >= 0.9 and hr[False] <= 0.7, hr


@pytest.mark.parametrize("name", COMPOSITIONS)
def test_hstu_composes_with_every_head_and_objective(name):
    data, _ = chain_data(n_users=48)
    torch.manual_seed(0)
    model = SequentialRecommender(name, "hstu", **{**TINY, **COMPOSITIONS[name]})
    logs = model.fit(data, STEPS)
    assert model.uses_times and len(logs) == 1 and np.isfinite(logs[0].loss)
    history = data.test.histories.padded()
    times = data.test.histories.padded(of_times=True)
    scores = model.score(Batch(torch.arange(len(history)), history, times))
    assert scores.shape == (len(history), N_ITEMS + 1) and torch.isfinite(scores[:, 1:]).all()
    with pytest.raises(ValueError, match="Batch.times"):
        model.score(Batch(torch.arange(len(history)), history))


def test_hstu_scores_keep_their_times_when_padding_columns_are_dropped():
    data, _ = chain_data(n_users=48)
    model = SequentialRecommender("hstu", "hstu", **TINY)
    model.fit(data, STEPS)
    tight = histories(11)
    times = torch.where(tight > 0, torch.arange(11) * 7, 0)
    wide = torch.nn.functional.pad(tight, (19, 0)), torch.nn.functional.pad(times, (19, 0))
    users = torch.arange(len(tight))
    torch.testing.assert_close(model.score(Batch(users, tight, times)), model.score(Batch(users, *wide)), atol=1e-5, rtol=1e-5)


def test_only_bidirectional_encoders_take_causal_false():
    SequentialRecommender("ok", "hstu", causal=False, objective="cloze")
    with pytest.raises(ConfigError, match=r"model.causal=false needs an encoder that reads model.causal \(attention/hstu\)"):
        SequentialRecommender("bad", "rnn", causal=False, objective="cloze")
