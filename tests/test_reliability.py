"""Faults, crash safety, resume and reproducibility of a run."""

from __future__ import annotations

import dataclasses
import io
import json
import subprocess
import sys
import tarfile
import zipfile
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import torch
import yaml

from benchmark import cli, training
from benchmark.errors import BenchmarkError, DataError
from benchmark.models import kernels
from benchmark.record import find_records, is_complete
from benchmark.run import run_experiment
from conftest import REPO, compose_config

TESTS = Path(__file__).resolve().parent
# A few epochs of a small SASRec on the tiny permutation dataset: seconds on CPU.
SASREC = ["model=sasrec", "model.hidden=16", "model.max_len=12", "trainer.max_epochs=3", "trainer.patience=5",
          "trainer.batch_size=16", "dataset.user_core=1", "dataset.item_core=1"]


def sasrec_run(data: Path, tmp: Path, *extra: str) -> Path:
    return run_experiment(compose_config(f"dataset.path={data}", *SASREC, *extra, tmp=tmp))


def records_under(tmp: Path) -> list[Path]:
    return find_records(tmp / "results") if (tmp / "results").exists() else []


@pytest.fixture(scope="module")
def data_dir(tmp_path_factory) -> Path:
    from conftest import permutation_rows, write_movielens_csv

    d = tmp_path_factory.mktemp("tiny") / "tiny-ml"
    write_movielens_csv(d, permutation_rows())
    return d


@pytest.fixture(scope="module")
def reference_run(data_dir, tmp_path_factory) -> Path:
    """One uninterrupted SASRec run that the determinism and resume tests compare against."""
    return sasrec_run(data_dir, tmp_path_factory.mktemp("reference"))


def test_same_seed_gives_identical_per_user_metrics(reference_run, data_dir, tmp_path):
    torch.manual_seed(12345)  # disturb global RNG state: the run must reseed everything itself
    np.random.seed(6789)
    again = sasrec_run(data_dir, tmp_path)
    assert again != reference_run
    first, second = pd.read_parquet(reference_run / "per_user.parquet"), pd.read_parquet(again / "per_user.parquet")
    pd.testing.assert_frame_equal(first, second, check_exact=True)
    assert (reference_run / "per_user.parquet").read_bytes() == (again / "per_user.parquet").read_bytes()
    other_seed = pd.read_parquet(sasrec_run(data_dir, tmp_path, "seed=1") / "per_user.parquet")
    assert not first["rank"].equals(other_seed["rank"])  # the seed matters, so equality above is not vacuous


def test_record_holds_what_a_rerun_needs(reference_run):
    env = json.loads((reference_run / "env.json").read_text())
    assert {"torch", "numpy", "pandas", "python"} <= set(env["versions"])
    assert "git_commit" in env and len(env["dataset_hash"]) == 64 and env["seed"] == 0
    config = yaml.safe_load((reference_run / "config.yaml").read_text())
    assert config["trainer"]["deterministic"] is True
    # The resolved config alone identifies the run: running it again finds the complete record.
    assert run_experiment(config) == reference_run


class Killed(Exception):
    pass


