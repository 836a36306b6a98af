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


def one_line_error(proc) -> str:
    lines = proc.stderr.strip().splitlines()
    assert proc.returncode == 2 and len(lines) == 1 and lines[0].startswith("seqrec: error: "), proc.stderr
    return lines[0]


def nothing_launched(tmp_path) -> bool:
    results = tmp_path / "results"
    return not results.exists() or not list(results.rglob("metrics.json")) and not (results / "sweeps").exists()


def test_a_slurm_sweep_without_slurm_is_refused_before_anything_is_submitted(tmp_path):
    empty = tmp_path / "bin"
    empty.mkdir()
    proc = run_cli("hydra.mode=MULTIRUN", "model=pop", "seed=0,1", "hydra/launcher=slurm", tmp=tmp_path, check=False,
                   env={"PATH": str(empty)}, timeout=120)
    line = one_line_error(proc)
    assert "hydra/launcher=slurm" in line and "sbatch and srun" in line and "nothing was launched" in line
    assert nothing_launched(tmp_path) and not list(tmp_path.rglob(".submitit"))


def test_the_launcher_check_passes_where_slurm_commands_exist(tmp_path, monkeypatch):
    from omegaconf import OmegaConf

    from benchmark.errors import BenchmarkError
    from benchmark.preflight import check_launcher

    slurm = OmegaConf.create({"_target_": "hydra_plugins.hydra_submitit_launcher.submitit_launcher.SlurmLauncher"})
    for name in ("sbatch", "srun"):
        (tmp_path / name).write_text("#!/bin/sh\n")
        (tmp_path / name).chmod(0o755)
    monkeypatch.setenv("PATH", str(tmp_path))
    check_launcher(slurm)
    (tmp_path / "srun").unlink()
    with pytest.raises(BenchmarkError, match="needs SLURM's srun on PATH"):
        check_launcher(slurm)


def test_a_sweep_over_a_dataset_never_fetched_launches_nothing(tmp_path):
    """ml-latest-small is embedded and would run; ml-1m was never fetched: no run starts at all."""
    proc = run_cli("hydra.mode=MULTIRUN", "dataset=ml-latest-small,ml-1m", "model=pop", tmp=tmp_path, check=False, timeout=120)
    line = one_line_error(proc)
    assert "dataset ml-1m" in line and str(tmp_path / "data" / "ml-1m") in line and "seqrec-data fetch ml-1m" in line
    assert nothing_launched(tmp_path)


def test_a_sweep_with_one_bad_job_launches_nothing(tiny_ml, tmp_path):
    proc = run_cli("hydra.mode=MULTIRUN", f"dataset.path={tiny_ml}", *TINY, "model=pop", "seed=0,-1", tmp=tmp_path, check=False, timeout=120)
    line = one_line_error(proc)
    assert "seed=-1" in line and "(job " in line
    assert nothing_launched(tmp_path)


def test_a_sweep_over_a_record_of_other_code_launches_nothing(tiny_ml, tmp_path):
    import json

    from benchmark.record import find_records

    run_cli(f"dataset.path={tiny_ml}", *TINY, "model=pop", tmp=tmp_path)
    [record] = find_records(tmp_path / "results")
    metrics = json.loads((record / "metrics.json").read_text())
    (record / "metrics.json").write_text(json.dumps({**metrics, "code_hash": "0" * 64}))
    sweep = ("hydra.mode=MULTIRUN", f"dataset.path={tiny_ml}", *TINY, "model=pop", "seed=0,1")
    line = one_line_error(run_cli(*sweep, tmp=tmp_path, check=False, timeout=120))
    assert str(record) in line and "rerun=true" in line and "reuse=any_code" in line
    assert find_records(tmp_path / "results") == [record] and not (tmp_path / "results" / "sweeps").exists()
    run_cli(*sweep, "reuse=any_code", tmp=tmp_path, timeout=300)  # accepted explicitly: the sweep runs
    assert len(find_records(tmp_path / "results")) == 2


def test_the_job_is_named_seqrec(tmp_path):
    proc = run_cli("--help", tmp=tmp_path, timeout=120)
    assert proc.stdout.startswith("seqrec is powered by Hydra")
    proc = run_cli("--cfg", "hydra", tmp=tmp_path, timeout=120)
    assert re.search(r"^    name: seqrec$", proc.stdout, re.M)  # hydra.job.name: SLURM's job name, the log's
