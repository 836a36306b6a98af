"""scripts/reference.py, the one command behind results/reference/: tune on validation, run, control order,
report over exactly its records; resumable. End to end on a tiny file in the S3-Rec LastFM format."""

from __future__ import annotations

import importlib.util
import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import yaml

from benchmark.archive import pack, restore
from conftest import REPO, permutation_rows


def _lastfm_fixture(data: Path) -> None:
    folder = data / "s3rec-lastfm"
    folder.mkdir(parents=True)
    lines: dict[int, list[str]] = {}
    for u, i, _, _ in permutation_rows(n_users=40, n_items=25, length=9):
        lines.setdefault(u, []).append(str(i))
    (folder / "LastFM.txt").write_text("".join(f"{u} {' '.join(items)}\n" for u, items in lines.items()))


def _script():
    spec = importlib.util.spec_from_file_location("reference", REPO / "scripts" / "reference.py")
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module  # its dataclass looks its module up there
    spec.loader.exec_module(module)
    return module


def _run(tmp: Path, *extra: str) -> subprocess.CompletedProcess:
    command = [sys.executable, str(REPO / "scripts" / "reference.py"), "--datasets", "s3rec-lastfm",
               "--models", "pop,ease,gru4rec", "--tuned", "ease", "--trials", "2", "--seeds", "0",
               "--results", str(tmp / "runs"), "--tuning", str(tmp / "tuning"),
               "--experiments", str(tmp / "tuned" / "experiment"), "--out", str(tmp / "reference"), *extra,
               "trainer.max_epochs=2", f"cache_dir={tmp / 'cache'}"]
    env = {"PATH": f"{Path(sys.executable).parent}:/usr/bin:/bin", "SEQREC_DATA": str(tmp / "data"),
           "WANDB_MODE": "disabled", "HOME": str(tmp),
           **{k: os.environ[k] for k in ("OMP_NUM_THREADS",) if k in os.environ}}  # a pytest-xdist worker's share of the cores
    proc = subprocess.run(command, cwd=REPO, capture_output=True, text=True, env=env, timeout=600)
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-3000:]
    return proc


def test_reference_tunes_on_validation_runs_controls_order_and_reports(tmp_path):
    _lastfm_fixture(tmp_path / "data")
    _run(tmp_path)

    tuned = tmp_path / "tuned" / "experiment" / "ease-s3rec-lastfm-loo.yaml"
    l2 = yaml.safe_load(tuned.read_text())["model"]["l2"]
    trials = list((tmp_path / "tuning").glob("s3rec-lastfm/loo/ease/seed0-*/metrics.json"))
    assert len(trials) == 2  # the study's trials are records of their own folder, not of the reference
    assert not list((tmp_path / "tuning").rglob("model.pt"))  # trials keep no weights; the reference runs do
    listed = (tmp_path / "reference" / "runs.txt").read_text().split()
    models = sorted(json.loads((Path(r) / "metrics.json").read_text())["model"] for r in listed)
    assert models == ["ease", "gru4rec", "gru4rec", "pop"]  # gru4rec twice: true and shuffled order
    ease = next(r for r in listed if "/ease/" in r)
    assert yaml.safe_load((Path(ease) / "config.yaml").read_text())["model"]["l2"] == l2  # the tuned config ran
    shuffled = [r for r in listed if yaml.safe_load((Path(r) / "config.yaml").read_text())["dataset"].get("shuffle_order")]
    assert len(shuffled) == 1 and "/gru4rec/" in shuffled[0]  # the only sequence model is the best one
    assert all((Path(r) / "model.pt").is_file() for r in listed if "/gru4rec/" in r)  # for --attribution
    for name in ("table.md", "table.tex", "table.csv", "families.md", "order_effect.md"):
        assert (tmp_path / "reference" / name).is_file(), name
    assert "order" in (tmp_path / "reference" / "families.md").read_text()

    again = _run(tmp_path)  # a relaunch tunes nothing and starts no run: every record is complete and listed
    assert "hparams=" not in again.stdout and "$ -m" not in again.stdout
    skipped = [line.split()[1].rstrip(":") for line in again.stdout.splitlines() if line.startswith("skip ")]
    assert sorted(Path(s).name for s in skipped) == ["ease", "gru4rec", "gru4rec-shuffled", "pop"]
    assert sorted((tmp_path / "reference" / "runs.txt").read_text().split()) == sorted(listed)

    (Path(skipped[0]) / "runs.txt").unlink()  # a sweep that lists nothing is launched again (its run skips itself)
    relisted = _run(tmp_path)
    assert relisted.stdout.count("$ -m") == 1 and f"hydra.sweep.dir={skipped[0]}" in relisted.stdout
    assert "complete record exists" in relisted.stdout + relisted.stderr
    assert sorted((tmp_path / "reference" / "runs.txt").read_text().split()) == sorted(listed)

    fewer = _run(tmp_path, "--report-only")  # a report over what the sweeps listed: nothing tuned or run, nothing dropped
    assert "$ -m" not in fewer.stdout
    assert sorted((tmp_path / "reference" / "runs.txt").read_text().split()) == sorted(listed)

    # The machine is lost, the committed archive is not: restored records report the same table, no training.
    table = (tmp_path / "reference" / "table.csv").read_text()
    pack(tmp_path / "runs", tmp_path / "archive")
    shutil.rmtree(tmp_path / "runs")
    restore(tmp_path / "archive", tmp_path / "runs")
    (tmp_path / "reference" / "table.csv").unlink()
    reported = _run(tmp_path, "--report-only")
    assert (tmp_path / "reference" / "table.csv").read_text() == table
    assert "--attribution left out: 2 sequence records have no fitted model" in reported.stdout


