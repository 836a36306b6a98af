"""Sequence models: they use order, stay causal and padding-blind, compose, refuse impossible
combinations, generate lists (seq2seq), and every preset in conf/model/ runs through the CLI."""

from __future__ import annotations

import dataclasses
import functools
import json
from pathlib import Path

import numpy as np
import pytest
import torch
import torch.nn.functional as F

from baselines import BPRMF, EASE, ItemKNN, MostPop
from benchmark.config import TrainerConfig
from benchmark.data.split import Sequences, SplitData, leave_one_out
from benchmark.errors import ConfigError
from benchmark.evaluation import evaluate, excluded_mask
from benchmark.models import Batch, SequentialRecommender
from benchmark.models.caser import CaserEncoder, banded, window_max
from benchmark.models.gru4rec import RNNEncoder, gru_layer
from benchmark.models.hstu import HSTUEncoder
from benchmark.models.nextitnet import CausalConv, NextItNetEncoder
from benchmark.models.sasrec import AttentionEncoder, SelfAttention
from conftest import REPO, permutation_rows, run_cli, write_movielens_csv

N_ITEMS, SEGMENT, SEGMENTS = 40, 4, 3


def chain_data(shuffle: bool = False, n_users: int = 160, seed: int = 0) -> tuple[SplitData, np.ndarray]:
    """Each user's sequence is 3 runs of 4 items x, p(x), p(p(x)), ... for a fixed permutation p of
    40 items, 12 distinct items per user; the valid and test targets are p(previous item).
    Order is the signal: the item *set* leaves ~6 equally plausible continuations, so set-based
    models stay low. With ``shuffle`` every sequence is shuffled and no order signal is left.
    Returns the split and p (as item ids, p[i] follows item i)."""
    rng = np.random.default_rng(seed)
    perm = rng.permutation(N_ITEMS)
    sequences = []
    while len(sequences) < n_users:
        seq = []
        for _ in range(SEGMENTS):
            item = int(rng.integers(N_ITEMS))
            for _ in range(SEGMENT):
                seq.append(item + 1)
                item = int(perm[item])
        if len(set(seq)) == len(seq):
            if shuffle:
                rng.shuffle(seq)
            sequences.append(seq)
    items = np.concatenate(sequences).astype(np.int64)
    offsets = np.arange(0, len(items) + 1, len(sequences[0]), dtype=np.int64)
    seqs = Sequences(items, offsets, np.arange(len(items), dtype=np.int64))
    item_ids = np.array(["<pad>"] + [f"i{i}" for i in range(N_ITEMS)], dtype=object)
    next_id = np.concatenate([[0], perm + 1])
    return leave_one_out(seqs, np.array([f"u{u}" for u in range(n_users)], dtype=object), item_ids), next_id


# Tiny versions of the presets (same composition, small sizes so the whole file stays fast).
TINY = dict(max_len=12, hidden=32, dropout=0.1, layers=1, heads=2)
SEQ2SEQ = dict(head="autoregressive", horizon=3, prefixes_per_window=12)
MODELS = {
    "gru4rec": dict(encoder="rnn"),
    "lstm": dict(encoder="rnn", cell="lstm"),
    "caser": dict(encoder="caser"),
    "nextitnet": dict(encoder="nextitnet", kernel=2),
    "sasrec": dict(encoder="attention"),
    "sasrec_bce": dict(encoder="attention", objective="bce", n_negatives=4),
    "gru4rec_sampled_softmax": dict(encoder="rnn", objective="sampled_softmax", n_negatives=10),
    "bert4rec": dict(encoder="attention", causal=False, objective="cloze", mask_prob=0.4),
    "seq2seq_rnn": dict(encoder="rnn", **SEQ2SEQ),
    "seq2seq_cnn": dict(encoder="nextitnet", kernel=2, **SEQ2SEQ),
    "seq2seq_attention": dict(encoder="attention", **SEQ2SEQ),
}
TRAINER = TrainerConfig(lr=0.01, batch_size=16, max_epochs=12, patience=12, device="cpu", valid_metric="ndcg@10", num_threads=1)
EPOCHS = {"bert4rec": 20}  # the cloze task learns from fewer positions per window
# HR@1 each must reach on the chain task. seq2seq_cnn varies most with the seed: 0.80-1.00 over
# seeds 0-4 (0.88-0.93 with the previous dropout generator), so its floor sits below that spread.
HR1_FLOOR = {"seq2seq_cnn": 0.75}


