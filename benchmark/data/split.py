"""Sequences in CSR form and the protocol splits built from them.

A ``Sequences`` holds many variable-length sequences as one flat array plus offsets, so that
batches are cut with numpy indexing instead of per-user Python objects.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch

from benchmark.errors import DataError


@dataclass
class Sequences:
    items: np.ndarray  # int64 [total], concatenated sequences, oldest first
    offsets: np.ndarray  # int64 [n + 1]; sequence s is items[offsets[s]:offsets[s + 1]]
    times: np.ndarray  # int64 [total], timestamps aligned with items

    def __len__(self) -> int:
        return len(self.offsets) - 1

    @property
    def lengths(self) -> np.ndarray:
        return np.diff(self.offsets)

    def take(self, rows: np.ndarray) -> "Sequences":
        """The sub-collection of the given sequence indices, in that order."""
        rows = np.asarray(rows, dtype=np.int64)
        starts, lengths = self.offsets[rows], self.lengths[rows]
        idx = _ranges(starts, lengths)
        offsets = np.concatenate([[0], np.cumsum(lengths)]).astype(np.int64)
        return Sequences(self.items[idx], offsets, self.times[idx])

    def drop_last(self, k: int) -> "Sequences":
        """Every sequence without its last ``k`` elements."""
        lengths = self.lengths - k
        if (lengths < 0).any():
            raise DataError(f"a sequence is shorter than {k}")
        idx = _ranges(self.offsets[:-1], lengths)
        offsets = np.concatenate([[0], np.cumsum(lengths)]).astype(np.int64)
        return Sequences(self.items[idx], offsets, self.times[idx])

    def last(self, k: int) -> tuple[np.ndarray, np.ndarray]:
        """The last ``k`` items and timestamps of every sequence, [n, k], oldest first."""
        idx = self.offsets[1:, None] - k + np.arange(k)
        return self.items[idx], self.times[idx]

    def padded(self, rows: np.ndarray | None = None, max_len: int | None = None, of_times: bool = False) -> torch.Tensor:
        """Left-padded LongTensor [len(rows), L] of the last ``max_len`` items of each sequence
        (L = the longest selected sequence when ``max_len`` is None); 0 is padding. ``of_times``:
        their timestamps instead, in the same places."""
        rows = np.arange(len(self)) if rows is None else np.asarray(rows, dtype=np.int64)
        ends, lengths = self.offsets[rows + 1], self.lengths[rows]
        width = int(lengths.max(initial=1)) if max_len is None else max_len
        width = max(width, 1)
        idx = ends[:, None] - width + np.arange(width)  # right-aligned window ending at each end
        valid = np.arange(width) >= (width - np.minimum(lengths, width))[:, None]
        out = np.where(valid, (self.times if of_times else self.items)[np.where(valid, idx, 0)], 0)
        return torch.from_numpy(out.astype(np.int64))


def _ranges(starts: np.ndarray, lengths: np.ndarray) -> np.ndarray:
    """Concatenation of arange(s, s + n) for every (s, n), without a Python loop."""
    lengths = np.asarray(lengths, dtype=np.int64)
    total = int(lengths.sum())
    if total == 0:
        return np.zeros(0, dtype=np.int64)
    shifts = np.repeat(np.asarray(starts, dtype=np.int64) - np.concatenate([[0], np.cumsum(lengths)[:-1]]), lengths)
    return np.arange(total, dtype=np.int64) + shifts


@dataclass
class EvalSet:
    """Users to evaluate, what the model may see (history) and what it must rank (targets)."""

    users: np.ndarray  # int64 [U], internal user ids
    histories: Sequences  # [U] the inputs the model sees
    targets: np.ndarray  # int64 [U, k] target items, 0-padded when a user has fewer than k
    target_times: np.ndarray  # int64 [U, k]

    def __len__(self) -> int:
        return len(self.users)


@dataclass
class SplitData:
    """Everything a model may train on and every evaluation set, with the id maps."""

    train: Sequences  # one training sequence per user (index = internal user id)
    valid: EvalSet
    test: EvalSet
    user_ids: np.ndarray  # original user id (str) per internal id
    item_ids: np.ndarray  # original item id (str) per internal id; [0] is padding
    protocol: str

    @property
    def n_users(self) -> int:
        return len(self.user_ids)

    @property
    def n_items(self) -> int:
        """Number of real items; score matrices have n_items + 1 columns (column 0 = padding)."""
        return len(self.item_ids) - 1

    def n_pairs(self) -> int:
        """Distinct (user, item) pairs of the preprocessed sequences (each test history plus its targets
        is the user's whole sequence): what density counts, so that repeats cannot push it above 1."""
        test = self.test
        users = np.concatenate([np.repeat(test.users, test.histories.lengths), np.repeat(test.users, test.targets.shape[1])])
        items = np.concatenate([test.histories.items, test.targets.ravel()])
        real = items > 0
        return int(np.unique(users[real] * (self.n_items + 1) + items[real]).size)

    def item_popularity(self) -> np.ndarray:
        """Training interaction count per item id, [n_items + 1]."""
        return np.bincount(self.train.items, minlength=self.n_items + 1)


def leave_one_out(sequences: Sequences, user_ids: np.ndarray, item_ids: np.ndarray) -> SplitData:
    """Last item = test target, second-last = validation target, the rest = training."""
    return _hold_out_last(sequences, user_ids, item_ids, k=1, protocol="loo", what="leave-one-out")


def horizon(sequences: Sequences, user_ids: np.ndarray, item_ids: np.ndarray, k: int = 5) -> SplitData:
    """Last ``k`` items = the test target set, the ``k`` before them = the validation target set,
    the rest = training. Validation histories are the training sequences; test histories also
    contain the validation targets, as in leave-one-out (which is this protocol with k = 1)."""
    if isinstance(k, bool) or not isinstance(k, int) or k < 1:
        raise DataError(f"protocol.k={k!r} must be a positive integer")
    return _hold_out_last(sequences, user_ids, item_ids, k=k, protocol="horizon", what=f"horizon with k={k}")


def _hold_out_last(sequences: Sequences, user_ids: np.ndarray, item_ids: np.ndarray, k: int, protocol: str,
                   what: str) -> SplitData:
    need = 2 * k + 1  # k test + k validation targets + at least one training item
    short = np.flatnonzero(sequences.lengths < need)
    if len(short):
        raise DataError(
            f"{what} needs >= {need} interactions per user; user {str(user_ids[short[0]])!r} has "
            f"{sequences.lengths[short[0]]} (raise dataset.min_seq_len to {need})"
        )
    users = np.arange(len(sequences), dtype=np.int64)
    last_items, last_times = sequences.last(2 * k)
    train = sequences.drop_last(2 * k)
    valid = EvalSet(users, train, last_items[:, :k].copy(), last_times[:, :k].copy())
    test = EvalSet(users, sequences.drop_last(k), last_items[:, k:].copy(), last_times[:, k:].copy())
    return SplitData(train, valid, test, user_ids, item_ids, protocol=protocol)
