"""Full-ranking evaluation, batched over users with tensor ops (no Python loop per user).

Rank of a target = 1 + number of other candidate items whose score is >= the target's score, so
ties count against the model: a constant-score model gets the worst rank, never a lucky one.
Candidates are all items except padding and, unless repeats are allowed, the user's history.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field

import numpy as np
import torch

from benchmark.data.split import EvalSet, SplitData
from benchmark.models.base import Batch, Recommender
from benchmark.progress import progress

DEFAULT_KS = (5, 10, 20)


def excluded_mask(n_columns: int, history: torch.Tensor, targets: torch.Tensor, mask_history: bool) -> torch.Tensor:
    """Bool [B, n_columns]: True where an item is not a competing candidate (padding column 0,
    the targets themselves, and the history when masked)."""
    excluded = torch.zeros(len(history), n_columns, dtype=torch.bool, device=history.device)
    excluded[:, 0] = True
    if mask_history:
        excluded.scatter_(1, history, True)
    excluded.scatter_(1, targets, True)
    excluded[:, 0] = True
    return excluded


def rank_targets(scores: torch.Tensor, targets: torch.Tensor, excluded: torch.Tensor) -> torch.Tensor:
    """Rank (1 = best) of each target among the non-excluded items, ties counted against it.

    scores [B, N] float, targets [B, k] item ids, excluded [B, N] bool -> ranks [B, k] int64.
    NaN scores count as the worst possible score.
    """
    scores = torch.nan_to_num(scores.float(), nan=-math.inf)
    target_scores = scores.gather(1, targets)  # [B, k]
    competing = ~excluded
    # One [B, N] comparison per target column; k is 1 for leave-one-out.
    ahead = [((scores >= target_scores[:, j : j + 1]) & competing).sum(1) for j in range(targets.shape[1])]
    return 1 + torch.stack(ahead, dim=1)


def metrics_from_ranks(ranks: np.ndarray, ks: tuple[int, ...] = DEFAULT_KS) -> dict[str, np.ndarray]:
    """Per-user HR@K, NDCG@K and MRR@K from the rank of a single target per user."""
    ranks = np.asarray(ranks, dtype=np.float64)
    out: dict[str, np.ndarray] = {}
    for k in ks:
        hit = ranks <= k
        out[f"hr@{k}"] = hit.astype(np.float64)
        out[f"ndcg@{k}"] = np.where(hit, 1.0 / np.log2(ranks + 1.0), 0.0)
        out[f"mrr@{k}"] = np.where(hit, 1.0 / ranks, 0.0)
    return out


@dataclass
class EvalResult:
    users: np.ndarray  # internal user ids, [U]
    ranks: np.ndarray  # [U, k] rank of each target (k = 1 for leave-one-out)
    per_user: dict[str, np.ndarray]  # metric name -> [U]
    aggregate: dict[str, float] = field(default_factory=dict)  # means, plus coverage@K
    seconds: float = 0.0


@torch.no_grad()
def evaluate(
    model: Recommender,
    data: SplitData,
    eval_set: EvalSet,
    ks: tuple[int, ...] = DEFAULT_KS,
    batch_size: int = 1024,
    mask_history: bool = True,
) -> EvalResult:
    """Ranks every target of ``eval_set`` against all items; returns per-user metrics."""
    import time

    start = time.perf_counter()
    device = model.device
    n_columns = data.n_items + 1
    popularity = torch.from_numpy(data.item_popularity()).float().to(device)
    max_k = max(ks)
    ranks, top_items, rec_pop = [], [], []
    for lo in progress(range(0, len(eval_set), batch_size), -(-len(eval_set) // batch_size), "evaluate"):
        rows = np.arange(lo, min(lo + batch_size, len(eval_set)))
        history = eval_set.histories.padded(rows).to(device)
        targets = torch.from_numpy(eval_set.targets[rows]).to(device)
        batch = Batch(users=torch.from_numpy(eval_set.users[rows]).to(device), history=history)
        scores = model.score(batch)
        if scores.shape != (len(rows), n_columns):
            raise RuntimeError(f"{model.name}.score returned {tuple(scores.shape)}, expected {(len(rows), n_columns)}")
        excluded = excluded_mask(n_columns, history, targets, mask_history)
        ranks.append(rank_targets(scores, targets, excluded).cpu())
        # Top-K lists for coverage and popularity bias: the targets compete here like any item.
        listable = excluded_mask(n_columns, history, targets[:, :0], mask_history)
        top = torch.nan_to_num(scores.float(), nan=-math.inf).masked_fill(listable, -math.inf).topk(max_k, dim=1).indices
        top_items.append(top.cpu())
        rec_pop.append(popularity[top].cpu())
    rank_arr = torch.cat(ranks).numpy()
    per_user = metrics_from_ranks(rank_arr[:, 0], ks)
    tops = torch.cat(top_items)
    pops = torch.cat(rec_pop)
    aggregate = {name: float(v.mean()) for name, v in per_user.items()}
    for k in ks:
        per_user[f"arp@{k}"] = pops[:, :k].mean(1).numpy().astype(np.float64)
        aggregate[f"arp@{k}"] = float(per_user[f"arp@{k}"].mean())
        aggregate[f"coverage@{k}"] = float(torch.unique(tops[:, :k]).numel() / data.n_items)
    return EvalResult(eval_set.users, rank_arr, per_user, aggregate, time.perf_counter() - start)