def test_resume_from_checkpoint_equals_uninterrupted_run(reference_run, data_dir, tmp_path, monkeypatch):
    save = training.save_checkpoint
    saved_epochs = []

    def save_then_die_after_epoch_2(path, net, optimizer, generator, best, best_state, since_best, logs):
        # The first attempt's epochs "took" 100 s each: the resumed record's train_seconds must count them.
        logs = [dataclasses.replace(log, seconds=100.0) for log in logs]
        save(path, net, optimizer, generator, best, best_state, since_best, logs)
        saved_epochs.append(len(logs))
        if len(logs) == 2:
            raise Killed

    monkeypatch.setattr(training, "save_checkpoint", save_then_die_after_epoch_2)
    with pytest.raises(Killed):
        sasrec_run(data_dir, tmp_path, "trainer.resume=true")
    assert not records_under(tmp_path)
    checkpoints = list((tmp_path / "results").rglob(".*.ckpt/last-*.pt"))
    assert len(checkpoints) == 1
    state = torch.load(checkpoints[0], weights_only=True)  # plain tensors and containers only
    assert len(state["logs"]) == 2

    saved_epochs.clear()
    monkeypatch.setattr(training, "save_checkpoint", lambda *a: (save(*a), saved_epochs.append(len(a[-1]))))
    kernels._onednn_available.cache_clear()  # as in the fresh process a relaunch is: per-process checks run again
    resumed = sasrec_run(data_dir, tmp_path, "trainer.resume=true")
    assert saved_epochs == [3], "the relaunch retrained epochs it had already done"
    # Same run identity as the uninterrupted run (resume is not part of it), and the same results.
    assert resumed.name == reference_run.name
    pd.testing.assert_frame_equal(pd.read_parquet(resumed / "per_user.parquet"),
                                  pd.read_parquet(reference_run / "per_user.parquet"), check_exact=True)
    columns = ["epoch", "loss", "valid_metric"]
    pd.testing.assert_frame_equal(pd.read_csv(resumed / "history.csv")[columns],
                                  pd.read_csv(reference_run / "history.csv")[columns], check_exact=True)
    assert not checkpoints[0].parent.exists(), "checkpoints are removed once the record is written"
    history = pd.read_csv(resumed / "history.csv")
    train_seconds = json.loads((resumed / "metrics.json").read_text())["train_seconds"]
    assert history["seconds"].tolist()[:2] == [100.0, 100.0]
    assert history["seconds"].sum() <= train_seconds < 200 + 60  # both attempts, the second one's wall time


def test_unsafe_checkpoint_is_refused_without_running_its_code(tmp_path):
    marker = tmp_path / "pwned"

    class Payload:
        def __reduce__(self):
            return (Path.touch, (marker,))

    bad = tmp_path / "last.pt"
    torch.save({"net": Payload()}, bad)
    net = torch.nn.Linear(2, 2)
    with pytest.raises(BenchmarkError, match="last.pt cannot be loaded"):
        training.load_checkpoint(bad, net, torch.optim.Adam(net.parameters()), torch.Generator())
    assert not marker.exists()


def test_nan_loss_stops_the_run_naming_the_epoch(data_dir, tmp_path, monkeypatch, capsys):
    # Weights become NaN after the first optimizer step of epoch 2 (60 windows / 16 = 4 steps per epoch).
    step, calls = torch.optim.Adam.step, []

    def corrupting_step(self, *args, **kwargs):
        out = step(self, *args, **kwargs)
        calls.append(1)
        if len(calls) == 5:
            with torch.no_grad():
                for group in self.param_groups:
                    for p in group["params"]:
                        p.fill_(float("nan"))
        return out

    monkeypatch.setattr(torch.optim.Adam, "step", corrupting_step)
    with pytest.raises(SystemExit) as exit_info:
        cli.run(compose_config(f"dataset.path={data_dir}", *SASREC, tmp=tmp_path))
    err = capsys.readouterr().err.strip()
    assert exit_info.value.code == 2 and len(err.splitlines()) == 1
    assert "loss became nan in epoch 2" in err and "trainer.lr" in err
    assert not records_under(tmp_path) and not list(tmp_path.rglob("metrics.json"))


@pytest.mark.parametrize("stage, key", [("fit", "trainer.batch_size"), ("evaluate", "trainer.eval_batch_size")])
def test_out_of_memory_names_the_batch_size_to_lower(stage, key, data_dir, tmp_path, monkeypatch, capsys):
    def oom(*args, **kwargs):
        raise torch.OutOfMemoryError("CUDA out of memory. Tried to allocate 20.00 GiB")

    if stage == "fit":
        monkeypatch.setattr("baselines.pop.MostPop.fit", oom)
    else:
        monkeypatch.setattr("benchmark.run.evaluate", oom)
    with pytest.raises(SystemExit) as exit_info:
        cli.run(compose_config(f"dataset.path={data_dir}", "model=pop", "dataset.user_core=1", tmp=tmp_path))
    err = capsys.readouterr().err
    assert exit_info.value.code == 2 and "out of GPU memory" in err and key in err
    assert not records_under(tmp_path)


KILL_DURING_RECORD = """
import os, sys
import pandas as pd
sys.path.insert(0, {tests!r})
from conftest import compose_config
from benchmark.run import run_experiment
to_parquet = pd.DataFrame.to_parquet
def write_then_die(self, *args, **kwargs):  # SIGKILL-like: no cleanup, no finally blocks
    to_parquet(self, *args, **kwargs)
    os._exit(137)
pd.DataFrame.to_parquet = write_then_die
from pathlib import Path
run_experiment(compose_config("dataset.path={data}", "model=pop", "dataset.user_core=1", tmp=Path({tmp!r})))
"""


