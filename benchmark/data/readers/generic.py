"""The generic formats a researcher brings: sequences and pairs text files, CSV/TSV/parquet tables, RecBole .inter files."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq

from benchmark.data.readers.common import (
    as_series, canonical, chronological, clip, datetime_ticks, file_order, find_file, fine_times, header_of,
    order_only, positions, read_arrow_csv, split_tokens,
)
from benchmark.data.readers.registry import register
from benchmark.errors import DataError


def _lines(path: Path) -> pa.ChunkedArray:
    """Each line of a text file (CRLF-safe; blank ones too, so row i is line i + 1), as one Arrow string column."""
    t = read_arrow_csv(path, ["line"], delimiter="\x1f", quoted=False, types={"line": pa.string()}, blank_lines=True)
    return pc.utf8_rtrim(t["line"], characters="\r")


@register("sequences", files=("*.txt",), order_only=True)
def read_sequences(directory: str | Path, file: str | None = None, **_: object) -> pd.DataFrame:
    """One user per line, ``user item item ...`` (whitespace-separated, items oldest first), as
    S3-Rec/ICLRec ship Amazon Beauty/Sports/Toys. There are no times: an item's timestamp is its
    0-based position among the user's items in file order (a user on two lines continues)."""
    path = find_file(directory, ["*.txt"], file)
    tokens, rows = split_tokens(_lines(path), whitespace=True)  # blank lines give no token
    starts = np.r_[True, rows[1:] != rows[:-1]] if len(rows) else np.zeros(0, bool)  # first token of a line = user
    users = as_series(tokens.filter(pa.array(starts)).take(pa.array(np.cumsum(starts)[~starts] - 1)))
    # Positions count on across lines: a user on two lines continues the first line's order.
    return order_only(canonical(pd.DataFrame({"user": users, "item": as_series(tokens.filter(pa.array(~starts))),
                                              "timestamp": positions(users)}), path))


@register("pairs", files=("*.txt",), order_only=True)
def read_pairs(directory: str | Path, file: str | None = None, **_: object) -> pd.DataFrame:
    """One ``user item`` pair per line, in chronological order (SASRec's data files); space, tab
    or comma separated. The timestamp is the 0-based position within the user's lines."""
    path = find_file(directory, ["*.txt"], file)
    lines = _lines(path)
    tokens, rows = split_tokens(pc.replace_substring(lines, ",", " "), whitespace=True)
    counts = np.bincount(rows, minlength=len(lines))
    wrong = np.flatnonzero((counts != 2) & (counts != 0))  # blank lines are skipped
    if len(wrong):
        line = int(wrong[0]) + 1
        raise DataError(f"{path}: expected `user item` on every line; line {line} has {counts[line - 1]} fields")
    users, items = tokens.take(pa.array(np.arange(0, len(tokens), 2))), tokens.take(pa.array(np.arange(1, len(tokens), 2)))
    return order_only(canonical(pd.DataFrame({"user": as_series(users), "item": as_series(items),
                                              "timestamp": positions(as_series(users))}), path))


def _delimiter(path: Path, sep: str | None) -> str:
    if sep:
        return {"\\t": "\t", "tab": "\t", "space": " "}.get(sep, sep)
    name = path.name.lower().removesuffix(".gz").removesuffix(".bz2")
    if name.endswith((".tsv", ".inter", ".tab")):
        return "\t"
    first = header_of(path, "\x1f")[0]
    return max([",", "\t", ";", "|"], key=first.count)


def check_columns(mapping: dict[str, Any]) -> None:
    """dataset.columns: only the canonical keys, each naming a column of its own."""
    unknown = set(mapping) - {"user", "item", "timestamp", "rating"}
    if unknown:
        raise DataError(f"dataset.columns has unknown keys {sorted(unknown)}; use user, item, timestamp, rating")
    seen: dict[str, str] = {}
    for key, column in mapping.items():
        if column is None:  # null: no such column (timestamp, rating)
            continue
        if str(column) in seen:
            raise DataError(f"dataset.columns.{seen[str(column)]} and dataset.columns.{key} name the same column "
                            f"{column!r}; each needs a column of its own")
        seen[str(column)] = key


