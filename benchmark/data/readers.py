"""Readers of native dataset formats.

Each reader takes a directory (or, for single-file formats, the file itself) and returns the
canonical interactions table: a DataFrame with columns ``user`` (str), ``item`` (str),
``timestamp`` (int64, unix seconds; or a 0-based position where the format has only an order)
and optionally ``rating`` (float), rows in the order of the file. File order matters: it breaks
timestamp ties (stable sort). Readers whose files are newest-first, unsorted, or finer than a
second emit their rows in chronological order of the full-precision time, so the tie-break stays
right after the cut to seconds.

All parsing is vectorised (pyarrow CSV/JSON/parquet readers and compute kernels, pandas); no
Python loop runs per row. User and item ids are converted to strings once per distinct value.
"""

from __future__ import annotations

import codecs
import logging

from pathlib import Path
from typing import Any, Callable, Iterable

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.csv as pacsv
import pyarrow.json as pajson
import pyarrow.parquet as pq

from benchmark.errors import DataError

log = logging.getLogger("seqrec")
Reader = Callable[..., pd.DataFrame]
# attrs key of the timestamp a reader gives items whose time is unknown (MIND's click history)
UNTIMED = "untimed_timestamp"
READERS: dict[str, Reader] = {}


class MissingData(DataError):
    """A native data file is not where the reader looks (fetch it or set dataset.path)."""


def register(name: str) -> Callable[[Reader], Reader]:
    def wrap(fn: Reader) -> Reader:
        READERS[name] = fn
        return fn

    return wrap


SHOWN = 200  # at most this many characters of a data line in any error (a JSON line may be 20 KB)


def clip(text: str, limit: int = SHOWN) -> str:
    """``text`` cut to ``limit`` characters, saying how much was left out."""
    text = str(text)
    return text if len(text) <= limit else f"{text[:limit]}... ({len(text) - limit} more characters)"


def require_file(directory: Path, name: str, hint: str = "") -> Path:
    """The path of ``name`` under ``directory``, or a MissingData error naming the path and how to get it."""
    path = Path(directory) / name
    if not path.is_file():
        msg = f"data file not found: {path}"
        raise MissingData(msg + (f" ({hint})" if hint else ""))
    return path


def find_file(path: str | Path, patterns: Iterable[str], file: str | None = None) -> Path:
    """``path`` itself when it is a file; else ``path/file``; else the single match of the first
    pattern that matches anything in ``path``, hidden files aside (the dataset hash leaves them out
    too, so an edit to one would go unnoticed by the split cache)."""
    path = Path(path)
    if path.is_file():
        if file and Path(file).name != path.name:  # else dataset.file would be ignored without a word
            raise DataError(f"dataset.file={file} cannot apply: dataset.path={path} is a file; set dataset.path to "
                            "its folder, or leave dataset.file out")
        return path
    if file:
        return require_file(path, file)
    patterns = list(patterns)
    for pattern in patterns:
        hits = sorted(p for p in path.glob(pattern) if p.is_file() and not p.name.startswith("."))
        if len(hits) == 1:
            return hits[0]
        if len(hits) > 1:
            names = ", ".join(p.name for p in hits[:5])
            raise DataError(f"{path}: several files match {pattern} ({names}); choose one with dataset.file")
    raise MissingData(f"data file not found: {path / patterns[0]}")


def _arrow(values: Any) -> pa.ChunkedArray:
    arr = values if isinstance(values, (pa.Array, pa.ChunkedArray)) else pa.array(values)
    return arr if isinstance(arr, pa.ChunkedArray) else pa.chunked_array([arr])


def split_files(directory: Path, name: str) -> list[Path]:
    """``directory/name`` when present, else ``name`` in every split sub-folder (train/, dev/, ...)."""
    if (directory / name).is_file():
        return [directory / name]
    files = sorted(p for p in directory.glob(f"*/{name}") if not p.parent.name.startswith("."))  # as the dataset hash
    if not files:
        raise MissingData(f"data file not found: {directory}/{name} (or {directory}/<split>/{name})")
    return files


def _strings(values: Any) -> pd.Series:
    """The ids as pandas' string dtype, converted in Arrow (no Python object per row)."""
    arr = _arrow(values)
    if not (pa.types.is_string(arr.type) or pa.types.is_large_string(arr.type)):
        arr = arr.cast(pa.string())
    return pd.Series(arr, dtype=pd.ArrowDtype(arr.type), copy=False).astype("str")


