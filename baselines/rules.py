"""Sequential rules (Ludewig & Jannach 2018) and, with steps=1, the first-order Markov chain.

Each time item j follows item i at a gap of g <= ``steps`` positions in a training sequence, the rule
i -> j gains the weight w(g): ``same`` 1 (with steps=1: the Markov chain's transition counts), ``linear``
1 - (g - 1) / steps, ``div`` 1 / g, ``quadratic`` 1 / g^2. A user scores item j by the rule from their
newest history item to j; items no rule reaches are ordered by training popularity (a tie-break below
any rule weight's resolution). Reads order: only the newest item and what followed it matter.
"""

from __future__ import annotations

import numpy as np
import scipy.sparse as sp
import torch

from baselines.interactions import popularity_tie_break, sequence_of_each_item
from benchmark.config import TrainerConfig
from benchmark.data.split import SplitData
from benchmark.errors import ConfigError
from benchmark.models.base import Batch, Recommender
from benchmark.training import EpochLog

WEIGHTINGS = {
    "same": lambda gap, steps: np.ones_like(gap, dtype=np.float64),
    "linear": lambda gap, steps: 1.0 - (gap - 1) / steps,
    "div": lambda gap, steps: 1.0 / gap,
    "quadratic": lambda gap, steps: 1.0 / gap**2,
}


def rule_weights(items: np.ndarray, sequence: np.ndarray, n_columns: int, steps: int, weighting: str) -> sp.csr_matrix:
    """Sparse [n_columns, n_columns]: row i, column j = the summed weight of j following i within
    ``steps`` positions in the same sequence (``sequence`` [total] names each element's sequence)."""
    rows, cols, vals = [], [], []
    for gap in range(1, steps + 1):  # one vectorised pass per gap, not per sequence
        same = sequence[gap:] == sequence[:-gap]
        rows.append(items[:-gap][same])
        cols.append(items[gap:][same])
        vals.append(np.full(int(same.sum()), WEIGHTINGS[weighting](np.float64(gap), steps)))
    return sp.csr_matrix((np.concatenate(vals), (np.concatenate(rows), np.concatenate(cols))), shape=(n_columns, n_columns))


class SequentialRules(Recommender):
    trains = False  # counts, no training loop: trainer.* is not part of its identity
    reads_order = True
    declared_family = "non-neural sequential"

    def __init__(self, name: str = "sr", steps: int = 10, weighting: str = "div") -> None:
        super().__init__(name)
        if steps < 1:
            raise ConfigError(f"model.steps={steps} must be >= 1")
        if weighting not in WEIGHTINGS:
            raise ConfigError(f"model.weighting={weighting!r} is unknown; choose one of {', '.join(WEIGHTINGS)}")
        self.steps, self.weighting = steps, weighting
        self.rules: sp.csr_matrix | None = None
        self.tie_break: np.ndarray | None = None

    def fit(self, data: SplitData, trainer: TrainerConfig | None = None) -> list[EpochLog]:
        train = data.train
        self.rules = rule_weights(train.items, sequence_of_each_item(train), data.n_items + 1, self.steps, self.weighting)
        self.tie_break = popularity_tie_break(data.item_popularity())
        return []

    @torch.no_grad()
    def score(self, batch: Batch) -> torch.Tensor:
        assert self.rules is not None, "call fit() first"
        newest = batch.history[:, -1].cpu().numpy()  # left-padded: the last column is the newest item (0: none)
        return torch.from_numpy(self.rules[newest].toarray() + self.tie_break)

    def n_params(self) -> int:
        return 0 if self.rules is None else int(self.rules.nnz)