def test_reference_plan_prints_the_commands_and_runs_nothing(tmp_path, capsys):
    module = _script()
    assert module.main(["--plan", "--datasets", "globo", "--models", "pop,itemknn", "--tuned", "itemknn",
                        "--experiments", str(tmp_path / "experiment"), "--results", str(tmp_path / "runs")]) == 0
    out = capsys.readouterr().out.splitlines()
    assert out[0].startswith("$ -m hparams=itemknn experiment=reference dataset=globo model=itemknn")
    assert "hydra.sweeper.n_trials=16" in out[0]  # ItemKNN's budget
    assert out[1].startswith("$ -m experiment=reference dataset=globo model=pop")
    assert not (tmp_path / "runs").exists()


def test_reference_runs_no_model_that_needs_time_on_an_order_only_file(tmp_path, capsys):
    module = _script()
    assert module.main(["--plan", "--datasets", "s3rec-lastfm,globo", "--models", "pop,recentpop", "--tuned", "",
                        "--experiments", str(tmp_path / "experiment"), "--results", str(tmp_path / "runs")]) == 0
    runs = [line for line in capsys.readouterr().out.splitlines() if line.startswith("$ -m")]
    assert [(r.split("dataset=")[1].split()[0], r.split("model=")[1].split()[0]) for r in runs] == [
        ("s3rec-lastfm", "pop"), ("globo", "pop"), ("globo", "recentpop")]  # LastFM.txt has no time: no recentpop


def test_no_order_control_runs_the_models_and_no_shuffled_one(tmp_path):
    _lastfm_fixture(tmp_path / "data")
    _run(tmp_path, "--models", "pop,markov", "--no-order-control")
    sweeps = tmp_path / "runs" / "sweeps" / "reference" / "s3rec-lastfm"
    assert sorted(p.name for p in sweeps.iterdir()) == ["markov", "pop"]
    _run(tmp_path, "--models", "pop,markov")  # markov, the only sequence model, is the best one: its control runs
    assert sorted(p.name for p in sweeps.iterdir()) == ["markov", "markov-shuffled", "pop"]


def test_a_study_searches_what_the_datasets_overrides_fix_and_its_runs_keep_the_choice(tmp_path, capsys):
    # ml-latest-small's sequence models train at lr 0.003; BPR-MF's study searches lr, so neither the study
    # nor the runs of its tuned file may fix it (a fixed key leaves the search space); the rest stays fixed.
    module = _script()
    plan = ["--plan", "--datasets", "ml-latest-small", "--models", "bprmf,sasrec", "--tuned", "bprmf",
            "--experiments", str(tmp_path / "experiment"), "--results", str(tmp_path / "runs")]
    assert module.main(plan) == 0
    study, *runs = capsys.readouterr().out.splitlines()
    assert study.startswith("$ -m hparams=bprmf") and "trainer.lr=" not in study
    assert "trainer.batch_size=128" in study and "trainer.max_epochs=30" in study
    assert all("trainer.lr=0.003" in r for r in runs)  # untuned: the dataset's trainer

    (tmp_path / "experiment").mkdir()
    (tmp_path / "experiment" / "bprmf-ml-latest-small-loo.yaml").write_text("# @package _global_\n")
    assert module.main(plan) == 0
    bprmf, sasrec = capsys.readouterr().out.splitlines()
    assert "experiment=bprmf-ml-latest-small-loo" in bprmf and "trainer.lr=" not in bprmf
    assert "trainer.max_epochs=30" in bprmf and "trainer.lr=0.003" in sasrec
