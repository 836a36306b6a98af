"""Session-based kNN with each user's history as one session: V-SKNN (Ludewig & Jannach 2018) and
STAN (Garg et al. 2019), whose three recency weights are switched on by their lambdas:

1. items of the current session s (position p = 1..l, l = the newest; an item's newest occurrence):
   w1 = p / l (V-SKNN, ``lambda_session=null``) or exp((p - l) / lambda_session) (STAN);
   sim(s, n) = sum over shared items of w1 / sqrt(|s| |n|) (|.|: distinct items);
2. neighbour sessions n (the other users' training sequences): sim is multiplied by
   exp(-|t(s) - t(n)| / lambda_time), t = the session's newest training timestamp (null: off);
   the ``k`` most similar sessions are the neighbours;
3. items of a neighbour: score(i) = sum over neighbours n holding i of sim(s, n) x
   exp(-|p_n(i) - p_n(c)| / lambda_position), c = the newest item of s that n holds (null: weight 1).

Items no neighbour holds are ordered by training popularity (a tie-break below the scores' resolution).
A user is never their own neighbour. Reads order through the weights 1 and 3.
"""

from __future__ import annotations

import logging

import numpy as np
import scipy.sparse as sp
import torch

from baselines.interactions import interaction_matrix, popularity_tie_break
from benchmark.config import TrainerConfig
from benchmark.data.split import Sequences, SplitData
from benchmark.errors import ConfigError
from benchmark.models.base import Batch, Recommender
from benchmark.training import EpochLog

log = logging.getLogger(__name__)


