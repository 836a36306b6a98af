"""Tuning never reads the test set: two studies on data that differ only in every user's test item
propose the same trials, see the same validation values and pick the same configuration, while the
test metrics of their runs differ (so a study that read them would have diverged)."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pandas as pd

from conftest import run_cli, write_movielens_csv


def _study(data: Path, tmp: Path) -> pd.DataFrame:
    run_cli("hydra.mode=MULTIRUN", f"hydra.sweep.dir={tmp / 'sweep'}", f"dataset.path={data}", "dataset.user_core=1",
            "dataset.item_core=1", "trainer.max_epochs=2", "trainer.num_threads=1", "hparams=sasrec", "model=sasrec",
            "hydra.sweeper.n_trials=3", "model.hidden=choice(8,16)", "model.layers=1", "trainer.lr=tag(log, interval(1e-3, 1e-2))",
            tmp=tmp)
    return pd.read_csv(tmp / "sweep" / "optuna_trials.csv")


def test_a_study_is_blind_to_the_test_items(tmp_path):
    # Sequences without repeats, so that deduplication leaves every user's last row as the test target.
    rng = np.random.default_rng(0)
    n_items, length = 25, 10
    sequences = {100 + u: rng.choice(n_items, size=length, replace=False) for u in range(40)}
    rows = [(u, 1000 + int(i), 4.0, 1_000_000 + 60 * t) for u, items in sequences.items() for t, i in enumerate(items)]
    original = tmp_path / "original"
    write_movielens_csv(original, rows)
    # Each user's test item becomes another item the user never saw; the catalogue is unchanged.
    changed = []
    for u, items in sequences.items():
        unseen = np.setdiff1d(np.arange(n_items), items)
        new_items = [*items[:-1], rng.choice(unseen)]
        changed += [(u, 1000 + int(i), 4.0, 1_000_000 + 60 * t) for t, i in enumerate(new_items)]
    assert {i for _, i, _, _ in changed} == {i for _, i, _, _ in rows}
    other = tmp_path / "changed-test-items"
    write_movielens_csv(other, changed)

    a = _study(original, tmp_path / "a")
    b = _study(other, tmp_path / "b")
    params = [c for c in a.columns if c.startswith(("model.", "trainer."))]
    assert params and a[params].equals(b[params])       # the same trials were proposed ...
    assert np.allclose(a["ndcg@10"], b["ndcg@10"])      # ... and scored the same on validation
    assert a.loc[a["ndcg@10"].idxmax(), "trial"] == b.loc[b["ndcg@10"].idxmax(), "trial"]

    def test_values(trials: pd.DataFrame) -> list[float]:
        return [json.loads((Path(d) / "metrics.json").read_text())["test"]["ndcg@10"] for d in trials["run_dir"]]

    assert not np.allclose(test_values(a), test_values(b))  # the test sets did differ
