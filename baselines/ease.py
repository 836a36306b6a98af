"""EASE (Steck, 2019): a linear item-item model with a closed-form solution.

B = argmin ||X - X B||^2 + l2 ||B||^2 subject to diag(B) = 0 is
    P = (X^T X + l2 I)^-1,  B = I - P diag(1 / diag(P)),  diag(B) = 0,
and a user with history row x scores every item by x B.

B is a dense item x item matrix: fine up to ~20k items (20k^2 float64 = 3.2 GB while inverting),
beyond that ``max_items`` stops the run with a clear error instead of exhausting memory.
"""

from __future__ import annotations

import math

import numpy as np
import scipy.sparse as sp
import torch

from baselines.interactions import history_matrix, interaction_matrix
from benchmark.config import TrainerConfig
from benchmark.data.split import SplitData
from benchmark.errors import ConfigError
from benchmark.models.base import Batch, Recommender
from benchmark.training import EpochLog


def ease_weights(x: sp.spmatrix, l2: float) -> np.ndarray:
    """The EASE item-item matrix for a sparse user x item matrix ``x`` (float64, dense [I, I])."""
    gram = (x.T @ x).toarray().astype(np.float64)
    gram[np.diag_indices_from(gram)] += l2
    p = np.linalg.inv(gram)
    b = -p / np.diag(p)  # column j divided by P_jj; the diagonal becomes -1 ...
    b[np.diag_indices_from(b)] = 0.0  # ... and is constrained to 0 (I - P diag(1/diag P) with diag zeroed)
    return b


class EASE(Recommender):
    trains = False  # no training loop: trainer.* is not part of its identity
    reads_order = False

    def __init__(self, name: str = "ease", l2: float = 100.0, max_items: int = 20_000) -> None:
        super().__init__(name)
        if not (math.isfinite(l2) and l2 > 0):
            raise ConfigError(f"model.l2={l2!r} must be a finite number > 0 (it keeps X^T X + l2 I invertible)")
        self.l2, self.max_items = l2, max_items
        self.weights: np.ndarray | None = None  # [n_items + 1, n_items + 1], row/column 0 = padding

    def fit(self, data: SplitData, trainer: TrainerConfig | None = None) -> list[EpochLog]:
        if data.n_items > self.max_items:
            gib = 8 * data.n_items**2 / 2**30
            raise ConfigError(
                f"ease needs a dense {data.n_items} x {data.n_items} item matrix (~{gib:.1f} GiB per copy), more "
                f"than model.max_items={self.max_items} allows; raise model.max_items if memory permits, or use "
                "model=itemknn or model=bprmf"
            )
        x = interaction_matrix(data.train, data.n_items + 1)[:, 1:]  # without the padding column
        weights = np.zeros((data.n_items + 1, data.n_items + 1), dtype=np.float32)
        weights[1:, 1:] = ease_weights(x, self.l2)
        self.weights = weights
        return []

    @torch.no_grad()
    def score(self, batch: Batch) -> torch.Tensor:
        assert self.weights is not None, "call fit() first"
        # Sparse history times dense B: cost grows with history length, not with n_items^2 per user.
        return torch.from_numpy(history_matrix(batch.history, len(self.weights)) @ self.weights)

    def n_params(self) -> int:
        return 0 if self.weights is None else int(self.weights[1:, 1:].size)
