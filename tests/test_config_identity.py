"""A run's identity (its config hash and directory): what counts as the same configuration."""

from __future__ import annotations

import pytest

from benchmark.config import validate_config
from benchmark.record import run_dir_for
from conftest import compose_config


def run_dir(tmp_path, *overrides: str):
    config = compose_config(*overrides, tmp=tmp_path)
    validate_config(config)
    return run_dir_for(config["results_dir"], config)


@pytest.mark.parametrize("as_int, as_float", [
    ("trainer.grad_clip=3", "trainer.grad_clip=3.0"),
    ("model.dropout=0", "model.dropout=0.0"),
    ("dataset.min_rating=4", "dataset.min_rating=4.0"),
    ("trainer.lr=1", "trainer.lr=1.0"),
])
def test_an_int_for_a_float_key_is_the_same_configuration(tmp_path, as_int, as_float):
    assert run_dir(tmp_path, "model=sasrec", as_int) == run_dir(tmp_path, "model=sasrec", as_float)
    assert run_dir(tmp_path, "model=sasrec", as_int) != run_dir(tmp_path, "model=sasrec")


def test_int_keys_stay_ints(tmp_path):
    config = compose_config("model=sasrec", "model.hidden=32", "trainer.batch_size=16", tmp=tmp_path)
    validate_config(config)
    assert type(config["model"]["hidden"]) is int and type(config["trainer"]["batch_size"]) is int
    assert type(config["trainer"]["grad_clip"]) is float


@pytest.mark.parametrize("model, trains", [("pop", False), ("itemknn", False), ("ease", False), ("bprmf", True),
                                           ("sasrec", True)])
def test_trainer_settings_are_part_of_a_runs_identity_only_for_models_that_train(tmp_path, model, trains):
    same = run_dir(tmp_path, f"model={model}", "trainer.lr=0.01") == run_dir(tmp_path, f"model={model}")
    assert same is not trains
