"""Config audit: settings that were silently ignored, and bad input that ended in a traceback, exit 0
or files written outside results_dir. Tiny made-up data, in-process where possible."""

from __future__ import annotations

import logging
from pathlib import Path

import pytest

from benchmark.data import cli as data_cli
from benchmark.record import find_records
from conftest import REPO
from test_bad_inputs import assert_one_line_error, run_in_process

TINY = ["model=pop", "dataset.user_core=1", "dataset.item_core=1"]


# ---- empty folders and names that are not folder names --------------------------------------


@pytest.mark.parametrize("overrides, words", [
    (["results_dir="], ["results_dir=''", "empty"]),
    (["cache_dir="], ["cache_dir=''", "empty"]),
    (["dataset.path="], ["dataset.path=''", "empty"]),
    (["dataset.name=../../escaped"], ["dataset.name='../../escaped'", "plain folder name"]),
    (["dataset.name="], ["dataset.name=''", "plain folder name"]),
    (["model.name=a/b"], ["model.name='a/b'", "plain folder name"]),
], ids=["results_dir empty", "cache_dir empty", "dataset.path empty", "dataset name escapes", "dataset name empty",
        "model name with a slash"])
def test_empty_folders_and_path_like_names_are_refused(overrides, words, tmp_path, tiny_ml, capsys, monkeypatch):
    """Before: results_dir='' wrote the record into the current folder, dataset.name=../../x two levels
    above results_dir, dataset.path='' silently read the default (embedded) data, all with exit 0."""
    monkeypatch.chdir(tmp_path)
    code, err = run_in_process([f"dataset.path={tiny_ml}", *TINY, *overrides], tmp_path, capsys)
    assert_one_line_error(code, err, words)
    assert not list(tmp_path.rglob("metrics.json")) and not (tmp_path / "cache").exists()


def test_seqrec_data_stats_refuses_an_empty_path(capsys):
    """Before: `seqrec-data stats ml-latest-small --path ''` described the embedded copy, exit 0."""
    assert data_cli.main(["stats", "ml-latest-small", "--path", ""]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and err[0].startswith("seqrec-data: error: dataset.path='' is empty"), err


# ---- settings that had no effect and said nothing ---------------------------------------------


def warnings_of(caplog) -> list[str]:
    return [r.getMessage() for r in caplog.records if r.levelno >= logging.WARNING and r.name == "seqrec"]


@pytest.mark.parametrize("model", ["pop", "itemknn", "ease"])
def test_trainer_settings_a_model_without_training_ignores_are_warned(model, tmp_path, tiny_ml, capsys, caplog):
    """Before: `seqrec model=pop trainer.lr=0.5 trainer.max_epochs=3` ran exactly as without them, silently."""
    with caplog.at_level(logging.WARNING, logger="seqrec"):
        code, _ = run_in_process([f"dataset.path={tiny_ml}", *TINY, f"model={model}", "trainer.lr=0.5",
                                  "trainer.max_epochs=3", "trainer.eval_batch_size=7"], tmp_path, capsys)
    assert code == 0
    [line] = [w for w in warnings_of(caplog) if "does not train" in w]
    assert line == f"model {model} does not train: trainer.lr=0.5, trainer.max_epochs=3 have no effect"


def test_default_trainer_settings_of_a_model_without_training_are_not_warned(tmp_path, tiny_ml, capsys, caplog):
    with caplog.at_level(logging.WARNING, logger="seqrec"):
        assert run_in_process([f"dataset.path={tiny_ml}", *TINY, "trainer.device=cpu"], tmp_path, capsys)[0] == 0
    assert not [w for w in warnings_of(caplog) if "does not train" in w]


def test_tf32_precision_off_cuda_is_warned(caplog):
    """Before: trainer.precision=tf32 on the CPU trained exactly as fp32, silently."""
    import torch

    from benchmark.config import TrainerConfig
    from benchmark.training import train_loop

    net = torch.nn.Linear(2, 1)
    x = torch.ones(4, 2)
    with caplog.at_level(logging.WARNING, logger="seqrec"):
        train_loop(net, lambda idx, g: net(x[idx]).pow(2).mean(), 4, lambda: 0.0,
                   TrainerConfig(precision="tf32", max_epochs=1, device="cpu"))
    assert any("trainer.precision='tf32' has no effect on cpu" in w for w in warnings_of(caplog))


def test_sampled_candidate_settings_under_full_ranking_are_warned(tmp_path, tiny_ml, capsys, caplog):
    """Before: protocol.n_negatives / sampler / negatives_seed with candidates=full (the default) changed
    nothing but the record's hash, silently."""
    with caplog.at_level(logging.WARNING, logger="seqrec"):
        code, _ = run_in_process([f"dataset.path={tiny_ml}", *TINY, "protocol.n_negatives=7", "protocol.sampler=popularity"],
                                 tmp_path, capsys)
    assert code == 0
    assert ("protocol.n_negatives=7, protocol.sampler='popularity' have no effect with protocol.candidates=full "
            "(read with candidates=sampled only)") in warnings_of(caplog)


def test_candidate_defaults_under_full_ranking_are_not_warned(caplog):
    from benchmark.candidates import Candidates

    with caplog.at_level(logging.WARNING, logger="seqrec"):
        Candidates.pop_from({"candidates": "full", "n_negatives": 100, "sampler": "uniform", "negatives_seed": 0})
        Candidates.pop_from({"candidates": "sampled", "n_negatives": 5, "sampler": "popularity", "negatives_seed": 3})
    assert not warnings_of(caplog)
