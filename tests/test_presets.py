"""Presets say where they leave the paper: the keys that make a paper's choice (model.activation,
model.scale_embeddings, trainer.betas / grad_clip / optimizer), the paper-faithful SASRec, and the
record identity those keys keep for every preset that existed before them."""

from __future__ import annotations

import copy
import math

import pytest
import torch
from torch import nn

from benchmark.config import TrainerConfig, validate_config
from benchmark.errors import ConfigError
from benchmark.models import SequentialRecommender
from benchmark.optimizers import AdagradMomentum, build_optimizer
from benchmark.record import LATER_KEYS, config_hash
from conftest import REPO, compose_config

PRESETS = sorted(p.stem for p in (REPO / "conf" / "model").glob("*.yaml"))
NEW_PRESETS = ("sasrec_paper", "gru4rec_official")  # added with the keys; every other preset had records before


def modules_of(net: nn.Module, kind: type) -> int:
    return sum(isinstance(m, kind) for m in net.modules())


def test_activation_picks_the_feed_forward_non_linearity():
    relu = SequentialRecommender("m", "attention", hidden=16, activation="relu").build(20)
    gelu = SequentialRecommender("m", "attention", hidden=16).build(20)
    assert modules_of(relu, nn.ReLU) == 2 and modules_of(relu, nn.GELU) == 0  # one per block
    assert modules_of(gelu, nn.GELU) == 2 and modules_of(gelu, nn.ReLU) == 0


def test_unknown_activation_is_a_config_error():
    with pytest.raises(ConfigError, match="model.activation='tanh' is unknown; choose one of gelu, relu"):
        SequentialRecommender("m", "attention", hidden=16, activation="tanh").build(20)


@pytest.mark.parametrize("init_std, scale, expected", [
    (0.02, None, 1.0), (0.02, True, 4.0), (None, None, 4.0), (None, False, 1.0),
])
def test_scale_embeddings_overrides_what_init_std_implies(init_std, scale, expected):
    model = SequentialRecommender("m", "attention", hidden=16, init_std=init_std, scale_embeddings=scale)
    assert model.build(20).encoder.input_scale == expected


def test_adam_takes_the_trainers_betas():
    params = [nn.Parameter(torch.zeros(3))]
    assert build_optimizer(params, TrainerConfig(betas=(0.9, 0.98))).param_groups[0]["betas"] == (0.9, 0.98)
    assert build_optimizer(params, TrainerConfig()).param_groups[0]["betas"] == (0.9, 0.999)


def test_adagrad_with_momentum_against_a_hand_computation():
    """GRU4Rec's optimizer: G += g², m = momentum m - lr g / sqrt(G + eps), p += m."""
    p = nn.Parameter(torch.tensor([1.0]))
    optimizer = build_optimizer([p], TrainerConfig(optimizer="adagrad", lr=0.1, momentum=0.5))
    assert isinstance(optimizer, AdagradMomentum)
    expected, acc, mom = 1.0, 0.0, 0.0
    for _ in range(3):
        optimizer.zero_grad()
        (p * 0.5 + p**2).sum().backward()  # gradient 0.5 + 2p
        g = 0.5 + 2 * expected
        acc += g * g
        mom = 0.5 * mom - 0.1 * g / math.sqrt(acc + 1e-6)
        expected += mom
        optimizer.step()
        assert p.item() == pytest.approx(expected, rel=1e-6)


def identity_without_later_keys(config: dict) -> str:
    """The hash the config had before LATER_KEYS existed (they were absent from every config)."""
    old = copy.deepcopy(config)
    for group, keys in LATER_KEYS.items():
        for key in keys:
            old[group].pop(key, None)
    return config_hash(old)


@pytest.mark.parametrize("preset", [p for p in PRESETS if p not in NEW_PRESETS])
def test_keys_at_their_earlier_behaviour_keep_every_presets_identity(tmp_path, preset):
    config = compose_config(f"model={preset}", tmp=tmp_path)
    validate_config(config)
    assert config_hash(config) == identity_without_later_keys(config)


@pytest.mark.parametrize("override", ["trainer.betas=[0.9,0.98]", "trainer.optimizer=adagrad", "trainer.momentum=0.3",
                                      "model.activation=relu", "model.scale_embeddings=true",
                                      "model=gru4rec model.training=session_parallel", "model=gru4rec model.sampler=popularity",
                                      "model=gru4rec model.hidden_dropout=0.1", "model=gru4rec model.in_batch_negatives=true"])
def test_a_later_key_away_from_its_default_is_a_new_configuration(tmp_path, override):
    preset, *rest = override.split() if override.startswith("model=") else ("model=sasrec", override)
    base = compose_config(preset, tmp=tmp_path)
    changed = compose_config(preset, *rest, tmp=tmp_path)
    validate_config(changed)
    assert config_hash(changed) != config_hash(base)


def test_sasrec_paper_makes_the_papers_choices(tmp_path):
    config = compose_config("model=sasrec_paper", "trainer=sasrec_paper", tmp=tmp_path)
    validate_config(config)
    model, trainer = config["model"], TrainerConfig.from_dict(config["trainer"])
    assert (model["objective"], model["n_negatives"], model["activation"], model["scale_embeddings"]) == ("bce", 1, "relu", True)
    assert (trainer.lr, trainer.batch_size, list(trainer.betas), trainer.grad_clip) == (0.001, 128, [0.9, 0.98], None)
    built = SequentialRecommender(**{k: v for k, v in model.items() if k != "_target_"}).build(30)
    assert modules_of(built, nn.ReLU) == 2 and built.encoder.input_scale == math.sqrt(50)


@pytest.mark.parametrize("grad_clip, clipped", [(None, False), (1.0, True)])
def test_grad_clip_null_trains_without_clipping(grad_clip, clipped):
    from benchmark.training import train_loop

    net = nn.Linear(4, 1)

    def step_loss(idx, generator):
        return 100.0 * net(torch.ones(len(idx), 4)).sum()  # gradient 100 for each of 4 weights and the bias

    cfg = TrainerConfig(lr=0.5, batch_size=1, max_epochs=1, patience=1, grad_clip=grad_clip)
    train_loop(net, step_loss, 1, lambda: 0.0, cfg)
    # The loop leaves the last step's gradients behind, after clipping.
    norm = torch.cat([p.grad.flatten() for p in net.parameters()]).norm().item()
    assert norm == pytest.approx(1.0 if clipped else 100.0 * 5**0.5, rel=1e-4)
