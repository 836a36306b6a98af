"""The fast paths give the same answers as the straightforward ones: length-sorted evaluation
batches, dropped all-padding columns, NaN-masked rank counting, bf16 training."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch

from benchmark.config import TrainerConfig
from benchmark.data.dataset import DatasetSpec, prepare_split
from benchmark.errors import ConfigError
from benchmark.evaluation import evaluate, excluded_mask, rank_among, rank_targets
from benchmark.models import Batch, SequentialRecommender
from benchmark.models import kernels
from benchmark.models.base import top_n


@pytest.fixture
def split(tiny_ml, tmp_path):
    spec = DatasetSpec.from_dict({"name": "t", "reader": "movielens", "path": str(tiny_ml)})
    return prepare_split(spec, "loo", cache_dir=tmp_path / "cache").split


def test_rank_counts_only_competing_items_even_for_a_minus_inf_target():
    scores = torch.tensor([[-math.inf, 1.0, -math.inf, 0.5, math.nan, 2.0]])
    targets = torch.tensor([[2]])
    excluded = torch.tensor([[5]])  # with padding and the target: not competing
    # Competing: items 1, 3, 4. Items 1 and 3 are ahead; NaN (item 4) counts below even -inf; the
    # excluded padding (-inf, a tie) and item 5 (2.0) must not count.
    assert rank_targets(scores, targets, excluded).tolist() == [[3]]
    scores[0, 2] = 0.7
    assert rank_targets(scores, targets, excluded).tolist() == [[2]]  # only item 1 beats 0.7


@pytest.mark.parametrize("encoder", ["attention", "rnn"])
def test_extra_left_padding_does_not_change_scores(split, encoder):
    model = SequentialRecommender("m", encoder, max_len=8, layers=1, heads=1)
    model.fit(split, TrainerConfig(max_epochs=1, device="cpu"))
    history = split.test.histories.padded(np.arange(6))[:, -8:]
    history[:3, :-2] = 0  # three users with two items only
    scores = model.score(Batch(torch.arange(6), history))
    short = model.score(Batch(torch.arange(3), history[:3, -2:]))  # no padding column at all
    assert torch.allclose(scores[:3], short, atol=1e-5)


def test_evaluation_results_follow_the_eval_set_order_whatever_the_batching(split):
    model = SequentialRecommender("m", "attention", max_len=8, layers=1, heads=1)
    model.fit(split, TrainerConfig(max_epochs=1, device="cpu"))
    one = evaluate(model, split, split.test, batch_size=1, mask_history=False)
    many = evaluate(model, split, split.test, batch_size=7, mask_history=False)
    assert np.array_equal(one.users, many.users) and np.array_equal(one.ranks, many.ranks)
    for name, values in one.per_user.items():
        np.testing.assert_allclose(values, many.per_user[name], err_msg=name)


def test_bf16_training_runs_and_unknown_precision_is_a_config_error(split):
    model = SequentialRecommender("m", "attention", max_len=8, layers=1, heads=1)
    logs = model.fit(split, TrainerConfig(max_epochs=1, device="cpu", precision="bf16"))
    assert math.isfinite(logs[0].loss) and logs[0].valid_seconds > 0
    with pytest.raises(ConfigError, match="trainer.precision='fp16'"):
        model.fit(split, TrainerConfig(max_epochs=1, device="cpu", precision="fp16"))


# ---- ranking and top-n lists against brute force, on scores full of ties, NaN and infinities

SPECIAL = torch.tensor([math.nan, -math.inf, math.inf, -0.0, 0.0, 0.5, 1.0, -1.0])


def hostile_scores(seed: int, rows: int = 6, columns: int = 12) -> torch.Tensor:
    g = torch.Generator().manual_seed(seed)
    return SPECIAL[torch.randint(len(SPECIAL), (rows, columns), generator=g)]


def order_key(score: float) -> tuple[bool, float]:
    return (not math.isnan(score), 0.0 if math.isnan(score) else score)  # NaN: below -inf


def brute_rank(scores: torch.Tensor, target: int, competing: list[int]) -> int:
    return 1 + sum(1 for i in competing if order_key(scores[i].item()) >= order_key(scores[target].item()))


def brute_top_n(scores: torch.Tensor, excluded: torch.Tensor, n: int) -> list[int]:
    """Best-first ids of one row by a full stable sort (ties by lower id), 0-filled to n."""
    candidates = [i for i in range(len(scores)) if not excluded[i]]
    best_first = sorted(candidates, key=lambda i: (tuple(-v for v in order_key(scores[i].item())), i))[:n]
    return best_first + [0] * (n - len(best_first))


@pytest.mark.parametrize("seed", range(12))
def test_rank_targets_equals_brute_force(seed):
    scores = hostile_scores(seed)
    g = torch.Generator().manual_seed(100 + seed)
    targets = torch.randint(1, 12, (6, 2), generator=g)
    history = torch.randint(0, 12, (6, 5), generator=g)  # repeats and padding 0 included
    ranks = rank_targets(scores, targets, history)
    for b in range(6):
        competing = [i for i in range(1, 12) if i not in history[b].tolist() + targets[b].tolist()]
        assert ranks[b].tolist() == [brute_rank(scores[b], int(t), competing) for t in targets[b]]


@pytest.mark.parametrize("seed", range(12))
def test_rank_among_sampled_candidates_equals_brute_force(seed):
    scores = hostile_scores(seed)
    g = torch.Generator().manual_seed(200 + seed)
    targets = torch.randint(1, 12, (6, 1), generator=g)
    candidates = torch.randint(0, 12, (6, 7), generator=g)  # repeats, padding, even the target
    ranks = rank_among(scores, targets, candidates)
    for b in range(6):
        competing = sorted(set(candidates[b].tolist()) - {0, int(targets[b, 0])})
        assert ranks[b, 0].item() == brute_rank(scores[b], int(targets[b, 0]), competing)


@pytest.mark.parametrize("seed", range(12))
@pytest.mark.parametrize("n", [1, 3, 11, 12, 15])
@pytest.mark.parametrize("dtype", [torch.float32, torch.float64])
def test_top_n_equals_a_full_stable_sort(seed, n, dtype):
    scores = hostile_scores(seed).to(dtype)
    excluded = torch.rand(scores.shape, generator=torch.Generator().manual_seed(300 + seed)) < 0.3
    excluded[:, 0] = True
    lists = top_n(scores, n, excluded)
    for b in range(len(scores)):
        assert lists[b].tolist() == brute_top_n(scores[b], excluded[b], n)


def wide_hostile_scores(seed: int, rows: int = 6, columns: int = 64 * 24 + 17) -> torch.Tensor:
    """Mostly distinct scores, wide enough for top_k's block path, with specials and ties mixed in."""
    g = torch.Generator().manual_seed(seed)
    scores = torch.randn(rows, columns, generator=g).round(decimals=2)  # rounding makes ties
    special = torch.rand(rows, columns, generator=g) < 0.05
    scores[special] = SPECIAL[torch.randint(len(SPECIAL), (int(special.sum()),), generator=g)]
    scores[0] = 0.5  # a row of one tie
    scores[1, :-3] = -math.inf  # a row with only three finite scores
    return scores