def _numbers(values: Any, kind: pa.DataType) -> np.ndarray | None:
    """Numbers parsed in Arrow ("12" or "12.5"; floats cut toward zero for int64); None when a
    value is missing or does not parse (the caller then names the row)."""
    arr = _arrow(values)
    text = pa.types.is_string(arr.type) or pa.types.is_large_string(arr.type)
    for parse_as in (kind, pa.float64()) if text else (arr.type,):
        try:
            parsed = arr.cast(parse_as) if text else arr
            if parsed.null_count:
                return None
            if pa.types.is_floating(parsed.type) and pa.types.is_integer(kind):
                as_float = parsed.to_numpy()
                if not (np.abs(as_float) < 2.0**63).all():  # inf, NaN or beyond int64 would wrap silently
                    return None
            return parsed.cast(kind, safe=False).to_numpy()
        except (pa.ArrowInvalid, pa.ArrowNotImplementedError, pa.ArrowTypeError):
            continue
    return None


def _blank(values: Any) -> np.ndarray:
    """True where a text id is empty or only whitespace (an empty CSV field is not an id)."""
    arr = _arrow(values)
    if not (pa.types.is_string(arr.type) or pa.types.is_large_string(arr.type)):
        return np.zeros(len(arr), dtype=bool)
    blank = pc.or_(pc.equal(arr, ""), pc.utf8_is_space(arr))
    return pc.fill_null(blank, False).to_numpy(zero_copy_only=False)


def _timestamps_or_fail(values: Any, rows: np.ndarray, source: Path) -> np.ndarray:
    """Numeric timestamps parsed by pandas (the slow path, after Arrow refused them), or a DataError
    naming the first one that is missing, unparsable, infinite or beyond int64 by its data row."""
    values = pd.Series(values).reset_index(drop=True).astype(object)
    num = pd.to_numeric(values, errors="coerce").to_numpy(dtype=np.float64)
    bad = ~(np.abs(num) < 2.0**63)
    if bad.any():
        at = int(np.flatnonzero(bad)[0])
        raise DataError(f"{source}: unparsable or missing timestamp {clip(repr(values.iloc[at]))} in data row {int(rows[at])}")
    return num


def canonical(df: pd.DataFrame, source: Path) -> pd.DataFrame:
    """Types the canonical columns; rejects missing, empty or unparsable values with the file
    named. Data rows are named by ``df.index`` (``chronological`` keeps the file's row there)."""
    for col in ("user", "item"):
        bad = df[col].isna().to_numpy() | _blank(df[col])
        if bad.any():
            row = int(df.index[np.flatnonzero(bad)[0]])
            raise DataError(f"{source}: missing or empty {col} in data row {row + 1}")
    out = pd.DataFrame({"user": _strings(df["user"]), "item": _strings(df["item"])})
    ts = _numbers(df["timestamp"], pa.int64())
    if ts is None:
        ts = _timestamps_or_fail(df["timestamp"], np.asarray(df.index) + 1, source).astype(np.int64)
    out["timestamp"] = ts.astype(np.int64)
    if "rating" in df:
        rating = _numbers(df["rating"], pa.float64())
        if rating is None:
            values = pd.Series(df["rating"]).astype(object)
            rating = pd.to_numeric(values, errors="coerce").to_numpy(dtype=np.float64)
            bad = np.isnan(rating) & values.notna().to_numpy()
            if bad.any():
                row = int(np.flatnonzero(bad)[0])
                raise DataError(f"{source}: unparsable rating {clip(repr(values.iloc[row]))} in data row {int(df.index[row]) + 1}")
        out["rating"] = rating
    return out


def read_table(path: Path, **kwargs) -> pd.DataFrame:
    """pandas.read_csv with errors reported as one line naming the file. Only an empty field is
    missing: ids such as "NA", "null" or "nan" are kept as text (pandas would drop them)."""
    kwargs.setdefault("keep_default_na", False)
    kwargs.setdefault("na_values", [""])
    try:
        return pd.read_csv(path, **kwargs)
    except UnicodeDecodeError as e:
        raise DataError(f"{path}: not valid UTF-8 text ({e.reason} at byte {e.start})") from None
    except pd.errors.EmptyDataError:  # before ValueError, its base class
        raise DataError(f"{path}: file is empty") from None
    except (pd.errors.ParserError, ValueError) as e:
        raise DataError(f"{path}: cannot parse: {clip(str(e).splitlines()[0])}") from None


