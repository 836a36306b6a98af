"""OTTO (Kaggle 2022) sessions as JSON lines."""

from __future__ import annotations

from pathlib import Path

import pandas as pd
import pyarrow as pa
import pyarrow.compute as pc

from benchmark.data.readers.common import (
    as_series, canonical, chronological, clip, find_file, flatten_lists, read_json_lines,
)
from benchmark.data.readers.registry import register
from benchmark.errors import DataError


OTTO_EVENTS = ("clicks", "carts", "orders")


@register("otto", files=("train.jsonl", "*.jsonl", "*.jsonl.gz"))
def read_otto(directory: str | Path, events: list[str] | str | None = None, file: str | None = None,
              **_: object) -> pd.DataFrame:
    """OTTO (Kaggle 2022) JSON lines, one session per line: ``{"session": 1, "events": [{"aid": 9,
    "ts": 1659304800025, "type": "clicks"}, ...]}`` (``ts`` in ms). Sequences are sessions;
    ``dataset.events`` keeps some event types (clicks, carts, orders); all are kept by default."""
    path = find_file(directory, ["train.jsonl", "*.jsonl", "*.jsonl.gz"], file)
    wanted = [events] if isinstance(events, str) else list(events or OTTO_EVENTS)
    unknown = [e for e in wanted if e not in OTTO_EVENTS]
    if unknown:
        raise DataError(f"dataset.events: unknown OTTO event type {clip(unknown[0])}; choose from {', '.join(OTTO_EVENTS)}")
    event = pa.struct([("aid", pa.int64()), ("ts", pa.int64()), ("type", pa.string())])  # ids are numbers in OTTO
    t = read_json_lines(path, {"session": pa.int64(), "events": pa.list_(event)})
    flat, rows = flatten_lists(t["events"])
    keep = pc.is_in(pc.struct_field(flat, "type"), value_set=pa.array(wanted)).to_numpy(zero_copy_only=False)
    flat = flat.filter(pa.array(keep))
    sessions = t["session"].combine_chunks().take(pa.array(rows[keep]))
    df = pd.DataFrame({"user": as_series(sessions), "item": as_series(pc.struct_field(flat, "aid"))})
    return canonical(chronological(df, pc.struct_field(flat, "ts").to_numpy(zero_copy_only=False), 1_000), path)
