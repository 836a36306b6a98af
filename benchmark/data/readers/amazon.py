"""Amazon reviews, one category, in any release (2014, 2018, 2023; full or 5-core)."""

from __future__ import annotations

from pathlib import Path

import pandas as pd
import pyarrow as pa

from benchmark.data.readers.common import (
    MissingData, as_series, canonical, chronological, clip, header_of, read_arrow_csv, read_json_lines,
)
from benchmark.data.readers.registry import register
from benchmark.errors import DataError


def _amazon_path(directory: Path, filename: str, release: str) -> Path:
    """``filename`` (the download's name) in ``directory``, plain or .gz, else the same reviews as
    JSON lines (``.jsonl`` for ``.json``; for 2023, the raw review file ``<Category>.jsonl``)."""
    if directory.is_file():
        return directory
    stem = filename.removesuffix(".gz")
    alt = stem.removesuffix(".csv" if release.startswith("2023") else ".json") + ".jsonl"
    names = list(dict.fromkeys([filename, stem, stem + ".gz", alt, alt + ".gz"]))  # the download's own name first
    for name in names:
        if (directory / name).is_file():
            return directory / name
    raise MissingData(f"data file not found: {directory / filename} (or {', '.join(names[1:])})")


@register("amazon", files=("ratings_<Category>.csv", "reviews_<Category>_5.json.gz", "<Category>.csv", "<Category>_5.json.gz", "<Category>.csv.gz", "<Category>.jsonl"))
def read_amazon(directory: str | Path, category: str = "", release: str | int = "2014-5core", **_: object) -> pd.DataFrame:
    """Amazon reviews, one category, in any of the releases (``dataset.release``):

    - ``2014``: ``ratings_<Category>.csv``, no header, ``user,item,rating,timestamp`` (seconds);
    - ``2014-5core`` / ``2018-5core``: ``reviews_<Category>_5.json.gz`` / ``<Category>_5.json.gz``,
      JSON lines with ``reviewerID``, ``asin``, ``overall``, ``unixReviewTime`` (seconds);
    - ``2018``: ``<Category>.csv``, no header, ``item,user,rating,timestamp`` (item first!);
    - ``2023`` / ``2023-5core``: ``<Category>.csv(.gz)`` with header ``user_id,parent_asin,rating,timestamp``
      (milliseconds), or the raw ``<Category>.jsonl(.gz)`` review file with the same fields.
    """
    from benchmark.data.catalog import amazon_file

    release = str(release)
    if not category:
        raise DataError("dataset.category is not set (e.g. Beauty, Sports_and_Outdoors, All_Beauty)")
    path = _amazon_path(Path(directory), amazon_file(category, release), release)
    if ".json" in path.name:
        if release.startswith("2023"):
            t = read_json_lines(path, {"user_id": pa.string(), "parent_asin": pa.string(), "rating": pa.float64(), "timestamp": pa.int64()})
            names = ("user_id", "parent_asin", "rating", "timestamp")
        else:
            t = read_json_lines(path, {"reviewerID": pa.string(), "asin": pa.string(), "overall": pa.float64(), "unixReviewTime": pa.int64()})
            names = ("reviewerID", "asin", "overall", "unixReviewTime")
        df = pd.DataFrame({k: as_series(t[n]) for k, n in zip(("user", "item", "rating", "timestamp"), names)})
    elif release.startswith("2023"):
        expected = ["user_id", "parent_asin", "rating", "timestamp"]
        if header_of(path)[:4] != expected:
            raise DataError(f"{path}: expected header {','.join(expected)}, got {clip(','.join(header_of(path)))}")
        t = read_arrow_csv(path, ["user", "item", "rating", "timestamp"], header=True, columns=["user", "item", "rating", "timestamp"],
                           types={"user": pa.string(), "item": pa.string(), "rating": pa.float64(), "timestamp": pa.int64()})
        df = pd.DataFrame({k: as_series(t[k]) for k in ("user", "item", "rating")})
    else:
        names = ["user", "item", "rating", "timestamp"] if release == "2014" else ["item", "user", "rating", "timestamp"]
        t = read_arrow_csv(path, names, types={"user": pa.string(), "item": pa.string(), "rating": pa.float64(), "timestamp": pa.int64()})
        df = pd.DataFrame({k: as_series(t[k]) for k in ("user", "item", "rating", "timestamp")})
    if release.startswith("2023"):
        return canonical(chronological(df, t["timestamp"].to_numpy(), 1_000), path)
    return canonical(df, path)