def read_arrow_csv(path: Path, names: list[str] | None = None, *, delimiter: str = ",", header: bool = False,
                   quoted: bool = True, types: dict[str, pa.DataType] | None = None,
                   columns: list[str] | None = None, nulls: bool = False, blank_lines: bool = False) -> pa.Table:
    """pyarrow's multi-threaded CSV reader (CRLF and .gz/.bz2 handled) with errors as one line.
    ``names`` name the columns of a header-less file, or replace the header when ``header``;
    ``nulls``: empty fields are missing values (else empty strings); ``blank_lines``: empty
    lines are rows (else skipped)."""
    read = pacsv.ReadOptions(column_names=names, skip_rows=1 if (header and names) else 0, block_size=1 << 24)
    parse = pacsv.ParseOptions(delimiter=delimiter, quote_char='"' if quoted else False, ignore_empty_lines=not blank_lines)
    convert = pacsv.ConvertOptions(column_types=types or {}, include_columns=columns, strings_can_be_null=nulls,
                                   quoted_strings_can_be_null=False, null_values=[""] if nulls else None)
    try:
        return pacsv.read_csv(path, read_options=read, parse_options=parse, convert_options=convert)
    except (pa.ArrowInvalid, pa.ArrowKeyError, KeyError) as e:
        msg = str(e).splitlines()[0] if str(e) else type(e).__name__
        if "Empty CSV file" in msg:
            raise DataError(f"{path}: file is empty") from None
        if "invalid UTF8" in msg:
            raise DataError(f"{path}: not valid UTF-8 text{first_bad_utf8(path)}") from None
        raise DataError(f"{path}: cannot parse: {clip(msg)}") from None


NEWLINE = b"\n"


def first_bad_utf8(path: Path) -> str:
    """' (line N)' of the first invalid UTF-8 byte of a plain file, read in chunks; '' otherwise."""
    if path.suffix in (".gz", ".bz2", ".zip"):
        return ""
    decoder, line = codecs.getincrementaldecoder("utf-8")(), 1
    with open(path, "rb") as f:
        for chunk in iter(lambda: f.read(1 << 20), b""):
            try:
                decoder.decode(chunk)
            except UnicodeDecodeError as e:
                return f" (line {line + chunk.count(NEWLINE, 0, e.start)})"
            line += chunk.count(NEWLINE)
    return ""


def header_of(path: Path, delimiter: str = ",") -> list[str]:
    """The first line of a (possibly compressed) text file, split on ``delimiter``."""
    with pa.input_stream(str(path), compression="detect") as f:
        head = f.read(1 << 16)
    line = head.split(b"\n", 1)[0].decode("utf-8-sig", errors="replace").rstrip("\r")  # -sig: a BOM is not a name
    return [c.strip().strip('"') for c in line.split(delimiter)]


def as_series(arr: pa.ChunkedArray | pa.Array) -> pd.Series:
    """An Arrow-backed pandas Series (no copy of the strings)."""
    return pd.Series(arr, dtype=pd.ArrowDtype(arr.type), copy=False)


TICKS = {"s": 1, "ms": 1_000, "us": 1_000_000, "ns": 1_000_000_000}  # epoch units -> ticks per second


def _cast(arr: pa.ChunkedArray, kind: pa.DataType) -> np.ndarray | None:
    """``arr`` as ``kind`` (safe cast: no fraction lost), or None when a value is missing or does not fit."""
    try:
        out = arr.cast(kind)
    except (pa.ArrowInvalid, pa.ArrowNotImplementedError, pa.ArrowTypeError):
        return None
    return None if out.null_count else out.to_numpy()


