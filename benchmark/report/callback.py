"""Hydra callback: at the end of a multirun, tabulate the sweep's runs into the sweep directory."""

from __future__ import annotations

import contextlib
import fcntl
import shlex
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
        # The full report (tables, pairwise tests, diagrams) of this sweep's runs, in the sweep dir; a
        # sweep over protocols (runs no table may mix) gets one report per protocol, in report-<protocol>/.
        from benchmark.errors import BenchmarkError
        from benchmark.record import read_metrics
        from benchmark.report.build import ReportOptions, build_report, write_report
        from benchmark.report.table import render_markdown

        sweep_dir = Path(config.hydra.sweep.dir)
        listed = sweep_dir / RUNS_FILE
        if not listed.is_file():
            return
        dirs = sorted({Path(line) for line in listed.read_text().split() if line})
        dirs = [d for d in dirs if (d / "metrics.json").is_file()]
        if not dirs:
            return
        by_protocol: dict[str, list[Path]] = {}
        damaged = []  # every report gets them, and names them in its error
        for d in dirs:
            try:
                by_protocol.setdefault(str(read_metrics(d).get("protocol")), []).append(d)
            except BenchmarkError:
                damaged.append(d)
        if len(by_protocol) > 1:
            parts = [(p, sweep_dir / f"report-{p}", runs + damaged) for p, runs in sorted(by_protocol.items())]
            _remove_report_files(sweep_dir)  # an earlier launch's single report here would read as this sweep's
        else:
            parts = [(None, sweep_dir, dirs)]
        # Per-protocol reports an earlier launch into this folder left, for protocols this one has not:
        # they would read as this sweep's. Only report files go (and the folder, once empty).
        for stale_dir in sweep_dir.glob("report-*"):
            if stale_dir.is_dir() and not stale_dir.is_symlink() and stale_dir not in {out for _, out, _ in parts}:
                _remove_report_files(stale_dir)
                with contextlib.suppress(OSError):  # other files in it: kept, and the folder with them
                    stale_dir.rmdir()
        for protocol, out, runs in parts:
            # Efficiency columns (params, train seconds, ms/user) sit beside accuracy in every sweep table.
            command = (f"seqrec-report {shlex.quote(str(listed))} --out {shlex.quote(str(out))} --efficiency"
                       + (f" --protocol {shlex.quote(protocol)}" if protocol else ""))
            try:
                report = build_report(runs, ReportOptions(efficiency=True, protocol=protocol), command, str(sweep_dir))
                write_report(report, out)
            except BenchmarkError as e:  # a report problem must not turn a finished sweep into a failure
                print(f"seqrec: report{f' ({protocol})' if protocol else ''} skipped: {e}", file=sys.stderr)
                continue
            print("\n" + render_markdown(report.tables["table"]))
            if report.families is not None:
                print("\n" + render_markdown(report.families[0]))
            files = "table.md/.tex/.csv" + (", families.md/.tex/.csv" if report.families is not None else "")
            files += ", pairwise.csv" + "".join(f", {stem}.png/.pdf" for stem in report.figures)
            print(f"\nreport written to {out} ({files})")


def _remove_report_files(folder: Path) -> None:
    """The files a report writes (REPORT_FILES), nothing else."""
    from benchmark.report.build import REPORT_FILES

    for name in REPORT_FILES:
        (folder / name).unlink(missing_ok=True)
