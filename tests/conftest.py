"""Shared fixtures: tiny native-format datasets written by the tests (made-up ids), and a CLI runner."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

REPO = Path(__file__).resolve().parent.parent


def _usable_cores() -> int:
    """As benchmark.run.usable_cores (CPU affinity, not the machine's count), without importing
    benchmark.run: its DEFAULT_THREADS is read at import, after the worker's share is set below."""
    return len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count() or 1


@pytest.hookimpl(optionalhook=True)  # optional: a plain `pytest` runs without pytest-xdist installed
def pytest_xdist_auto_num_workers(config) -> int:
    """`-n auto`: one worker per usable core (xdist would count physical cores where psutil is installed)."""
    return _usable_cores()


def _share_cores_among_xdist_workers() -> None:
    """Under pytest-xdist (`make test` runs one worker per core), each worker and the runs it launches get
    their share of the cores: torch's default of one thread per core in every worker puts more busy
    threads than cores on the machine, and OpenMP threads spinning at barriers then make the tiny
    training steps of the tests several times slower. OMP_NUM_THREADS reaches the `seqrec` subprocesses
    (run_cli passes the environment on), where benchmark.run.default_threads honours it."""
    workers = os.environ.get("PYTEST_XDIST_WORKER_COUNT", "")
    if not workers.isdigit() or int(workers) < 1:
        return  # a plain `pytest` run keeps torch's default
    omp = os.environ.get("OMP_NUM_THREADS", "")
    if not (omp.isdigit() and int(omp) > 0):  # a thread count the caller chose is kept
        omp = str(max(1, _usable_cores() // int(workers)))
    os.environ["OMP_NUM_THREADS"] = omp
    import torch

    torch.set_num_threads(int(omp))


_share_cores_among_xdist_workers()


def write_movielens_csv(directory: Path, rows: list[tuple], crlf: bool = True) -> Path:
    """ratings.csv exactly as GroupLens ships it (header, CRLF line endings)."""
    directory.mkdir(parents=True, exist_ok=True)
    nl = "\r\n" if crlf else "\n"
    text = "userId,movieId,rating,timestamp" + nl + "".join(f"{u},{i},{r},{t}{nl}" for u, i, r, t in rows)
    path = directory / "ratings.csv"
    path.write_bytes(text.encode())
    return path


def permutation_rows(n_users: int = 60, n_items: int = 30, length: int = 12, seed: int = 0,
                     one_cycle: bool = False) -> list[tuple]:
    """Sequences whose next item is a fixed permutation of the previous one (order is the signal).
    ``one_cycle``: the permutation is one cycle through every item (no item repeats within ``n_items`` steps)."""
    rng = np.random.default_rng(seed)
    nxt = rng.permutation(n_items)
    if one_cycle:
        cycle, nxt = nxt, np.empty(n_items, dtype=np.int64)
        nxt[cycle] = np.roll(cycle, -1)
    rows = []
    for u in range(n_users):
        item = int(rng.integers(n_items))
        for t in range(length):
            rows.append((100 + u, 1000 + item, 4.0, 1_000_000 + 60 * t))
            item = int(nxt[item])
    return rows


@pytest.fixture
def tiny_ml(tmp_path: Path) -> Path:
    """A small MovieLens-format dataset directory with an order signal."""
    d = tmp_path / "tiny-ml"
    write_movielens_csv(d, permutation_rows())
    return d


def run_cli(*overrides: str, tmp: Path, check: bool = True, env: dict | None = None, timeout: int = 300) -> subprocess.CompletedProcess:
    """Runs `seqrec` in a subprocess with results and caches under ``tmp``."""
    cmd = [sys.executable, "-m", "benchmark.cli", f"results_dir={tmp / 'results'}", f"cache_dir={tmp / 'cache'}",
           f"hydra.run.dir={tmp / 'hydra'}", *overrides]
    full_env = {**os.environ, "SEQREC_DATA": str(tmp / "data"), "WANDB_MODE": "disabled", **(env or {})}
    proc = subprocess.run(cmd, cwd=REPO, capture_output=True, text=True, env=full_env, timeout=timeout)
    if check and proc.returncode != 0:
        raise AssertionError(f"seqrec failed ({proc.returncode}):\n{proc.stdout}\n{proc.stderr}")
    return proc


def compose_config(*overrides: str, tmp: Path) -> dict:
    """The config `seqrec OVERRIDES` would run, composed in-process (results and caches under ``tmp``)."""
    from hydra import compose, initialize_config_dir
    from omegaconf import OmegaConf

    from benchmark.cli import CONF_DIR

    with initialize_config_dir(config_dir=CONF_DIR, version_base="1.3"):
        cfg = compose("config", [f"results_dir={tmp / 'results'}", f"cache_dir={tmp / 'cache'}", *overrides])
    return OmegaConf.to_container(cfg, resolve=True)