def fine_times(values: Any, unit: str, source: Path) -> tuple[np.ndarray, int]:
    """(int64 times, ticks per second) from epoch numbers in ``unit`` (s, ms, us, ns) or from
    datetime text (``unit`` = 'iso' or a strftime format; each distinct string is parsed once).
    Fractional seconds keep their milliseconds and datetimes their microseconds, for the sort."""
    values = pd.Series(values).reset_index(drop=True)
    if unit in TICKS:
        arr = _arrow(values)
        num = _cast(arr, pa.int64())
        if num is not None:
            return num, TICKS[unit]
        scale = 1_000 if unit == "s" else 1  # float seconds: keep the milliseconds
        num = _numbers(arr, pa.float64())
        if num is None:
            num = _timestamps_or_fail(values, np.arange(1, len(values) + 1), source)
        fine = np.floor(num * scale)
        out = ~(np.abs(fine) < 2.0**63)  # inf, or beyond int64 once in milliseconds
        if out.any():
            at = int(np.flatnonzero(out)[0])
            raise DataError(f"{source}: unparsable or missing timestamp {clip(repr(values.iloc[at]))} in data row {at + 1}")
        return fine.astype(np.int64), TICKS[unit] * scale
    codes, uniques = pd.factorize(values, use_na_sentinel=True)
    # 'ISO8601': each value read with its own precision and offset (pandas would infer one format from the first)
    parsed = pd.to_datetime(pd.Index(uniques).astype(str), format="ISO8601" if unit == "iso" else unit, utc=True, errors="coerce")
    bad = (codes < 0) | np.asarray(parsed.isna())[np.maximum(codes, 0)]
    if bad.any():
        row = int(np.flatnonzero(bad)[0])
        raise DataError(f"{source}: unparsable or missing timestamp {clip(repr(values.iloc[row]))} in data row {row + 1} (expected {unit} times)")
    micros = ((parsed - pd.Timestamp(0, tz="UTC")) // pd.Timedelta(microseconds=1)).to_numpy(dtype=np.int64)
    return micros[codes], 1_000_000


def to_seconds(values: Any, unit: str, source: Path) -> np.ndarray:
    """Unix seconds (int64, floored) of ``fine_times``."""
    fine, ticks = fine_times(values, unit, source)
    return fine // ticks


def datetime_ticks(times: pa.ChunkedArray, source: Path) -> tuple[np.ndarray, int]:
    """(int64 times, ticks per second) of an Arrow date or timestamp column, in its own unit
    (a zoned timestamp is stored in UTC)."""
    if pa.types.is_date(times.type):
        times = times.cast(pa.timestamp("ms"))
    if times.null_count:
        row = int(np.flatnonzero(pc.is_null(times).to_numpy(zero_copy_only=False))[0])
        raise DataError(f"{source}: missing timestamp in data row {row + 1}")
    return times.cast(pa.int64()).to_numpy(), TICKS[times.type.unit]


def chronological(df: pd.DataFrame, fine_time: np.ndarray, unit_per_second: int) -> pd.DataFrame:
    """Rows sorted (stably) by a finer-than-second time, then that time cut to unix seconds:
    the file-order tie-break of the canonical table then follows the fine time. The index keeps
    each row's position in the input, so that errors name the file's row."""
    order = np.argsort(fine_time, kind="stable")
    df = df.iloc[order]
    df["timestamp"] = (np.asarray(fine_time)[order] // unit_per_second).astype(np.int64)  # floor, also for floats
    return df


def file_order(path: Path, how: str) -> None:
    """Warns that a table without times is ordered by its rows (HetRec's user_artists.dat is sorted
    by artist id: its "sequences" would be alphabetical, not temporal)."""
    log.warning("%s: %s: each user's sequence is in file order; make sure the rows are in time order", path, how)


def positions(users: Any) -> np.ndarray:
    """0, 1, 2, ... within each user, in file order: the timestamp of order-only formats."""
    codes = pd.factorize(pd.Series(users))[0]
    return pd.Series(codes).groupby(codes).cumcount().to_numpy(dtype=np.int64)


def flatten_lists(lists: pa.ChunkedArray | pa.Array) -> tuple[pa.ChunkedArray, np.ndarray]:
    """(all list elements, index of the row each came from) — a vectorised explode, chunk by chunk
    (no concatenation of huge string columns)."""
    chunks = lists.chunks if isinstance(lists, pa.ChunkedArray) else [lists]
    values, rows, offset = [], [], 0
    for chunk in chunks:
        values.append(pc.list_flatten(chunk))
        rows.append(pc.list_parent_indices(chunk).to_numpy(zero_copy_only=False).astype(np.int64) + offset)
        offset += len(chunk)
    value_type = lists.type.value_type
    return pa.chunked_array(values, type=value_type), np.concatenate(rows) if rows else np.zeros(0, np.int64)


@register("movielens")
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


# ---- news ----------------------------------------------------------------------------------------

MIND_COLUMNS = ["impression_id", "user", "time", "history", "impressions"]


def _split_tokens(text: pa.ChunkedArray, whitespace: bool = False) -> tuple[pa.Array, np.ndarray]:
    """Tokens of each row, separated by spaces (or any whitespace), empty strings dropped as
    Python's str.split() does, and the row each came from."""
    tokens, rows = flatten_lists(pc.utf8_split_whitespace(text) if whitespace else pc.split_pattern(text, " "))
    keep = pc.not_equal(tokens, "")
    return pc.filter(tokens, keep), rows[keep.to_numpy(zero_copy_only=False)]


@register("mind")
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

    clicked, rows = _split_tokens(table["impressions"])
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
    hist_items, hist_rows = _split_tokens(table["history"].take(pa.array(first)))
    untimed = int(secs.min()) - 1
    hist = pd.DataFrame({
        "user": as_series(users.take(pa.array(first[hist_rows]))),
        "item": as_series(hist_items),
        "timestamp": np.full(len(hist_rows), untimed, dtype=np.int64),
    })
    out = canonical(pd.concat([hist, clicks], ignore_index=True), files[0])
    out.attrs[UNTIMED] = untimed  # the history's placeholder time: stats and dataset.history_targets tell them apart
    return out


def _parquet(path: Path, columns: list[str]) -> pa.Table:
    try:
        return pq.read_table(path, columns=columns)
    except (pa.ArrowInvalid, KeyError, OSError) as e:
        raise DataError(f"{path}: cannot read parquet columns {', '.join(columns)}: {str(e).splitlines()[0]}") from None


def _epoch_ms(times: pa.Array | pa.ChunkedArray) -> np.ndarray:
    """Arrow timestamps of any unit -> int64 unix milliseconds."""
    return pc.cast(times, pa.timestamp("ms", tz=getattr(times.type, "tz", None)), safe=False).cast(pa.int64()) \
        .to_numpy(zero_copy_only=False).astype(np.int64)


@register("ebnerd")
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
                                    "item": items.to_numpy(zero_copy_only=False), "ms": _epoch_ms(times), "file": len(frames)}))
        beh = path.with_name("behaviors.parquet")
        if behaviors and beh.is_file():
            b = _parquet(beh, ["user_id", "impression_time", "article_ids_clicked"])
            items, rows = flatten_lists(b["article_ids_clicked"])
            frames.append(pd.DataFrame({"user": b["user_id"].combine_chunks().take(pa.array(rows)).to_numpy(zero_copy_only=False),
                                        "item": items.to_numpy(zero_copy_only=False),
                                        "ms": _epoch_ms(b["impression_time"].combine_chunks().take(pa.array(rows))),
                                        "file": len(frames)}))
    df = pd.concat(frames, ignore_index=True)
    # The n-th copy of a click within its file: copies of the same n in other files are the overlap.
    nth = df.groupby(["user", "item", "ms", "file"], sort=False).cumcount().rename("nth")
    df = df[~pd.concat([df[["user", "item", "ms"]], nth], axis=1).duplicated()].reset_index(drop=True)
    return canonical(chronological(df, df["ms"].to_numpy(), 1_000), histories[0])


