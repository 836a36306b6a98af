"""EASE (Steck, 2019): a linear item-item model with a closed-form solution.

B = argmin ||X - X B||^2 + l2 ||B||^2 subject to diag(B) = 0 is
    P = (X^T X + l2 I)^-1,  B = I - P diag(1 / diag(P)),  diag(B) = 0,
and a user with history row x scores every item by x B.

B is a dense item x item matrix. It is computed in place in one float64 matrix (Cholesky factor and
inverse overwrite the Gram matrix) and kept as float32, so a fit holds 1.5 matrices of 8 n^2 bytes
at its peak. ``max_items`` (null: sized from the memory available when the fit starts) stops a run
that would not fit with an error saying how much it needs, instead of exhausting memory.
"""

from __future__ import annotations

import math
import os

import numpy as np
import scipy.linalg
import scipy.sparse as sp
import torch

from baselines.interactions import history_matrix, interaction_matrix
from benchmark.config import TrainerConfig
from benchmark.data.split import SplitData
from benchmark.errors import ConfigError
from benchmark.models.base import Batch, Recommender
from benchmark.training import EpochLog

MATRICES = 1.5  # n x n float64 matrices held at the peak of a fit: the working matrix + the float32 weights
BLOCK = 2048  # columns of the Gram matrix computed, and rows of the inverse mirrored, at a time


def peak_bytes(n_items: int) -> int:
    return int(8 * n_items**2 * MATRICES)


def available_memory() -> int | None:
    """Bytes the system can give without swapping (Linux MemAvailable; elsewhere free pages), or None."""
    try:
        with open("/proc/meminfo") as f:
            for line in f:
                if line.startswith("MemAvailable:"):
                    return int(line.split()[1]) * 1024
    except OSError:
        pass
    try:
        return os.sysconf("SC_AVPHYS_PAGES") * os.sysconf("SC_PAGE_SIZE")
    except (ValueError, OSError, AttributeError):
        return None


def items_that_fit(memory: int) -> int:
    """The largest catalogue whose fit needs no more than ``memory`` bytes."""
    return int(math.sqrt(memory / (8 * MATRICES)))


def ease_weights(x: sp.spmatrix, l2: float) -> np.ndarray:
    """The EASE item-item matrix for a sparse user x item matrix ``x`` (float64, dense [I, I]),
    computed in one matrix: the Gram matrix is factored and inverted in place (it is symmetric
    positive definite: X^T X + l2 I with l2 > 0)."""
    # Fortran order: LAPACK then works on this very matrix (a C-ordered one would be copied first).
    # Filled a block of columns at a time: a sparse Gram matrix of a dense catalogue is larger than the dense one.
    n = x.shape[1]
    p = np.empty((n, n), dtype=np.float64, order="F")
    xt, columns = x.T.tocsr(), x.tocsc()
    for start in range(0, n, BLOCK):
        stop = min(start + BLOCK, n)
        p[:, start:stop] = (xt @ columns[:, start:stop]).toarray()
    p[np.diag_indices_from(p)] += l2
    p, info = scipy.linalg.lapack.dpotrf(p, lower=0, overwrite_a=1, clean=0)
    if info == 0:
        p, info = scipy.linalg.lapack.dpotri(p, lower=0, overwrite_c=1)
    if info:
        raise ConfigError(f"model.l2={l2!r}: X^T X + l2 I is not positive definite (LAPACK info {info}); raise model.l2")
    for start in range(0, len(p), BLOCK):  # the inverse is in the upper triangle: mirror it, a block of rows at a time
        stop = min(start + BLOCK, len(p))
        p[start:stop, :start] = p[:start, start:stop].T
        block = p[start:stop, start:stop]
        block[...] = np.triu(block) + np.triu(block, 1).T
    diag = np.diag(p).copy()
    p /= -diag  # column j divided by -P_jj; the diagonal becomes -1 ...
    p[np.diag_indices_from(p)] = 0.0  # ... and is constrained to 0 (I - P diag(1/diag P) with diag zeroed)
    return p


class EASE(Recommender):
    trains = False  # no training loop: trainer.* is not part of its identity
    reads_order = False  # the history is a set: a non-sequential baseline

    def __init__(self, name: str = "ease", l2: float = 100.0, max_items: int | None = None) -> None:
        super().__init__(name)
        if not (math.isfinite(l2) and l2 > 0):
            raise ConfigError(f"model.l2={l2!r} must be a finite number > 0 (it keeps X^T X + l2 I invertible)")
        self.l2, self.max_items = l2, max_items
        self.weights: np.ndarray | None = None  # [n_items + 1, n_items + 1], row/column 0 = padding

    def check_fits(self, n_items: int) -> None:
        """Refuses a catalogue above model.max_items, or (max_items null) above what memory holds now."""
        need = peak_bytes(n_items) / 2**30
        if self.max_items is not None:
            if n_items > self.max_items:
                raise ConfigError(f"ease needs a dense {n_items} x {n_items} item matrix (~{need:.1f} GiB at its peak), more "
                                  f"than model.max_items={self.max_items} allows; raise model.max_items (or set it to null to "
                                  "size it from the available memory), or use model=itemknn or model=bprmf")
            return
        memory = available_memory()
        if memory is not None and n_items > items_that_fit(memory):
            raise ConfigError(f"ease needs ~{need:.1f} GiB for a dense {n_items} x {n_items} item matrix ({MATRICES:g} x 8 "
                              f"bytes x items^2 at its peak) and {memory / 2**30:.1f} GiB is available (fits up to "
                              f"{items_that_fit(memory)} items); free memory, set model.max_items={n_items} to try anyway, "
                              "or use model=itemknn or model=bprmf")

    def fit(self, data: SplitData, trainer: TrainerConfig | None = None) -> list[EpochLog]:
        self.check_fits(data.n_items)
        x = interaction_matrix(data.train, data.n_items + 1)[:, 1:]  # without the padding column
        b = ease_weights(x, self.l2)
        weights = np.zeros((data.n_items + 1, data.n_items + 1), dtype=np.float32)
        weights[1:, 1:] = b
        del b
        self.weights = weights
        return []

    @torch.no_grad()
    def score(self, batch: Batch) -> torch.Tensor:
        assert self.weights is not None, "call fit() first"
        # Sparse history times dense B: cost grows with history length, not with n_items^2 per user.
        return torch.from_numpy(history_matrix(batch.history, len(self.weights)) @ self.weights)

    def n_params(self) -> int:
        return 0 if self.weights is None else int(self.weights[1:, 1:].size)