def test_kill_between_per_user_and_metrics_leaves_no_complete_record(data_dir, tmp_path):
    script = KILL_DURING_RECORD.format(tests=str(TESTS), data=data_dir, tmp=str(tmp_path))
    proc = subprocess.run([sys.executable, "-c", script], cwd=REPO, capture_output=True, text=True, timeout=120)
    assert proc.returncode == 137, proc.stderr
    leftovers = list((tmp_path / "results").rglob("per_user.parquet"))
    assert leftovers, "the kill happened after the per-user file was written"
    assert all(not is_complete(p.parent) and p.parent.name.startswith(".") for p in leftovers)
    assert not records_under(tmp_path)
    # A relaunch completes the run; the half-written temp directory never counts as a record.
    run_dir = run_experiment(compose_config(f"dataset.path={data_dir}", "model=pop", "dataset.user_core=1", tmp=tmp_path))
    assert records_under(tmp_path) == [run_dir] and is_complete(run_dir)


def test_split_cache_is_plain_arrays(reference_run):
    config = yaml.safe_load((reference_run / "config.yaml").read_text())
    caches = list(Path(config["cache_dir"]).glob("*.npz"))
    assert caches
    for path in caches:
        with np.load(path, allow_pickle=False) as z:  # an object array would raise here
            assert all(z[name].dtype != object for name in z.files)
    assert not [p for p in Path(reference_run).iterdir() if p.suffix in (".pkl", ".pickle", ".pt")]


def test_torch_loads_in_the_package_are_weights_only():
    sources = [p.read_text() for p in (REPO / "benchmark").rglob("*.py")] + [p.read_text() for p in (REPO / "baselines").rglob("*.py")]
    calls = [line for text in sources for line in text.splitlines() if "torch.load(" in line]
    assert calls and all("weights_only=True" in line for line in calls), calls
    assert not any("pickle" in line and "import" in line for text in sources for line in text.splitlines())
    assert not any("allow_pickle=True" in text for text in sources)


@pytest.mark.skipif(not torch.cuda.is_available(), reason="no GPU")
def test_gpu_run_is_deterministic_too(data_dir, tmp_path):  # pragma: no cover - CPU machines skip
    a = sasrec_run(data_dir, tmp_path / "a", "trainer.device=cuda")
    b = sasrec_run(data_dir, tmp_path / "b", "trainer.device=cuda")
    pd.testing.assert_frame_equal(pd.read_parquet(a / "per_user.parquet"), pd.read_parquet(b / "per_user.parquet"))


def _tar(path: Path, name: str, kind: bytes = tarfile.REGTYPE, link: str = "") -> Path:
    with tarfile.open(path, "w:gz") as tf:
        info = tarfile.TarInfo(name)
        info.type, info.linkname = kind, link
        data = b"" if link else b"1,2,3,4\n"
        info.size = len(data)
        tf.addfile(info, io.BytesIO(data))
    return path


def _zip(path: Path, name: str) -> Path:
    with zipfile.ZipFile(path, "w") as zf:
        zf.writestr(name, "1,2,3,4\n")
    return path


@pytest.mark.parametrize(
    "make, words",
    [
        (lambda d: _tar(d / "a.tar.gz", "data/../../evil.csv"), "escapes"),
        (lambda d: _tar(d / "a.tar.gz", "/tmp/evil.csv"), "absolute path"),
        (lambda d: _tar(d / "a.tar.gz", "data/link", tarfile.SYMTYPE, "/etc/passwd"), "links"),
        (lambda d: _tar(d / "a.tar.gz", "data/hard", tarfile.LNKTYPE, "/etc/passwd"), "links"),
        (lambda d: _zip(d / "a.zip", "data\\..\\..\\evil.csv"), "escapes"),
        (lambda d: _zip(d / "a.zip", "C:/evil.csv"), "absolute path"),
        (lambda d: (d / "a.zip").write_bytes(b"PK\x03\x04 truncated") and d / "a.zip", "not a readable archive"),
    ],
    ids=["tar parent", "tar absolute", "tar symlink", "tar hardlink", "zip backslash parent", "zip drive letter",
         "truncated zip"],
)
def test_hostile_archives_are_refused_and_nothing_is_extracted(make, words, tmp_path):
    from benchmark.data.download import safe_extract

    (tmp_path / "in").mkdir()
    archive = make(tmp_path / "in")
    with pytest.raises(DataError, match=words):
        safe_extract(archive, tmp_path / "out" / "data")
    assert not (tmp_path / "out" / "data").exists() and not list(tmp_path.rglob("evil.csv"))