@register("globo")
def read_globo(directory: str | Path, user: str = "user", **_: object) -> pd.DataFrame:
    """Globo.com G1 ``clicks_hour_*.csv`` (comma, header; ``user_id``, ``session_id``,
    ``click_article_id``, ``click_timestamp`` in ms), in the directory or its clicks/ folder.
    ``dataset.user=session`` makes each session a sequence of its own (session-based setting)."""
    directory = Path(directory)
    files = sorted(directory.glob("clicks_hour_*.csv")) or sorted(directory.glob("clicks/clicks_hour_*.csv"))
    if not files:
        raise MissingData(f"data file not found: {directory}/clicks_hour_*.csv (or {directory}/clicks/clicks_hour_*.csv)")
    if user not in ("user", "session"):
        raise DataError(f"dataset.user={user!r} is invalid for globo; choose user or session")
    key = "user_id" if user == "user" else "session_id"
    cols = [key, "click_article_id", "click_timestamp"]
    tables = [read_arrow_csv(f, header=True, columns=cols, types={key: pa.string(), "click_article_id": pa.string(),
                                                                  "click_timestamp": pa.int64()}) for f in files]
    t = pa.concat_tables(tables)
    df = pd.DataFrame({"user": as_series(t[key]), "item": as_series(t["click_article_id"])})
    return canonical(chronological(df, t["click_timestamp"].to_numpy(), 1_000), files[0])


