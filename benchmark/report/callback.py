"""Hydra callback: at the end of a multirun, tabulate the sweep's runs into the sweep directory."""

from __future__ import annotations

import contextlib
import fcntl
import sys
from pathlib import Path
from typing import Any

from hydra.core.utils import JobReturn, JobStatus
from hydra.experimental.callback import Callback
from omegaconf import DictConfig

RUNS_FILE = "runs.txt"


class SweepReport(Callback):
    def on_multirun_start(self, config: DictConfig, **kwargs: Any) -> None:
        # The list is this launch's: a reused sweep dir would otherwise report an earlier sweep's runs
        # too. Runs skipped as already complete still end as jobs of this launch, so they are listed.
        with contextlib.suppress(FileNotFoundError, NotADirectoryError):  # none yet, or no sweep dir (Hydra says so)
            (Path(config.hydra.sweep.dir) / RUNS_FILE).unlink()

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
            f.write(str(Path(str(job_return.return_value)).resolve()) + "\n")  # absolute: readable from anywhere

    def on_multirun_end(self, config: DictConfig, **kwargs: Any) -> None:
        # The full report (tables, pairwise tests, diagrams) of this sweep's runs, in the sweep dir; a sweep
        # over several settings (protocols or candidate sets: runs no table may mix) gets one report per
        # setting, in report-<setting>/ (benchmark/report/settings.py names them).
        from benchmark.errors import BenchmarkError
        from benchmark.report.build import ReportOptions, build_report, write_report
        from benchmark.report.settings import Setting, records_by_setting, report_folders
        from benchmark.report.table import render_markdown

        sweep_dir = Path(config.hydra.sweep.dir)
        listed = sweep_dir / RUNS_FILE
        if not listed.is_file():
            return
        dirs = sorted({Path(line) for line in listed.read_text().split() if line})
        dirs = [d for d in dirs if (d / "metrics.json").is_file()]
        if not dirs:
            return
        by_setting, damaged = records_by_setting(dirs)  # damaged: every report gets them, and names them in its error
        by_setting = by_setting or {"": Setting("", "")}
        folders = report_folders(list(by_setting), sweep_dir, "report-")
        several = len(by_setting) > 1
        for setting, part in by_setting.items():
            out = folders[setting]
            # Efficiency columns (params, train seconds, ms/user) sit beside accuracy in every sweep table; with
            # several settings each report's options name its own, so that the footer's command rebuilds it.
            options = ReportOptions(efficiency=True, protocol=part.protocol if several else None,
                                    candidates=part.candidates if several else None)
            try:
                report = build_report(part.records + damaged, options, str(listed),
                                      f"{sweep_dir.name}-{setting}" if several else sweep_dir.name)
                write_report(report, out)
            except BenchmarkError as e:  # a report problem must not turn a finished sweep into a failure
                print(f"seqrec: report{f' ({setting})' if several else ''} skipped: {e}", file=sys.stderr)
                continue
            print("\n" + render_markdown(report.tables["table"]))
            if report.families is not None:
                print("\n" + render_markdown(report.families[0]))
            files = "table.md/.tex/.csv" + (", families.md/.tex/.csv" if report.families is not None else "")
            files += ", pairwise.csv" + "".join(f", {stem}.png/.pdf" for stem in report.figures)
            print(f"\nreport written to {out} ({files})")
