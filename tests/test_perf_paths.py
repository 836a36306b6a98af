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
from benchmark.evaluation import evaluate, excluded_mask, rank_targets
from benchmark.models import Batch, SequentialRecommender


@pytest.fixture
def split(tiny_ml, tmp_path):
    spec = DatasetSpec.from_dict({"name": "t", "reader": "movielens", "path": str(tiny_ml)})
    return prepare_split(spec, "loo", cache_dir=tmp_path / "cache").split


def test_rank_counts_only_competing_items_even_for_a_minus_inf_target():
    scores = torch.tensor([[-math.inf, 1.0, -math.inf, 0.5, math.nan, 2.0]])
    targets = torch.tensor([[2]])
    excluded = excluded_mask(6, torch.tensor([[5]]), targets, mask_history=True)  # padding, item 5, target
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
