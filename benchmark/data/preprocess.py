"""Preprocessing: rating threshold, dedupe, iterative k-core, minimum length, chronological order,
contiguous ids (item 0 is padding). Every step is vectorised and reported in ``Prepared.steps``."""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np
import pandas as pd

from benchmark.data.split import Sequences, time_text
from benchmark.errors import DataError


@dataclass(frozen=True)
class PreprocessConfig:
    min_rating: float | None = None  # keep interactions with rating >= this (None: keep all)
    dedupe: bool = True  # keep only the first (chronological) interaction of each (user, item)
    user_core: int = 1  # iterative k-core: every kept user has >= user_core interactions
    item_core: int = 1  # ... and every kept item >= item_core
    min_seq_len: int = 3  # users with shorter sequences are dropped (inside the k-core loop)


@dataclass
class Prepared:
    """Chronological per-user sequences with contiguous ids."""

    sequences: Sequences  # user u's items (1..n_items) and timestamps, oldest first
    user_ids: np.ndarray  # original user id (str) of internal user u
    item_ids: np.ndarray  # original item id (str) of internal item i; item_ids[0] == "" (padding)
    steps: list[tuple[str, int, int, int]] = field(default_factory=list)  # (step, users, items, rows)

    @property
    def n_users(self) -> int:
        return len(self.user_ids)

    @property
    def n_items(self) -> int:
        """Number of real items; valid item ids are 1..n_items."""
        return len(self.item_ids) - 1


def _sorted_ids(codes: np.ndarray, uniques: pd.Index) -> tuple[np.ndarray, np.ndarray]:
    """Contiguous new ids 0..n-1 for the codes still present, in sorted order of the original id."""
    present = np.flatnonzero(np.bincount(codes, minlength=len(uniques)))
    names = np.asarray(uniques[present]).astype(str)
    by_name = np.argsort(names, kind="stable")
    new_id = np.empty(len(uniques), dtype=np.int64)
    new_id[present[by_name]] = np.arange(len(present))
    return new_id[codes], names[by_name]


def _steps_text(steps: list[tuple[str, int, int, int]]) -> str:
    return "; ".join(f"{s}: {u} users, {i} items, {n} rows" for s, u, i, n in steps)


def preprocess(interactions: pd.DataFrame, cfg: PreprocessConfig = PreprocessConfig(),
               core_before: int | None = None) -> Prepared:
    """Turns the canonical interactions table into chronological sequences.

    Order: ties in timestamp keep the original file order (stable sort on (user, timestamp, row)).
    ``core_before`` (a timestamp; the temporal protocol's training cut): the k-core and minimum length
    count only interactions before it, so nothing after the cut decides which users and items are kept;
    a user or item without any interaction before it is dropped with all its rows.
    Raises DataError with the counts after each step when nothing survives the filters.
    """
    # Everything below works on integer codes: string ids are touched once here and once at the end.
    user_code, user_uniques = pd.factorize(interactions["user"])
    item_code, item_uniques = pd.factorize(interactions["item"])
    n_user_codes, n_item_codes = len(user_uniques), len(item_uniques)
    u, i = user_code.astype(np.int64), item_code.astype(np.int64)
    t = interactions["timestamp"].to_numpy().astype(np.int64)
    row = np.arange(len(u))

    def counts() -> tuple[int, int, int]:
        return (int(np.count_nonzero(np.bincount(u, minlength=n_user_codes))),
                int(np.count_nonzero(np.bincount(i, minlength=n_item_codes))), len(u))

    def keep(mask: np.ndarray) -> None:
        nonlocal u, i, t, row
        u, i, t, row = u[mask], i[mask], t[mask], row[mask]

    steps = [("raw", *counts())]
    if cfg.min_rating is not None:
        if "rating" not in interactions:
            raise DataError("dataset.min_rating is set but this dataset has no ratings")
        keep(interactions["rating"].to_numpy() >= cfg.min_rating)
        steps.append((f"rating >= {cfg.min_rating}", *counts()))

    # Chronological order per user; the file row breaks timestamp ties (stable by construction).
    keep(np.lexsort((row, t, u)))

    if cfg.dedupe:
        keep(~pd.Series(u * n_item_codes + i).duplicated(keep="first").to_numpy())
        steps.append(("dedupe (user, item)", *counts()))

    min_user = max(cfg.user_core, cfg.min_seq_len)
    if min_user > 1 or cfg.item_core > 1 or core_before is not None:
        def counted(ids: np.ndarray, n: int) -> np.ndarray:  # per-id count of the rows the k-core reads
            return np.bincount(ids if core_before is None else ids[t < core_before], minlength=n)

        while True:
            n_before = len(u)
            keep(counted(i, n_item_codes)[i] >= max(cfg.item_core, 1))
            keep(counted(u, n_user_codes)[u] >= max(min_user, 1))
            if len(u) == n_before:
                break
        before = "" if core_before is None else f", counted before {time_text(core_before)}"
        steps.append((f"k-core (users >= {min_user}, items >= {cfg.item_core}{before})", *counts()))

    if len(u) == 0:
        raise DataError(f"dataset is empty after filtering ({_steps_text(steps)})")
    user_new, user_ids = _sorted_ids(u, user_uniques)
    item_new, item_ids = _sorted_ids(i, item_uniques)
    if len(item_ids) < 2:
        raise DataError(f"dataset has a single item after filtering ({_steps_text(steps)}); nothing to rank")

    # Rows are grouped by user in first-appearance order; regroup by the new (sorted) user ids, stably.
    order = np.argsort(user_new, kind="stable")
    user_new = user_new[order]
    items = item_new[order] + 1
    times = t[order]
    lengths = np.bincount(user_new, minlength=len(user_ids))
    offsets = np.concatenate([[0], np.cumsum(lengths)]).astype(np.int64)
    return Prepared(
        sequences=Sequences(items=items, offsets=offsets, times=times),
        user_ids=user_ids,
        item_ids=np.concatenate([np.array([""]), item_ids]),
        steps=steps,
    )
