"""The one interface every recommender satisfies, neural or not (scikit-learn style):
hyper-parameters in ``__init__``, state created in ``fit``, and ``score`` for ranking."""

from __future__ import annotations

from typing import TYPE_CHECKING

import math
from abc import ABC, abstractmethod
from dataclasses import dataclass

import torch

from benchmark.data.split import SplitData
from benchmark.config import TrainerConfig

if TYPE_CHECKING:
    from benchmark.training import EpochLog


@dataclass
class Batch:
    users: torch.Tensor  # int64 [B] internal user ids
    history: torch.Tensor  # int64 [B, L] each user's full history, left-padded with 0, oldest first


class Recommender(ABC):
    """``fit`` learns from ``data.train`` (``data.valid`` only for early stopping / model selection);
    ``score`` returns a float tensor [B, n_items + 1] where column i scores item i (column 0 is
    padding and ignored). Higher is better. The evaluator masks and ranks; models never do."""

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

    def n_params(self) -> int:
        """Number of learned parameters (for efficiency tables)."""
        return 0

    @property
    def device(self) -> torch.device:
        return torch.device("cpu")


def top_n(scores: torch.Tensor, n: int, excluded: torch.Tensor) -> torch.Tensor:
    """Top-``n`` item ids per row of ``scores`` [B, N], best first, never an excluded item.

    Ties are broken deterministically by the lower item id (``torch.topk`` leaves tie order
    unspecified). NaN scores count as the worst. When a row has fewer than ``n`` candidates the
    list is filled with 0 (padding), which never matches a target.
    Cost is O(B * N) plus a sort of the n winners: no full sort of every row.
    """
    if n > scores.shape[1]:
        return torch.nn.functional.pad(top_n(scores, scores.shape[1], excluded), (0, n - scores.shape[1]))
    scores = torch.nan_to_num(scores.float(), nan=-math.inf).masked_fill(excluded, -math.inf)
    threshold = scores.topk(n, dim=1).values[:, -1:]  # the n-th best score of each row
    above = scores > threshold
    # Of the items tied at the threshold, take the lowest ids that fill the list to n.
    tied = scores == threshold
    need = n - above.sum(1, keepdim=True)
    chosen = above | (tied & (tied.cumsum(1) <= need))
    ids = chosen.nonzero()[:, 1].view(len(scores), n)  # row-major: ascending item id per row
    order = scores.gather(1, ids).argsort(dim=1, descending=True, stable=True)
    ids = ids.gather(1, order)
    return ids.masked_fill(excluded.gather(1, ids), 0)
