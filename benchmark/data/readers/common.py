"""What every reader shares: finding the native file, parsing with Arrow into the canonical table
(``user``, ``item``, ``timestamp`` int64 unix seconds or a 0-based position, optional ``rating``),
times of any unit, and one-line errors that show at most SHOWN characters of a data line.

All parsing is vectorised (pyarrow CSV/JSON/parquet readers and compute kernels, pandas); no
Python loop runs per row. User and item ids are converted to strings once per distinct value.
"""

from __future__ import annotations

import codecs
import contextlib
import gzip
import logging
import zlib
from pathlib import Path
from typing import Any, Iterable, Iterator

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.csv as pacsv
import pyarrow.json as pajson

from benchmark.errors import DataError

log = logging.getLogger("seqrec")
# attrs key of the timestamp a reader gives items whose time is unknown (MIND's click history)
UNTIMED = "untimed_timestamp"
# Set on a table whose timestamps are positions within each user (an order-only format): no real time.
POSITIONAL_TIMES = "positional_times"


class MissingData(DataError):
    """A native data file is not where the reader looks (fetch it or set dataset.path)."""


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


COMPRESSED = (".gz", ".bz2", ".zip")


@contextlib.contextmanager
def decompression_errors(path: Path) -> Iterator[None]:
    """A compressed file that is corrupt, truncated or not compressed at all -> one line naming it
    (gzip, zlib and pyarrow raise OSErrors and EOFErrors whose messages name no file)."""
    try:
        yield
    except (OSError, EOFError, zlib.error) as e:
        if Path(path).suffix not in COMPRESSED or (isinstance(e, OSError) and e.errno is not None):
            raise  # not a decompression error: a missing file, a full disk
        reason = "not a gzip file" if isinstance(e, gzip.BadGzipFile) or "header check" in str(e) else \
            "truncated" if isinstance(e, EOFError) or "runcated" in str(e) else "corrupt"
        raise DataError(f"{path}: cannot decompress ({reason}); fetch the file again") from None


def read_table(path: Path, **kwargs) -> pd.DataFrame:
    """pandas.read_csv with errors reported as one line naming the file. Only an empty field is
    missing: ids such as "NA", "null" or "nan" are kept as text (pandas would drop them)."""
    kwargs.setdefault("keep_default_na", False)
    kwargs.setdefault("na_values", [""])
    try:
        with decompression_errors(path):
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
        with decompression_errors(path):
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
    if path.suffix in COMPRESSED:
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
    """The first line of a (possibly compressed) text file, split on ``delimiter``. An empty file, or
    one whose first line is not text (a binary file), is a DataError that prints none of its bytes."""
    with decompression_errors(path), pa.input_stream(str(path), compression="detect") as f:
        head = f.read(1 << 16)
    first = head.split(b"\n", 1)[0]
    if not head.strip():
        raise DataError(f"{path}: file is empty")
    try:
        if b"\x00" in first:
            raise UnicodeDecodeError("utf-8", first, 0, 1, "NUL byte")
        line = first.decode("utf-8-sig").rstrip("\r")  # -sig: a BOM is not a name
    except UnicodeDecodeError:  # the head may end inside a character: only the first line must decode
        raise DataError(f"{path}: not a text file (its first line holds binary data); give a CSV/TSV file") from None
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


def natural_rank(ids: Any) -> np.ndarray:
    """A sort key of ids (dense ranks): numeric where every id is a number (10 after 9), else text.
    Session files list sessions in the order of their numeric ids, so this is their file order."""
    codes, uniques = pd.factorize(pd.Series(ids))
    numbers = pd.to_numeric(pd.Series(uniques, dtype=object), errors="coerce")
    rank = (numbers if numbers.notna().all() else pd.Series(uniques, dtype=str)).rank(method="dense").to_numpy()
    return rank[codes]


def file_order(path: Path, how: str) -> None:
    """Warns that a table without times is ordered by its rows (HetRec's user_artists.dat is sorted
    by artist id: its "sequences" would be alphabetical, not temporal)."""
    log.warning("%s: %s: each user's sequence is in file order; make sure the rows are in time order", path, how)


def order_only(df: pd.DataFrame) -> pd.DataFrame:
    """Marks a canonical table whose timestamps are ``positions``: protocols and models that need real
    time refuse it (their recency would compare users' lengths, not times)."""
    df.attrs[POSITIONAL_TIMES] = True
    return df


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


def split_tokens(text: pa.ChunkedArray, whitespace: bool = False) -> tuple[pa.Array, np.ndarray]:
    """Tokens of each row, separated by spaces (or any whitespace), empty strings dropped as
    Python's str.split() does, and the row each came from."""
    tokens, rows = flatten_lists(pc.utf8_split_whitespace(text) if whitespace else pc.split_pattern(text, " "))
    keep = pc.not_equal(tokens, "")
    return pc.filter(tokens, keep), rows[keep.to_numpy(zero_copy_only=False)]


def epoch_ms(times: pa.Array | pa.ChunkedArray) -> np.ndarray:
    """Arrow timestamps of any unit -> int64 unix milliseconds."""
    return pc.cast(times, pa.timestamp("ms", tz=getattr(times.type, "tz", None)), safe=False).cast(pa.int64()) \
        .to_numpy(zero_copy_only=False).astype(np.int64)


def read_json_lines(path: Path, fields: dict[str, pa.DataType]) -> pa.Table:
    """JSON lines (plain or .gz), parsing only ``fields`` (review texts are skipped)."""
    opts = pajson.ParseOptions(explicit_schema=pa.schema(list(fields.items())), unexpected_field_behavior="ignore")
    try:
        with decompression_errors(path), pa.input_stream(str(path), compression="detect") as f:
            return pajson.read_json(f, parse_options=opts, read_options=pajson.ReadOptions(block_size=1 << 24))
    except pa.ArrowInvalid as e:
        raise DataError(f"{path}: cannot parse JSON lines: {clip(str(e).splitlines()[0])}") from None
