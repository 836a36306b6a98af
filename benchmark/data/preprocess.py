"""Preprocessing: rating threshold, dedupe, iterative k-core, minimum length, chronological order,
contiguous ids (item 0 is padding). Every step is vectorised and reported in ``Prepared.steps``."""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np
import pandas as pd

from benchmark.data.split import Sequences
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


def _counts(df: pd.DataFrame) -> tuple[int, int, int]:
    return int(df["user"].nunique()), int(df["item"].nunique()), len(df)


def _steps_text(steps: list[tuple[str, int, int, int]]) -> str:
    return "; ".join(f"{s}: {u} users, {i} items, {n} rows" for s, u, i, n in steps)


def preprocess(interactions: pd.DataFrame, cfg: PreprocessConfig = PreprocessConfig()) -> Prepared:
    """Turns the canonical interactions table into chronological sequences.

    Order: ties in timestamp keep the original file order (stable sort on (user, timestamp, row)).
    Raises DataError with the counts after each step when nothing survives the filters.
    """
    df = interactions[["user", "item", "timestamp"] + (["rating"] if "rating" in interactions else [])]
    df = df.reset_index(drop=True)
    steps = [("raw", *_counts(df))]

    if cfg.min_rating is not None:
        if "rating" not in df:
            raise DataError("dataset.min_rating is set but this dataset has no ratings")
        df = df[df["rating"].to_numpy() >= cfg.min_rating]
        steps.append((f"rating >= {cfg.min_rating}", *_counts(df)))

    # Chronological order with file order as tie-break; np.lexsort is stable by construction.
    user_codes, _ = pd.factorize(df["user"])
    order = np.lexsort((np.arange(len(df)), df["timestamp"].to_numpy(), user_codes))
    df = df.iloc[order]

    if cfg.dedupe:
        df = df[~df.duplicated(["user", "item"], keep="first")]
        steps.append(("dedupe (user, item)", *_counts(df)))

    min_user = max(cfg.user_core, cfg.min_seq_len)
    if min_user > 1 or cfg.item_core > 1:
        while True:
            n_before = len(df)
            item_n = df["item"].map(df["item"].value_counts()).to_numpy()
            df = df[item_n >= cfg.item_core]
            user_n = df["user"].map(df["user"].value_counts()).to_numpy()
            df = df[user_n >= min_user]
            if len(df) == n_before:
                break
        steps.append((f"k-core (users >= {min_user}, items >= {cfg.item_core})", *_counts(df)))

    if len(df) == 0:
        raise DataError(f"dataset is empty after filtering ({_steps_text(steps)})")
    if df["item"].nunique() < 2:
        raise DataError(f"dataset has a single item after filtering ({_steps_text(steps)}); nothing to rank")

    user_idx, user_ids = pd.factorize(df["user"], sort=True)
    item_idx, item_ids = pd.factorize(df["item"], sort=True)
    # Users are contiguous blocks already (sorted by first appearance); re-sort by internal id, stably.
    order = np.argsort(user_idx, kind="stable")
    user_idx = user_idx[order]
    items = item_idx[order].astype(np.int64) + 1
    times = df["timestamp"].to_numpy()[order].astype(np.int64)
    lengths = np.bincount(user_idx, minlength=len(user_ids))
    offsets = np.concatenate([[0], np.cumsum(lengths)]).astype(np.int64)
    return Prepared(
        sequences=Sequences(items=items, offsets=offsets, times=times),
        user_ids=np.asarray(user_ids, dtype=str),
        item_ids=np.concatenate([[""], np.asarray(item_ids, dtype=str)]),
        steps=steps,
    )
