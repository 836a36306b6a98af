"""The session-based protocol of the SR-GNN line of work (``protocol=session``).

SR-GNN (Wu et al., AAAI 2019; its ``datasets/preprocess.py``, whose files most later session-based papers
reuse) prepares YOOCHOOSE and DIGINETICA this way, and this module repeats it on chronological sessions
(repeats kept):

1. sessions of length 1 are dropped;
2. items occurring fewer than ``min_item_count`` (5) times in the remaining sessions are removed from them, and
   sessions left with fewer than 2 clicks are dropped (one pass, not a k-core loop);
3. a session's date is its last click, taken before step 2 removed anything (the script dates a session while
   reading it); with ``split`` = the latest date minus ``test_days``, sessions dated before it train and sessions
   dated after it test (a session dated exactly at ``split`` is in neither);
4. the catalogue is the items of the training sessions; test sessions lose the clicks of other items and are
   dropped when fewer than 2 clicks remain;
5. every prefix of a session is one (history -> next item) example; ``train_fraction`` keeps the newest
   fraction of the training examples (YOOCHOOSE 1/64, 1/4: ``int(n / 64)`` examples, the oldest kept session cut
   to the examples it keeps), while the catalogue stays that of all training sessions, as the authors' code ranks
   37,483 items for both fractions.

Unlike the script, the newest ``valid_fraction`` of the training examples (whole sessions) are held out for early
stopping: the script has no validation set and picked epochs on the test set. Every validation and test example is
an evaluated "user" of its own, named ``<session>#<history length>``, with an empty training sequence, so per-user
metrics, paired tests and records work unchanged.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from benchmark.data.readers.common import natural_rank
from benchmark.data.split import EvalSet, Sequences, SplitData, _ranges, time_text
from benchmark.errors import DataError

DAY = 86_400


@dataclass(frozen=True)
class SessionInfo:
    """What the session protocol kept, in the terms of the published tables (recorded with every run)."""

    test_days: float
    train_fraction: float
    split_time: int  # sessions dated before it train, after it test
    clicks: int  # clicks of the training-window and test sessions (the tables' "clicks")
    train_sessions: int  # sessions of the training window, validation included (the oldest one possibly cut)
    train_examples: int  # prefixes of the training window, validation included (the tables' "training sessions")
    valid_sessions: int  # newest training-window sessions held out for early stopping
    valid_examples: int  # ... their prefixes (not trained on)
    test_sessions: int
    test_examples: int  # prefixes of the test sessions (the tables' "test sessions")
    items: int  # the catalogue ranked: items of all training sessions, before the fraction
    window_items: int  # items of the training window (the tables' "items" of YOOCHOOSE 1/64 and 1/4)
    avg_len: float  # clicks / (training-window sessions + test sessions)
    steps: list = field(default_factory=list)  # (step, sessions, items, clicks) after each step


@dataclass(frozen=True)
class Published:
    """A dataset statistics table's row (SR-GNN, Wu et al., AAAI 2019, Table 1)."""

    clicks: int
    train_examples: int
    test_examples: int
    items: int
    avg_len: float


# What the presets reproduce (SR-GNN, Table 1), by preset name: `seqrec-data stats` prints them beside ours.
PUBLISHED = {
    "yoochoose-srgnn-64": Published(557_248, 369_859, 55_898, 16_766, 6.16),
    "yoochoose-srgnn-4": Published(8_326_407, 5_917_745, 55_898, 29_618, 5.71),
    "diginetica-srgnn": Published(982_961, 719_470, 60_858, 43_097, 5.12),
}


