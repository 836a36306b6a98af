"""RP3β (Paudel et al. 2017; as tuned by Dacrema et al. 2019): a three-step random walk user -> item ->
user -> item on the bipartite interaction graph, with each transition probability raised to ``alpha``
and the walk's arrival at item j divided by popularity(j)^``beta`` (the popularity penalty):

    W = P_iu^alpha P_ui^alpha diag(pop^-beta),   score(u) = P_ui(u)^alpha W

P_ui = 1/deg(u) on u's items, P_iu = 1/deg(i) on i's users. Each item keeps its ``k`` largest walk
weights (null: all). Non-sequential: a user's history is a set.
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


def row_normalised(x: sp.csr_matrix, alpha: float) -> sp.csr_matrix:
    """Each row divided by its sum (transition probabilities), element-wise to the power ``alpha``."""
    sums = np.asarray(x.sum(1)).ravel()
    p = sp.diags(1.0 / np.maximum(sums, 1e-12)) @ x.astype(np.float64)
    p = sp.csr_matrix(p)
    p.data **= alpha
    return p


class RP3Beta(Recommender):
    trains = False  # closed form: trainer.* is not part of its identity
    reads_order = False

    def __init__(self, name: str = "rp3beta", alpha: float = 1.0, beta: float = 0.5, k: int | None = 200) -> None:
        super().__init__(name)
        if not (math.isfinite(alpha) and alpha > 0 and math.isfinite(beta) and beta >= 0):
            raise ConfigError(f"rp3beta needs model.alpha > 0 and model.beta >= 0 (got alpha={alpha}, beta={beta})")
        if k is not None and k < 1:
            raise ConfigError(f"model.k={k} must be >= 1 (or null to keep every walk weight)")
        self.alpha, self.beta, self.k = alpha, beta, k
        self.weights: sp.csr_matrix | None = None

    def fit(self, data: SplitData, trainer: TrainerConfig | None = None) -> list[EpochLog]:
        x = interaction_matrix(data.train, data.n_items + 1)
        popularity = np.asarray(x.sum(0)).ravel()
        user_to_item = row_normalised(x, self.alpha)
        item_to_user = row_normalised(sp.csr_matrix(x.T), self.alpha)
        penalty = np.where(popularity > 0, np.maximum(popularity, 1.0) ** -self.beta, 0.0)

        def block_rows(lo: int, hi: int) -> np.ndarray:
            return (item_to_user[lo:hi] @ user_to_item).toarray() * penalty[None, :]

        self.weights = top_k_rows(block_rows, x.shape[1], self.k or x.shape[1])
        return []

    @torch.no_grad()
    def score(self, batch: Batch) -> torch.Tensor:
        assert self.weights is not None, "call fit() first"
        first_step = row_normalised(history_matrix(batch.history, self.weights.shape[0]), self.alpha)
        return torch.from_numpy((first_step @ self.weights).toarray())

    def n_params(self) -> int:
        return 0 if self.weights is None else int(self.weights.nnz)
