"""Sweeps end to end through `seqrec -m` (subprocesses, so kept few): launchers, resume after
SIGKILL, wandb offline, optuna tuning. Every run is one epoch on a tiny dataset."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pandas as pd
import pytest
import yaml
from hydra import compose, initialize_config_dir

from benchmark.record import find_records, is_complete
from conftest import REPO, run_cli
from wandb_files import logged_epochs, offline_run, values


def tiny(tiny_ml: Path, tmp_path: Path) -> list[str]:
    return ["hydra.mode=MULTIRUN", f"hydra.sweep.dir={tmp_path / 'sweep'}", f"dataset.path={tiny_ml}", "dataset.user_core=1",
            "dataset.item_core=1", "trainer.max_epochs=1", "trainer.num_threads=1"]


def run_dirs(results: Path) -> list[Path]:
    """Every directory at run level (dataset/protocol/model/<run>), hidden ones included."""
    return sorted(p for p in results.glob("*/*/*/*") if p.is_dir() and "sweeps" not in p.parts)


def test_grid_through_submitit_local(tiny_ml, tmp_path):
    # MostPop keeps the four job processes light (no torch training stack to import).
    run_cli(*tiny(tiny_ml, tmp_path), "hydra/launcher=submitit_local", "model=pop", "dataset.min_seq_len=3,4",
            "seed=0,1", tmp=tmp_path)
    records = find_records(tmp_path / "results")
    assert len(records) == 4 and run_dirs(tmp_path / "results") == records
    configs = [yaml.safe_load((r / "config.yaml").read_text()) for r in records]
    assert sorted((c["dataset"]["min_seq_len"], c["seed"]) for c in configs) == [(3, 0), (3, 1), (4, 0), (4, 1)]
    listed = set((tmp_path / "sweep" / "runs.txt").read_text().split())  # written by each submitit job
    assert listed == {str(r) for r in records}
    assert list((tmp_path / "sweep" / ".submitit").glob("*/*_log.out"))  # really ran as submitit jobs


def test_grid_through_joblib_logs_to_wandb_offline(tiny_ml, tmp_path):
    pytest.importorskip("wandb")
    env = {"WANDB_MODE": "offline", "WANDB_DATA_DIR": str(tmp_path / "wandb-data"),
           "WANDB_CACHE_DIR": str(tmp_path / "wandb-cache"), "WANDB_CONFIG_DIR": str(tmp_path / "wandb-config")}
    run_cli(*tiny(tiny_ml, tmp_path), "hydra/launcher=joblib", "hydra.launcher.n_jobs=2", "logger=wandb",
            "model=pop,gru4rec", "seed=0,1", "trainer.max_epochs=2", "trainer.patience=5", tmp=tmp_path, env=env)
    records = find_records(tmp_path / "results")
    assert len(records) == 4 and run_dirs(tmp_path / "results") == records  # no hidden staging left behind
    for record in records:
        metrics = json.loads((record / "metrics.json").read_text())
        history = pd.read_csv(record / "history.csv")
        _, by_kind = offline_run(record)
        run = by_kind["run"][0].run
        assert (run.run_group, run.job_type, list(run.tags)) == ("sweep", metrics["model"], [metrics["dataset"]])
        config = values(run.config.update)
        assert config["model"]["name"] == metrics["model"] and config["seed"] == metrics["seed"]
        logged = logged_epochs(by_kind)
        assert [h["epoch"] for h in logged] == history["epoch"].tolist()  # pop: no epochs; gru4rec: 2
        assert [h["train/loss"] for h in logged] == pytest.approx(history["loss"].tolist())
        assert [h["valid/ndcg@10"] for h in logged] == pytest.approx(history["valid_metric"].tolist())
        summary = {k: v for r in by_kind["summary"] for k, v in values(r.summary.update).items()}
        assert summary["test/ndcg@10"] == pytest.approx(metrics["test"]["ndcg@10"])
        assert [a.artifact.type for a in by_kind["artifact"]] == ["per_user_metrics"]
        # Two runs at once share the cores instead of each taking all of them.
        assert json.loads((record / "env.json").read_text())["torch_threads"] == max(1, (os.cpu_count() or 1) // 2)
    assert len({r for r in records if r.parent.name == "gru4rec"}) == 2


def test_sweep_killed_mid_way_resumes_without_duplicates(tiny_ml, tmp_path):
    args = [*tiny(tiny_ml, tmp_path), "model=gru4rec", "model.hidden=8,16", "seed=0,1"]
    cmd = [sys.executable, "-m", "benchmark.cli", f"results_dir={tmp_path / 'results'}", f"cache_dir={tmp_path / 'cache'}", *args]
    env = {**os.environ, "WANDB_MODE": "disabled"}
    with open(tmp_path / "first.log", "w") as log:
        first = subprocess.Popen(cmd, cwd=REPO, env=env, stdout=log, stderr=subprocess.STDOUT, start_new_session=True)
        while not find_records(tmp_path / "results") and first.poll() is None:
            time.sleep(0.02)
        os.killpg(first.pid, signal.SIGKILL)  # the whole process group, as a cluster's OOM killer or scancel would
        first.wait()
    assert first.returncode == -signal.SIGKILL, (tmp_path / "first.log").read_text()
    before = {r: (r / "metrics.json").read_bytes() for r in find_records(tmp_path / "results")}
    assert 1 <= len(before) < 4
    visible = [d for d in run_dirs(tmp_path / "results") if not d.name.startswith(".")]
    assert all(is_complete(d) for d in visible)  # the killed run left nothing that looks like a record

    second = run_cli(*args, tmp=tmp_path)
    records = find_records(tmp_path / "results")
    assert len(records) == 4 and run_dirs(tmp_path / "results") == records  # no duplicate, no temp left
    for record, metrics in before.items():
        assert (record / "metrics.json").read_bytes() == metrics
        assert f"skip {record}" in second.stdout + second.stderr
    configs = [yaml.safe_load((r / "config.yaml").read_text()) for r in records]
    assert sorted((c["model"]["hidden"], c["seed"]) for c in configs) == [(8, 0), (8, 1), (16, 0), (16, 1)]


def test_optuna_study_tunes_on_validation_and_writes_a_rerunnable_best_config(tiny_ml, tmp_path):
    proc = run_cli(*tiny(tiny_ml, tmp_path), "hparams=sasrec", "model=sasrec", "hydra.sweeper.n_trials=3",
                   "model.hidden=choice(8,16)", "model.layers=1", tmp=tmp_path)
    trials = pd.read_csv(tmp_path / "sweep" / "optuna_trials.csv")
    assert len(trials) == 3 and (trials["state"] == "complete").all()
    assert set(trials["model.hidden"]) <= {8, 16} and "model.layers" not in trials  # the command line fixed layers
    valid_differs_from_test = False
    for _, trial in trials.iterrows():
        metrics = json.loads((Path(trial["run_dir"]) / "metrics.json").read_text())
        assert trial["ndcg@10"] == pytest.approx(metrics["valid"]["ndcg@10"])  # what optuna was told
        valid_differs_from_test |= metrics["valid"]["ndcg@10"] != metrics["test"]["ndcg@10"]
    assert valid_differs_from_test  # so telling optuna a test metric would have shown above

    best = trials.loc[trials["ndcg@10"].idxmax()]
    best_file = tmp_path / "results" / "tuned" / "experiment" / "sasrec-ml-latest-small-loo.yaml"
    assert str(best_file) in proc.stdout + proc.stderr
    best_record = yaml.safe_load((Path(best["run_dir"]) / "config.yaml").read_text())
    with initialize_config_dir(config_dir=str(REPO / "conf"), version_base="1.3"):
        rerun = compose("config", return_hydra_config=True, overrides=[
            f"hydra.searchpath=[file://{best_file.parent.parent}]", "experiment=sasrec-ml-latest-small-loo"])
    assert rerun.model == best_record["model"]
    runtime = {"device", "num_threads", "resume", "save_model", "time_limit"}  # how it ran: the preset's again
    assert {k: v for k, v in rerun.trainer.items() if k not in runtime} == \
        {k: v for k, v in best_record["trainer"].items() if k not in runtime}
    assert best_record["trainer"]["num_threads"] == 1 and rerun.trainer.num_threads is None  # the launch's 1 stays behind
    assert not set(yaml.safe_load(best_file.read_text())["trainer"]) & runtime
    assert rerun.dataset == best_record["dataset"]
    assert rerun.hydra.sweeper.params.seed == "0,1,2,3,4" and str(rerun.hydra.mode) == "RunMode.MULTIRUN"
