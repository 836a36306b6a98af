"""YOOCHOOSE (RecSys Challenge 2015) clicks, native or as session-rec prepares them."""

from __future__ import annotations

from pathlib import Path

import pandas as pd
import pyarrow as pa

from benchmark.data.readers.common import (
    as_series, canonical, chronological, epoch_ms, find_file, fine_times, header_of, read_arrow_csv,
)
from benchmark.data.readers.registry import register


SESSION_REC_COLUMNS = ["SessionId", "ItemId", "Time"]  # session-rec's prepared files (tab-separated, seconds)


@register("yoochoose", files=("yoochoose-clicks.dat", "*.txt", "*.tsv"))
def read_yoochoose(directory: str | Path, file: str | None = None, **_: object) -> pd.DataFrame:
    """RecSys Challenge 2015 ``yoochoose-clicks.dat`` (comma, no header: session id, ISO-8601
    time with milliseconds, item id, category), or session-rec's prepared tab-separated file
    (header ``SessionId ItemId Time ...``, Time in unix seconds). Sequences are sessions."""
    path = find_file(directory, ["yoochoose-clicks.dat", "*.txt", "*.tsv"], file)
    if header_of(path, "\t")[:3] == SESSION_REC_COLUMNS:
        t = read_arrow_csv(path, header=True, delimiter="\t", columns=SESSION_REC_COLUMNS,
                           types={"SessionId": pa.string(), "ItemId": pa.string(), "Time": pa.string()})
        df = pd.DataFrame({"user": as_series(t["SessionId"]), "item": as_series(t["ItemId"])})
        fine, ticks = fine_times(as_series(t["Time"]), "s", path)
        return canonical(chronological(df, fine, ticks), path)
    t = read_arrow_csv(path, ["session", "time", "item", "category"], columns=["session", "time", "item"],
                       types={"session": pa.string(), "item": pa.string(), "time": pa.timestamp("ms", tz="UTC")})
    df = pd.DataFrame({"user": as_series(t["session"]), "item": as_series(t["item"])})
    return canonical(chronological(df, epoch_ms(t["time"]), 1_000), path)
