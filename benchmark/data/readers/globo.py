"""Globo.com G1 news clicks: hourly CSV files."""

from __future__ import annotations

from pathlib import Path

import pandas as pd
import pyarrow as pa

from benchmark.data.readers.common import MissingData, as_series, canonical, chronological, read_arrow_csv
from benchmark.data.readers.registry import register
from benchmark.errors import DataError


@register("globo", files=("clicks_hour_*.csv",))
def read_globo(directory: str | Path, user: str = "user", **_: object) -> pd.DataFrame:
    """Globo.com G1 ``clicks_hour_*.csv`` (comma, header; ``user_id``, ``session_id``,
    ``click_article_id``, ``click_timestamp`` in ms), in the directory or its clicks/ folder.
    ``dataset.user=session`` makes each session a sequence of its own (session-based setting)."""
    directory = Path(directory)
    files = sorted(directory.glob("clicks_hour_*.csv")) or sorted(directory.glob("clicks/clicks_hour_*.csv"))
    if not files:
        raise MissingData(f"data file not found: {directory}/clicks_hour_*.csv (or {directory}/clicks/clicks_hour_*.csv)")
    if user not in ("user", "session"):
        raise DataError(f"dataset.user={user!r} is invalid for globo; choose user or session")
    key = "user_id" if user == "user" else "session_id"
    cols = [key, "click_article_id", "click_timestamp"]
    tables = [read_arrow_csv(f, header=True, columns=cols, types={key: pa.string(), "click_article_id": pa.string(),
                                                                  "click_timestamp": pa.int64()}) for f in files]
    t = pa.concat_tables(tables)
    df = pd.DataFrame({"user": as_series(t[key]), "item": as_series(t["click_article_id"])})
    return canonical(chronological(df, t["click_timestamp"].to_numpy(), 1_000), files[0])
