"""Sequences in CSR form and the protocol splits built from them.

A ``Sequences`` holds many variable-length sequences as one flat array plus offsets, so that
batches are cut with numpy indexing instead of per-user Python objects.
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from datetime import datetime, timezone
from typing import TYPE_CHECKING, Any

import numpy as np
import torch

from benchmark.errors import DataError

if TYPE_CHECKING:
    from benchmark.data.sessions import SessionInfo


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
    temporal: "TemporalInfo | None" = None  # the temporal protocol's cuts and unevaluated users
    session: "SessionInfo | None" = None  # the session protocol's counts, in the published tables' terms
    times_are_positions: bool = False  # an order-only format: timestamps are positions within each user, no time

    @property
    def n_users(self) -> int:
        return len(self.user_ids)

    @property
    def n_items(self) -> int:
        """Number of real items; score matrices have n_items + 1 columns (column 0 = padding)."""
        return len(self.item_ids) - 1

    def n_pairs(self) -> int:
        """Distinct (user, item) pairs of the preprocessed sequences (training, evaluation histories and
        targets): what density counts, so that repeats cannot push it above 1."""
        users, items = self.interactions()
        real = items > 0
        return int(np.unique(users[real] * (self.n_items + 1) + items[real]).size)

    def interactions(self) -> tuple[np.ndarray, np.ndarray]:
        """(user, item) of every interaction in the split: training, validation and test (with repeats;
        0-padded targets included as item 0)."""
        parts = [(np.arange(self.n_users), self.train)]
        users, items = [], []
        for es in (self.valid, self.test):
            parts.append((es.users, es.histories))
            users.append(np.repeat(es.users, es.targets.shape[1]))
            items.append(es.targets.ravel())
        for owners, seqs in parts:
            users.append(np.repeat(owners, seqs.lengths))
            items.append(seqs.items)
        return np.concatenate(users), np.concatenate(items)

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


def shuffled_within(sequences: Sequences, rng: np.random.Generator) -> Sequences:
    """Every sequence's items in a random order; the timestamps stay where they were (a model reading
    time finds no item's true time either). Vectorised: one sort by (sequence, random key)."""
    owner = np.repeat(np.arange(len(sequences)), sequences.lengths)
    order = np.lexsort((rng.random(len(sequences.items)), owner))
    return Sequences(sequences.items[order], sequences.offsets, sequences.times)


def shuffle_order(split: SplitData, seed: int) -> SplitData:
    """The order control (``dataset.shuffle_order=true``): each user's training items, and the histories the
    model reads at validation and test time, in a random order drawn from ``seed``. Targets and every
    history's item set are unchanged, so only order information is taken away, at training and test time
    alike (a model trained on shuffled sequences is never handed true order, e.g. a true most recent item)."""
    rng = np.random.default_rng(seed)
    train = shuffled_within(split.train, rng)
    evals = [EvalSet(es.users, shuffled_within(es.histories, rng), es.targets, es.target_times)
             for es in (split.valid, split.test)]
    return replace(split, train=train, valid=evals[0], test=evals[1])


# ---- the global temporal protocol ---------------------------------------------------------------

@dataclass(frozen=True)
class TemporalInfo:
    """What the temporal protocol cut, recorded with every run: the cut times and the users it could
    not evaluate at test time."""

    valid_cut: int  # timestamp: training is every interaction before it; validation targets lie in [valid_cut, test_cut)
    test_cut: int  # timestamp: test targets lie at or after it
    no_target: int  # users with training history but no interaction after the test cut
    no_history: int = 0  # users with an interaction after the test cut but no training history (set by prepare_split)
    # protocol.refit's split (refit_at): training is every interaction before the test cut, no validation set
    refit: bool = False


def _cut(times: np.ndarray, quantile: float | None, date: str | None, key: str) -> int:
    """A cut timestamp: ``date`` (ISO, UTC unless it says otherwise) when given, else the ``quantile`` of ``times``."""
    if date is not None:
        stamp = parse_date(date)
        if stamp is None:
            raise DataError(f"protocol.{key}_date={date!r} is not a date; write it as YYYY-MM-DD (UTC)")
        return int(stamp.timestamp())
    if quantile is None or not 0 < quantile < 1:
        raise DataError(f"protocol.{key}_quantile={quantile!r} must be a number in (0, 1) (or set protocol.{key}_date)")
    return int(np.ceil(np.quantile(times, quantile)))


def parse_date(text: Any) -> datetime | None:
    """An ISO date or date-time (UTC unless it names a zone), or None if ``text`` is not one."""
    try:
        stamp = datetime.fromisoformat(str(text))
    except ValueError:
        return None
    return stamp if stamp.tzinfo is not None else stamp.replace(tzinfo=timezone.utc)


def time_cuts(times: np.ndarray, test_quantile: float | None = 0.9, valid_quantile: float | None = 0.8,
              test_date: str | None = None, valid_date: str | None = None) -> tuple[int, int]:
    """(validation cut, test cut) as timestamps: each a date when given (it then replaces the quantile),
    else that quantile of ``times`` (all interactions read, before preprocessing)."""
    valid, test = _cut(times, valid_quantile, valid_date, "valid"), _cut(times, test_quantile, test_date, "test")
    if valid >= test:
        raise DataError(f"the validation cut ({time_text(valid)}, protocol.valid_{'date' if valid_date else 'quantile'}) must lie "
                        f"before the test cut ({time_text(test)}, protocol.test_{'date' if test_date else 'quantile'})")
    return valid, test


