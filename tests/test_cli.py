"""End to end through the `seqrec` command."""

import json

import pandas as pd

from conftest import run_cli


def test_sasrec_one_epoch_writes_complete_record(tiny_ml, tmp_path):
    run_cli("model=sasrec", "dataset.path=" + str(tiny_ml), "trainer.max_epochs=1", "dataset.user_core=1",
            "dataset.item_core=1", tmp=tmp_path)
    runs = list((tmp_path / "results").glob("ml-latest-small/loo/sasrec/seed0-*"))
    assert len(runs) == 1
    run = runs[0]
    for name in ("config.yaml", "metrics.json", "per_user.parquet", "history.csv", "env.json"):
        assert (run / name).is_file(), name
    metrics = json.loads((run / "metrics.json").read_text())
    assert metrics["n_users"] == 60 and metrics["epochs"] == 1
    assert 0.0 <= metrics["test"]["ndcg@10"] <= 1.0 and metrics["n_params"] > 0
    per_user = pd.read_parquet(run / "per_user.parquet")
    assert len(per_user) == 60 and {"user", "rank", "hr@10", "ndcg@10", "mrr@10"} <= set(per_user.columns)
    assert per_user["rank"].between(1, 30).all()
    history = pd.read_csv(run / "history.csv")
    assert list(history.columns) == ["epoch", "loss", "valid_metric", "seconds", "valid_seconds"] and len(history) == 1
    env = json.loads((run / "env.json").read_text())
    assert env["seed"] == 0 and len(env["dataset_hash"]) == 64 and "torch" in env["versions"]


def test_missing_data_file_names_the_path_and_writes_no_record(tmp_path):
    proc = run_cli("model=pop", f"dataset.path={tmp_path / 'nowhere'}", tmp=tmp_path, check=False)
    assert proc.returncode != 0
    assert str(tmp_path / "nowhere") in proc.stderr
    assert not list((tmp_path / "results").rglob("metrics.json"))


def test_unknown_model_lists_available_options(tmp_path):
    proc = run_cli("model=nosuchmodel", tmp=tmp_path, check=False)
    assert proc.returncode != 0
    assert "sasrec" in proc.stderr and "pop" in proc.stderr


def test_the_run_log_says_what_preprocessing_removed(tmp_path):
    """Users too short for the protocol are dropped in preprocessing: the run's log says how many remain."""
    from conftest import write_movielens_csv

    rows = [(u, 1000 + (u + t) % 9, 4.0, 10**6 + t) for u in range(1, 7) for t in range(5)]
    rows += [(99, 1000, 4.0, 10**6), (99, 1001, 4.0, 10**6 + 1)]  # two interactions: too short for loo
    write_movielens_csv(tmp_path / "data", rows)
    proc = run_cli("model=pop", f"dataset.path={tmp_path / 'data'}", "dataset.user_core=1", "dataset.item_core=1",
                   tmp=tmp_path)
    log = proc.stdout + proc.stderr
    assert "ml-latest-small: raw 7 users, 9 items, 32 rows -> " in log
    assert "k-core (users >= 3, items >= 1) 6 users, 9 items, 30 rows" in log
