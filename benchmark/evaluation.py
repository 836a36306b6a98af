"""Full-ranking evaluation, batched over users with tensor ops (no Python loop per user).

Rank of a target = 1 + number of other candidate items whose score is >= the target's score, so
ties count against the model: a constant-score model gets the worst rank, never a lucky one.
Candidates are all items except padding and, unless repeats are allowed, the user's history (a
target that is also in the masked history is masked with it: a miss, as in the horizon lists).
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np
import torch

from benchmark.config import TrainerConfig
from benchmark.data.split import EvalSet, SplitData
from benchmark.models.base import Batch, Recommender, top_n_excluding
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
    return excluded


def count_true(mask: torch.Tensor) -> torch.Tensor:
    """Number of True values in each row of a bool [B, N], int64.

    Summed as int16 over column blocks too narrow to overflow it: the sum of a bool tensor is the
    hot spot of ranking on CPU, and int16 accumulation is about 2x faster than int32, 4x than int64."""
    blocks = mask.view(torch.uint8).split(32767, dim=1)
    return sum(block.sum(1, dtype=torch.int16).long() for block in blocks)


def _distinct(ids: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """Row-wise sorted ids [B, E] and a mask of each id's first occurrence."""
    ids = ids.sort(dim=1).values
    first = torch.ones_like(ids, dtype=torch.bool)
    first[:, 1:] = ids[:, 1:] != ids[:, :-1]
    return ids, first


def rank_targets(scores: torch.Tensor, targets: torch.Tensor, excluded: torch.Tensor) -> torch.Tensor:
    """Rank (1 = best) of each target among all items but the excluded ones, ties counted against it.

    scores [B, N] (any real dtype, compared as given), targets [B, k] item ids, excluded [B, E] item ids that do not compete
    (repeats allowed; padding 0 and the targets never compete) -> ranks [B, k] int64.
    NaN scores count as the worst possible score (below -inf).

    One comparison pass over [B, N] per target column, then the few excluded items that compared
    ahead are subtracted: no copy or masking of the score matrix (k is 1 for leave-one-out).
    """
    target_scores = scores.gather(1, targets)  # [B, k]; compared in the scores' own dtype (no float32 ties)
    ids, first = _distinct(torch.cat([torch.zeros_like(targets[:, :1]), targets, excluded], dim=1))
    excluded_scores = scores.gather(1, ids)
    n_candidates = scores.shape[1] - first.sum(1)
    ranks = []
    for j in range(targets.shape[1]):
        t = target_scores[:, j : j + 1]
        # NaN compares False, so NaN items are never ahead of a target; a NaN target is behind (or
        # tied with) every candidate.
        ahead = count_true(scores >= t) - ((excluded_scores >= t) & first).sum(1)
        ranks.append(torch.where(t[:, 0].isnan(), n_candidates, ahead))
    return 1 + torch.stack(ranks, dim=1)


def rank_among(scores: torch.Tensor, targets: torch.Tensor, candidates: torch.Tensor) -> torch.Tensor:
    """Rank of each target among the candidate item ids [B, c] only (sampled metrics): 1 + the
    number of distinct candidates, other than padding and the targets, scoring >= the target.
    NaN scores count as the worst possible score."""
    target_scores = scores.gather(1, targets)[:, :, None]  # [B, k, 1]
    ids, first = _distinct(candidates)
    competing = first & (ids > 0) & ~(ids[:, None, :] == targets[:, :, None]).any(1)
    candidate_scores = scores.gather(1, ids)[:, None, :]  # [B, 1, c]
    ahead = ((candidate_scores >= target_scores) | target_scores.isnan()) & competing[:, None, :]
    return 1 + ahead.sum(2)


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


