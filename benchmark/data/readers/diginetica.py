"""DIGINETICA (CIKM Cup 2016) product views, in both header spellings."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
import pyarrow as pa

from benchmark.data.readers.common import (
    as_series, canonical, clip, find_file, header_of, natural_rank, read_arrow_csv, to_seconds,
)
from benchmark.data.readers.registry import register
from benchmark.errors import DataError


DIGINETICA_HEADERS = {  # CIKM Cup's own spelling, and the SR-GNN distribution's (the one most papers use)
    "camelCase": ["sessionId", "userId", "itemId", "timeframe", "eventdate"],
    "snake_case": ["session_id", "user_id", "item_id", "timeframe", "eventdate"],
}


@register("diginetica", files=("train-item-views.csv", "*train-item-views.csv"))
def read_diginetica(directory: str | Path, user: str = "session", **_: object) -> pd.DataFrame:
    """CIKM Cup 2016 ``train-item-views.csv`` (``;``, header ``sessionId;userId;itemId;timeframe;eventdate``,
    or ``session_id;user_id;item_id;timeframe;eventdate`` as SR-GNN distributes it). ``timeframe`` is
    milliseconds since the session's start, not a time of day: rows are ordered by (``eventdate``,
    session, ``timeframe``) and every row's timestamp is its day, so a user's sessions of one day never
    interleave under ``dataset.user=user`` (absolute times within a day are unknown). Sequences are
    sessions (the session-based setting of SR-GNN and successors); ``dataset.user=user`` groups by the
    (mostly NA) user id instead and drops anonymous views."""
    path = find_file(directory, ["train-item-views.csv", "*train-item-views.csv"])
    if user not in ("session", "user"):
        raise DataError(f"dataset.user={user!r} is invalid for diginetica; choose session or user")
    found = header_of(path, ";")
    columns = next((names for names in DIGINETICA_HEADERS.values() if found[:5] == names), None)
    if columns is None:
        raise DataError(f"{path}: expected header {';'.join(DIGINETICA_HEADERS['camelCase'])} or "
                        f"{';'.join(DIGINETICA_HEADERS['snake_case'])}, got {clip(';'.join(found))}")
    session, user_id, item = columns[:3]
    t = read_arrow_csv(path, header=True, delimiter=";", columns=columns,
                       types={session: pa.string(), user_id: pa.string(), item: pa.string(),
                              "timeframe": pa.int64(), "eventdate": pa.string()})
    day = to_seconds(as_series(t["eventdate"]), "%Y-%m-%d", path)
    df = pd.DataFrame({"user": as_series(t[session if user == "session" else user_id]), "item": as_series(t[item])})
    order = np.lexsort((t["timeframe"].to_numpy(), natural_rank(as_series(t[session])), day))
    df = df.iloc[order]
    df["timestamp"] = day[order]
    if user == "user":  # anonymous views have userId NA in the published file (empty in some copies)
        df = df[~df["user"].isin(["", "NA"]).to_numpy()]
    return canonical(df, path)
