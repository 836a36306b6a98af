"""How long reading + preprocessing an ml-20m-sized file takes (not a test: timings vary by machine).

    python scripts/bench_readers.py                 # 20,000,263 rows like ml-20m's ratings.csv
    python scripts/bench_readers.py --rows 2000000 --format sequences

Writes a synthetic file in the native format (made-up ids) to a temporary folder, then times the
reader and the preprocessing separately and prints peak memory (max RSS).
"""

from __future__ import annotations

import argparse
import resource
import tempfile
import time
from pathlib import Path

import numpy as np
import pandas as pd

from benchmark.data.preprocess import PreprocessConfig, preprocess
from benchmark.data.readers import read_interactions


def synthetic(rows: int, users: int, items: int, seed: int = 0) -> pd.DataFrame:
    rng = np.random.default_rng(seed)
    user = np.sort(rng.integers(1, users + 1, rows))
    item = (rng.zipf(1.3, rows) % items) + 1  # long-tailed popularity, like ratings data
    return pd.DataFrame({"userId": user, "movieId": item, "rating": rng.integers(1, 11, rows) / 2,
                         "timestamp": rng.integers(789_652_009, 1_427_784_002, rows)})


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rows", type=int, default=20_000_263)
    parser.add_argument("--users", type=int, default=138_493)
    parser.add_argument("--items", type=int, default=26_744)
    parser.add_argument("--format", choices=["movielens", "sequences"], default="movielens")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        df = synthetic(args.rows, args.users, args.items)
        t = time.perf_counter()
        if args.format == "movielens":
            path = Path(tmp)
            df.to_csv(path / "ratings.csv", index=False, lineterminator="\r\n")
        else:
            path = Path(tmp) / "seqs.txt"
            lines = df.groupby("userId")["movieId"].agg(lambda s: " ".join(map(str, s)))
            path.write_text("".join(f"{u} {s}\n" for u, s in lines.items()))
        size = sum(p.stat().st_size for p in Path(tmp).iterdir())
        print(f"wrote {args.rows:,} rows ({size / 2**20:.0f} MiB) in {time.perf_counter() - t:.1f}s")
        del df
        t = time.perf_counter()
        interactions = read_interactions(args.format, path)
        read_s = time.perf_counter() - t
        t = time.perf_counter()
        prepared = preprocess(interactions, PreprocessConfig(user_core=5, item_core=5))
        prep_s = time.perf_counter() - t
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 2**20
    print(f"read {len(interactions):,} rows in {read_s:.1f}s; preprocess (dedupe, 5-core) to {prepared.n_users:,} users, "
          f"{prepared.n_items:,} items in {prep_s:.1f}s; peak RSS {peak:.1f} GiB")


if __name__ == "__main__":
    main()
