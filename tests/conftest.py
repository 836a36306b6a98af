"""Shared fixtures: tiny native-format datasets written by the tests (made-up ids), and a CLI runner."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

REPO = Path(__file__).resolve().parent.parent


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
