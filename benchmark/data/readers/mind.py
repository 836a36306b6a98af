"""MIND (Microsoft News) ``behaviors.tsv``: click histories and impressions."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.compute as pc

from benchmark.data.readers.common import (
    UNTIMED, as_series, canonical, read_arrow_csv, split_files, split_tokens, to_seconds,
)
from benchmark.data.readers.registry import register


MIND_COLUMNS = ["impression_id", "user", "time", "history", "impressions"]


@register("mind", files=("behaviors.tsv",))
def read_mind(directory: str | Path, history: bool = True, **_: object) -> pd.DataFrame:
    """MIND ``behaviors.tsv`` (tab-separated, no header: impression id, user, time, history,
    impressions), in the directory itself or in each of its sub-folders (train/, dev/, ...).

    A user's sequence is their click history followed by the clicked items of each impression
    (the candidates with a ``-1`` suffix; ``-0`` and unlabelled test candidates are skipped), at
    the impression's time. The history field has no timestamps and may be empty; its items are
    taken from the user's earliest impression, in their listed order, and placed one second
    before the first impression of the whole log (they were clicked before the log window), so
    they precede every impression click and stay in the train part of any temporal split.
    ``dataset.history=false`` drops them.
    """
    directory = Path(directory)
    files = split_files(directory, "behaviors.tsv")
    parts = []
    for path in files:
        t = read_arrow_csv(path, MIND_COLUMNS, delimiter="\t", quoted=False, types={c: pa.string() for c in MIND_COLUMNS})
        secs = to_seconds(as_series(t["time"]), "%m/%d/%Y %I:%M:%S %p", path)
        parts.append((t, secs))
    table = pa.concat_tables([t for t, _ in parts])
    secs = np.concatenate([s for _, s in parts])
    users = table["user"].combine_chunks()

    clicked, rows = split_tokens(table["impressions"])
    is_click = pc.ends_with(clicked, "-1")
    rows = rows[is_click.to_numpy(zero_copy_only=False)]
    clicks = pd.DataFrame({
        "user": as_series(users.take(pa.array(rows))),
        "item": as_series(pc.replace_substring_regex(pc.filter(clicked, is_click), pattern="-1$", replacement="")),
        "timestamp": secs[rows],
    })
    if not history or len(table) == 0:
        return canonical(clicks, files[0])
    # The history of each user's earliest impression (file order breaks time ties).
    first = np.lexsort((np.arange(len(secs)), secs))
    first = first[~pd.Series(users.take(pa.array(first)).to_numpy(zero_copy_only=False)).duplicated().to_numpy()]
    hist_items, hist_rows = split_tokens(table["history"].take(pa.array(first)))
    untimed = int(secs.min()) - 1
    hist = pd.DataFrame({
        "user": as_series(users.take(pa.array(first[hist_rows]))),
        "item": as_series(hist_items),
        "timestamp": np.full(len(hist_rows), untimed, dtype=np.int64),
    })
    out = canonical(pd.concat([hist, clicks], ignore_index=True), files[0])
    out.attrs[UNTIMED] = untimed  # the history's placeholder time: stats and dataset.history_targets tell them apart
    return out
