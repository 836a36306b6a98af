"""EB-NeRD (Ekstra Bladet) parquet: history and behaviors files."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq

from benchmark.data.readers.common import canonical, chronological, epoch_ms, flatten_lists, split_files
from benchmark.data.readers.registry import register
from benchmark.errors import DataError


def _parquet(path: Path, columns: list[str]) -> pa.Table:
    try:
        return pq.read_table(path, columns=columns)
    except (pa.ArrowInvalid, KeyError, OSError) as e:
        raise DataError(f"{path}: cannot read parquet columns {', '.join(columns)}: {str(e).splitlines()[0]}") from None


@register("ebnerd", files=("history.parquet", "behaviors.parquet"))
def read_ebnerd(directory: str | Path, behaviors: bool = True, **_: object) -> pd.DataFrame:
    """EB-NeRD parquet: ``history.parquet`` (one row per user with lists ``article_id_fixed`` and
    ``impression_time_fixed``) and ``behaviors.parquet`` (one row per impression: ``user_id``,
    ``impression_time``, list ``article_ids_clicked``), in the directory or its train/ and
    validation/ sub-folders. The clicks of all files are merged; clicks present in two files
    (the validation history window overlaps the train week) are kept once (same user, article
    and time in milliseconds); repeats within one file are all kept (as often as the file that
    has most of them holds them). ``dataset.behaviors=false`` uses the history files only."""
    directory = Path(directory)
    histories = split_files(directory, "history.parquet")
    frames = []
    for path in histories:
        t = _parquet(path, ["user_id", "impression_time_fixed", "article_id_fixed"])
        items, rows = flatten_lists(t["article_id_fixed"])
        times, time_rows = flatten_lists(t["impression_time_fixed"])
        if not np.array_equal(rows, time_rows):
            raise DataError(f"{path}: article_id_fixed and impression_time_fixed differ in length for some user")
        frames.append(pd.DataFrame({"user": t["user_id"].combine_chunks().take(pa.array(rows)).to_numpy(zero_copy_only=False),
                                    "item": items.to_numpy(zero_copy_only=False), "ms": epoch_ms(times), "file": len(frames)}))
        beh = path.with_name("behaviors.parquet")
        if behaviors and beh.is_file():
            b = _parquet(beh, ["user_id", "impression_time", "article_ids_clicked"])
            items, rows = flatten_lists(b["article_ids_clicked"])
            frames.append(pd.DataFrame({"user": b["user_id"].combine_chunks().take(pa.array(rows)).to_numpy(zero_copy_only=False),
                                        "item": items.to_numpy(zero_copy_only=False),
                                        "ms": epoch_ms(b["impression_time"].combine_chunks().take(pa.array(rows))),
                                        "file": len(frames)}))
    df = pd.concat(frames, ignore_index=True)
    # The n-th copy of a click within its file: copies of the same n in other files are the overlap.
    nth = df.groupby(["user", "item", "ms", "file"], sort=False).cumcount().rename("nth")
    df = df[~pd.concat([df[["user", "item", "ms"]], nth], axis=1).duplicated()].reset_index(drop=True)
    return canonical(chronological(df, df["ms"].to_numpy(), 1_000), histories[0])
