"""Hydra callback: at the end of a multirun, tabulate the sweep's runs into the sweep directory."""

from __future__ import annotations

import fcntl
from pathlib import Path
from typing import Any

from hydra.core.utils import JobReturn, JobStatus
from hydra.experimental.callback import Callback
from omegaconf import DictConfig

RUNS_FILE = "runs.txt"


class SweepReport(Callback):
    def on_job_end(self, config: DictConfig, job_return: JobReturn, **kwargs: Any) -> None:
        # Runs in the job's process (any launcher): append this run's record to the sweep's list.
        if config.hydra.mode is None or str(config.hydra.mode) != "RunMode.MULTIRUN":
            return
        if job_return.status != JobStatus.COMPLETED or not job_return.return_value:
            return
        sweep_dir = Path(config.hydra.sweep.dir)
        sweep_dir.mkdir(parents=True, exist_ok=True)
        with open(sweep_dir / RUNS_FILE, "a") as f:
            fcntl.flock(f, fcntl.LOCK_EX)
            f.write(str(job_return.return_value) + "\n")

    def on_multirun_end(self, config: DictConfig, **kwargs: Any) -> None:
        from benchmark.report.table import mean_std_table, runs_frame, to_markdown

        sweep_dir = Path(config.hydra.sweep.dir)
        listed = sweep_dir / RUNS_FILE
        if not listed.is_file():
            return
        dirs = sorted({Path(line) for line in listed.read_text().split() if line})
        runs = runs_frame(d for d in dirs if (d / "metrics.json").is_file())
        if runs.empty:
            return
        table = to_markdown(mean_std_table(runs, ["hr@10", "ndcg@10", "mrr@10"]))
        (sweep_dir / "table.md").write_text(table + "\n")
        print(f"\nResults ({len(runs)} runs, full ranking, leave-one-out; mean ± std over seeds):\n")
        print(table)
        print(f"\nwritten to {sweep_dir / 'table.md'}")