@pytest.mark.parametrize("seed", range(6))
@pytest.mark.parametrize("k", [1, 4, 6])
def test_top_k_finds_the_values_of_a_full_topk(seed, k):
    from benchmark.models.base import TOP_K_BLOCK, top_k

    scores = wide_hostile_scores(seed)
    assert scores.shape[1] // TOP_K_BLOCK >= 4 * k  # the block path, not the fallback
    values, ids = top_k(scores, k)
    expected = scores.topk(k, dim=1).values
    torch.testing.assert_close(values, expected, rtol=0, atol=0, equal_nan=True)
    torch.testing.assert_close(scores.gather(1, ids), values, rtol=0, atol=0, equal_nan=True)
    assert all(len(set(row)) == k for row in ids.tolist())  # distinct items


@pytest.mark.parametrize("seed", range(6))
@pytest.mark.parametrize("n", [1, 3, 5])
def test_top_n_on_wide_scores_equals_a_full_stable_sort_and_ids_equal_the_mask(seed, n):
    from benchmark.models.base import top_n_excluding

    scores = wide_hostile_scores(seed)
    history = torch.randint(0, scores.shape[1], (len(scores), 40), generator=torch.Generator().manual_seed(400 + seed))
    history[:, :5] = history[:, 5:10]  # repeats
    history[:, -3:] = 0  # padding
    excluded = excluded_mask(scores.shape[1], history, history[:, :0], True)
    before = scores.clone()
    by_ids = top_n_excluding(scores, n, history)
    torch.testing.assert_close(scores, before, rtol=0, atol=0, equal_nan=True)  # restored
    lists = top_n(scores, n, excluded)
    assert torch.equal(by_ids, lists)
    for b in range(len(scores)):
        assert lists[b].tolist() == brute_top_n(scores[b], excluded[b], n)


