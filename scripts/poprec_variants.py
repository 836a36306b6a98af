"""Which counting choice explains a published PopRec number? Scores each user's last item of an S3-Rec
style file (`user item item ...`) by item popularity counted three ways — training items only (ours:
nothing after the training cut is seen), training + validation items, every interaction including the
test items themselves — each with and without masking the user's history, ties against the target.

    python scripts/poprec_variants.py /data/Beauty.txt

A plain per-user loop (one file, seconds): a measurement aid, not the benchmark's evaluator.
"""

from __future__ import annotations

import argparse
from pathlib import Path

import numpy as np


def ndcg_hr_at_10(sequences: list[list[int]], counts: np.ndarray, mask_history: bool) -> tuple[float, float]:
    ndcg, hits = [], []
    for seq in sequences:
        target, history = seq[-1], seq[:-1]
        scores = counts.astype(np.float64)
        scores[0] = -np.inf
        if mask_history:
            scores[[h for h in history if h != target]] = -np.inf
        rank = 1 + np.count_nonzero(scores >= scores[target]) - 1  # ties count against the target
        hits.append(rank <= 10)
        ndcg.append(1 / np.log2(rank + 1) if rank <= 10 else 0.0)
    return float(np.mean(ndcg)), float(np.mean(hits))


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(prog="poprec_variants", description=__doc__.split("\n\n")[0])
    p.add_argument("file", type=Path)
    args = p.parse_args(argv)
    sequences = [[int(x) for x in line.split()[1:]] for line in args.file.read_text().splitlines() if line.strip()]
    n_items = max(max(s) for s in sequences) + 1
    count = lambda cut: np.bincount([i for s in sequences for i in s[: len(s) - cut]], minlength=n_items)  # noqa: E731
    print(f"{args.file.name}: {len(sequences):,} users, {n_items - 1:,} items")
    for name, counts in (("training items", count(2)), ("training + validation items", count(1)),
                         ("every interaction, test too", count(0))):
        for mask in (True, False):
            ndcg, hr = ndcg_hr_at_10(sequences, counts, mask)
            print(f"{name:28s} history {'masked  ' if mask else 'unmasked'}: NDCG@10 {ndcg:.4f}  HR@10 {hr:.4f}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
