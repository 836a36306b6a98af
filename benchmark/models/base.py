"""The one interface every recommender satisfies, neural or not (scikit-learn style):
hyper-parameters in ``__init__``, state created in ``fit``, and ``score`` for ranking."""

from __future__ import annotations

from typing import TYPE_CHECKING

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

    def recommend(self, batch: Batch, n: int, excluded: torch.Tensor) -> torch.Tensor:
        """Ordered top-``n`` item ids [B, n], best first, never an item marked in ``excluded``
        (bool [B, n_items + 1], True = may not be listed). Score-based models take their top-n;
        generative models override this to emit their own ordered list."""
        scores = self.score(batch).float().masked_fill(excluded, float("-inf"))
        return scores.topk(n, dim=1).indices

    def n_params(self) -> int:
        """Number of learned parameters (for efficiency tables)."""
        return 0

    @property
    def device(self) -> torch.device:
        return torch.device("cpu")
