"""Slim, committable copies of run records, and their restoration.

Records live on the machine that ran them (results/runs, git-ignored); a lost machine loses them, and with them
every paired test that needs their per-user values. A record's per_user.parquet costs ~50 bytes a user (1 MB on a
22k-user dataset): too big to commit by the hundred. Most of it is redundant: the leave-one-out metrics (hr, ndcg,
mrr @K) are functions of the target's rank, recomputed exactly by the evaluator's own ``metrics_from_ranks``, and
the columns that describe the split (user, history_len, target_*) are the same in every record of that split. An
archived record keeps its small files verbatim (config.yaml less the machine's folders), its ranks (and any column not recomputed exactly), and points to
one shared table of the split's columns (``_splits/``); ``restore`` rebuilds a complete record that the report reads and a
relaunch skips like the original. Not kept: per-user arp@K (continuous popularity means: ~24 bytes a user; their
means stay in metrics.json) and the fitted model (model.pt), so --attribution needs the runs again.
"""

from __future__ import annotations

import hashlib
import json
import os
import re
import shutil
import tempfile
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd
import yaml

from benchmark.errors import DataError
from benchmark.evaluation import metrics_from_ranks
from benchmark.record import RECORD_FILES, find_records, is_complete

MANIFEST = "archive.json"
RANKS = "ranks.parquet"
LISTING = "runs.txt"  # a multirun's list of its records (absolute paths), copied both ways
RESULTS_MARK = "$RESULTS"  # stands in the archived runs.txt for the records' folder of the machine that wrote it
SPLITS = "_splits"  # the split tables, named by their content: every record of a split points to one
VERBATIM = tuple(f for f in RECORD_FILES if f not in ("per_user.parquet", "config.yaml"))  # metrics, history, env
# Where the run wrote its record and caches: folders of the machine that ran it (not part of a run's identity).
# The archive leaves them out; restore names the folder it restores into.
MACHINE_KEYS = ("results_dir", "cache_dir")
SPLIT_COLUMNS = ("user", "history_len", "target_item", "target_pop", "target_time")  # one table per split
DROPPED = re.compile(r"arp@\d+$")  # per-user popularity means: large, and not tested per user by the report
RANK_METRIC = re.compile(r"(hr|ndcg|mrr)@(\d+)$")


@dataclass
class Packed:
    """What ``pack`` did: records written, those already archived, and the bytes the archive took."""
    written: list[Path]
    unchanged: list[Path]
    bytes_written: int


def _users_file(split: pd.DataFrame) -> str:
    digest = hashlib.sha256(pd.util.hash_pandas_object(split, index=False).to_numpy().tobytes())
    digest.update(",".join(split.columns).encode())
    return f"users-{digest.hexdigest()[:12]}.parquet"


def _rank_columns(per_user: pd.DataFrame) -> list[str]:
    """The columns ``metrics_from_ranks`` gives back bit for bit from ``rank`` (a sampled or multi-target metric
    of the same name would not: it is kept as it is)."""
    if "rank" not in per_user.columns:
        return []
    named = [c for c in per_user.columns if RANK_METRIC.match(c)]
    ks = tuple(sorted({int(RANK_METRIC.match(c).group(2)) for c in named}))
    again = metrics_from_ranks(per_user["rank"].to_numpy(), ks) if ks else {}
    return [c for c in named if per_user[c].dtype == np.float64 and np.array_equal(per_user[c].to_numpy(), again[c])]


def _write_atomic(target: Path, write) -> None:
    """Fills a temp folder beside ``target`` with ``write(tmp)`` and renames it into place: a killed pack or restore
    leaves no folder under the final name."""
    target.parent.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(dir=target.parent, prefix=f".{target.name}.", suffix=".tmp"))
    try:
        write(tmp)
        if target.exists():
            shutil.rmtree(target)
        os.rename(tmp, target)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise


def pack_record(record: Path, results: Path, archive: Path) -> tuple[Path, int]:
    """Archives one complete record below ``results`` at the same relative path below ``archive``; returns the
    archived folder and the bytes written."""
    per_user = pd.read_parquet(record / "per_user.parquet")
    rank_columns = _rank_columns(per_user)
    split_columns = [c for c in SPLIT_COLUMNS if c in per_user.columns]
    dropped = [c for c in per_user.columns if DROPPED.match(c)]
    kept = [c for c in per_user.columns if c not in {*rank_columns, *split_columns, *dropped}]
    target = archive / record.relative_to(results)
    split_dir = archive / SPLITS
    split = per_user[split_columns].reset_index(drop=True)
    users = _users_file(split)
    written = 0
    if not (split_dir / users).is_file():
        split_dir.mkdir(parents=True, exist_ok=True)
        tmp = split_dir / f".{users}.tmp"
        split.to_parquet(tmp, index=False, compression="zstd")
        os.replace(tmp, split_dir / users)
        written += (split_dir / users).stat().st_size
    ranks = per_user[kept].copy()
    if "rank" in ranks.columns and len(ranks) and ranks["rank"].max() < 2**31:
        ranks["rank"] = ranks["rank"].astype(np.int32)  # restored to the original dtype from the manifest
    manifest = {"columns": list(per_user.columns), "dtypes": {c: str(per_user[c].dtype) for c in kept},
                "users": users, "from_rank": rank_columns, "dropped": dropped}

    config = yaml.safe_load((record / "config.yaml").read_text()) or {}
    portable = {k: v for k, v in config.items() if k not in MACHINE_KEYS}

    def write(tmp: Path) -> None:
        for name in VERBATIM:
            shutil.copyfile(record / name, tmp / name)
        (tmp / "config.yaml").write_text(yaml.safe_dump(portable, sort_keys=False))
        ranks.to_parquet(tmp / RANKS, index=False, compression="zstd")
        (tmp / MANIFEST).write_text(json.dumps(manifest, indent=1))

    _write_atomic(target, write)
    return target, written + sum(f.stat().st_size for f in target.iterdir())


