"""Runs on a cluster: plain per-epoch log lines without a terminal, launch preflight, time budgets, threads."""

from __future__ import annotations

import re

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