def make(name: str, **overrides) -> SequentialRecommender:
    return SequentialRecommender(name=name, **{**TINY, **MODELS[name], **overrides})


@functools.cache
def trained(name: str, shuffle: bool = False) -> tuple[SequentialRecommender, SplitData]:
    data, _ = chain_data(shuffle)
    model = make(name)
    threads = torch.get_num_threads()
    torch.set_num_threads(1)  # tiny tensors: more threads only add contention on a shared box
    try:
        model.fit(data, dataclasses.replace(TRAINER, max_epochs=EPOCHS.get(name, TRAINER.max_epochs)))
    finally:
        torch.set_num_threads(threads)
    return model, data


@functools.cache
def baseline_hr1(shuffle: bool) -> dict[str, float]:
    data, _ = chain_data(shuffle)
    out = {}
    for model in (MostPop(), ItemKNN(), BPRMF(), EASE()):  # their presets' defaults
        model.fit(data, TrainerConfig(device="cpu", num_threads=1))
        out[model.name] = evaluate(model, data, data.test, ks=(1,)).aggregate["hr@1"]
    return out


def hr1(model, data: SplitData) -> float:
    return evaluate(model, data, data.test, ks=(1,)).aggregate["hr@1"]


@pytest.mark.parametrize("name", MODELS)
def test_sequence_models_learn_the_order_that_set_models_cannot_see(name):
    model, data = trained(name)
    assert hr1(model, data) >= HR1_FLOOR.get(name, 0.9)
    assert max(baseline_hr1(False).values()) <= 0.5  # the set-based baselines stay far below


@pytest.mark.parametrize("name", ["gru4rec", "caser", "sasrec", "bert4rec", "seq2seq_attention"])
def test_without_order_the_advantage_disappears(name):
    model, data = trained(name, shuffle=True)
    best_baseline = max(baseline_hr1(True).values())
    assert hr1(model, data) <= max(best_baseline, 0.15) + 0.15


def histories(width: int, lengths=(1, 3, 5, 11)) -> torch.Tensor:
    """Left-padded histories of several lengths, padded to ``width`` (ids are arbitrary items)."""
    rows = torch.zeros(len(lengths), width, dtype=torch.long)
    for r, n in enumerate(lengths):
        rows[r, width - n :] = torch.arange(1, n + 1) * (r + 2) % N_ITEMS + 1
    return rows


@pytest.mark.parametrize("name", MODELS)
def test_left_padding_does_not_change_scores_or_lists(name):
    model, data = trained(name)
    users = torch.arange(4)
    tight, wide = histories(11), histories(30)  # wider than max_len too
    torch.testing.assert_close(model.score(Batch(users, tight)), model.score(Batch(users, wide)), atol=1e-5, rtol=1e-5)
    excluded = excluded_mask(data.n_items + 1, tight, tight[:, :0], True)
    assert torch.equal(model.recommend(Batch(users, tight), 5, excluded), model.recommend(Batch(users, wide), 5, excluded))


def causal_encoders() -> dict[str, torch.nn.Module]:
    return {
        "gru": RNNEncoder(16, layers=2, cell="gru"),
        "lstm": RNNEncoder(16, layers=2, cell="lstm"),
        "caser": CaserEncoder(16, window=3),
        "nextitnet": NextItNetEncoder(16, layers=2),
        "sasrec": AttentionEncoder(16, max_len=10, layers=2, heads=2, causal=True),
    }


@pytest.mark.parametrize("name", list(causal_encoders()))
def test_causal_encoders_ignore_later_items(name):
    torch.manual_seed(0)
    encoder = causal_encoders()[name].eval()
    x, mask = torch.randn(3, 10, 16), torch.ones(3, 10, dtype=torch.bool)
    mask[0, :4] = False  # one left-padded row
    t = 6
    changed = x.clone()
    changed[:, t + 1 :] = torch.randn(3, 10 - t - 1, 16)
    before, after = encoder(x * mask[..., None], mask), encoder(changed * mask[..., None], mask)
    torch.testing.assert_close(before[:, : t + 1], after[:, : t + 1])
    assert not torch.allclose(before[:, t + 1 :], after[:, t + 1 :])  # later positions do see the change


