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


# Below the smallest difference of the scores it is added to (rule weights, neighbour sums, counts):
# it only orders the items those scores tie on, most popular first, instead of leaving them tied at the
# worst rank (ties count against the target).
TIE_BREAK = 1e-7


def popularity_tie_break(popularity: np.ndarray) -> np.ndarray:
    """float64 [n_columns]: TIE_BREAK x popularity scaled into [0, 1)."""
    return TIE_BREAK * popularity.astype(np.float64) / (float(popularity.max(initial=0)) + 1.0)


def sequence_of_each_item(sequences: Sequences) -> np.ndarray:
    """int64 [total]: the index of the sequence each element of ``sequences.items`` belongs to."""
    return np.repeat(np.arange(len(sequences)), sequences.lengths)


def top_k_rows(block_rows, n: int, k: int, block_cells: int = 1 << 23) -> sp.csr_matrix:
    """Sparse [n, n] keeping the ``k`` largest positive values of each row of a dense item x item
    matrix that ``block_rows(lo, hi)`` computes a block of rows at a time ([hi - lo, n], about
    ``block_cells`` cells each). Ties: the lower column id (deterministic)."""
    block = max(1, block_cells // n)
    k = min(k, n)
    rows, cols, vals = [], [], []
    for lo in range(0, n, block):
        hi = min(lo + block, n)
        dense = block_rows(lo, hi)
        top = np.argsort(-dense, axis=1, kind="stable")[:, :k]
        top_values = np.take_along_axis(dense, top, 1)
        keep = top_values > 0
        rows.append(np.repeat(np.arange(lo, hi), k)[keep.ravel()])
        cols.append(top[keep])
        vals.append(top_values[keep])
    return sp.csr_matrix((np.concatenate(vals).astype(np.float32), (np.concatenate(rows), np.concatenate(cols))),
                         shape=(n, n))