@pytest.mark.parametrize("use_onednn", [True, False])
def test_item_scores_equal_the_matmul_and_its_gradients(monkeypatch, use_onednn):
    monkeypatch.setattr(kernels, "USE_ONEDNN", use_onednn)
    g = torch.Generator().manual_seed(0)
    hidden = torch.randn(3, 7, 16, generator=g)[:, ::2]  # non-contiguous, 3-D
    items, bias = torch.randn(301, 16, generator=g), torch.randn(301, generator=g)
    for with_bias in (False, True):
        plain = [t.clone().requires_grad_() for t in (hidden, items, bias)]
        fast = [t.clone().requires_grad_() for t in (hidden, items, bias)]
        expected = plain[0] @ plain[1].T + (plain[2] if with_bias else 0)
        got = kernels.item_scores(fast[0], fast[1], fast[2] if with_bias else None)
        assert got.shape == (3, 4, 301)
        torch.testing.assert_close(got, expected, rtol=1e-5, atol=1e-5)
        weights = torch.randn(got.shape, generator=g)
        (expected * weights).sum().backward()
        (got * weights).sum().backward()
        for p, f in zip(plain[: 2 + with_bias], fast):
            torch.testing.assert_close(f.grad, p.grad, rtol=1e-4, atol=1e-4)
    with torch.no_grad():  # the ranking path: no autograd node
        assert not kernels.item_scores(hidden, items).requires_grad


def test_onednn_item_scores_are_used_on_cpu_float32_only(monkeypatch):
    available = kernels._onednn_available()  # probed (and cached) before the op is replaced
    calls = []
    monkeypatch.setattr(kernels, "_onednn_linear", lambda h, w, b: calls.append(h.dtype) or h @ w.T)
    h, w = torch.randn(4, 8), torch.randn(9, 8)
    kernels.item_scores(h, w)
    kernels.item_scores(h.double(), w.double())
    with torch.autocast("cpu", dtype=torch.bfloat16):
        kernels.item_scores(h, w)
    assert calls == ([torch.float32] if available else [])


def test_onednn_sees_row_counts_in_a_few_buckets_and_the_rows_come_back_exact(monkeypatch):
    """Rows are zero-padded to a multiple of ROW_BUCKET (oneDNN caches a primitive per shape), and
    only the real rows are returned."""
    if not kernels._onednn_available():
        pytest.skip("this PyTorch build has no oneDNN linear")
    op, shapes = torch.ops.mkldnn._linear_pointwise, []
    monkeypatch.setattr(torch.ops.mkldnn, "_linear_pointwise", lambda h, *rest: shapes.append(h.shape[0]) or op(h, *rest))
    items = torch.randn(50, 8)
    for rows in (1, 31, 32, 33, 70):
        hidden = torch.randn(rows, 8)
        got = kernels.item_scores(hidden, items)
        assert got.shape == (rows, 50)
        torch.testing.assert_close(got, hidden @ items.T, rtol=1e-5, atol=1e-5)
    assert shapes == [32, 32, 32, 64, 96]


@pytest.mark.parametrize("p", [0.2, 0.5, 0.05])
def test_dropout_zeroes_a_fraction_p_scales_the_rest_and_is_off_in_eval(p):
    torch.manual_seed(0)
    drop = kernels.Dropout(p)
    x = torch.ones(400, 1000, requires_grad=True)
    y = drop(x)
    kept = y != 0
    # Every one of the four 16-bit lanes of a 64-bit draw drops p of its values (std ~0.001 here).
    for lane in range(4):
        assert abs(1 - kept.flatten()[lane::4].float().mean().item() - p) < 0.005
    assert torch.allclose(y[kept], torch.tensor(1 / (1 - p)), rtol=1e-4)
    y.sum().backward()
    assert torch.equal(x.grad, y.detach())  # the gradient goes through the kept values, scaled alike
    drop.eval()
    assert drop(x) is x
    assert kernels.Dropout(0.0)(x) is x
    with pytest.raises(ValueError, match="1.0"):
        kernels.Dropout(1.0)


def test_dropout_traces_into_one_graph_under_torch_compile():
    """random_ cannot be traced: compiled, Dropout is F.dropout (same p and scale), with no graph break."""
    drop = kernels.Dropout(0.2)
    x = torch.ones(200, 500)
    explained = torch._dynamo.explain(lambda t: drop(t) * 2)(x)
    assert (explained.graph_count, explained.graph_break_count) == (1, 0)
    torch.manual_seed(0)
    y = torch.compile(drop, backend="eager")(x)  # traced by Dynamo, run eagerly: no C++ compiler needed
    kept = y != 0
    assert abs(1 - kept.float().mean().item() - 0.2) < 0.01
    assert torch.allclose(y[kept], torch.tensor(1 / 0.8))


def test_the_onednn_check_leaves_the_global_random_state_alone():
    """It runs once per process: drawing from the global generator would make a resumed run's
    dropout masks differ from the uninterrupted run's."""
    kernels._onednn_available.cache_clear()
    before = torch.get_rng_state()
    kernels._onednn_available()
    assert torch.equal(torch.get_rng_state(), before)
