"""Last.fm-1K listening log (TSV, newest first)."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.compute as pc

from benchmark.data.readers.common import (
    as_series, canonical, find_file, read_arrow_csv, to_seconds,
)
from benchmark.data.readers.registry import register
from benchmark.errors import DataError


LASTFM_FILE = "userid-timestamp-artid-artname-traid-traname.tsv"
LASTFM_COLUMNS = ["user", "time", "artist_id", "artist", "track_id", "track"]


@register("lastfm", files=(LASTFM_FILE,))
def read_lastfm(directory: str | Path, item: str = "track", **_: object) -> pd.DataFrame:
    """Last.fm-1K listening log (tab-separated, no header, no quoting; ISO-8601 UTC times; each
    user's rows newest first). Items are tracks (MusicBrainz track id, or "artist<TAB>track name"
    where the id is empty) or, with ``dataset.item=artist``, artists (MBID, or the name). Repeated
    plays are kept: the music configs set dedupe=false and mask_history=false."""
    path = find_file(directory, [LASTFM_FILE])
    if item not in ("track", "artist"):
        raise DataError(f"dataset.item={item!r} is invalid for lastfm; choose track or artist")
    t = read_arrow_csv(path, LASTFM_COLUMNS, delimiter="\t", quoted=False, types={c: pa.string() for c in LASTFM_COLUMNS})
    if item == "track":
        key = pc.if_else(pc.equal(t["track_id"], ""), pc.binary_join_element_wise(t["artist"], t["track"], "\t"), t["track_id"])
    else:
        key = pc.if_else(pc.equal(t["artist_id"], ""), t["artist"], t["artist_id"])
    try:
        secs = pc.strptime(t["time"], format="%Y-%m-%dT%H:%M:%SZ", unit="s").cast(pa.int64()).to_numpy()
    except pa.ArrowInvalid:
        secs = to_seconds(as_series(t["time"]), "%Y-%m-%dT%H:%M:%SZ", path)
    # Reverse the newest-first file so that file order (the tie-break) is chronological.
    rev = np.arange(len(t) - 1, -1, -1)
    df = pd.DataFrame({"user": as_series(t["user"]).iloc[rev].to_numpy(), "item": as_series(key).iloc[rev].to_numpy(),
                       "timestamp": secs[rev]})
    return canonical(df, path)
