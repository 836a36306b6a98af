"""The one interface every recommender satisfies, neural or not (scikit-learn style):
hyper-parameters in ``__init__``, state created in ``fit``, and ``score`` for ranking."""

from __future__ import annotations

import math
from abc import ABC, abstractmethod
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import torch

from benchmark.data.split import SplitData
from benchmark.config import TrainerConfig

if TYPE_CHECKING:
    from benchmark.training import EpochLog


@dataclass
class Batch:
    users: torch.Tensor  # int64 [B] internal user ids
    history: torch.Tensor  # int64 [B, L] each user's full history, left-padded with 0, oldest first
    times: torch.Tensor | None = None  # int64 [B, L] the history's timestamps (for models that read them)


class Recommender(ABC):
    """``fit`` learns from ``data.train`` (``data.valid`` only for early stopping / model selection);
    ``score`` returns a float tensor [B, n_items + 1] where column i scores item i (column 0 is
    padding and ignored). Higher is better. The evaluator masks and ranks; models never do."""

    # False: fit learns nothing through the trainer (closed-form or counting models), so trainer.*
    # settings are not part of such a run's identity (a sweep over trainer.lr runs it once).
    trains: bool = True
    # Every model class declares it: True if it reads the order of a history (a sequence model), False
    # if it sees the history as a set (a non-sequential baseline, a candidate reference in reports).
    reads_order: bool
    # A fixed row in the families table ("non-neural sequential"); sequence models derive theirs in family().
    declared_family: str | None = None

    @classmethod
    def family(cls, config: dict) -> str | None:
        """The model's row in the families table for its ``model`` config section, e.g.
        'attention encoder-only'; None keeps it out of that table (the default)."""
        return cls.declared_family

    def __init__(self, name: str) -> None:
        self.name = name

    @abstractmethod
    def fit(self, data: SplitData, trainer: TrainerConfig | None = None) -> list[EpochLog]:
        """Trains on ``data``; returns one log entry per epoch (empty for closed-form models)."""

    @abstractmethod
    def score(self, batch: Batch) -> torch.Tensor:
        """Scores of every item for each user in the batch, [B, n_items + 1]."""

    @torch.no_grad()
    def recommend(self, batch: Batch, n: int, excluded: torch.Tensor) -> torch.Tensor:
        """The model's ordered top-``n`` list per user, LongTensor [B, n], best first.

        ``excluded`` [B, n_items + 1] bool marks items that must not be recommended (padding, the
        history when masked, everything outside a sampled candidate set). This default takes the
        top-n of ``score``; generative models (seq2seq) override it with their decoder."""
        return top_n(self.score(batch), n, excluded)

    def ignored_settings(self) -> dict[str, str]:
        """Constructor keys this configuration does not read -> why ("with model.encoder=..."). The runner warns
        when a run sets one explicitly (presets keep such keys so that swapping a part finds them)."""
        return {}

    def extra_metrics(self) -> dict[str, Any]:
        """Figures of the fitted model for metrics.json (e.g. semantic-ID codebook usage); none by default."""
        return {}

    def n_params(self) -> int:
        """Number of learned parameters (for efficiency tables)."""
        return 0

    def restore(self, attributes: dict[str, Any]) -> None:
        """Takes back the fitted attributes that ``benchmark.models.persist`` saved (trainer.save_model). A
        model holding torch modules overrides this to rebuild them from their state dicts."""
        from benchmark.errors import BenchmarkError
        from benchmark.models.persist import ModuleState

        modules = [k for k, v in attributes.items() if isinstance(v, ModuleState)]
        if modules:
            raise BenchmarkError(f"{type(self).__name__} cannot rebuild its module {modules[0]!r}; give it a restore()")
        vars(self).update(attributes)

    @property
    def device(self) -> torch.device:
        return torch.device("cpu")


def top_n(scores: torch.Tensor, n: int, excluded: torch.Tensor) -> torch.Tensor:
    """Top-``n`` item ids per row of ``scores`` [B, N], best first, never an excluded item.

    Ties are broken deterministically by the lower item id (``torch.topk`` leaves tie order
    unspecified). NaN scores count as the worst (below -inf). When a row has fewer than ``n`` candidates the
    list is filled with 0 (padding), which never matches a target.
    Cost is one masked copy and one ``top_k`` pass over the scores: no sort of the item axis.
    """
    if n > scores.shape[1]:
        return torch.nn.functional.pad(top_n(scores, scores.shape[1], excluded), (0, n - scores.shape[1]))
    scores = _comparable(scores)
    if n == scores.shape[1]:
        return _top_n_exact(scores, n, excluded)
    ids, exact = _top_n_fast(scores.masked_fill(excluded, -math.inf), n)
    if exact.any():
        ids[exact] = _top_n_exact(scores[exact], n, excluded[exact])
    return ids


def _comparable(scores: torch.Tensor) -> torch.Tensor:
    """Scores in a float dtype that keeps their order and ties: float32 and float64 as given (a
    cast to float32 would tie float64 scores closer than its precision), narrower floats widened
    to float32, integers to float64 (exact up to 2^53)."""
    if scores.dtype in (torch.float32, torch.float64):
        return scores
    return scores.float() if scores.is_floating_point() else scores.double()