def test_records_are_readable_by_others_as_the_umask_allows(tmp_path):
    """A record is published by renaming a mkdtemp folder (mode 0700): it gets the umask's mode."""
    import os

    from report_records import write_run

    old = os.umask(0o022)
    try:
        run = write_run(tmp_path, "ds", "pop", 0, np.arange(1, 6))
    finally:
        os.umask(old)
    assert run.stat().st_mode & 0o777 == 0o755


def test_a_relaunch_on_changed_data_does_not_resume_the_old_datas_checkpoint(data_dir, tmp_path, monkeypatch, caplog):
    """Killed after epoch 2, then the dataset file changed in place: the relaunch trains from epoch 1
    on the new data (as a fresh run does) instead of resuming weights trained on the old data."""
    import shutil

    from conftest import permutation_rows, write_movielens_csv

    data = tmp_path / "data"
    shutil.copytree(data_dir, data)
    save = training.save_checkpoint
    saved_epochs = []

    def save_then_die_after_epoch_2(*args):
        save(*args)
        saved_epochs.append(len(args[-1]))
        if len(args[-1]) == 2:
            raise Killed

    monkeypatch.setattr(training, "save_checkpoint", save_then_die_after_epoch_2)
    with pytest.raises(Killed):
        sasrec_run(data, tmp_path, "trainer.resume=true")
    rows = permutation_rows()
    write_movielens_csv(data, [(u, i, r, 10**9 - t) for u, i, r, t in rows])  # same rows, reversed times
    saved_epochs.clear()
    monkeypatch.setattr(training, "save_checkpoint", lambda *a: (save(*a), saved_epochs.append(len(a[-1]))))
    with caplog.at_level("WARNING", logger="seqrec"):
        resumed = sasrec_run(data, tmp_path, "trainer.resume=true")
    assert saved_epochs == [1, 2, 3] and "trained on other data" in caplog.text
    fresh = sasrec_run(data, tmp_path / "fresh", "trainer.resume=true")
    pd.testing.assert_frame_equal(pd.read_parquet(resumed / "per_user.parquet"), pd.read_parquet(fresh / "per_user.parquet"))
    assert not list((tmp_path / "results").rglob(".*.ckpt"))


def test_a_checkpoint_save_survives_its_folder_removed_by_a_duplicate_that_finished(tmp_path, monkeypatch):
    """Two attempts of one run: the one that publishes the record removes the checkpoint folder while
    the other is saving; that save goes through (into a folder made again), it does not crash."""
    net = torch.nn.Linear(2, 2)
    optimizer = torch.optim.Adam(net.parameters())
    path = tmp_path / ".run.ckpt" / "last-abc.pt"
    real_save, removed = torch.save, []

    def save_while_the_other_attempt_cleans_up(obj, f):
        if not removed:
            removed.append(True)
            import shutil

            shutil.rmtree(path.parent)
        real_save(obj, f)

    monkeypatch.setattr(torch, "save", save_while_the_other_attempt_cleans_up)
    training.save_checkpoint(path, net, optimizer, torch.Generator(), 0.5, None, 0, [])
    assert removed and torch.load(path, weights_only=True)["best"] == 0.5
    assert [p.name for p in path.parent.iterdir()] == ["last-abc.pt"]  # no temp file left


def test_a_skipped_complete_run_removes_checkpoints_left_behind(reference_run):
    """Killed between publishing its record and removing its checkpoints: the next launch skips the
    run and removes them (else a later re-run, after the record is moved away, would resume from them)."""
    from benchmark.run import checkpoint_dir_for

    left = checkpoint_dir_for(reference_run)
    left.mkdir()
    (left / "last-0123.pt").write_bytes(b"weights")
    config = yaml.safe_load((reference_run / "config.yaml").read_text())
    assert run_experiment(config) == reference_run and not left.exists()
