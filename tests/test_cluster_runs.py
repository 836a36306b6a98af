"""Runs on a cluster: plain per-epoch log lines without a terminal, launch preflight, time budgets, threads."""

from __future__ import annotations

import re

import pytest

from conftest import run_cli

TINY = ("dataset.user_core=1", "dataset.item_core=1")


def test_without_a_terminal_a_run_logs_one_plain_line_per_epoch(tiny_ml, tmp_path):
    """stdout and stderr are pipes here (as under SLURM, nohup or joblib): no bars, one line per epoch."""
    proc = run_cli(f"dataset.path={tiny_ml}", *TINY, "model=gru4rec", "model.hidden=8", "trainer.max_epochs=3",
                   "trainer.patience=5", tmp=tmp_path, env={"SEQREC_PROGRESS": ""})
    lines = [s for s in proc.stdout.splitlines() if re.search(r"epoch \d+/3:", s)]
    assert len(lines) == 3, proc.stdout
    pattern = r"epoch (\d)/3: loss \d+\.\d{4} \| valid ndcg@10 (\d\.\d{4}) \(best (\d\.\d{4}) at epoch (\d)\) \| \d+\.\ds$"
    parsed = [re.search(pattern, s) for s in lines]
    assert all(parsed), lines
    assert [int(m.group(1)) for m in parsed] == [1, 2, 3]
    best = [max(float(m.group(2)) for m in parsed[: i + 1]) for i in range(3)]
    assert [float(m.group(3)) for m in parsed] == best  # "best so far" is the running maximum
    assert "\r" not in proc.stderr and "it/s" not in proc.stderr  # no progress bar in the log


def test_time_limit_ends_training_tests_the_best_weights_and_says_so(tiny_ml, tmp_path, monkeypatch):
    """A clock that advances one second per reading: a 0.5-minute limit ends training after a few epochs."""
    import json
    import types

    import pandas as pd

    from benchmark import training
    from benchmark.run import run_experiment
    from conftest import compose_config

    clock = iter(range(10**6))
    monkeypatch.setattr(training, "time", types.SimpleNamespace(perf_counter=lambda: float(next(clock))))
    config = compose_config(f"dataset.path={tiny_ml}", *TINY, "model=gru4rec", "model.hidden=8", "trainer.max_epochs=50",
                            "trainer.patience=50", "trainer.time_limit=0.5", tmp=tmp_path)
    record = run_experiment(config)
    metrics = json.loads((record / "metrics.json").read_text())
    history = pd.read_csv(record / "history.csv")
    assert metrics["cut_by_time_limit"] is True and metrics["time_limit_min"] == 0.5
    assert 1 <= metrics["epochs"] == len(history) < 50
    # The weights tested are the best epoch's: validating them again gives the best validation value.
    assert metrics["valid"]["ndcg@10"] == pytest.approx(history["valid_metric"].max(), abs=1e-6)


def test_a_run_within_its_time_limit_is_not_cut_and_keeps_its_identity(tiny_ml, tmp_path):
    import json

    from benchmark.record import run_dir_for
    from benchmark.run import run_experiment
    from conftest import compose_config

    overrides = (f"dataset.path={tiny_ml}", *TINY, "model=gru4rec", "model.hidden=8", "trainer.max_epochs=2")
    limited = compose_config(*overrides, "trainer.time_limit=60", tmp=tmp_path)
    record = run_experiment(limited)
    metrics = json.loads((record / "metrics.json").read_text())
    assert metrics["cut_by_time_limit"] is False and metrics["epochs"] == 2
    legacy = compose_config(*overrides, tmp=tmp_path)
    del legacy["trainer"]["time_limit"]  # a record's config from before the key existed
    assert run_dir_for(tmp_path / "results", legacy) == record


@pytest.mark.parametrize("launcher, trainer_limit, expected", [
    ({"_target_": "hydra_plugins.hydra_submitit_launcher.submitit_launcher.SlurmLauncher", "timeout_min": 240}, None, 216.0),
    ({"_target_": "hydra_plugins.hydra_submitit_launcher.submitit_launcher.SlurmLauncher", "timeout_min": 60}, None, 50.0),
    ({"_target_": "hydra_plugins.hydra_submitit_launcher.submitit_launcher.SlurmLauncher", "timeout_min": 8}, None, 4.0),
    ({"_target_": "hydra_plugins.hydra_submitit_launcher.submitit_launcher.SlurmLauncher", "timeout_min": 240}, 30.0, 30.0),
    ({"_target_": "hydra_plugins.hydra_submitit_launcher.submitit_launcher.LocalLauncher", "timeout_min": 240}, None, None),
    ({}, None, None),
])
def test_the_slurm_preset_derives_the_time_limit_from_the_jobs_time(launcher, trainer_limit, expected, monkeypatch):
    from benchmark import run
    from benchmark.config import TrainerConfig

    monkeypatch.setattr(run, "launcher_setting", lambda key: launcher.get(key))
    assert run.time_limit_minutes(TrainerConfig(time_limit=trainer_limit)) == expected


@pytest.mark.parametrize("cores, n_jobs, omp, expected", [
    (8, None, "", 8), (8, 4, "", 2), (8, -1, "", 1), (8, 3, "", 2), (2, 8, "", 1), (8, None, "3", 3), (8, 4, "16", 2),
])
def test_default_threads_share_the_usable_cores_among_parallel_runs(cores, n_jobs, omp, expected, monkeypatch):
    from benchmark import run

    monkeypatch.setattr(run.os, "sched_getaffinity", lambda pid: set(range(cores)))
    monkeypatch.setattr(run, "launcher_setting", lambda key: {"n_jobs": n_jobs}.get(key))
    monkeypatch.setenv("OMP_NUM_THREADS", omp)
    assert run.default_threads() == expected


def test_a_run_uses_and_records_the_default_thread_count(tiny_ml, tmp_path, monkeypatch):
    import json

    import torch

    from benchmark.run import run_experiment
    from conftest import compose_config

    before = torch.get_num_threads()
    monkeypatch.setattr("os.sched_getaffinity", lambda pid: {0, 1, 2})
    monkeypatch.delenv("OMP_NUM_THREADS", raising=False)
    record = run_experiment(compose_config(f"dataset.path={tiny_ml}", *TINY, "model=pop", tmp=tmp_path))
    assert json.loads((record / "env.json").read_text())["torch_threads"] == 3
    assert torch.get_num_threads() == before  # restored for the next run of an in-process sweep