def list_metrics(lists: np.ndarray, targets: np.ndarray, ks: tuple[int, ...] = DEFAULT_KS,
                 prefix: str = "") -> dict[str, np.ndarray]:
    """Per-user Recall@K and NDCG@K of ranked lists [U, n] (0 = no item) against target sets
    [U, k] (0-padded). Recall@K = hits in the top K / number of distinct targets; NDCG@K divides
    the DCG of the hits by the DCG of an ideal list (all min(K, #targets) targets first)."""
    lists, targets = np.asarray(lists), np.asarray(targets)
    hits = ((lists[:, :, None] == targets[:, None, :]) & (targets[:, None, :] > 0)).any(2)  # [U, n]
    ordered = np.sort(targets, axis=1)
    n_targets = ((ordered > 0) & (np.diff(ordered, axis=1, prepend=0) != 0)).sum(1)  # distinct ids
    discount = 1.0 / np.log2(np.arange(lists.shape[1]) + 2.0)
    ideal = np.concatenate([[0.0], np.cumsum(discount)])  # ideal[m] = DCG of m hits in the first m slots
    out: dict[str, np.ndarray] = {}
    for k in ks:
        top = hits[:, :k]
        out[f"{prefix}recall@{k}"] = top.sum(1) / np.maximum(n_targets, 1)
        out[f"{prefix}ndcg@{k}"] = (top * discount[: top.shape[1]]).sum(1) / np.maximum(ideal[np.minimum(k, n_targets)], 1e-12)
    return out


def sampled_excluded(n_columns: int, candidates: torch.Tensor) -> torch.Tensor:
    """Bool [B, n_columns]: True everywhere except the given candidate item ids [B, c]."""
    excluded = torch.ones(len(candidates), n_columns, dtype=torch.bool, device=candidates.device)
    excluded.scatter_(1, candidates, False)
    excluded[:, 0] = True
    return excluded


@dataclass
class EvalResult:
    users: np.ndarray  # internal user ids, [U]
    ranks: np.ndarray | None  # [U, k] rank of each target (rank protocols); None for list protocols
    per_user: dict[str, np.ndarray]  # metric name -> [U]
    aggregate: dict[str, float] = field(default_factory=dict)  # means, plus coverage@K
    seconds: float = 0.0


SAMPLED_PREFIX = "sampled_"  # every metric computed against sampled candidates carries it
LIST_PROTOCOLS = ("horizon",)  # target sets judged on the model's recommend() list


