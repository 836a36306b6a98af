"""The wandb mirror leaves nothing behind when it is off or fails; the record is the source of truth."""

from __future__ import annotations

import pytest

from benchmark.record import find_records
from conftest import run_cli

TINY = ("dataset.user_core=1", "dataset.item_core=1", "model=pop", "logger=wandb")


def hidden_dirs(results):
    return [p for p in results.rglob(".*") if p.is_dir()]


def test_wandb_disabled_writes_no_wandb_directory(tiny_ml, tmp_path):
    pytest.importorskip("wandb")
    proc = run_cli(f"dataset.path={tiny_ml}", *TINY, tmp=tmp_path, env={"WANDB_MODE": "disabled"})
    records = find_records(tmp_path / "results")
    assert len(records) == 1 and not (records[0] / "wandb").exists()
    assert not hidden_dirs(tmp_path / "results") and "wandb" not in proc.stderr.lower()


def test_a_failing_wandb_leaves_no_staging_directory(tiny_ml, tmp_path):
    pytest.importorskip("wandb")
    # An offline run whose files cannot be written (its directory is a file): wandb gives up, the run goes on.
    (tmp_path / "wandb-data").write_text("not a directory")
    env = {"WANDB_MODE": "offline", "WANDB_DATA_DIR": str(tmp_path / "wandb-data"),
           "WANDB_CACHE_DIR": str(tmp_path / "wandb-data"), "WANDB_CONFIG_DIR": str(tmp_path / "wandb-data")}
    proc = run_cli(f"dataset.path={tiny_ml}", *TINY, tmp=tmp_path, env=env)
    assert len(find_records(tmp_path / "results")) == 1
    assert "the run goes on without wandb" in proc.stdout  # the run's log
    assert not hidden_dirs(tmp_path / "results")


def test_a_resumed_run_continues_its_wandb_run_with_the_whole_history(tmp_path, monkeypatch):
    """Killed after epoch 2 of 3 and relaunched with trainer.resume=true: the record holds one wandb
    run, under the first attempt's id, logging epochs 1-3 as history.csv has them."""
    pytest.importorskip("wandb")
    import pandas as pd

    from benchmark import training
    from benchmark.run import run_experiment
    from conftest import compose_config, permutation_rows, write_movielens_csv
    from wandb_files import logged_epochs, offline_run

    for name in ("DATA", "CACHE", "CONFIG"):
        monkeypatch.setenv(f"WANDB_{name}_DIR", str(tmp_path / f"wandb-{name.lower()}"))
    monkeypatch.setenv("WANDB_MODE", "offline")
    write_movielens_csv(tmp_path / "data", permutation_rows())
    config = compose_config(f"dataset.path={tmp_path / 'data'}", "dataset.user_core=1", "dataset.item_core=1",
                            "model=gru4rec", "model.hidden=8", "trainer.max_epochs=3", "trainer.patience=5",
                            "trainer.resume=true", "logger=wandb", tmp=tmp_path)
    save = training.save_checkpoint

    class Killed(Exception):
        pass

    def save_then_die_after_epoch_2(*args):
        save(*args)
        if len(args[-1]) == 2:
            raise Killed

    monkeypatch.setattr(training, "save_checkpoint", save_then_die_after_epoch_2)
    with pytest.raises(Killed):
        run_experiment(config)
    first_attempt = list((tmp_path / "results").rglob(".*.wandb/wandb/offline-run-*"))
    assert len(first_attempt) == 1
    first_id = first_attempt[0].name.rsplit("-", 1)[1]

    monkeypatch.setattr(training, "save_checkpoint", save)
    record = run_experiment(config)
    run_id, by_kind = offline_run(record)
    history = pd.read_csv(record / "history.csv")
    logged = logged_epochs(by_kind)
    assert run_id == first_id
    assert [h["epoch"] for h in logged] == history["epoch"].tolist() == [1, 2, 3]
    assert [h["train/loss"] for h in logged] == pytest.approx(history["loss"].tolist())
    assert not hidden_dirs(tmp_path / "results")  # the checkpoint (and the id beside it) and the staging are gone

    # A run started afresh (no checkpoint left) gets a new wandb run.
    other = run_experiment({**config, "seed": 1})
    assert offline_run(other)[0] != run_id


def test_an_offline_wandb_run_says_where_its_files_went(tiny_ml, tmp_path):
    pytest.importorskip("wandb")
    env = {"WANDB_MODE": "offline", **{f"WANDB_{n}_DIR": str(tmp_path / "wandb-home") for n in ("DATA", "CACHE", "CONFIG")}}
    proc = run_cli(f"dataset.path={tiny_ml}", *TINY, tmp=tmp_path, env=env)
    [record] = find_records(tmp_path / "results")
    [line] = [s for s in proc.stdout.splitlines() if "offline run saved in" in s]
    [saved] = (record / "wandb").glob("offline-run-*")
    assert f"saved in {saved};" in line and f"wandb sync {saved}" in line
