"""Helpers shared by the performance scripts (bench_vs_recbole.py, bench_scale.py): synthetic
MovieLens files, measured subprocesses, and the sections of results/perf.md and results/perf.json
that each script owns. Standard library + numpy/pandas only."""

from __future__ import annotations

import json
import os
import platform
import re
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import numpy as np

REPO = Path(__file__).resolve().parent.parent
RESULTS = REPO / "results"


def write_synthetic_movielens(directory: Path, n_users: int, n_items: int, mean_len: float, seed: int = 0,
                              zipf_a: float = 1.0, min_len: int = 3) -> int:
    """A ``ratings.csv`` in MovieLens format (header ``userId,movieId,rating,timestamp``).

    Sequence lengths are log-normal (mean ``mean_len``, a long tail as in MovieLens, at most half
    the items), item popularity follows Zipf (p ~ 1 / rank**zipf_a), item ids are shuffled so
    popularity does not follow the id, every item occurs at least once, a user rates an item at most
    once, and timestamps increase within a user with many same-second
    ties. Returns the number of rows written.
    """
    import pyarrow as pa
    import pyarrow.csv as pacsv

    rng = np.random.default_rng(seed)
    sigma = 1.0
    lengths = rng.lognormal(np.log(mean_len) - sigma**2 / 2, sigma, n_users).astype(np.int64)
    lengths = np.clip(lengths, min_len, max(min_len, n_items // 2))
    users = np.repeat(np.arange(1, n_users + 1, dtype=np.int64), lengths)
    weights = 1.0 / np.arange(1, n_items + 1) ** zipf_a
    p = weights / weights.sum()
    items = rng.choice(n_items, size=len(users), p=p)
    items[rng.choice(len(items), size=min(n_items, len(items)), replace=False)] = rng.permutation(n_items)[: len(items)]
    for _ in range(8):  # redraw repeated (user, item) pairs: MovieLens has one rating per pair
        repeated = _repeats(users * n_items + items)
        if not repeated.any():
            break
        items[repeated] = rng.choice(n_items, size=int(repeated.sum()), p=p)
    fresh = ~_repeats(users * n_items + items)  # drop the few pairs still repeated
    users, items = users[fresh], items[fresh]
    lengths = np.bincount(users, minlength=n_users + 1)[1:]
    item_ids = rng.permutation(n_items) + 1
    steps = rng.choice(np.array([0, 1, 7, 60, 3600, 86400]), size=len(users), p=[0.3, 0.2, 0.2, 0.15, 0.1, 0.05])
    starts = np.repeat(rng.integers(946_684_800, 1_500_000_000, n_users), lengths)
    first = np.repeat(np.concatenate([[0], np.cumsum(lengths)[:-1]]), lengths)
    cum = np.cumsum(steps)
    times = starts + cum - cum[first]
    ratings = rng.integers(1, 11, len(users)) / 2
    directory.mkdir(parents=True, exist_ok=True)
    table = pa.table({"userId": users, "movieId": item_ids[items], "rating": ratings, "timestamp": times})
    path = directory / "ratings.csv"
    with open(path, "wb") as f:
        f.write(b"userId,movieId,rating,timestamp\n")
        pacsv.write_csv(table, f, pacsv.WriteOptions(include_header=False))
    return len(users)


def _repeats(keys: np.ndarray) -> np.ndarray:
    """Bool mask of every occurrence of a key after its first."""
    order = np.argsort(keys, kind="stable")
    sorted_keys = keys[order]
    later = np.zeros(len(keys), dtype=bool)
    later[order[1:]] = sorted_keys[1:] == sorted_keys[:-1]
    return later


def key_values(items: list[str], flag: str, parser: Any) -> dict[str, Any]:
    """``KEY=VALUE`` command-line items as a dict, each value read as YAML (``0.1``, ``[1, 2]``, ``false``);
    a malformed item is the parser's one-line error naming ``flag``."""
    import yaml

    out = {}
    for item in items:
        key, eq, value = item.partition("=")
        if not eq or not key:
            parser.error(f"{flag} {item!r}: expected KEY=VALUE")
        out[key] = yaml.safe_load(value)
    return out


def peak_rss_mb() -> float:
    """Peak resident memory of this process so far, in MiB: Linux's VmHWM, which starts afresh at exec
    (ru_maxrss carries the parent's peak over exec, so a job started by a big orchestrator reported
    at least the orchestrator's memory); ru_maxrss where there is no /proc."""
    try:
        with open("/proc/self/status") as f:
            for line in f:
                if line.startswith("VmHWM:"):
                    return int(line.split()[1]) / 1024  # kB
    except OSError:
        pass
    import resource

    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def run_job(cmd: list[str], job: dict[str, Any], work: Path, name: str, env: dict[str, str] | None = None,
            timeout: float | None = None) -> dict[str, Any]:
    """Runs ``cmd job.json result.json`` in its own process (so peak RSS is that run's alone) and
    returns the result JSON; a failure raises with the tail of the process's output."""
    work.mkdir(parents=True, exist_ok=True)
    job_path, out_path, log_path = work / f"{name}.job.json", work / f"{name}.result.json", work / f"{name}.log"
    job_path.write_text(json.dumps(job))
    out_path.unlink(missing_ok=True)
    with open(log_path, "w") as log:
        proc = subprocess.run([*cmd, str(job_path), str(out_path)], stdout=log, stderr=subprocess.STDOUT,
                              cwd=work, env={**os.environ, **(env or {})}, timeout=timeout)
    if proc.returncode != 0 or not out_path.is_file():
        tail = "".join(log_path.read_text(errors="replace").splitlines(keepends=True)[-15:])
        raise RuntimeError(f"{name} failed (exit {proc.returncode}); log {log_path}:\n{tail}")
    return json.loads(out_path.read_text())


def machine() -> dict[str, Any]:
    """What the timings were measured on, including the load average at the time."""
    import torch

    from benchmark.record import cpu_model

    return {
        "cpu": cpu_model(), "cores": os.cpu_count(), "torch": torch.__version__, "torch_threads": torch.get_num_threads(),
        "python": platform.python_version(), "loadavg": list(os.getloadavg()),
        "date": time.strftime("%Y-%m-%d %H:%M:%S %Z"), "git_commit": _git_commit(),
    }


def _git_commit() -> str | None:
    out = subprocess.run(["git", "-C", str(REPO), "rev-parse", "--short", "HEAD"], capture_output=True, text=True)
    return out.stdout.strip() or None


# An absolute path (two or more components) in what the scripts write: results/ is committed, and a
# machine's paths (a user or home folder) have no place in a public file.
_ABSOLUTE_PATH = re.compile(r"(?<![\w.~:/-])(?:/[\w.+@-]+){2,}/?")


def without_machine_paths(text: str, repo: Path = REPO) -> str:
    """Paths inside the repository made relative to it; any other absolute path cut to ``.../NAME``."""
    def public(match: re.Match) -> str:
        path = Path(match.group(0))
        if path == repo or repo in path.parents:
            return path.relative_to(repo).as_posix()
        return f".../{path.name}"

    return _ABSOLUTE_PATH.sub(public, text)


def update_section(md_path: Path, name: str, text: str, title: str = "# Performance") -> None:
    """Replaces (or appends) the block between ``<!-- name:start -->`` and ``<!-- name:end -->``,
    so each script rewrites only its own part of the shared Markdown file."""
    start, end = f"<!-- {name}:start -->", f"<!-- {name}:end -->"
    old = md_path.read_text() if md_path.is_file() else f"{title}\n"
    block = f"{start}\n{text.rstrip()}\n{end}"
    if start in old and end in old:
        new = old[: old.index(start)] + block + old[old.index(end) + len(end):]
    else:
        new = old.rstrip() + "\n\n" + block + "\n"
    md_path.parent.mkdir(parents=True, exist_ok=True)
    md_path.write_text(without_machine_paths(new))


def update_json(path: Path, key: str, value: Any) -> None:
    """Sets one top-level key of a JSON file, keeping the others."""
    data = json.loads(path.read_text()) if path.is_file() else {}
    data[key] = value
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(without_machine_paths(json.dumps(data, indent=1, default=float)) + "\n")


def markdown_table(header: list[str], rows: list[list[Any]]) -> str:
    lines = ["| " + " | ".join(header) + " |", "|" + "|".join("---" for _ in header) + "|"]
    lines += ["| " + " | ".join(str(c) for c in row) + " |" for row in rows]
    return "\n".join(lines)


def python_of(venv: Path) -> Path:
    return venv / ("Scripts/python.exe" if sys.platform == "win32" else "bin/python")
