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