@register("csv", files=("*.parquet", "*.csv", "*.tsv", "*.csv.gz", "*.tsv.gz"))
def read_csv_generic(directory: str | Path, columns: dict[str, Any] | None = None, file: str | None = None,
                     sep: str | None = None, header: bool = True, timestamp_unit: str = "s", **_: object) -> pd.DataFrame:
    """Any CSV/TSV (plain or .gz) or parquet table. ``dataset.columns`` maps the canonical names
    to the file's: ``{user: ..., item: ..., timestamp: ..., rating: ...}`` (column names, or
    0-based positions when ``dataset.header=false``); user and item are required. Without a
    timestamp column each user's rows keep file order. ``dataset.timestamp_unit``: s, ms, us, ns,
    iso, or a strftime format; a parquet date or timestamp column is read in its own unit
    whatever ``timestamp_unit`` says."""
    path = find_file(directory, ["*.parquet", "*.csv", "*.tsv", "*.csv.gz", "*.tsv.gz"], file)
    mapping = dict(columns or {"user": "user", "item": "item", "timestamp": "timestamp"})
    # null: the file has no such column (columns.timestamp=null for a file without times: file order)
    mapping = {k: v for k, v in mapping.items() if not (v is None and k in ("timestamp", "rating"))}
    for key in ("user", "item"):
        if key not in mapping:
            raise DataError(f"dataset.columns must name the {key} column (it names {', '.join(sorted(mapping)) or 'none'})")
    check_columns(mapping)
    if path.suffix == ".parquet":
        try:
            t = pq.read_table(path, columns=[str(c) for c in mapping.values()])
        except (pa.ArrowInvalid, KeyError) as e:
            raise DataError(f"{path}: cannot read columns {list(mapping.values())}: {str(e).splitlines()[0]}") from None
        data = {k: t[str(c)] for k, c in mapping.items()}
    else:
        delim = _delimiter(path, sep)
        if header:
            names = header_of(path, delim)
            missing = [str(c) for c in mapping.values() if str(c) not in names]
            if missing:
                raise DataError(f"{path}: no column {', '.join(missing)} (dataset.columns); the header has {clip(', '.join(names))}")
            t = read_arrow_csv(path, header=True, delimiter=delim, columns=[str(c) for c in mapping.values()],
                               types={str(c): pa.string() for c in mapping.values()})
            data = {k: t[str(c)] for k, c in mapping.items()}
        else:
            first = header_of(path, delim)
            names = [f"c{i}" for i in range(len(first))]
            bad = [c for c in mapping.values() if not str(c).isdigit() or int(c) >= len(names)]
            if bad:
                raise DataError(f"{path}: dataset.columns must be 0-based positions below {len(names)} when dataset.header=false (got {', '.join(map(str, bad))})")
            t = read_arrow_csv(path, names, delimiter=delim, types={n: pa.string() for n in names})
            data = {k: t[names[int(c)]] for k, c in mapping.items()}
    df = pd.DataFrame({k: as_series(v) for k, v in data.items()})
    if "timestamp" not in df:
        file_order(path, "no timestamp column (dataset.columns.timestamp=null)")
        df["timestamp"] = positions(df["user"])
        return order_only(canonical(df, path))
    times = data["timestamp"]
    if pa.types.is_timestamp(times.type) or pa.types.is_date(times.type):  # parquet datetimes carry their own unit
        fine, ticks = datetime_ticks(times, path)
    else:
        fine, ticks = fine_times(df["timestamp"], str(timestamp_unit), path)
    return canonical(chronological(df, fine, ticks), path)


@register("recbole", files=("*.inter",))
def read_recbole(directory: str | Path, file: str | None = None, columns: dict[str, str] | None = None, **_: object) -> pd.DataFrame:
    """RecBole atomic ``<name>.inter`` file: tab-separated, header ``field:type`` (e.g.
    ``user_id:token item_id:token rating:float timestamp:float``). User = ``user_id`` (or
    ``session_id``), item = ``item_id``; ``dataset.columns`` overrides the field names. Without a
    timestamp field each user's rows keep file order."""
    path = find_file(directory, ["*.inter"], file)
    fields = header_of(path, "\t")
    names = [f.split(":", 1)[0] for f in fields]
    mapping = dict(columns or {})
    check_columns(mapping)
    # null: leave that field out even where the file has it (columns.timestamp=null: file order)
    left_out = {opt for opt in ("timestamp", "rating") if opt in mapping and mapping[opt] is None}
    mapping = {k: v for k, v in mapping.items() if k not in left_out}
    mapping.setdefault("user", "user_id" if "user_id" in names else "session_id")
    mapping.setdefault("item", "item_id")
    for opt in ("timestamp", "rating"):
        if opt not in mapping and opt not in left_out and opt in names:
            mapping[opt] = opt
    missing = [c for c in mapping.values() if c not in names]
    if missing:
        raise DataError(f"{path}: no field {', '.join(missing)}; the header has {clip(', '.join(fields))}")
    check_columns(mapping)  # a default may have landed on a column given for another key
    t = read_arrow_csv(path, names, header=True, delimiter="\t", quoted=False, columns=list(mapping.values()),
                       types={n: pa.string() for n in mapping.values()})
    df = pd.DataFrame({k: as_series(t[c]) for k, c in mapping.items()})
    if "timestamp" in df:
        ts = pd.to_numeric(df["timestamp"].astype(str), errors="coerce")
        bad = ts.isna().to_numpy()
        if bad.any():
            raise DataError(f"{path}: unparsable or missing timestamp in data row {int(np.flatnonzero(bad)[0]) + 1}")
        # float seconds: order by the exact value (stable: file order among equal ones), then floor to seconds
        df = chronological(df, ts.to_numpy(dtype=np.float64), 1)
    else:
        file_order(path, "no timestamp field read (none in the header, or dataset.columns.timestamp=null)")
        df["timestamp"] = positions(df["user"])
        return order_only(canonical(df, path))
    return canonical(df, path)