def newest_occurrences(history: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(row, item, recency) of each distinct item of each row of left-padded histories [B, L];
    recency 1 = the newest position (an item's newest occurrence counts)."""
    rows, cols = np.nonzero(history)
    items, recency = history[rows, cols], history.shape[1] - cols
    order = np.lexsort((recency, items, rows))  # by row, item, then the newest first
    keys = rows[order] * (int(history.max(initial=0)) + 1) + items[order]
    first = np.r_[True, keys[1:] != keys[:-1]]
    keep = order[first]
    return rows[keep], items[keep], recency[keep]


class SessionKNN(Recommender):
    trains = False  # nearest neighbours, no training loop: trainer.* is not part of its identity
    reads_order = True
    declared_family = "non-neural sequential"

    def __init__(self, name: str = "stan", k: int = 100, lambda_session: float | None = None,
                 lambda_time: float | None = None, lambda_position: float | None = None) -> None:
        super().__init__(name)
        if k < 1:
            raise ConfigError(f"model.k={k} must be >= 1")
        for key, value in (("lambda_session", lambda_session), ("lambda_time", lambda_time), ("lambda_position", lambda_position)):
            if value is not None and not value > 0:
                raise ConfigError(f"model.{key}={value} must be > 0 (or null to switch that weight off)")
        self.k, self.lambda_session, self.lambda_time, self.lambda_position = k, lambda_session, lambda_time, lambda_position
        self.train: Sequences | None = None  # the neighbour sessions, and from fit:
        self.sessions: sp.csr_matrix | None = None  # [U, n_items + 1] binary
        self.sizes = self.times = self.tie_break = np.zeros(0)  # per session: distinct items, newest time; per item
        self.repeats = False  # whether some session holds an item twice

    def fit(self, data: SplitData, trainer: TrainerConfig | None = None) -> list[EpochLog]:
        self.train = data.train
        self.sessions = interaction_matrix(data.train, data.n_items + 1)
        self.sizes = np.asarray(self.sessions.sum(1)).ravel()
        self.repeats = bool((self.sizes < data.train.lengths).any())
        self.times = data.train.times[data.train.offsets[1:] - 1]
        if self.lambda_time is not None and data.times_are_positions:
            log.warning("model.lambda_time=%g weighs neighbours by the gap between their newest timestamps, and this "
                        "dataset has no time (timestamps are positions): the gap is one of history lengths; "
                        "model.lambda_time=null switches the weight off", self.lambda_time)
        self.tie_break = popularity_tie_break(data.item_popularity())
        return []

    def session_weights(self, recency: np.ndarray, length: np.ndarray) -> np.ndarray:
        position = length - recency + 1  # 1 = oldest, length = newest
        if self.lambda_session is None:
            return position / length
        return np.exp((position - length) / self.lambda_session)

    @torch.no_grad()
    def score(self, batch: Batch) -> torch.Tensor:
        assert self.train is not None, "call fit() first"
        history, users = batch.history.cpu().numpy(), batch.users.cpu().numpy()
        n_rows, n_columns = len(history), self.sessions.shape[1]
        rows, items, recency = newest_occurrences(history)
        weights = self.session_weights(recency, (history > 0).sum(1)[rows])
        current = sp.csr_matrix((weights, (rows, items)), shape=(n_rows, n_columns))
        distinct = np.bincount(rows, minlength=n_rows)
        sim = (current @ self.sessions.T).toarray() / np.sqrt(np.maximum(distinct, 1)[:, None] * self.sizes[None, :])
        sim[np.arange(n_rows), users] = 0.0  # never one's own neighbour
        if self.lambda_time is not None:
            sim *= np.exp(-np.abs(self.times[users][:, None] - self.times[None, :]) / self.lambda_time)
        k = min(self.k, sim.shape[1])
        neighbours = np.argpartition(-sim, k - 1, axis=1)[:, :k]
        strength = np.take_along_axis(sim, neighbours, 1)
        real = strength > 0
        pair_row, pair_session, pair_sim = np.nonzero(real)[0], neighbours[real], strength[real]
        if self.lambda_position is None:
            chosen = sp.csr_matrix((pair_sim, (pair_row, pair_session)), shape=(n_rows, len(self.sizes)))
            scores = (chosen @ self.sessions).toarray()
        else:
            scores = self.position_weighted(pair_row, pair_session, pair_sim, (rows, items, recency), (n_rows, n_columns))
        return torch.from_numpy(scores + self.tie_break)

    def position_weighted(self, pair_row: np.ndarray, pair_session: np.ndarray, pair_sim: np.ndarray,
                          current: tuple[np.ndarray, np.ndarray, np.ndarray], shape: tuple[int, int]) -> np.ndarray:
        """Scores [B, n_columns] with weight 3, over every element of every (user, neighbour) pair's session:
        a few flat passes (lookups, one reduceat, one bincount), as the neighbours hold most of the work."""
        neighbour = self.train.take(pair_session)  # the pairs' sessions, contiguous, in pair order
        pair = np.repeat(np.arange(len(pair_session)), neighbour.lengths)
        starts = neighbour.offsets[:-1]
        position = np.arange(len(pair)) - np.repeat(starts, neighbour.lengths)
        # The recency in the user's session of each neighbour element's item (0: the user does not hold it).
        rows, items, recency = current
        recency_of = np.zeros(shape, dtype=np.int64)
        recency_of[rows, items] = recency
        shared_recency = recency_of[pair_row[pair], neighbour.items]
        # Per pair, c = the shared item newest for the user (then its latest position in the neighbour).
        longest = int(neighbour.lengths.max(initial=1))
        never = np.iinfo(np.int64).max
        code = np.where(shared_recency > 0, shared_recency * longest + (longest - 1 - position), never)
        anchor = longest - 1 - np.minimum.reduceat(code, starts) % longest
        weight = pair_sim[pair] * np.exp(-np.abs(position - anchor[pair]) / self.lambda_position)
        cell = pair_row[pair] * shape[1] + neighbour.items
        if self.repeats:  # an item held twice by a neighbour counts once, at its occurrence nearest the anchor
            key = pair * shape[1] + neighbour.items
            order = np.lexsort((-weight, key))
            first = order[np.r_[True, key[order][1:] != key[order][:-1]]]
            cell, weight = cell[first], weight[first]
        return np.bincount(cell, weights=weight, minlength=shape[0] * shape[1]).reshape(shape)