def session_split(sequences: Sequences, user_ids: np.ndarray, item_ids: np.ndarray, test_days: float = 1,
                  train_fraction: float = 1.0, valid_fraction: float = 0.1, min_item_count: int = 5) -> SplitData:
    """SR-GNN's preparation and split of chronological sessions (the module's docstring lists the steps)."""
    if isinstance(test_days, bool) or not isinstance(test_days, (int, float)) or test_days <= 0:
        raise DataError(f"protocol.test_days={test_days!r} must be a number of days > 0")
    if isinstance(train_fraction, bool) or not isinstance(train_fraction, (int, float)) or not 0 < train_fraction <= 1:
        raise DataError(f"protocol.train_fraction={train_fraction!r} must be a number in (0, 1] (1/64 = 0.015625)")
    if isinstance(valid_fraction, bool) or not isinstance(valid_fraction, (int, float)) or not 0 < valid_fraction < 1:
        raise DataError(f"protocol.valid_fraction={valid_fraction!r} must be a number in (0, 1)")
    if isinstance(min_item_count, bool) or not isinstance(min_item_count, int) or min_item_count < 1:
        raise DataError(f"protocol.min_item_count={min_item_count!r} must be an integer >= 1")
    n = len(sequences)
    owner = np.repeat(np.arange(n), sequences.lengths)
    date = sequences.times[sequences.offsets[1:] - 1] if n else np.zeros(0, np.int64)  # the last click, before filtering
    steps: list[list] = []

    def step(name: str, rows: np.ndarray) -> None:  # counted with bincount: YOOCHOOSE has 33M clicks
        steps.append([name, int(np.count_nonzero(np.bincount(owner[rows], minlength=n))),
                      int(np.count_nonzero(np.bincount(sequences.items[rows], minlength=len(item_ids)))), int(rows.sum())])

    rows = (sequences.lengths >= 2)[owner]
    step("sessions of length >= 2", rows)
    counts = np.bincount(sequences.items[rows], minlength=len(item_ids))
    rows &= counts[sequences.items] >= min_item_count
    rows &= (np.bincount(owner[rows], minlength=n) >= 2)[owner]
    step(f"items seen >= {min_item_count} times removed, then sessions of length >= 2", rows)
    alive = np.bincount(owner[rows], minlength=n) > 0
    if not alive.any():
        raise DataError(f"session protocol: no session has 2 clicks of items seen >= {min_item_count} times")

    split_time = int(date[alive].max() - round(test_days * DAY))
    by_date = np.lexsort((natural_rank(user_ids), date))  # ties in file order of the session ids, as the script's dict
    train = by_date[alive[by_date] & (date[by_date] < split_time)]
    test = by_date[alive[by_date] & (date[by_date] > split_time)]
    if not len(train):
        raise DataError(f"session protocol: no training session ends before {time_text(split_time)} "
                        f"(protocol.test_days={test_days} covers all the data)")
    train_rows = rows & np.isin(owner, train)
    catalogue = np.bincount(sequences.items[train_rows], minlength=len(item_ids)) > 0
    step(f"training sessions (ending before {time_text(split_time)})", train_rows)
    test_rows = rows & np.isin(owner, test) & catalogue[sequences.items]
    test_rows &= (np.bincount(owner[test_rows], minlength=n) >= 2)[owner]
    step("test sessions (ending after it), items of the training sessions only, length >= 2", test_rows)
    kept = _compress(sequences, train_rows | test_rows)
    test = test[kept.lengths[test] >= 2]
    if not len(test):
        raise DataError(f"session protocol: no test session (ending after {time_text(split_time)}) keeps 2 clicks of "
                        "training items")

    # The newest train_fraction of the training examples: whole sessions, and the oldest of them cut to its first clicks.
    examples = kept.lengths[train] - 1
    n_window = int(examples.sum() * train_fraction)
    if n_window < 1:
        raise DataError(f"protocol.train_fraction={train_fraction} keeps no training example of {int(examples.sum()):,}")
    first, window_len = _newest(kept.lengths[train], n_window)
    window = train[first:]
    # Validation: the newest whole sessions of the window holding valid_fraction of its examples (at least one).
    n_valid = max(1, int(n_window * valid_fraction))
    n_valid_sessions = int(np.searchsorted(np.cumsum((window_len - 1)[::-1]), n_valid)) + 1
    cut = len(window) - n_valid_sessions
    if cut < 1:
        raise DataError(f"protocol.valid_fraction={valid_fraction} leaves no training session: the newest "
                        f"{n_valid:,} training examples span the whole window")
    idx = _ranges(kept.offsets[window[:cut]], window_len[:cut])
    valid_names, valid_set = _examples(kept, window[cut:], user_ids)
    test_names, test_set = _examples(kept, test, user_ids)

    # Contiguous ids: the training sessions, then one user (with an empty training sequence) per validation and
    # per test example; items 1..C in the order of their original ids.
    new_item = np.cumsum(catalogue) * catalogue
    users = np.concatenate([user_ids[window[:cut]].astype(str), valid_names, test_names])
    lengths = np.concatenate([window_len[:cut], np.zeros(len(users) - cut, np.int64)])
    train_seqs = Sequences(new_item[kept.items[idx]], np.concatenate([[0], np.cumsum(lengths)]).astype(np.int64),
                           kept.times[idx])
    evals, offset = [], cut
    for es in (valid_set, test_set):
        histories = Sequences(new_item[es.histories.items], es.histories.offsets, es.histories.times)
        evals.append(EvalSet(np.arange(offset, offset + len(es)), histories, new_item[es.targets], es.target_times))
        offset += len(es)

    window_idx = _ranges(kept.offsets[window], window_len)
    valid_idx = _ranges(kept.offsets[window[cut:]], window_len[cut:])
    window_items = int(np.unique(kept.items[window_idx]).size)
    if train_fraction < 1:
        steps.append([f"newest {train_fraction:g} of the training examples ({n_window:,})", len(window), window_items,
                      len(window_idx)])
    steps.append([f"validation: its newest sessions ({len(valid_set):,} examples), held out", n_valid_sessions,
                  int(np.unique(kept.items[valid_idx]).size), len(valid_idx)])
    clicks = len(window_idx) + int(kept.lengths[test].sum())
    info = SessionInfo(
        test_days=float(test_days), train_fraction=float(train_fraction), split_time=split_time, clicks=clicks,
        train_sessions=len(window), train_examples=n_window, valid_sessions=n_valid_sessions,
        valid_examples=len(valid_set), test_sessions=len(test), test_examples=len(test_set), items=int(catalogue.sum()),
        window_items=window_items, avg_len=clicks / (len(window) + len(test)), steps=steps,
    )
    item_names = np.concatenate([np.array([""]), item_ids[np.flatnonzero(catalogue)].astype(str)])
    return SplitData(train_seqs, evals[0], evals[1], users, item_names, protocol="session", session=info)