def time_text(t: int) -> str:
    # Unix seconds in a plausible range read as dates; order-only formats' positions stay numbers.
    return datetime.fromtimestamp(t, tz=timezone.utc).strftime("%Y-%m-%d %H:%M:%S") if 3e8 < t < 4.2e9 else str(t)


def temporal(sequences: Sequences, user_ids: np.ndarray, item_ids: np.ndarray, test_quantile: float | None = 0.9,
             valid_quantile: float | None = 0.8, test_date: str | None = None, valid_date: str | None = None) -> SplitData:
    """Global temporal split of chronological sequences (cuts: ``time_cuts`` of their timestamps; prepare_split
    takes them from the raw interactions and computes the k-core before the validation cut only)."""
    valid_cut, test_cut = time_cuts(sequences.times, test_quantile, valid_quantile, test_date, valid_date)
    return split_at(sequences, user_ids, item_ids, valid_cut, test_cut)


def split_at(sequences: Sequences, user_ids: np.ndarray, item_ids: np.ndarray, valid_cut: int, test_cut: int) -> SplitData:
    """Training = every interaction before ``valid_cut``. Validation: each user's first interaction in
    [valid_cut, test_cut), predicted from their training sequence. Test: each user's first interaction at
    or after ``test_cut``, predicted from their whole history before it. Only users with training history
    are evaluated (a model knows nothing of the others); sequences must be chronological."""
    n_train, n_before_test = _counts_before(sequences, valid_cut), _counts_before(sequences, test_cut)
    train = _prefixes(sequences, np.arange(len(sequences)), n_train)
    known = n_train > 0
    valid = _first_after(sequences, known & (n_before_test > n_train), n_train, "validation", valid_cut, valid_cut)
    test = _first_after(sequences, known & (sequences.lengths > n_before_test), n_before_test, "test", valid_cut, test_cut)
    info = TemporalInfo(valid_cut, test_cut, no_target=int(known.sum() - len(test.users)))
    return SplitData(train, valid, test, user_ids, item_ids, protocol="temporal", temporal=info)


def refit_at(sequences: Sequences, user_ids: np.ndarray, item_ids: np.ndarray, valid_cut: int, test_cut: int) -> SplitData:
    """The split of protocol.refit's second fit: training = every interaction before ``test_cut``; the test as
    split_at's (each user's first interaction at or after it, from their whole history before it), for every
    user with an interaction before it. No validation set: the epoch count was chosen on split_at's, and the
    validation targets are training data here. ``valid_cut`` is only recorded (TemporalInfo)."""
    n_train = _counts_before(sequences, test_cut)
    train = _prefixes(sequences, np.arange(len(sequences)), n_train)
    known = n_train > 0
    test = _first_after(sequences, known & (sequences.lengths > n_train), n_train, "test", test_cut, test_cut)
    none = np.zeros(0, dtype=np.int64)
    valid = EvalSet(none, Sequences(none, np.zeros(1, dtype=np.int64), none), np.zeros((0, 1), dtype=np.int64),
                    np.zeros((0, 1), dtype=np.int64))
    info = TemporalInfo(valid_cut, test_cut, no_target=int(known.sum() - len(test.users)), refit=True)
    return SplitData(train, valid, test, user_ids, item_ids, protocol="temporal", temporal=info)


def _counts_before(sequences: Sequences, cut: int) -> np.ndarray:
    """Per sequence, how many of its interactions lie before ``cut`` (sequences are chronological)."""
    owner = np.repeat(np.arange(len(sequences)), sequences.lengths)
    return np.bincount(owner[sequences.times < cut], minlength=len(sequences))


def _first_after(sequences: Sequences, has_target: np.ndarray, n_history: np.ndarray, what: str, train_cut: int,
                 cut: int) -> EvalSet:
    """The users of ``has_target``, each with their first ``n_history`` items as history and the next one as target."""
    users = np.flatnonzero(has_target)
    if not len(users):
        raise DataError(f"temporal protocol: no user has both training history (before {time_text(train_cut)}) and a "
                        f"{what} target (first interaction after {time_text(cut)}); "
                        "move the cuts with protocol.valid_quantile / test_quantile (or _date)")
    at = sequences.offsets[users] + n_history[users]  # the first interaction after the cut
    return EvalSet(users, _prefixes(sequences, users, n_history[users]), sequences.items[at, None].copy(),
                   sequences.times[at, None].copy())


def _prefixes(sequences: Sequences, rows: np.ndarray, lengths: np.ndarray) -> Sequences:
    """The first ``lengths[j]`` items of sequence ``rows[j]``, for every j."""
    idx = _ranges(sequences.offsets[rows], lengths)
    offsets = np.concatenate([[0], np.cumsum(lengths)]).astype(np.int64)
    return Sequences(sequences.items[idx], offsets, sequences.times[idx])
