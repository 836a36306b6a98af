"""Runs of one process do not leak settings into each other; unusable directories and broken YAML
are refused with one line before any work; a reused sweep directory reports only its own launch."""

from __future__ import annotations

import json

import pytest
import torch

from benchmark import training
from benchmark.config import TrainerConfig
from benchmark.record import find_records
from benchmark.run import run_experiment
from conftest import compose_config, run_cli

POP = ["model=pop", "dataset.user_core=1", "dataset.item_core=1"]
DEFAULT_THREADS = torch.get_num_threads()  # this process's, before any run


def assert_one_line_error(proc, *words: str) -> None:
    assert proc.returncode == 2, proc.stderr
    lines = proc.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("seqrec: error: "), proc.stderr
    for word in words:
        assert word in lines[0], f"{word!r} not in {lines[0]!r}"


def test_num_threads_of_one_run_does_not_leak_into_the_next(tiny_ml, tmp_path, monkeypatch):
    # Three usable cores and no OMP_NUM_THREADS make the default 3, so a leaked 1 shows whatever this
    # process's own thread count (one per pytest-xdist worker).
    monkeypatch.setattr("os.sched_getaffinity", lambda pid: {0, 1, 2})
    monkeypatch.delenv("OMP_NUM_THREADS", raising=False)
    threads = []
    for value in ("1", "null"):  # as `seqrec -m trainer.num_threads=1,null` runs them, in one process
        # Separate results dirs: pop's identity leaves out the trainer section, so one dir would skip the second.
        run = run_experiment(compose_config(f"dataset.path={tiny_ml}", *POP, f"trainer.num_threads={value}", tmp=tmp_path / value))
        threads.append(json.loads((run / "env.json").read_text())["torch_threads"])
    assert threads == [1, 3]  # 3: default_threads() on the three cores above
    assert torch.get_num_threads() == DEFAULT_THREADS


@pytest.fixture
def tf32_flags():
    """Restores the process-wide TF32 flags after the test (readable and settable on CPU builds)."""
    saved = torch.backends.cuda.matmul.allow_tf32, torch.backends.cudnn.allow_tf32
    yield
    torch.backends.cuda.matmul.allow_tf32, torch.backends.cudnn.allow_tf32 = saved


def test_tf32_of_one_run_does_not_leak_into_an_fp32_run(tf32_flags):
    net = torch.nn.Linear(2, 1)

    def train(precision: str) -> tuple[bool, bool]:
        cfg = TrainerConfig(max_epochs=1, batch_size=4, device="cpu", precision=precision)
        training.train_loop(net, lambda idx, gen: net(torch.ones(len(idx), 2)).pow(2).mean(), 4, lambda: 0.0, cfg)
        return torch.backends.cuda.matmul.allow_tf32, torch.backends.cudnn.allow_tf32

    assert train("tf32") == (True, True)
    assert train("fp32") == (False, False)


@pytest.mark.parametrize("key, make", [
    ("results_dir", lambda tmp: tmp / "file"),  # an existing file
    ("results_dir", lambda tmp: tmp / "file" / "sub"),  # cannot be created
    ("cache_dir", lambda tmp: tmp / "file" / "splits"),
])
def test_unusable_directory_is_refused_before_any_work(key, make, tiny_ml, tmp_path):
    (tmp_path / "file").write_text("not a directory")
    value = make(tmp_path)
    proc = run_cli("model=sasrec", f"dataset.path={tiny_ml}", f"{key}={value}", tmp=tmp_path, check=False)
    assert_one_line_error(proc, f"{key}={value}", "not a directory")
    assert not (tmp_path / "cache").exists(), "the dataset was read before the directory was checked"
    assert not (tmp_path / "results").exists() and (tmp_path / "file").read_text() == "not a directory"


def test_unusable_results_dir_under_hydras_output_dir_is_one_line(tiny_ml, tmp_path):
    (tmp_path / "file").write_text("")
    # Hydra creates its output dir (by default under results_dir) before the run starts.
    proc = run_cli("model=pop", f"dataset.path={tiny_ml}", f"hydra.run.dir={tmp_path / 'file' / 'hydra'}",
                   tmp=tmp_path, check=False)
    assert_one_line_error(proc, str(tmp_path / "file" / "hydra"), "results_dir")


def test_broken_yaml_config_names_the_file_and_line(tmp_path):
    bad = tmp_path / "conf" / "experiment" / "bad.yaml"
    bad.parent.mkdir(parents=True)
    bad.write_text("model:\n  name: pop\n  layers: [1, 2\nseed: 3\n")
    proc = run_cli(f"hydra.searchpath=[file://{tmp_path / 'conf'}]", "experiment=bad", tmp=tmp_path, check=False)
    assert_one_line_error(proc, str(bad), "line 4")


def test_reused_sweep_dir_reports_only_this_launchs_runs(tiny_ml, tmp_path):
    sweep = ["hydra.mode=MULTIRUN", f"hydra.sweep.dir={tmp_path / 'sweep'}", f"dataset.path={tiny_ml}", *POP]

    def launch(seeds: str) -> set[str]:
        run_cli(*sweep, f"seed={seeds}", tmp=tmp_path)
        return set((tmp_path / "sweep" / "runs.txt").read_text().split())

    def records(seed: int) -> set[str]:
        return {str(r) for r in find_records(tmp_path / "results") if r.name.startswith(f"seed{seed}-")}

    assert launch("0") == records(0)
    assert launch("1") == records(1)  # not the first launch's run too
    assert launch("0,1") == records(0) | records(1)  # runs skipped as complete belong to this launch
    assert len(records(0) | records(1)) == 2


def test_a_complete_record_is_not_reused_for_data_changed_in_place(tiny_ml, tmp_path):
    run_cli(f"dataset.path={tiny_ml}", *POP, tmp=tmp_path)
    (record,) = find_records(tmp_path / "results")
    metrics = (record / "metrics.json").read_text()
    assert "skip" in run_cli(f"dataset.path={tiny_ml}", *POP, tmp=tmp_path).stdout  # same data: reused
    ratings = tiny_ml / "ratings.csv"
    ratings.write_text(ratings.read_text() + "1,2,5.0,1999999999\n")  # the same path, other data
    proc = run_cli(f"dataset.path={tiny_ml}", *POP, tmp=tmp_path, check=False)
    assert_one_line_error(proc, str(record), "other data", "move the record away")
    assert (record / "metrics.json").read_text() == metrics