@torch.no_grad()
def evaluate(
    model: Recommender,
    data: SplitData,
    eval_set: EvalSet,
    ks: tuple[int, ...] = DEFAULT_KS,
    batch_size: int = 256,
    mask_history: bool = True,
    negatives: np.ndarray | None = None,
    beyond_accuracy: bool = True,
) -> EvalResult:
    """Per-user metrics of ``model`` on ``eval_set``, always against all items (full ranking).

    Rank protocols (leave-one-out) rank each target by ``score``: HR/NDCG/MRR@K. List protocols
    (horizon) judge the ordered list from ``model.recommend`` against the target set: Recall/NDCG@K.
    ``negatives`` [n_users, n] (sampled candidates, indexed by internal user id) adds the same
    metrics computed among the targets and those negatives only, named ``sampled_<metric>``.
    ``beyond_accuracy`` adds coverage@K and arp@K (popularity bias) from each user's top-K list;
    off, rank protocols build no lists (validation needs only the accuracy metric).
    """
    import time

    start = time.perf_counter()
    device = model.device
    n_columns = data.n_items + 1
    max_k = max(ks)
    by_list = data.protocol in LIST_PROTOCOLS
    ranks, sampled_ranks, top_items, sampled_tops = [], [], [], []
    # Batches of users with similar history lengths: less padding for the model to encode.
    order = np.argsort(eval_set.histories.lengths, kind="stable")
    back = torch.from_numpy(np.argsort(order))  # batch order -> eval_set order
    for lo in progress(range(0, len(eval_set), batch_size), -(-len(eval_set) // batch_size), "evaluate"):
        rows = order[lo : lo + batch_size]
        history = eval_set.histories.padded(rows).to(device)
        targets = torch.from_numpy(eval_set.targets[rows]).to(device)
        users = torch.from_numpy(eval_set.users[rows]).to(device)
        times = eval_set.histories.padded(rows, of_times=True).to(device)
        batch = Batch(users=users, history=history, times=times)
        sampled = None if negatives is None else torch.from_numpy(negatives[eval_set.users[rows]]).to(device)
        if by_list:
            listable = excluded_mask(n_columns, history, targets[:, :0], mask_history)  # padding (+ history)
            top_items.append(_checked_list(model, model.recommend(batch, max_k, listable), len(rows), max_k))
            if sampled is not None:
                only = sampled_excluded(n_columns, torch.cat([targets, sampled], 1)) | listable
                sampled_tops.append(_checked_list(model, model.recommend(batch, max_k, only), len(rows), max_k))
            continue
        scores = model.score(batch)
        if scores.shape != (len(rows), n_columns):
            raise RuntimeError(f"{model.name}.score returned {tuple(scores.shape)}, expected {(len(rows), n_columns)}")
        excluded = history if mask_history else history[:, :0]
        rank = rank_targets(scores, targets, excluded)
        # A target the user had already interacted with is masked with the history: a miss, as horizon
        # lists, which exclude the whole history, make it; ranked below every item and beyond every cut-off.
        repeat = (history[:, :, None] == targets[:, None, :]).any(1) if mask_history else None
        if repeat is not None:
            rank = rank.masked_fill(repeat, max(n_columns, max_k + 1))
        ranks.append(rank.cpu())
        if sampled is not None:
            sampled_rank = rank_among(scores, targets, sampled)
            if repeat is not None:  # the same miss among the sampled candidates (below all of them)
                sampled_rank = sampled_rank.masked_fill(repeat, max(sampled.shape[1] + 2, max_k + 1))
            sampled_ranks.append(sampled_rank.cpu())
        # Top-K lists for coverage and popularity bias: the targets compete here like any item.
        if beyond_accuracy:
            top_items.append(top_n_excluding(scores, max_k, excluded).cpu())
    tops = torch.cat(top_items)[back] if top_items else None
    if by_list:
        rank_arr = None
        per_user = list_metrics(tops.numpy(), eval_set.targets, ks)
        if sampled_tops:
            per_user.update(list_metrics(torch.cat(sampled_tops)[back].numpy(), eval_set.targets, ks, SAMPLED_PREFIX))
    else:
        rank_arr = torch.cat(ranks)[back].numpy()
        per_user = metrics_from_ranks(rank_arr[:, 0], ks)
        if sampled_ranks:
            sampled_metrics = metrics_from_ranks(torch.cat(sampled_ranks)[back].numpy()[:, 0], ks)
            per_user.update({SAMPLED_PREFIX + name: v for name, v in sampled_metrics.items()})
    aggregate = {name: float(v.mean()) for name, v in per_user.items()}
    if beyond_accuracy:
        pops = torch.from_numpy(data.item_popularity()).double()[tops]  # [U, max K] float64, tops are on the CPU
        for k in ks:
            listed = tops[:, :k] > 0
            per_user[f"arp@{k}"] = ((pops[:, :k] * listed).sum(1) / listed.sum(1).clamp(min=1)).numpy()
            aggregate[f"arp@{k}"] = float(per_user[f"arp@{k}"].mean())
            aggregate[f"coverage@{k}"] = float(np.setdiff1d(tops[:, :k].unique().numpy(), [0]).size / data.n_items)
    return EvalResult(eval_set.users, rank_arr, per_user, aggregate, time.perf_counter() - start)


def validation_metric(model: Recommender, data: SplitData, cfg: TrainerConfig) -> float:
    """``cfg.valid_metric`` on the validation set, as early stopping reads it: the run's history
    masking, only the metric's cutoff, no top-K lists."""
    cutoff = int(cfg.valid_metric.rpartition("@")[2])  # e.g. ndcg@10 -> 10
    return evaluate(model, data, data.valid, ks=(cutoff,), batch_size=cfg.eval_batch_size,
                    mask_history=cfg.mask_history, beyond_accuracy=False).aggregate[cfg.valid_metric]


def _checked_list(model: Recommender, top: torch.Tensor, n_rows: int, n: int) -> torch.Tensor:
    if top.shape != (n_rows, n):
        raise RuntimeError(f"{model.name}.recommend returned {tuple(top.shape)}, expected {(n_rows, n)}")
    return top.cpu()
