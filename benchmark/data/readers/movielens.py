"""MovieLens in its three native layouts (ml-100k, ml-1m/10m, ml-20m/25m/32m/latest)."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.compute as pc

from benchmark.data.readers.common import MissingData, as_series, canonical, clip, header_of, read_arrow_csv
from benchmark.data.readers.registry import register
from benchmark.errors import DataError


@register("movielens", files=("ratings.csv", "ratings.dat", "u.data"))
def read_movielens(directory: str | Path, **_: object) -> pd.DataFrame:
    """MovieLens in any of its three native layouts, chosen by which file is present:

    - ``ratings.csv`` with header ``userId,movieId,rating,timestamp`` (ml-latest(-small), ml-20m/25m/32m);
    - ``ratings.dat`` with ``::`` separators, no header (ml-1m, ml-10m);
    - ``u.data`` tab-separated ``user item rating timestamp``, no header (ml-100k).
    """
    directory = Path(directory)
    names = ["user", "item", "rating", "timestamp"]
    text = {n: pa.string() for n in names}
    if (directory / "ratings.csv").is_file():
        path = directory / "ratings.csv"
        expected = ["userId", "movieId", "rating", "timestamp"]
        header = header_of(path)
        if header[:4] != expected:
            raise DataError(f"{path}: expected header {','.join(expected)}, got {clip(','.join(header))}")
        t = read_arrow_csv(path, names + header[4:], header=True, columns=names, types=text, nulls=True)
    elif (directory / "ratings.dat").is_file():
        path = directory / "ratings.dat"
        # '::' separators: split on ':' and keep every other field (ratings.dat holds no titles).
        t = read_arrow_csv(path, ["user", "_1", "item", "_2", "rating", "_3", "timestamp"], delimiter=":", quoted=False,
                           columns=names, types=text, nulls=True)
    elif (directory / "u.data").is_file():
        path = directory / "u.data"
        t = read_arrow_csv(path, names, delimiter="\t", quoted=False, types=text, nulls=True)
    else:
        raise MissingData(
            f"data file not found: {directory}/ratings.csv (or ratings.dat, u.data); "
            "download the MovieLens archive from https://grouplens.org/datasets/movielens/ and "
            "unpack it there, or set dataset.path"
        )
    missing = pc.or_(pc.is_null(t["user"]), pc.is_null(t["item"])).to_numpy(zero_copy_only=False)
    if missing.any():
        raise DataError(f"{path}: missing user or item in data row {int(np.flatnonzero(missing)[0]) + 1} (wrong separator?)")
    return canonical(pd.DataFrame({n: as_series(t[n]) for n in names}), path)
