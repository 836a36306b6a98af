"""Commit run records, restore them on another machine (benchmark/archive.py says what is kept).

    python scripts/archive_records.py pack                  # results/runs -> results/archive/runs (committed)
    python scripts/archive_records.py pack --runs results/reference/runs.txt   # only the records listed there
    python scripts/archive_records.py pack --results results/ablations --archive results/archive/ablations
    python scripts/archive_records.py restore               # results/archive/runs -> results/runs, then e.g.
    python scripts/reference.py --report-only               # the report again, no training

Both skip what is already there, so they can run after every sweep; a record restored from the archive has no
fitted model, so the report's --attribution needs those runs again (reference.py says so and leaves it out).
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from benchmark.archive import pack, restore  # noqa: E402
from benchmark.errors import BenchmarkError  # noqa: E402


def listed(paths: list[Path]) -> set[Path]:
    """The record folders named in runs.txt files (one path per line, relative to the repository root)."""
    out = set()
    for path in paths:
        if not path.is_file():
            raise BenchmarkError(f"--runs {path}: no such file")
        out |= {(ROOT / line.strip()).resolve() for line in path.read_text().splitlines() if line.strip()}
    return out


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(prog="archive_records", description=__doc__.split("\n\n")[0])
    p.add_argument("action", choices=("pack", "restore"))
    p.add_argument("--results", type=Path, default=ROOT / "results" / "runs", help="the records' folder")
    p.add_argument("--archive", type=Path, default=ROOT / "results" / "archive" / "runs",
                   help="the committed archive of that folder")
    p.add_argument("--runs", type=Path, action="append", default=[],
                   help="pack only the records listed in this runs.txt (repeatable)")
    a = p.parse_args(argv)
    results, archive = a.results.resolve(), a.archive.resolve()
    try:
        if a.action == "pack":
            if not results.is_dir():
                raise BenchmarkError(f"--results {a.results}: no such folder")
            done = pack(results, archive, listed(a.runs) if a.runs else None)
            print(f"packed {len(done.written)} records ({done.bytes_written / 1e6:.2f} MB), "
                  f"{len(done.unchanged)} already archived -> {archive}")
        else:
            if not archive.is_dir():
                raise BenchmarkError(f"--archive {a.archive}: no such folder")
            restored, present = restore(archive, results)
            print(f"restored {len(restored)} records, {len(present)} already complete -> {results}")
    except BenchmarkError as e:
        print(f"archive_records: error: {e}", file=sys.stderr)
        return 2
    return 0


if __name__ == "__main__":
    sys.exit(main())
