"""Retail Rocket e-commerce events."""

from __future__ import annotations

from pathlib import Path

import pandas as pd
import pyarrow as pa
import pyarrow.compute as pc

from benchmark.data.readers.common import as_series, canonical, chronological, find_file, read_arrow_csv
from benchmark.data.readers.registry import register


@register("retailrocket", files=("events.csv",))
def read_retailrocket(directory: str | Path, events: list[str] | str | None = None, **_: object) -> pd.DataFrame:
    """Retail Rocket ``events.csv`` (header ``timestamp,visitorid,event,itemid,transactionid``,
    ms, not sorted by time). ``dataset.events`` keeps only some event types (view, addtocart,
    transaction); all are kept by default."""
    path = find_file(directory, ["events.csv"])
    t = read_arrow_csv(path, header=True, columns=["timestamp", "visitorid", "event", "itemid"],
                       types={"timestamp": pa.int64(), "visitorid": pa.string(), "event": pa.string(), "itemid": pa.string()})
    if events:
        wanted = [events] if isinstance(events, str) else list(events)
        t = t.filter(pc.is_in(t["event"], value_set=pa.array(wanted)))
    df = pd.DataFrame({"user": as_series(t["visitorid"]), "item": as_series(t["itemid"])})
    return canonical(chronological(df, t["timestamp"].to_numpy(), 1_000), path)
