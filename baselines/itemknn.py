"""ItemKNN (Sarwar et al. 2001; Deshpande & Karypis 2004): item-based collaborative filtering.

sim(i, j) = |U_i ∩ U_j| / (sqrt(|U_i|) sqrt(|U_j|) + shrink)   (cosine over binary user vectors;
shrinkage damps similarities supported by few users), sim(i, i) = 0. Each item keeps only its
``k`` most similar items (ties: lower item id). A user scores item j by the sum over the history
items i of sim(i, j). The history is read at scoring time, so test-time items count too.
"""

from __future__ import annotations

import math

import numpy as np
import scipy.sparse as sp
import torch

from baselines.interactions import history_matrix, interaction_matrix, top_k_rows
from benchmark.config import TrainerConfig
from benchmark.data.split import SplitData
from benchmark.errors import ConfigError
from benchmark.models.base import Batch, Recommender
from benchmark.training import EpochLog


def knn_similarities(x: sp.csr_matrix, k: int, shrink: float, block_cells: int = 1 << 23) -> sp.csr_matrix:
    """Sparse [I, I] top-k shrunk cosine similarities of the columns of user x item ``x``; row i
    holds item i's neighbours. Computed a block of items at a time (``block_cells`` dense cells)."""
    x = x.tocsc()
    norms = np.sqrt(np.asarray(x.sum(0)).ravel())

    def block_rows(lo: int, hi: int) -> np.ndarray:
        overlap = (x[:, lo:hi].T @ x).toarray()  # [b, I] co-occurrence counts
        sim = overlap / (norms[lo:hi, None] * norms[None, :] + shrink + 1e-12)
        sim[np.arange(hi - lo), np.arange(lo, hi)] = 0.0  # an item is not its own neighbour
        return sim

    return top_k_rows(block_rows, x.shape[1], min(k, x.shape[1] - 1), block_cells)


class ItemKNN(Recommender):
    trains = False  # no training loop: trainer.* is not part of its identity
    reads_order = False  # the history is a set: a non-sequential baseline

    def __init__(self, name: str = "itemknn", k: int = 20, shrink: float = 10.0) -> None:
        super().__init__(name)
        if k < 1 or not (math.isfinite(shrink) and shrink >= 0):
            raise ConfigError(f"itemknn needs model.k >= 1 and a finite model.shrink >= 0 (got k={k}, shrink={shrink})")
        self.k, self.shrink = k, shrink
        self.similarities: sp.csr_matrix | None = None

    def fit(self, data: SplitData, trainer: TrainerConfig | None = None) -> list[EpochLog]:
        x = interaction_matrix(data.train, data.n_items + 1)  # column 0 (padding) is empty: no neighbours
        self.similarities = knn_similarities(x, self.k, self.shrink)
        return []

    @torch.no_grad()
    def score(self, batch: Batch) -> torch.Tensor:
        assert self.similarities is not None, "call fit() first"
        scores = history_matrix(batch.history, self.similarities.shape[0]) @ self.similarities
        return torch.from_numpy(scores.toarray())

    def n_params(self) -> int:
        return 0 if self.similarities is None else int(self.similarities.nnz)
