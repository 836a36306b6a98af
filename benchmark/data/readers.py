"""Readers of native dataset formats.

Each reader takes a directory and returns the canonical interactions table: a DataFrame with
columns ``user`` (str), ``item`` (str), ``timestamp`` (int64) and optionally ``rating`` (float),
rows in the order of the file. File order matters: it breaks timestamp ties (stable sort).
"""

from __future__ import annotations

from pathlib import Path
from typing import Callable

import numpy as np
import pandas as pd

from benchmark.errors import DataError

Reader = Callable[..., pd.DataFrame]
READERS: dict[str, Reader] = {}


def register(name: str) -> Callable[[Reader], Reader]:
    def wrap(fn: Reader) -> Reader:
        READERS[name] = fn
        return fn

    return wrap


def require_file(directory: Path, name: str, hint: str = "") -> Path:
    """The path of ``name`` under ``directory``, or a DataError naming the path and how to get it."""
    path = Path(directory) / name
    if not path.is_file():
        msg = f"data file not found: {path}"
        raise DataError(msg + (f" ({hint})" if hint else ""))
    return path


def canonical(df: pd.DataFrame, source: Path) -> pd.DataFrame:
    """Types the canonical columns; rejects missing or unparsable values with the file named."""
    out = pd.DataFrame(
        {
            "user": df["user"].astype(str).to_numpy(),
            "item": df["item"].astype(str).to_numpy(),
        }
    )
    ts = pd.to_numeric(df["timestamp"], errors="coerce")
    bad = ts.isna().to_numpy()
    if bad.any():
        row = int(np.flatnonzero(bad)[0])
        raise DataError(f"{source}: unparsable or missing timestamp in data row {row + 1}")
    out["timestamp"] = ts.astype("int64").to_numpy()
    if "rating" in df:
        out["rating"] = pd.to_numeric(df["rating"], errors="coerce").astype("float64").to_numpy()
    return out


def read_table(path: Path, **kwargs) -> pd.DataFrame:
    """pandas.read_csv with errors reported as one line naming the file."""
    try:
        return pd.read_csv(path, **kwargs)
    except UnicodeDecodeError as e:
        raise DataError(f"{path}: not valid UTF-8 text ({e.reason} at byte {e.start})") from None
    except (pd.errors.ParserError, ValueError) as e:
        raise DataError(f"{path}: cannot parse: {str(e).splitlines()[0]}") from None
    except pd.errors.EmptyDataError:
        raise DataError(f"{path}: file is empty") from None


@register("movielens")
def read_movielens(directory: str | Path, **_: object) -> pd.DataFrame:
    """MovieLens in any of its three native layouts, chosen by which file is present:

    - ``ratings.csv`` with header ``userId,movieId,rating,timestamp`` (ml-latest(-small), ml-20m/25m/32m);
    - ``ratings.dat`` with ``::`` separators, no header (ml-1m, ml-10m);
    - ``u.data`` tab-separated ``user item rating timestamp``, no header (ml-100k).
    """
    directory = Path(directory)
    names = ["user", "item", "rating", "timestamp"]
    if (directory / "ratings.csv").is_file():
        path = directory / "ratings.csv"
        df = read_table(path, dtype=str, encoding="utf-8")
        expected = ["userId", "movieId", "rating", "timestamp"]
        if list(df.columns[:4]) != expected:
            raise DataError(f"{path}: expected header {','.join(expected)}, got {','.join(map(str, df.columns))}")
        df.columns = names + list(df.columns[4:])
    elif (directory / "ratings.dat").is_file():
        path = directory / "ratings.dat"
        # '::' is a multi-char separator; a regex-free split via the python engine is slow, so
        # read the whole line and split with vectorised string ops.
        raw = read_table(path, sep="\t", header=None, names=["line"], dtype=str, encoding="utf-8")
        parts = raw["line"].str.split("::", expand=True, regex=False)
        if parts.shape[1] < 4:
            raise DataError(f"{path}: expected 'user::item::rating::timestamp' lines")
        df = parts.iloc[:, :4]
        df.columns = names
    elif (directory / "u.data").is_file():
        path = directory / "u.data"
        df = read_table(path, sep="\t", header=None, names=names, dtype=str, encoding="utf-8")
    else:
        raise DataError(
            f"data file not found: {directory}/ratings.csv (or ratings.dat, u.data); "
            "download the MovieLens archive from https://grouplens.org/datasets/movielens/ and "
            "unpack it there, or set dataset.path"
        )
    if df[["user", "item"]].isna().any().any():
        row = int(np.flatnonzero(df[["user", "item"]].isna().any(axis=1).to_numpy())[0])
        raise DataError(f"{path}: missing user or item in data row {row + 1} (wrong separator?)")
    return canonical(df, path)


def read_interactions(reader: str, directory: str | Path, **options: object) -> pd.DataFrame:
    """Dispatches to the named reader; an unknown name lists the known ones."""
    if reader not in READERS:
        raise DataError(f"unknown dataset reader {reader!r}; known: {', '.join(sorted(READERS))}")
    return READERS[reader](directory, **options)
