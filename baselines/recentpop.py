"""Recent popularity: every user gets the items most often interacted with in the last ``window``
training interactions (``unit=interactions``, by timestamp over all users) or the last ``window`` days
before the newest training interaction (``unit=days``; unix-second timestamps). Items tied within the
window are ordered by their popularity over the whole training data. Non-sequential: a user's history
is not read at all.
"""

from __future__ import annotations

import numpy as np
import torch

from baselines.interactions import popularity_tie_break
from benchmark.config import TrainerConfig
from benchmark.data.split import SplitData
from benchmark.errors import ConfigError
from benchmark.models.base import Batch, Recommender
from benchmark.training import EpochLog

UNITS = ("interactions", "days")
DAY = 86_400


class RecentPop(Recommender):
    trains = False  # counting, no training loop: trainer.* is not part of its identity
    reads_order = False

    def __init__(self, name: str = "recentpop", window: int = 10_000, unit: str = "interactions") -> None:
        super().__init__(name)
        if window < 1:
            raise ConfigError(f"model.window={window} must be >= 1")
        if unit not in UNITS:
            raise ConfigError(f"model.unit={unit!r} is unknown; choose one of {', '.join(UNITS)}")
        self.window, self.unit = window, unit
        self.popularity: torch.Tensor | None = None

    def fit(self, data: SplitData, trainer: TrainerConfig | None = None) -> list[EpochLog]:
        if data.times_are_positions:  # "recent" would be the tails of the longest histories, not a time window
            raise ConfigError("model=recentpop counts the most recent interactions, and this dataset has no time (an "
                              "order-only format: timestamps are positions within each user); use model=pop")
        items, times = data.train.items, data.train.times
        if self.unit == "interactions":
            recent = items[np.argsort(times, kind="stable")[-self.window:]]  # equal times: the data's order
        else:
            recent = items[times > times.max(initial=0) - self.window * DAY]
        counts = np.bincount(recent, minlength=data.n_items + 1).astype(np.float64)
        self.popularity = torch.from_numpy(counts + popularity_tie_break(data.item_popularity()))
        return []

    def score(self, batch: Batch) -> torch.Tensor:
        assert self.popularity is not None, "call fit() first"
        return self.popularity.expand(len(batch.users), -1)
