"""MostPop: every user gets the items ranked by training interaction count."""

from __future__ import annotations

from typing import TYPE_CHECKING

import torch

from benchmark.data.split import SplitData
from benchmark.models.base import Batch, Recommender
from benchmark.config import TrainerConfig

if TYPE_CHECKING:
    from benchmark.training import EpochLog


class MostPop(Recommender):
    trains = False  # no training loop: trainer.* is not part of its identity
    reads_order = False

    def __init__(self, name: str = "pop") -> None:
        super().__init__(name)
        self.popularity: torch.Tensor | None = None

    def fit(self, data: SplitData, trainer: TrainerConfig | None = None) -> list[EpochLog]:
        self.popularity = torch.from_numpy(data.item_popularity()).float()
        return []

    def score(self, batch: Batch) -> torch.Tensor:
        assert self.popularity is not None, "call fit() first"
        return self.popularity.expand(len(batch.users), -1)