def _portable(listing: str, results: Path) -> str:
    """A runs.txt with its absolute paths below ``results`` (a multirun writes absolute ones) written relative to it,
    behind RESULTS_MARK: the archive names no machine's folders."""
    lines = []
    for line in listing.splitlines():
        path = Path(line.strip())
        inside = path.is_absolute() and path.is_relative_to(results)
        lines.append(f"{RESULTS_MARK}/{path.relative_to(results).as_posix()}" if inside else line)
    return "".join(f"{line}\n" for line in lines)


def _placed(listing: str, results: Path) -> str:
    """The archived runs.txt with its RESULTS_MARK paths placed below this machine's ``results``."""
    return "".join(f"{results / line[len(RESULTS_MARK) + 1:] if line.startswith(RESULTS_MARK + '/') else line}\n"
                   for line in listing.splitlines())


def _listings(root: Path) -> list[Path]:
    """Every sweep's runs.txt below ``root`` (not in hidden folders)."""
    return sorted(p for p in root.rglob(LISTING) if not any(part.startswith(".") for part in p.relative_to(root).parts))


def _archived(folder: Path) -> bool:
    return (folder / MANIFEST).is_file() and all((folder / f).is_file() for f in (*VERBATIM, "config.yaml", RANKS))


def pack(results: Path, archive: Path, only: set[Path] | None = None) -> Packed:
    """Archives every complete record below ``results`` (or those of ``only``) that the archive does not hold
    with the same metrics.json, and every sweep's runs.txt (paths below ``results`` made relative to it)."""
    results = results.resolve()  # the multirun wrote resolved paths
    written, unchanged, size = [], [], 0
    for listing in _listings(results):  # the sweeps' lists of their records (scripts/reference.py reads them)
        copy, text = archive / listing.relative_to(results), _portable(listing.read_text(), results)
        if not copy.is_file() or copy.read_text() != text:
            copy.parent.mkdir(parents=True, exist_ok=True)
            copy.write_text(text)
    for record in find_records(results):
        if only is not None and record.resolve() not in only:
            continue
        target = archive / record.relative_to(results)
        if _archived(target) and (target / "metrics.json").read_bytes() == (record / "metrics.json").read_bytes():
            unchanged.append(target)
            continue
        folder, n = pack_record(record, results, archive)
        written.append(folder)
        size += n
    return Packed(written, unchanged, size)


def restore_record(folder: Path, archive: Path, results: Path) -> Path:
    """Rebuilds the complete record of an archived ``folder`` at its relative path below ``results``."""
    try:
        manifest = json.loads((folder / MANIFEST).read_text())
        users_path = archive / SPLITS / manifest["users"]
        split = pd.read_parquet(users_path)
        ranks = pd.read_parquet(folder / RANKS)
    except (OSError, ValueError, KeyError) as e:
        raise DataError(f"{folder}: archived record cannot be restored ({' '.join(str(e).split())})") from None
    if len(split) != len(ranks):
        raise DataError(f"{folder}: {len(ranks)} ranks but {len(split)} users in {users_path.name}")
    for c, dtype in manifest["dtypes"].items():
        ranks[c] = ranks[c].astype(dtype)
    columns = {**{c: split[c] for c in split.columns}, **{c: ranks[c] for c in ranks.columns}}
    if manifest["from_rank"]:
        ks = tuple(sorted({int(RANK_METRIC.match(c).group(2)) for c in manifest["from_rank"]}))
        again = metrics_from_ranks(ranks["rank"].to_numpy(), ks)
        columns.update({c: again[c] for c in manifest["from_rank"]})
    per_user = pd.DataFrame({c: columns[c] for c in manifest["columns"] if c not in manifest["dropped"]})
    target = results / folder.relative_to(archive)

    config = {**(yaml.safe_load((folder / "config.yaml").read_text()) or {}), "results_dir": str(results)}

    def write(tmp: Path) -> None:
        for name in VERBATIM:
            shutil.copyfile(folder / name, tmp / name)
        (tmp / "config.yaml").write_text(yaml.safe_dump(config, sort_keys=False))
        per_user.to_parquet(tmp / "per_user.parquet", index=False)

    _write_atomic(target, write)
    return target


def restore(archive: Path, results: Path) -> tuple[list[Path], list[Path]]:
    """Restores every archived record whose record below ``results`` is not complete, and the sweeps' runs.txt
    files that are missing there; returns (restored, present) records."""
    restored, present = [], []
    for listing in _listings(archive):
        target = results / listing.relative_to(archive)
        if not target.is_file():
            target.parent.mkdir(parents=True, exist_ok=True)
            target.write_text(_placed(listing.read_text(), results))
    for manifest in sorted(archive.rglob(MANIFEST)):
        folder = manifest.parent
        if any(part.startswith(".") for part in folder.relative_to(archive).parts):
            continue  # a temp folder of a killed pack
        if is_complete(results / folder.relative_to(archive)):
            present.append(folder)
            continue
        restored.append(restore_record(folder, archive, results))
    return restored, present