# ---- music ---------------------------------------------------------------------------------------

LASTFM_FILE = "userid-timestamp-artid-artname-traid-traname.tsv"
LASTFM_COLUMNS = ["user", "time", "artist_id", "artist", "track_id", "track"]


@register("lastfm")
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


# ---- product -------------------------------------------------------------------------------------


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


def _read_json_lines(path: Path, fields: dict[str, pa.DataType]) -> pa.Table:
    """JSON lines (plain or .gz), parsing only ``fields`` (review texts are skipped)."""
    opts = pajson.ParseOptions(explicit_schema=pa.schema(list(fields.items())), unexpected_field_behavior="ignore")
    try:
        with pa.input_stream(str(path), compression="detect") as f:
            return pajson.read_json(f, parse_options=opts, read_options=pajson.ReadOptions(block_size=1 << 24))
    except pa.ArrowInvalid as e:
        raise DataError(f"{path}: cannot parse JSON lines: {clip(str(e).splitlines()[0])}") from None


@register("amazon")
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
            t = _read_json_lines(path, {"user_id": pa.string(), "parent_asin": pa.string(), "rating": pa.float64(), "timestamp": pa.int64()})
            names = ("user_id", "parent_asin", "rating", "timestamp")
        else:
            t = _read_json_lines(path, {"reviewerID": pa.string(), "asin": pa.string(), "overall": pa.float64(), "unixReviewTime": pa.int64()})
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


DIGINETICA_HEADERS = {  # CIKM Cup's own spelling, and the SR-GNN distribution's (the one most papers use)
    "camelCase": ["sessionId", "userId", "itemId", "timeframe", "eventdate"],
    "snake_case": ["session_id", "user_id", "item_id", "timeframe", "eventdate"],
}


def _session_order(sessions: pd.Series) -> np.ndarray:
    """A sort key of session ids: numeric where every id is a number (10 after 9), else text."""
    codes, uniques = pd.factorize(sessions)
    numbers = pd.to_numeric(pd.Series(uniques, dtype=object), errors="coerce")
    rank = (numbers if numbers.notna().all() else pd.Series(uniques, dtype=str)).rank(method="dense").to_numpy()
    return rank[codes]


@register("diginetica")
def read_diginetica(directory: str | Path, user: str = "session", **_: object) -> pd.DataFrame:
    """CIKM Cup 2016 ``train-item-views.csv`` (``;``, header ``sessionId;userId;itemId;timeframe;eventdate``,
    or ``session_id;user_id;item_id;timeframe;eventdate`` as SR-GNN distributes it). ``timeframe`` is
    milliseconds since the session's start, not a time of day: rows are ordered by (``eventdate``,
    session, ``timeframe``) and every row's timestamp is its day, so a user's sessions of one day never
    interleave under ``dataset.user=user`` (absolute times within a day are unknown). Sequences are
    sessions (the session-based setting of SR-GNN and successors); ``dataset.user=user`` groups by the
    (mostly NA) user id instead and drops anonymous views."""
    path = find_file(directory, ["train-item-views.csv", "*train-item-views.csv"])
    if user not in ("session", "user"):
        raise DataError(f"dataset.user={user!r} is invalid for diginetica; choose session or user")
    found = header_of(path, ";")
    columns = next((names for names in DIGINETICA_HEADERS.values() if found[:5] == names), None)
    if columns is None:
        raise DataError(f"{path}: expected header {';'.join(DIGINETICA_HEADERS['camelCase'])} or "
                        f"{';'.join(DIGINETICA_HEADERS['snake_case'])}, got {clip(';'.join(found))}")
    session, user_id, item = columns[:3]
    t = read_arrow_csv(path, header=True, delimiter=";", columns=columns,
                       types={session: pa.string(), user_id: pa.string(), item: pa.string(),
                              "timeframe": pa.int64(), "eventdate": pa.string()})
    day = to_seconds(as_series(t["eventdate"]), "%Y-%m-%d", path)
    df = pd.DataFrame({"user": as_series(t[session if user == "session" else user_id]), "item": as_series(t[item])})
    order = np.lexsort((t["timeframe"].to_numpy(), _session_order(as_series(t[session])), day))
    df = df.iloc[order]
    df["timestamp"] = day[order]
    if user == "user":  # anonymous views have userId NA in the published file (empty in some copies)
        df = df[~df["user"].isin(["", "NA"]).to_numpy()]
    return canonical(df, path)