def test_init_std_gives_bert_style_weights():
    model = SequentialRecommender("m", "attention", init_std=0.02, hidden=32)
    net = model.build(300)
    weights = torch.cat([net.item_embedding.weight[1:].flatten(), net.encoder.blocks[0].ffn[0].weight.flatten()])
    assert abs(weights.std().item() - 0.02) < 0.002 and net.item_embedding.weight[0].abs().sum() == 0
    assert net.encoder.input_scale == 1.0  # small embeddings enter unscaled
    assert SequentialRecommender("m", "attention", hidden=32).build(5).encoder.input_scale == 32**0.5


def caser_per_window(encoder: CaserEncoder, x: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
    """Caser as the paper writes it: cut the [L, H] image ending at every position, convolve each."""
    batch, width, hidden = x.shape
    L = encoder.window
    windows = F.pad(x * mask[..., None], (0, 0, L - 1, 0)).unfold(1, L, 1)  # [B, W, H, L]
    images = windows.reshape(batch * width, hidden, L)
    pooled = [F.relu(conv(images)).amax(dim=2) for conv in encoder.horizontal]  # each [B*W, n_h]
    vertical = torch.einsum("nhl,vl->nvh", images, encoder.vertical).flatten(1)  # [B*W, n_v * H]
    z = torch.cat([*pooled, vertical], dim=1)
    return F.relu(encoder.fc(z)).view(batch, width, hidden) * mask[..., None]


@pytest.mark.parametrize("window", [1, 3, 8])
@pytest.mark.parametrize("n_h, n_v", [(3, 2), (0, 2), (3, 0)])  # one kind at 0: the paper's ablations
def test_caser_shared_convolutions_equal_per_window_convolutions(window, n_h, n_v):
    """The encoder convolves the sequence once and max-pools; that must be the per-window model,
    in values and in gradients."""
    torch.manual_seed(0)
    encoder = CaserEncoder(16, window=window, horizontal_filters=n_h, vertical_filters=n_v).eval()
    x, mask = torch.randn(3, 12, 16, requires_grad=True), torch.ones(3, 12, dtype=torch.bool)
    mask[0, :5] = False
    mask[1, :11] = False
    out, expected = encoder(x, mask), caser_per_window(encoder, x, mask)
    torch.testing.assert_close(out, expected, atol=1e-5, rtol=1e-5)
    grad = torch.randn_like(out)
    inputs = [x, *encoder.parameters()]
    grads = [torch.autograd.grad(y, inputs, grad, allow_unused=True, materialize_grads=True) for y in (out, expected)]
    for got, want in zip(*grads):
        torch.testing.assert_close(got, want, atol=1e-5, rtol=1e-5)


@pytest.mark.parametrize("n_filters, width", [(1, 1), (3, 4), (2, 7)])
def test_banded_matrix_places_each_filter_on_its_row(n_filters, width):
    weight = torch.randn(n_filters, 5)
    expected = torch.zeros(n_filters, width, 5 - 1 + width)
    for t in range(width):
        expected[:, t, t : t + 5] = weight
    torch.testing.assert_close(banded(weight, width), expected.reshape(n_filters * width, -1))


def test_caser_without_any_filters_is_refused():
    with pytest.raises(ConfigError, match="model.horizontal_filters=0 and model.vertical_filters=0"):
        CaserEncoder(16, horizontal_filters=0, vertical_filters=0)
    with pytest.raises(ConfigError, match="model.vertical_filters=-1 must be >= 0"):
        CaserEncoder(16, vertical_filters=-1)


@pytest.mark.parametrize("spans, width", [([1, 2, 3, 4, 5, 6, 7, 8], 9), ([13, 16, 17], 4), ([1], 1)])
def test_window_max_equals_max_pool_in_values_and_gradients(spans, width):
    """The sparse-table sliding max is max-pool with each block's kernel: same values, and the
    gradient goes to the same element, the earliest where values tie (small integers tie often)."""
    torch.manual_seed(0)
    block, length = 3, width + max(spans) - 1
    x = torch.randint(0, 4, (2, block * len(spans), length)).float().requires_grad_()
    pooled = torch.cat([F.max_pool1d(x[:, i * block : (i + 1) * block, : width + span - 1], span, stride=1)
                        for i, span in enumerate(spans)], dim=1)
    out = window_max(x, spans, width)
    torch.testing.assert_close(out, pooled)
    grad = torch.randn_like(out)
    expected, = torch.autograd.grad(pooled, x, grad)
    got, = torch.autograd.grad(out, x, grad)
    torch.testing.assert_close(got, expected)


def test_caser_scores_only_its_window_and_equal_the_full_encoding():
    """score() encodes the last L items only: the same as encoding the whole history."""
    model, data = trained("caser")
    history = histories(11)
    memory, _ = model.encode(history)
    full = model.net.logits(memory[:, -1])
    assert model.net.encoder.receptive_field == model.net.encoder.window < history.shape[1]
    torch.testing.assert_close(model.score(Batch(torch.arange(4), history)), full, atol=1e-5, rtol=1e-5)


@pytest.mark.parametrize("window, width", [(4, 10), (10, 10), (12, 10)])
def test_caser_newest_only_equals_the_newest_state_of_the_full_encoding(window, width):
    torch.manual_seed(0)
    encoder = CaserEncoder(16, window=window, horizontal_filters=3, vertical_filters=2).eval()
    x = torch.randn(3, width, 16)
    mask = torch.arange(width)[None, :] >= torch.tensor([[width - 4], [0], [width - 1]])  # left padding
    newest = encoder(x, mask, newest_only=True)
    assert newest.shape == (3, 1, 16)
    torch.testing.assert_close(newest, encoder(x, mask)[:, -1:], atol=1e-5, rtol=1e-5)


@pytest.mark.parametrize("causal", [True, False])
def test_attention_newest_only_equals_the_newest_state_of_the_full_encoding(causal):
    """Ranking computes the last block's query for the newest position only: same states."""
    torch.manual_seed(0)
    encoder = AttentionEncoder(16, max_len=10, layers=3, heads=2, causal=causal).eval()
    x = torch.randn(3, 10, 16)
    mask = torch.tensor([[False] * 6 + [True] * 4, [True] * 10, [False] * 9 + [True]])
    newest = encoder(x, mask, newest_only=True)
    assert newest.shape == (3, 1, 16)
    torch.testing.assert_close(newest, encoder(x, mask)[:, -1:], atol=1e-5, rtol=1e-5)


def assert_same_values_and_gradients(out, expected, inputs, tol=1e-5):
    """``out`` equals ``expected``, and so do their gradients with respect to ``inputs`` for one
    random output gradient."""
    torch.testing.assert_close(out, expected, atol=tol, rtol=tol)
    grad = torch.randn_like(out)
    for g, w in zip(torch.autograd.grad(out, inputs, grad), torch.autograd.grad(expected, inputs, grad)):
        torch.testing.assert_close(g, w, atol=tol, rtol=tol)


@pytest.mark.parametrize("kernel, dilation", [(3, 1), (3, 4), (2, 8), (1, 1)])
def test_causal_conv_is_a_left_padded_conv1d(kernel, dilation):
    """Values and gradients equal nn.Conv1d's on the input padded with (kernel - 1) * dilation zeros."""
    torch.manual_seed(0)
    conv = CausalConv(6, kernel, dilation)
    x = torch.randn(3, 10, 6, requires_grad=True)
    expected = conv.conv(F.pad(x.transpose(1, 2), ((kernel - 1) * dilation, 0))).transpose(1, 2)
    assert_same_values_and_gradients(conv(x), expected, [x, conv.conv.weight, conv.conv.bias])


@pytest.mark.parametrize("inputs, hidden, width", [(5, 5, 1), (6, 4, 7), (3, 8, 12)])
def test_gru_layer_computes_what_nn_gru_computes(inputs, hidden, width):
    """The written-out recurrence and backward equal nn.GRU's outputs and gradients (input and all
    four parameters) on nn.GRU's own parameters, to float64 rounding."""
    torch.manual_seed(0)
    gru = torch.nn.GRU(inputs, hidden, batch_first=True).double()
    x = torch.randn(3, width, inputs, dtype=torch.float64, requires_grad=True)
    assert_same_values_and_gradients(gru_layer(x, *gru.all_weights[0]), gru(x)[0], [x, *gru.all_weights[0]], tol=1e-12)


def test_gru_encoder_trains_through_gru_layer_and_ranks_through_nn_gru(monkeypatch):
    """Training (grad enabled, CPU) takes gru_layer for every layer, ranking (no grad) nn.GRU: the
    same states and gradients either way, with left padding."""
    torch.manual_seed(0)
    encoder = RNNEncoder(8, layers=2, dropout=0.0, cell="gru")
    x, mask = torch.randn(3, 9, 8, requires_grad=True), torch.ones(3, 9, dtype=torch.bool)
    mask[0, :4] = False
    calls = []
    monkeypatch.setattr("benchmark.models.gru4rec.gru_layer", lambda *a: calls.append(1) or gru_layer(*a))
    out = encoder(x * mask[..., None], mask)
    assert len(calls) == 2
    with torch.no_grad():
        ranked = encoder(x * mask[..., None], mask)
    assert len(calls) == 2
    torch.testing.assert_close(out, ranked, atol=1e-5, rtol=1e-5)
    grads = torch.autograd.grad(out.square().sum(), [x, *encoder.rnn.parameters()])
    monkeypatch.setattr(RNNEncoder, "written_out", lambda self, x: False)
    reference = encoder(x * mask[..., None], mask)
    for g, w in zip(grads, torch.autograd.grad(reference.square().sum(), [x, *encoder.rnn.parameters()])):
        torch.testing.assert_close(g, w, atol=1e-5, rtol=1e-5)


@pytest.mark.parametrize("n_queries", [7, 1])
def test_self_attention_computes_what_nn_multihead_attention_computes(n_queries):
    """The written-out attention is nn.MultiheadAttention's function on the same parameters
    (state dicts are interchangeable), with a boolean mask, for all or only the newest queries."""
    torch.manual_seed(0)
    ours, reference = SelfAttention(12, 3, dropout=0.0), torch.nn.MultiheadAttention(12, 3, batch_first=True)
    ours.load_state_dict(reference.state_dict())
    x = torch.randn(4, 7, 12)
    blocked = torch.rand(4, 7, 7) < 0.4
    blocked[:, :, -1] = False  # every query keeps one key
    out = ours(x, blocked[:, None, -n_queries:], n_queries)
    expected = reference(x[:, -n_queries:], x, x, attn_mask=blocked[:, -n_queries:].repeat_interleave(3, 0), need_weights=False)[0]
    assert out.shape == (4, n_queries, 12)
    torch.testing.assert_close(out, expected, atol=1e-5, rtol=1e-5)


def test_self_attention_drops_attention_weights_in_training_only():
    torch.manual_seed(0)
    attention = SelfAttention(8, 2, dropout=0.5)
    x, blocked = torch.randn(2, 5, 8), torch.zeros(2, 1, 5, 5, dtype=torch.bool)
    attention.eval()
    assert torch.equal(attention(x, blocked, 5), attention(x, blocked, 5))
    attention.train()
    assert not torch.allclose(attention(x, blocked, 5), attention(x, blocked, 5))


@pytest.mark.parametrize("stride", [None, 1, 3, 8])
def test_cloze_windows_are_slices_of_the_sequences_ending_every_stride_items(stride):
    from types import SimpleNamespace

    sequences = [np.arange(101, 104), np.arange(201, 221)]  # lengths 3 and 20, max_len 8
    train = SimpleNamespace(items=np.concatenate(sequences), offsets=np.array([0, 3, 23]))
    model = SequentialRecommender("m", "attention", causal=False, objective="cloze", max_len=8, stride=stride)
    windows = model.training_examples(SimpleNamespace(train=train))[0].numpy()
    seen = []
    for row in windows:
        items = row[row > 0]
        assert (row[: 8 - len(items)] == 0).all()  # left padding only
        seq = next(s for s in sequences if items[0] in s)
        start = int(np.flatnonzero(seq == items[0])[0])
        assert np.array_equal(items, seq[start : start + len(items)])  # a contiguous slice
        assert len(items) == min(8, start + len(items))  # full unless it starts the sequence
        seen.extend(items)
    step = stride or 8
    for seq in sequences:  # windows end at the newest item, then every `step` items before it
        ends = sorted(int(row[-1]) for row in windows if row[-1] in seq)
        assert ends == sorted(seq[::-1][::step].tolist())
    assert set(seen) == set(np.concatenate(sequences).tolist())
    if stride is None:
        assert sorted(seen) == sorted(np.concatenate(sequences).tolist())  # each item once


@pytest.mark.parametrize("encoder_class", [AttentionEncoder, HSTUEncoder])
def test_bidirectional_attention_sees_later_items(encoder_class):
    """The check above can fail: BERT4Rec's encoder is not causal, and it shows (HSTU's too)."""
    torch.manual_seed(0)
    encoder = encoder_class(16, max_len=10, layers=2, heads=2, causal=False).eval()
    x, mask = torch.randn(2, 10, 16), torch.ones(2, 10, dtype=torch.bool)
    changed = x.clone()
    changed[:, 7:] = torch.randn(2, 3, 16)
    assert not torch.allclose(encoder(x, mask)[:, :7], encoder(changed, mask)[:, :7])


@pytest.mark.parametrize("encoder", ["rnn", "nextitnet", "attention"])
def test_seq2seq_decoder_reads_only_its_prefix(encoder):
    torch.manual_seed(0)
    model = SequentialRecommender("s2s", encoder=encoder, head="autoregressive", max_len=10, hidden=16, horizon=3)
    net = model.build(N_ITEMS).eval()
    items = torch.randint(1, N_ITEMS + 1, (2, 10))
    changed = items.clone()
    changed[:, 6:] = torch.randint(1, N_ITEMS + 1, (2, 4))
    split = torch.tensor([[2, 5], [5, 2]])  # two prefixes per row, both ending before position 6
    previous = net.item_embedding(torch.randint(1, N_ITEMS + 1, (2, 2, 2)))
    before = net.decoder(net(items), items > 0, split, previous)
    after = net.decoder(net(changed), changed > 0, split, previous)
    torch.testing.assert_close(before, after)
    late = net.decoder(net(changed), changed > 0, torch.tensor([[8], [9]]), previous[:, :1])
    assert not torch.allclose(late, net.decoder(net(items), items > 0, torch.tensor([[8], [9]]), previous[:, :1]))


def test_seq2seq_generates_the_chain_without_repeats():
    model, data = trained("seq2seq_attention")
    _, next_id = chain_data()
    test = data.test
    history = test.histories.padded()
    users = torch.from_numpy(test.users)
    excluded = excluded_mask(data.n_items + 1, history, history[:, :0], True)
    for beam in (1, 3):
        model.beam_size = beam
        lists = model.recommend(Batch(users, history), 6, excluded)  # 6 > horizon 3: the tail is filled
        assert lists.shape == (len(users), 6)
        assert all(len(set(row.tolist())) == 6 for row in lists)  # no repeats
        assert not excluded.gather(1, lists).any()  # never history or padding
        assert (lists[:, 0].numpy() == test.targets[:, 0]).mean() >= 0.9
        # The next item after the target continues the chain when it is not already in the history.
        after = next_id[test.targets[:, 0]]
        fresh = ~excluded[torch.arange(len(users)), torch.from_numpy(after)].numpy()
        assert (lists[:, 1].numpy() == after)[fresh].mean() >= 0.6
    model.beam_size = 1
    scores = model.score(Batch(users, history)).masked_fill(excluded, float("-inf"))
    assert torch.equal(model.recommend(Batch(users, history), 1, excluded)[:, 0], scores.argmax(1))
    # Fewer candidates than places (a sampled candidate set): the list ends in padding, no repeats.
    only_two = torch.ones_like(excluded)
    only_two[:, [3, 7]] = False
    lists = model.recommend(Batch(users, history), 4, only_two)
    assert (lists[:, 2:] == 0).all() and (lists[:, :2].sort(1).values == torch.tensor([3, 7])).all()


@pytest.mark.parametrize(
    "overrides, needles",
    [
        (dict(encoder="rnn", objective="cloze"), ["model.objective=cloze", "ce, bce, sampled_softmax"]),
        (dict(encoder="attention", causal=False, objective="ce"), ["model.objective=ce", "cloze"]),
        (dict(encoder="attention", head="autoregressive", causal=False, objective="cloze"), ["model.head=autoregressive", "model.causal"]),
        (dict(encoder="rnn", causal=False, objective="cloze"), ["model.causal=false", "attention"]),
        (dict(encoder="transformer"), ["model.encoder='transformer'", "rnn, caser, nextitnet, attention"]),
        (dict(encoder="rnn", objective="hinge"), ["model.objective='hinge'", "cloze"]),
        (dict(encoder="rnn", head="mlp"), ["model.head='mlp'", "next_item, autoregressive"]),
        (dict(encoder="rnn", objective="bce", n_negatives=0), ["model.n_negatives=0"]),
        (dict(encoder="attention", hidden=30, heads=4), ["model.hidden=30", "model.heads=4"]),
        (dict(encoder="rnn", head="autoregressive", prefixes_per_window=0), ["model.prefixes_per_window=0"]),
    ],
)
def test_impossible_compositions_are_config_errors(overrides, needles):
    with pytest.raises(ConfigError) as error:
        SequentialRecommender("bad", **overrides)
    for needle in needles:
        assert needle in str(error.value)


def test_unknown_rnn_cell_is_a_config_error():
    with pytest.raises(ConfigError, match="model.cell='rnn'.*gru, lstm"):
        SequentialRecommender("bad", encoder="rnn", cell="rnn").build(N_ITEMS)


PRESETS = sorted(p.stem for p in (REPO / "conf" / "model").glob("*.yaml"))


@pytest.fixture(scope="module")
def preset_sweep(tmp_path_factory) -> tuple[Path, str]:
    """One multirun over every preset (one process start), one epoch each on tiny data."""
    tmp = tmp_path_factory.mktemp("presets")
    write_movielens_csv(tmp / "tiny", permutation_rows(n_users=30, n_items=20, length=8))
    proc = run_cli("hydra.mode=MULTIRUN", f"model={','.join(PRESETS)}", f"dataset.path={tmp / 'tiny'}", "trainer.max_epochs=1",
                   "dataset.user_core=1", "dataset.item_core=1", "trainer.num_threads=1", tmp=tmp, check=False)
    return tmp / "results", proc.stdout + proc.stderr


@pytest.mark.parametrize("preset", PRESETS)
def test_every_preset_trains_through_the_cli_and_writes_a_record(preset, preset_sweep):
    results, output = preset_sweep
    runs = list(results.glob(f"ml-latest-small/loo/{preset}/seed0-*/metrics.json"))
    assert len(runs) == 1, output[-3000:]
    metrics = json.loads(runs[0].read_text())
    assert metrics["model"] == preset and metrics["n_users"] == 30
    assert 0.0 <= metrics["test"]["ndcg@10"] <= 1.0


def run_in_process(tmp_path: Path, *overrides: str) -> Path:
    """compose + run_experiment: the CLI's overrides and code path without a process start."""
    from hydra import compose, initialize_config_dir

    from benchmark.run import run_experiment

    with initialize_config_dir(config_dir=str(REPO / "conf"), version_base="1.3"):
        cfg = compose("config", [*overrides, "trainer.max_epochs=1", "trainer.num_threads=1",
                                 f"results_dir={tmp_path / 'results'}", f"cache_dir={tmp_path / 'cache'}"])
    return run_experiment(cfg)


def test_seq2seq_lists_are_judged_by_the_horizon_protocol(tmp_path):
    write_movielens_csv(tmp_path / "tiny", permutation_rows(n_users=30, n_items=20, length=10))
    run = run_in_process(tmp_path, "model=seq2seq_rnn", "model.horizon=3", "model.beam_size=2", "protocol=horizon",
                         "protocol.k=3", f"dataset.path={tmp_path / 'tiny'}", "dataset.user_core=1", "dataset.item_core=1",
                         "dataset.min_seq_len=7")
    metrics = json.loads((run / "metrics.json").read_text())
    assert metrics["protocol"] == "horizon" and 0.0 <= metrics["test"]["recall@5"] <= 1.0


def test_encoder_and_objective_are_overridable_on_the_command_line(tmp_path):
    write_movielens_csv(tmp_path / "tiny", permutation_rows(n_users=30, n_items=20, length=8))
    data = [f"dataset.path={tmp_path / 'tiny'}", "dataset.user_core=1", "dataset.item_core=1"]
    run = run_in_process(tmp_path, "model=gru4rec", "model.encoder=caser", "model.objective=sampled_softmax",
                         "model.n_negatives=5", *data)
    text = (run / "config.yaml").read_text()
    assert "encoder: caser" in text and "objective: sampled_softmax" in text
    assert json.loads((run / "metrics.json").read_text())["epochs"] == 1
    bad = run_cli("model=gru4rec", "model.objective=cloze", *data, tmp=tmp_path, check=False)
    assert bad.returncode == 2 and "model.objective=cloze" in bad.stderr and "Traceback" not in bad.stderr
    assert not list((tmp_path / "results").glob("ml-latest-small/loo/gru4rec/*/metrics.json"))[1:]


def exhaustive_best(log_probs_of, allowed: list[int], n: int) -> list[int]:
    """The ordering of distinct allowed items (as many as fit in n) with the highest summed
    log-probability, 0-padded to n: what beam search with a wide enough beam must return."""
    import itertools

    depth = min(n, len(allowed))
    best = max(itertools.permutations(allowed, depth),
               key=lambda seq: sum(log_probs_of(list(seq[:j]))[seq[j]] for j in range(depth)))
    return list(best) + [0] * (n - depth)


@pytest.mark.parametrize("beam", [1, 2, 3, 50])
def test_beam_search_running_out_of_items_keeps_the_best_list_and_pads_it(beam):
    """Only items 4 and 5 of 1..5 are allowed and 4 places asked: the best ordering of the two, then
    0, 0 (a beam used to continue from an arbitrary dead hypothesis: zeros inside the list)."""
    from benchmark.models.seq2seq import generate

    torch.manual_seed(beam)
    table = torch.randn(6, 6, 6)  # logits of the next item given the last two items of the prefix

    def next_scores(prefix: torch.Tensor) -> torch.Tensor:
        last = prefix[..., -1] if prefix.shape[-1] else torch.zeros(prefix.shape[:2], dtype=torch.long)
        before = prefix[..., -2] if prefix.shape[-1] > 1 else torch.zeros(prefix.shape[:2], dtype=torch.long)
        return table[before, last]

    def log_probs_of(seq: list[int]) -> torch.Tensor:
        logits = next_scores(torch.tensor([[seq]], dtype=torch.long))[0, 0].clone()
        logits[0] = float("-inf")
        return torch.log_softmax(logits, -1).tolist()

    excluded = torch.tensor([[True, True, True, True, False, False]])
    assert generate(next_scores, excluded, 4, beam_size=beam)[0].tolist() == exhaustive_best(log_probs_of, [4, 5], 4)
    if beam >= 2:  # with room for every hypothesis and nothing running out, it is the exhaustive optimum
        wide = torch.tensor([[True, False, False, False, False, False]])
        assert generate(next_scores, wide, 2, beam_size=50)[0].tolist() == exhaustive_best(log_probs_of, [1, 2, 3, 4, 5], 2)


@pytest.mark.parametrize("settings, warned", [
    ({"encoder": "rnn", "kernel": 3}, ["model.kernel=3 has no effect with model.encoder=rnn (read with encoder=nextitnet only)"]),
    ({"encoder": "attention", "cell": "gru"}, ["model.cell='gru' has no effect with model.encoder=attention"]),
    ({"encoder": "rnn", "beam_size": 5}, ["model.beam_size=5 has no effect with model.head=next_item"]),
    ({"encoder": "rnn", "n_negatives": 5}, ["model.n_negatives=5 has no effect with model.objective=ce"]),
    ({"encoder": "rnn", "objective": "bce", "n_negatives": 5, "cell": "lstm"}, []),
    ({"encoder": "nextitnet", "head": "autoregressive", "beam_size": 5, "kernel": 2}, []),
], ids=["kernel-on-gru", "cell-after-swap", "beam-with-next-item", "negatives-with-ce", "read-rnn", "read-seq2seq"])
def test_settings_the_chosen_parts_do_not_read_are_warned(settings, warned, caplog):
    """Never silently ignored, and not refused either: a sweep may swap one part of a preset
    (model.encoder=rnn,attention over gru4rec) and keep the other part's keys."""
    with caplog.at_level("WARNING", logger="seqrec"):
        SequentialRecommender("m", **settings)
    lines = [r.getMessage() for r in caplog.records if "has no effect" in r.getMessage()]
    assert len(lines) == len(warned) and all(line.startswith(w) for line, w in zip(lines, warned))


def test_no_preset_has_settings_its_parts_do_not_read(caplog):
    from hydra.utils import instantiate
    from omegaconf import OmegaConf

    with caplog.at_level("WARNING", logger="seqrec"):
        for preset in sorted((REPO / "conf" / "model").glob("*.yaml")):
            instantiate(OmegaConf.load(preset), _convert_="all")
    assert not [r.getMessage() for r in caplog.records if "has no effect" in r.getMessage()]
