"""Sampled candidate sets, only for comparison with older papers that rank a target among n
sampled negatives instead of all items (Krichene & Rendle 2020 show such metrics can reorder
models, which is why full ranking is the default and sampled metrics are always labelled).

Negatives are drawn once per user from a fixed seed, never from the user's own sequence (history,
validation or test targets), so every model and every training seed sees the same candidates and
paired tests stay aligned. The run record stores them (negatives.parquet).
"""

from __future__ import annotations

import logging
from dataclasses import asdict, dataclass, fields
from typing import Any

import numpy as np
import pandas as pd

from benchmark.data.split import SplitData
from benchmark.errors import ConfigError, DataError

log = logging.getLogger("seqrec")
SAMPLERS = ("uniform", "popularity")
NEGATIVES_FILE = "negatives.parquet"


@dataclass(frozen=True)
class Candidates:
    """The protocol's candidate-set keys: protocol.candidates / n_negatives / sampler / negatives_seed."""

    candidates: str = "full"  # full | sampled
    n_negatives: int = 100
    sampler: str = "uniform"  # uniform | popularity (probability proportional to training count)
    negatives_seed: int = 0  # fixed per protocol, not per run: all models share the same negatives

    KEYS = ("candidates", "n_negatives", "sampler", "negatives_seed")

    @classmethod
    def pop_from(cls, protocol: dict[str, Any]) -> "Candidates":
        """Removes the candidate keys from a protocol config dict and validates them."""
        c = cls(**{k: protocol.pop(k) for k in cls.KEYS if k in protocol})
        if c.candidates not in ("full", "sampled"):
            raise ConfigError(f"protocol.candidates={c.candidates!r} is unknown; choose full or sampled")
        if c.sampled:
            if c.sampler not in SAMPLERS:
                raise ConfigError(f"protocol.sampler={c.sampler!r} is unknown; choose one of {', '.join(SAMPLERS)}")
            if isinstance(c.n_negatives, bool) or not isinstance(c.n_negatives, int) or c.n_negatives < 1:
                raise ConfigError(f"protocol.n_negatives={c.n_negatives!r} must be a positive integer")
        else:
            unread = [f"protocol.{f.name}={getattr(c, f.name)!r}" for f in fields(c)
                      if f.name != "candidates" and getattr(c, f.name) != f.default]
            if unread:
                log.warning("%s %s no effect with protocol.candidates=full (read with candidates=sampled only)",
                            ", ".join(unread), "has" if len(unread) == 1 else "have")
        return c

    @property
    def sampled(self) -> bool:
        return self.candidates == "sampled"

    def caption(self) -> str:
        """What a table caption says about the candidate set."""
        if not self.sampled:
            return "full ranking over all items"
        return (f"sampled_* metrics rank among the targets and {self.n_negatives} {self.sampler}-sampled negatives "
                f"per user (seed {self.negatives_seed}); other metrics full ranking")

    def describe(self) -> dict[str, Any]:
        return {**asdict(self), "file": NEGATIVES_FILE, "metric_prefix": "sampled_"}


def sample_negatives(split: SplitData, n: int, sampler: str = "uniform", seed: int = 0,
                     chunk_cells: int = 1 << 22) -> np.ndarray:
    """[n_users, n] item ids, row u = user u's negatives (sorted), drawn without replacement.

    Weighted sampling without replacement by exponential keys (Efraimidis & Spirakis 2006): each
    item gets log(U)/w, the n largest win; excluded items get -inf. Users are processed in chunks
    so memory stays at ``chunk_cells`` floats whatever the catalogue size.
    """
    n_columns = split.n_items + 1
    weights = np.ones(n_columns) if sampler == "uniform" else split.item_popularity().astype(np.float64)
    weights[0] = 0.0  # padding
    seen_users, seen_items = split.interactions()
    rng = np.random.default_rng(seed)
    out = np.zeros((split.n_users, n), dtype=np.int64)
    rows_per_chunk = max(1, chunk_cells // n_columns)
    for lo in range(0, split.n_users, rows_per_chunk):
        hi = min(lo + rows_per_chunk, split.n_users)
        with np.errstate(divide="ignore"):
            keys = np.log(rng.random((hi - lo, n_columns))) / weights  # -inf where the weight is 0
        mine = (seen_users >= lo) & (seen_users < hi)
        keys[seen_users[mine] - lo, seen_items[mine]] = -np.inf
        available = np.isfinite(keys).sum(1)
        if (available < n).any():
            u = lo + int(np.argmax(available < n))
            raise DataError(
                f"protocol.n_negatives={n} but user {str(split.user_ids[u])!r} has only {available[u - lo]} items "
                f"that can be drawn by the {sampler} sampler (not in their sequence); lower protocol.n_negatives"
            )
        top = np.argpartition(-keys, n - 1, axis=1)[:, :n]
        out[lo:hi] = np.sort(top, axis=1)
    return out


def negatives_frame(split: SplitData, negatives: np.ndarray) -> pd.DataFrame:
    """Long table (user, item) in original ids: what negatives.parquet stores."""
    users = np.repeat(np.arange(len(negatives)), negatives.shape[1])
    return pd.DataFrame({"user": split.user_ids[users].astype(str), "item": split.item_ids[negatives.ravel()].astype(str)})