def top_n_excluding(scores: torch.Tensor, n: int, excluded: torch.Tensor) -> torch.Tensor:
    """``top_n`` with the excluded items given as ids [B, E] (repeats allowed; padding 0 is always
    excluded) instead of a mask: no mask and no copy of the score matrix. The excluded entries of
    ``scores`` are set to -inf for the search and restored before it returns."""
    if n >= scores.shape[1] or scores.dtype != torch.float32 or not scores.is_contiguous():
        return top_n(scores, n, _mask_of(scores.shape[1], excluded))
    excluded = torch.cat([excluded.new_zeros(len(excluded), 1), excluded], dim=1)  # (excluded may have no columns)
    kept = scores.gather(1, excluded)
    scores.scatter_(1, excluded, -math.inf)
    try:
        ids, exact = _top_n_fast(scores, n)
    finally:
        scores.scatter_(1, excluded, kept)  # repeated ids write the same kept value
    if exact.any():
        ids[exact] = _top_n_exact(scores[exact], n, _mask_of(scores.shape[1], excluded[exact]))
    return ids


def _mask_of(n_columns: int, ids: torch.Tensor) -> torch.Tensor:
    mask = torch.zeros(len(ids), n_columns, dtype=torch.bool, device=ids.device)
    mask[:, 0] = True
    return mask.scatter_(1, ids, True)


def _top_n_fast(masked: torch.Tensor, n: int) -> tuple[torch.Tensor, torch.Tensor]:
    """Top-``n`` ids of float scores whose excluded items are -inf, best first and ties by the lower
    id, and a bool [B] of the rows this cannot settle (the cut falls inside a tie, or NaN or -inf
    reach the list): those need ``_top_n_exact``."""
    values, ids = top_k(masked, n + 1)
    cut = values[:, n - 1]
    exact = (cut == values[:, n]) | (cut == -math.inf) | values.isnan().any(1)
    values, ids = values[:, :n], ids[:, :n]
    # Best first, ties by the lower id: sort by id, then stably by score.
    ids, by_id = ids.sort(dim=1)
    ids = ids.gather(1, values.gather(1, by_id).argsort(dim=1, descending=True, stable=True))
    return ids, exact


TOP_K_BLOCK = 64  # columns per block in top_k's first pass


def top_k(scores: torch.Tensor, k: int) -> tuple[torch.Tensor, torch.Tensor]:
    """``scores.topk(k, dim=1)`` (values and ids; NaN counts as the largest, like topk) for [B, N].

    First the maximum of every block of 64 columns (a fast reduction), then topk over the columns
    of the k blocks with the largest maxima only: an item of the true top k lies in one of those
    blocks, or k blocks each hold an item at least as large. The values are exactly topk's; among
    equal values the ids may differ, as they may between topk calls.
    """
    batch, width = scores.shape
    n_blocks = width // TOP_K_BLOCK
    if n_blocks < 4 * k or scores.stride(1) != 1:
        return scores.topk(k, dim=1)
    edge = n_blocks * TOP_K_BLOCK
    view = scores[:, :edge].view(batch, n_blocks, TOP_K_BLOCK)
    blocks = view.amax(2).topk(k, dim=1).indices  # [B, k]
    # The candidates: the k blocks' columns (a gather of whole blocks), then the columns past the last block.
    chosen = view.gather(1, blocks[:, :, None].expand(-1, -1, TOP_K_BLOCK)).view(batch, k * TOP_K_BLOCK)
    values, at = torch.cat([chosen, scores[:, edge:]], dim=1).topk(k, dim=1)
    in_block = blocks.gather(1, (at // TOP_K_BLOCK).clamp(max=k - 1)) * TOP_K_BLOCK + at % TOP_K_BLOCK
    return values, torch.where(at < k * TOP_K_BLOCK, in_block, at - k * TOP_K_BLOCK + edge)


def _top_n_exact(scores: torch.Tensor, n: int, excluded: torch.Tensor) -> torch.Tensor:
    """top_n through one int64 key per item that orders by score, then by lower id: exact for
    ties, NaN and -inf, at a few times the cost of the float path."""
    if scores.dtype == torch.float64:
        return _top_n_exact_wide(scores, n, excluded)
    bits = (scores + 0.0).view(torch.int32)  # + 0.0: -0.0 becomes +0.0 (they tie)
    ordered = torch.where(bits < 0, bits ^ 0x7FFFFFFF, bits)  # integers in the order of the floats
    ordered = ordered.masked_fill(scores.isnan(), torch.iinfo(torch.int32).min).long()  # NaN: below -inf
    ids = torch.arange(scores.shape[1], device=scores.device)
    key = (ordered * 2**32 + (2**32 - 1 - ids)).masked_fill(excluded, torch.iinfo(torch.int64).min)
    top = key.topk(n, dim=1).indices
    return top.masked_fill(excluded.gather(1, top), 0)


def _top_n_exact_wide(scores: torch.Tensor, n: int, excluded: torch.Tensor) -> torch.Tensor:
    """``_top_n_exact`` for float64: the int64 key that orders the floats leaves no bits for the id,
    so the ties keep id order through a stable sort of the row instead of a packed key."""
    bits = (scores + 0.0).view(torch.int64)  # + 0.0: -0.0 becomes +0.0 (they tie)
    key = torch.where(bits < 0, bits ^ 0x7FFFFFFFFFFFFFFF, bits)  # integers in the order of the floats
    low = torch.iinfo(torch.int64).min
    key = key.masked_fill(scores.isnan(), low + 1).masked_fill(excluded, low)  # NaN below -inf, excluded below all
    top = key.sort(dim=1, descending=True, stable=True).indices[:, :n]  # stable: equal keys stay in id order
    return top.masked_fill(excluded.gather(1, top), 0)
