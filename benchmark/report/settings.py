"""One report per setting: records of different protocols or candidate sets never share a table (their
numbers do not compare), so a folder that holds several gets one report for each, side by side.

A setting's name is its folder name: the protocol (``loo``, ``horizon``, ``temporal``, ``session``;
``temporal-refit`` for protocol.refit, whose test users and targets differ), followed for a sampled candidate set
by ``-sampled<N>-<sampler>`` (and ``-negseed<S>`` for a negatives seed other than 0), e.g. ``loo-sampled100-uniform``.
"""

from __future__ import annotations

import contextlib
from dataclasses import dataclass, field
from pathlib import Path
from typing import Iterable

from benchmark.errors import BenchmarkError
from benchmark.record import read_metrics
from benchmark.report.runs import ReportError

CANDIDATE_SETS = ("full", "sampled")


def candidate_set(metrics: dict) -> str:
    """'full' or 'sampled': how a record's candidates were formed."""
    return str(metrics.get("candidates", "full"))


def setting_name(metrics: dict) -> str:
    """The protocol and candidate set of a record's metrics.json, as a folder name."""
    name = str(metrics.get("protocol")) + ("-refit" if metrics.get("refit") else "")
    if candidate_set(metrics) == "full":
        return name
    info = metrics.get("sampled_candidates") or {}
    name += f"-sampled{info.get('n_negatives', '')}-{info.get('sampler', 'unknown')}"
    seed = info.get("negatives_seed", 0)
    return name + (f"-negseed{seed}" if seed not in (0, None) else "")


@dataclass
class Setting:
    protocol: str
    candidates: str  # "full" or "sampled"
    records: list[Path] = field(default_factory=list)


def records_by_setting(dirs: Iterable[Path], protocol: str | None = None,
                       candidates: str | None = None) -> tuple[dict[str, Setting], list[Path]]:
    """The records of each setting by its name, keeping only ``protocol`` and ``candidates`` where given,
    and apart the records whose metrics.json cannot be read (a report over them names the problem)."""
    by_setting: dict[str, Setting] = {}
    damaged: list[Path] = []
    seen: set[str] = set()
    for d in dirs:
        try:
            metrics = read_metrics(d)
        except BenchmarkError:
            damaged.append(Path(d))
            continue
        seen.add(f"{metrics.get('protocol')} ({candidate_set(metrics)})")
        if protocol is not None and str(metrics.get("protocol")) != protocol:
            continue
        if candidates is not None and candidate_set(metrics) != candidates:
            continue
        setting = by_setting.setdefault(setting_name(metrics), Setting(str(metrics.get("protocol")), candidate_set(metrics)))
        setting.records.append(Path(d))
    if not by_setting and not damaged:
        wanted = " and ".join(f"{k} {v}" for k, v in (("protocol", protocol), ("candidates", candidates)) if v)
        raise ReportError(f"no run records with {wanted}; recorded: {', '.join(sorted(seen))}")
    return dict(sorted(by_setting.items())), damaged


def remove_report_files(folder: Path) -> None:
    """The files a report writes (REPORT_FILES), nothing else."""
    from benchmark.report.build import REPORT_FILES

    for name in REPORT_FILES:
        (folder / name).unlink(missing_ok=True)


def report_folders(names: list[str], out: Path, prefix: str) -> dict[str, Path]:
    """Where each setting's report goes: ``out`` itself for a single setting, else ``out/<prefix><name>``.

    What an earlier report into ``out`` left and this one will not overwrite would read as this one's, so
    it goes: with several settings the report files in ``out`` itself, and always those of setting
    folders (``out/<prefix>*``) not written now, each folder removed once empty (other files are kept).
    """
    folders = {name: out / f"{prefix}{name}" for name in names} if len(names) > 1 else {names[0]: out}
    if len(names) > 1 and out.is_dir():
        remove_report_files(out)
    if out.is_dir():
        for stale in out.glob(f"{prefix}*"):
            if (stale.is_dir() and not stale.is_symlink() and not stale.name.startswith(".")
                    and stale not in folders.values() and (stale / "table.md").is_file()):
                remove_report_files(stale)
                with contextlib.suppress(OSError):  # other files in it: kept, and the folder with them
                    stale.rmdir()
    return folders