SESSION_REC_COLUMNS = ["SessionId", "ItemId", "Time"]  # session-rec's prepared files (tab-separated, seconds)


@register("yoochoose")
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
    return canonical(chronological(df, _epoch_ms(t["time"]), 1_000), path)


OTTO_EVENTS = ("clicks", "carts", "orders")


@register("otto")
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
    t = _read_json_lines(path, {"session": pa.int64(), "events": pa.list_(event)})
    flat, rows = flatten_lists(t["events"])
    keep = pc.is_in(pc.struct_field(flat, "type"), value_set=pa.array(wanted)).to_numpy(zero_copy_only=False)
    flat = flat.filter(pa.array(keep))
    sessions = t["session"].combine_chunks().take(pa.array(rows[keep]))
    df = pd.DataFrame({"user": as_series(sessions), "item": as_series(pc.struct_field(flat, "aid"))})
    return canonical(chronological(df, pc.struct_field(flat, "ts").to_numpy(zero_copy_only=False), 1_000), path)


@register("retailrocket")
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


# ---- generic formats -----------------------------------------------------------------------------


def _lines(path: Path) -> pa.ChunkedArray:
    """Each line of a text file (CRLF-safe; blank ones too, so row i is line i + 1), as one Arrow string column."""
    t = read_arrow_csv(path, ["line"], delimiter="\x1f", quoted=False, types={"line": pa.string()}, blank_lines=True)
    return pc.utf8_rtrim(t["line"], characters="\r")


@register("sequences")
def read_sequences(directory: str | Path, file: str | None = None, **_: object) -> pd.DataFrame:
    """One user per line, ``user item item ...`` (whitespace-separated, items oldest first), as
    S3-Rec/ICLRec ship Amazon Beauty/Sports/Toys. There are no times: an item's timestamp is its
    0-based position among the user's items in file order (a user on two lines continues)."""
    path = find_file(directory, ["*.txt"], file)
    tokens, rows = _split_tokens(_lines(path), whitespace=True)  # blank lines give no token
    starts = np.r_[True, rows[1:] != rows[:-1]] if len(rows) else np.zeros(0, bool)  # first token of a line = user
    users = as_series(tokens.filter(pa.array(starts)).take(pa.array(np.cumsum(starts)[~starts] - 1)))
    # Positions count on across lines: a user on two lines continues the first line's order.
    return canonical(pd.DataFrame({"user": users, "item": as_series(tokens.filter(pa.array(~starts))),
                                   "timestamp": positions(users)}), path)


@register("pairs")
def read_pairs(directory: str | Path, file: str | None = None, **_: object) -> pd.DataFrame:
    """One ``user item`` pair per line, in chronological order (SASRec's data files); space, tab
    or comma separated. The timestamp is the 0-based position within the user's lines."""
    path = find_file(directory, ["*.txt"], file)
    lines = _lines(path)
    tokens, rows = _split_tokens(pc.replace_substring(lines, ",", " "), whitespace=True)
    counts = np.bincount(rows, minlength=len(lines))
    wrong = np.flatnonzero((counts != 2) & (counts != 0))  # blank lines are skipped
    if len(wrong):
        line = int(wrong[0]) + 1
        raise DataError(f"{path}: expected `user item` on every line; line {line} has {counts[line - 1]} fields")
    users, items = tokens.take(pa.array(np.arange(0, len(tokens), 2))), tokens.take(pa.array(np.arange(1, len(tokens), 2)))
    return canonical(pd.DataFrame({"user": as_series(users), "item": as_series(items), "timestamp": positions(as_series(users))}), path)


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


@register("csv")
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
        return canonical(df, path)
    times = data["timestamp"]
    if pa.types.is_timestamp(times.type) or pa.types.is_date(times.type):  # parquet datetimes carry their own unit
        fine, ticks = datetime_ticks(times, path)
    else:
        fine, ticks = fine_times(df["timestamp"], str(timestamp_unit), path)
    return canonical(chronological(df, fine, ticks), path)


@register("recbole")
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
    return canonical(df, path)


def read_interactions(reader: str, directory: str | Path, **options: object) -> pd.DataFrame:
    """Dispatches to the named reader; an unknown name lists the known ones."""
    if reader not in READERS:
        raise DataError(f"unknown dataset reader {reader!r}; known: {', '.join(sorted(READERS))}")
    return READERS[reader](directory, **options)