def _compress(sequences: Sequences, rows: np.ndarray) -> Sequences:
    """Every sequence with only its ``rows`` (the same sequences, possibly empty)."""
    owner = np.repeat(np.arange(len(sequences)), sequences.lengths)
    lengths = np.bincount(owner[rows], minlength=len(sequences))
    return Sequences(sequences.items[rows], np.concatenate([[0], np.cumsum(lengths)]).astype(np.int64), sequences.times[rows])


def _newest(lengths: np.ndarray, n: int) -> tuple[int, np.ndarray]:
    """The newest ``n`` prefix examples of sessions of ``lengths`` (oldest first), as the script's list of examples
    holds them (each session's examples from the longest prefix to the shortest, so its tail is a session's first
    clicks): the index of the oldest session concerned and the length to which each session from it is kept."""
    tail = np.cumsum((lengths - 1)[::-1])  # examples of the newest 1, 2, ... sessions
    k = int(np.searchsorted(tail, n))  # the (k + 1)-th newest session holds the n-th newest example
    first = len(lengths) - 1 - k
    kept = lengths[first:].copy()
    kept[0] = n - (tail[k - 1] if k else 0) + 1  # its first clicks: one more than the examples it keeps
    return first, kept


def _examples(sequences: Sequences, rows: np.ndarray, user_ids: np.ndarray) -> tuple[np.ndarray, EvalSet]:
    """Every prefix of the sessions ``rows``: (history = the first j clicks -> target = click j + 1), one evaluated user
    each, named ``<session>#<j>``."""
    n_examples = sequences.lengths[rows] - 1
    session = np.repeat(rows, n_examples)
    j = np.arange(int(n_examples.sum())) - np.repeat(np.cumsum(n_examples) - n_examples, n_examples) + 1
    starts = sequences.offsets[session]
    idx = _ranges(starts, j)
    histories = Sequences(sequences.items[idx], np.concatenate([[0], np.cumsum(j)]).astype(np.int64), sequences.times[idx])
    names = np.char.add(np.char.add(user_ids[session].astype(str), "#"), j.astype(str))
    return names, EvalSet(np.arange(len(j)), histories, sequences.items[starts + j, None].copy(),
                          sequences.times[starts + j, None].copy())
