"""The user x item matrices the non-sequential baselines are built from (order is discarded)."""

from __future__ import annotations

import numpy as np
import scipy.sparse as sp
import torch

from benchmark.data.split import Sequences


def interaction_matrix(sequences: Sequences, n_columns: int) -> sp.csr_matrix:
    """Binary CSR [n_sequences, n_columns]: 1 where the sequence contains the item (repeats count once)."""
    rows = np.repeat(np.arange(len(sequences)), sequences.lengths)
    x = sp.csr_matrix((np.ones(len(rows), dtype=np.float32), (rows, sequences.items)), shape=(len(sequences), n_columns))
    x.data[:] = 1.0  # duplicates were summed
    return x


def history_matrix(history: torch.Tensor, n_columns: int) -> sp.csr_matrix:
    """Binary CSR [B, n_columns] of left-padded histories [B, L]; padding (0) is dropped."""
    h = history.cpu().numpy()
    rows, cols = np.nonzero(h)
    x = sp.csr_matrix((np.ones(len(rows), dtype=np.float32), (rows, h[rows, cols])), shape=(len(h), n_columns))
    x.data[:] = 1.0
    return x
