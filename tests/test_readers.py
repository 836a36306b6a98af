"""Every reader on tiny files written here in the exact native format (made-up ids)."""

from __future__ import annotations

import gzip
import json
from pathlib import Path

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from benchmark.data.dataset import DatasetSpec, prepare_split
from benchmark.data.readers import READERS, MissingData, read_interactions
from benchmark.errors import ConfigError, DataError


def write(path: Path, text: str, crlf: bool = False, gz: bool = False) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    data = (text.replace("\n", "\r\n") if crlf else text).encode()
    path.write_bytes(gzip.compress(data) if gz else data)
    return path


def seqs(df: pd.DataFrame) -> dict[str, list[str]]:
    """Each user's items in chronological order (stable on file order), as preprocessing sees them."""
    df = df.reset_index(drop=True)
    order = np.lexsort((np.arange(len(df)), df["timestamp"].to_numpy(), df["user"].to_numpy()))
    out: dict[str, list[str]] = {}
    for u, i in zip(df["user"].to_numpy()[order], df["item"].to_numpy()[order]):
        out.setdefault(str(u), []).append(str(i))
    return out


def test_every_reader_is_registered():
    assert {"movielens", "mind", "ebnerd", "globo", "lastfm", "amazon", "diginetica", "yoochoose", "retailrocket",
            "sequences", "pairs", "csv", "recbole"} <= set(READERS)


# ---- movie ----------------------------------------------------------------------------------------


def test_movielens_three_layouts_agree(tmp_path):
    rows = [(7, 30, 4.0, 500), (7, 10, 3.5, 100), (9, 10, 5.0, 300)]
    write(tmp_path / "csv/ratings.csv", "userId,movieId,rating,timestamp\n" + "".join(f"{u},{i},{r},{t}\n" for u, i, r, t in rows), crlf=True)
    write(tmp_path / "dat/ratings.dat", "".join(f"{u}::{i}::{int(r)}::{t}\n" for u, i, r, t in rows))
    write(tmp_path / "data/u.data", "".join(f"{u}\t{i}\t{int(r)}\t{t}\n" for u, i, r, t in rows))
    frames = [read_interactions("movielens", tmp_path / d) for d in ("csv", "dat", "data")]
    for df in frames:
        assert list(df.columns) == ["user", "item", "timestamp", "rating"]
        assert seqs(df) == {"7": ["10", "30"], "9": ["10"]}
        assert df["timestamp"].dtype == np.int64
    assert frames[0]["rating"].tolist() == [4.0, 3.5, 5.0]


# ---- news -----------------------------------------------------------------------------------------


def mind_line(imp, user, time, history, impressions):
    return f"{imp}\t{user}\t{time}\t{history}\t{impressions}\n"


def test_mind_history_then_clicks_in_impression_time_order(tmp_path):
    write(tmp_path / "train/behaviors.tsv",
          mind_line(1, "U1", "11/11/2019 3:00:00 PM", "N9 N8", "N1-0 N2-1 N3-1")
          + mind_line(2, "U2", "11/11/2019 9:00:00 AM", "", "N4-1 N5-0")  # empty history field
          + mind_line(3, "U1", "11/11/2019 8:00:00 AM", "N9 N8", "N6-1"))  # earlier than line 1
    write(tmp_path / "dev/behaviors.tsv", mind_line(4, "U2", "11/15/2019 1:02:03 AM", "N7", "N1-1 N2-0"))
    df = read_interactions("mind", tmp_path)
    assert seqs(df) == {"U1": ["N9", "N8", "N6", "N2", "N3"], "U2": ["N4", "N1"]}
    u1 = df[df["user"] == "U1"].set_index("item")["timestamp"]
    first_impression = pd.Timestamp("2019-11-11 08:00:00", tz="UTC").timestamp()
    assert u1["N9"] == u1["N8"] == first_impression - 1  # history: just before the log window
    assert u1["N2"] == u1["N3"] == pd.Timestamp("2019-11-11 15:00:00", tz="UTC").timestamp()
    # U2's earliest impression has an empty history, so the dev history N7 is not used.
    assert "N7" not in set(df["item"])
    no_hist = read_interactions("mind", tmp_path, history=False)
    assert seqs(no_hist) == {"U1": ["N6", "N2", "N3"], "U2": ["N4", "N1"]}


def test_mind_unlabelled_impressions_give_no_clicks(tmp_path):
    write(tmp_path / "behaviors.tsv", mind_line(1, "U1", "11/16/2019 10:00:00 AM", "N1", "N2 N3"))
    assert seqs(read_interactions("mind", tmp_path)) == {"U1": ["N1"]}


def test_ebnerd_merges_history_and_behaviors_without_double_counting(tmp_path):
    ts = lambda *s: [pd.Timestamp(x) for x in s]  # noqa: E731
    for split, extra in (("train", []), ("validation", ts("2023-05-02 10:00:00"))):
        d = tmp_path / split
        d.mkdir()
        pq.write_table(pa.table({
            "user_id": pa.array([11, 12], pa.uint32()),
            "impression_time_fixed": pa.array([ts("2023-05-01 08:00:00", "2023-05-01 09:00:00.250") + extra,
                                               ts("2023-05-01 07:00:00")], pa.list_(pa.timestamp("us"))),
            "article_id_fixed": pa.array([[501, 502] + ([503] if extra else []), [601]], pa.list_(pa.int32())),
        }), d / "history.parquet")
        pq.write_table(pa.table({
            "impression_id": pa.array([1], pa.uint32()),
            "user_id": pa.array([11], pa.uint32()),
            "impression_time": pa.array(ts("2023-05-02 10:00:00" if split == "train" else "2023-05-09 10:00:00"), pa.timestamp("us")),
            "article_ids_clicked": pa.array([[503] if split == "train" else []], pa.list_(pa.int32())),
        }), d / "behaviors.parquet")
    df = read_interactions("ebnerd", tmp_path)
    # 503 appears in train behaviors and in the validation history at the same time: kept once.
    assert seqs(df) == {"11": ["501", "502", "503"], "12": ["601"]}
    assert df.loc[df["item"] == "502", "timestamp"].item() == pd.Timestamp("2023-05-01 09:00:00", tz="UTC").timestamp()


def test_ebnerd_keeps_repeats_within_one_file(tmp_path):
    t = pd.Timestamp("2023-05-01 08:00:00")
    pq.write_table(pa.table({
        "user_id": pa.array([11], pa.uint32()),
        "impression_time_fixed": pa.array([[t, t, t + pd.Timedelta(hours=1)]], pa.list_(pa.timestamp("us"))),
        "article_id_fixed": pa.array([[501, 501, 502]], pa.list_(pa.int32())),
    }), tmp_path / "history.parquet")
    assert seqs(read_interactions("ebnerd", tmp_path)) == {"11": ["501", "501", "502"]}


def test_globo_hourly_files_ms_and_session_option(tmp_path):
    header = ("user_id,session_id,session_start,session_size,click_article_id,click_timestamp,click_environment,"
              "click_deviceGroup,click_os,click_country,click_region,click_referrer_type\n")
    write(tmp_path / "clicks/clicks_hour_000.csv", header
          + "5,900,1506826800000,2,101,1506826830500,4,3,20,1,25,2\n"
          + "5,900,1506826800000,2,102,1506826830100,4,3,20,1,25,2\n")  # same second, earlier ms: first
    write(tmp_path / "clicks/clicks_hour_001.csv", header + "5,901,1506830400000,1,103,1506830401000,4,3,20,1,25,2\n")
    df = read_interactions("globo", tmp_path)
    assert seqs(df) == {"5": ["102", "101", "103"]}
    assert df["timestamp"].min() == 1506826830
    assert seqs(read_interactions("globo", tmp_path, user="session")) == {"900": ["102", "101"], "901": ["103"]}


# ---- music ----------------------------------------------------------------------------------------


def test_lastfm_newest_first_tracks_artists_and_repeats(tmp_path):
    write(tmp_path / "userid-timestamp-artid-artname-traid-traname.tsv",
          "user_000001\t2009-05-04T23:08:57Z\tA-1\tBand \"X\"\tT-2\tSong B\n"
          "user_000001\t2009-05-04T23:08:57Z\tA-1\tBand \"X\"\tT-1\tSong A\n"  # tie: file order reversed
          "user_000001\t2009-05-04T22:00:00Z\t\tNo MBID\t\tUntitled\n"
          "user_000001\t2009-05-04T21:00:00Z\tA-1\tBand \"X\"\tT-1\tSong A\n"
          "user_000002\t2008-01-01T00:00:00Z\tA-2\tÜber\tT-9\tLied\n")
    tracks = read_interactions("lastfm", tmp_path)
    assert seqs(tracks) == {"user_000001": ["T-1", "No MBID\tUntitled", "T-1", "T-2"], "user_000002": ["T-9"]}
    artists = read_interactions("lastfm", tmp_path, item="artist")
    assert seqs(artists)["user_000001"] == ["A-1", "No MBID", "A-1", "A-1"]
    spec = DatasetSpec.from_dict({"name": "lastfm-test", "reader": "lastfm", "path": str(tmp_path), "dedupe": False,
                                  "mask_history": False, "min_seq_len": 1})
    assert spec.preprocess.dedupe is False
    with pytest.raises(DataError, match="dataset.item"):
        read_interactions("lastfm", tmp_path, item="album")


# ---- product --------------------------------------------------------------------------------------


AMAZON_ROWS = [("U1", "P2", 5.0, 200), ("U1", "P1", 4.0, 100), ("U2", "P1", 3.0, 150)]
AMAZON_SEQS = {"U1": ["P1", "P2"], "U2": ["P1"]}


def test_amazon_2014_ratings_csv(tmp_path):
    write(tmp_path / "ratings_Beauty.csv", "".join(f"{u},{i},{r},{t}\n" for u, i, r, t in AMAZON_ROWS))
    df = read_interactions("amazon", tmp_path, category="Beauty", release="2014")
    assert seqs(df) == AMAZON_SEQS and sorted(df["rating"]) == [3.0, 4.0, 5.0]


def test_amazon_2014_five_core_json(tmp_path):
    lines = "".join(json.dumps({"reviewerID": u, "asin": i, "reviewerName": "x, y", "helpful": [0, 0], "reviewText": "long\ttext",
                                "overall": r, "summary": "s", "unixReviewTime": t, "reviewTime": "01 1, 2014"}) + "\n"
                    for u, i, r, t in AMAZON_ROWS)
    write(tmp_path / "reviews_Toys_and_Games_5.json.gz", lines, gz=True)
    assert seqs(read_interactions("amazon", tmp_path, category="Toys_and_Games", release="2014-5core")) == AMAZON_SEQS


def test_amazon_2018_csv_has_item_first(tmp_path):
    write(tmp_path / "All_Beauty.csv", "".join(f"{i},{u},{r},{t}\n" for u, i, r, t in AMAZON_ROWS))
    assert seqs(read_interactions("amazon", tmp_path, category="All_Beauty", release=2018)) == AMAZON_SEQS


def test_amazon_2023_header_and_milliseconds(tmp_path):
    text = "user_id,parent_asin,rating,timestamp\n" + "".join(f"{u},{i},{r},{t * 1000 + 999}\n" for u, i, r, t in AMAZON_ROWS)
    write(tmp_path / "All_Beauty.csv.gz", text, gz=True)
    df = read_interactions("amazon", tmp_path, category="All_Beauty", release="2023")
    assert seqs(df) == AMAZON_SEQS and sorted(df["timestamp"]) == [100, 150, 200]
    write(tmp_path / "bad/All_Beauty.csv", "item,user,rating,timestamp\n")
    with pytest.raises(DataError, match="expected header user_id,parent_asin"):
        read_interactions("amazon", tmp_path / "bad", category="All_Beauty", release="2023")


def test_amazon_2023_raw_jsonl_review_file(tmp_path):
    lines = "".join(json.dumps({"rating": r, "title": "t", "text": "a, b", "parent_asin": i, "user_id": u, "timestamp": t * 1000})
                    + "\n" for u, i, r, t in AMAZON_ROWS)
    write(tmp_path / "plain/All_Beauty.jsonl", lines)
    write(tmp_path / "gz/All_Beauty.jsonl.gz", lines, gz=True)
    for d in ("plain", "gz"):
        assert seqs(read_interactions("amazon", tmp_path / d, category="All_Beauty", release="2023")) == AMAZON_SEQS
    (tmp_path / "none").mkdir()
    with pytest.raises(DataError, match=r"All_Beauty.csv.gz \(or All_Beauty.csv, All_Beauty.jsonl, All_Beauty.jsonl.gz\)"):
        read_interactions("amazon", tmp_path / "none", category="All_Beauty", release="2023")


def test_amazon_empty_ids_are_errors_naming_the_file_row(tmp_path):
    write(tmp_path / "All_Beauty.csv", "P1,U1,4.0,100\nB01,,5.0,100\n")
    with pytest.raises(DataError, match="All_Beauty.csv: missing or empty user in data row 2"):
        read_interactions("amazon", tmp_path, category="All_Beauty", release="2018")
    # 2023 rows are sorted by time before the check: the error still names the file's row
    write(tmp_path / "new/All_Beauty.csv", "user_id,parent_asin,rating,timestamp\nU1,P1,4.0,5000\nU2,P2,4.0,6000\nU3, ,4.0,1000\n")
    with pytest.raises(DataError, match="All_Beauty.csv: missing or empty item in data row 3"):
        read_interactions("amazon", tmp_path / "new", category="All_Beauty", release="2023")


def test_diginetica_semicolons_date_plus_timeframe(tmp_path):
    write(tmp_path / "train-item-views.csv", "sessionId;userId;itemId;timeframe;eventdate\n"
          "1;;81;526309;2016-05-09\n1;;31;10;2016-05-09\n2;7;81;0;2016-05-10\n")
    df = read_interactions("diginetica", tmp_path)
    assert seqs(df) == {"1": ["31", "81"], "2": ["81"]}
    assert df["timestamp"].max() == pd.Timestamp("2016-05-10", tz="UTC").timestamp()
    assert seqs(read_interactions("diginetica", tmp_path, user="user")) == {"7": ["81"]}


def test_diginetica_na_user_ids_are_anonymous(tmp_path):
    """The published file writes NA for an anonymous view's userId: with dataset.user=user those
    views are dropped, not pooled into one user called NA."""
    write(tmp_path / "train-item-views.csv", "sessionId;userId;itemId;timeframe;eventdate\n"
          "1;NA;81;526309;2016-05-09\n1;NA;31;10;2016-05-09\n2;NA;55;0;2016-05-09\n3;7;81;0;2016-05-10\n")
    assert seqs(read_interactions("diginetica", tmp_path)) == {"1": ["31", "81"], "2": ["55"], "3": ["81"]}
    assert seqs(read_interactions("diginetica", tmp_path, user="user")) == {"7": ["81"]}


def test_yoochoose_iso_milliseconds(tmp_path):
    write(tmp_path / "yoochoose-clicks.dat", "1,2014-04-07T10:54:09.868Z,214536500,0\n"
          "1,2014-04-07T10:51:09.277Z,214536502,0\n2,2014-04-07T13:56:37.614Z,214662742,S\n")
    df = read_interactions("yoochoose", tmp_path)
    assert seqs(df) == {"1": ["214536502", "214536500"], "2": ["214662742"]}
    assert df["timestamp"].min() == pd.Timestamp("2014-04-07T10:51:09Z").timestamp()


def test_retailrocket_unsorted_events_and_event_filter(tmp_path):
    write(tmp_path / "events.csv", "timestamp,visitorid,event,itemid,transactionid\n"
          "1433221332117,257597,view,355908,\n1433221000000,257597,addtocart,248676,\n1433224214164,992329,transaction,111016,4000\n")
    assert seqs(read_interactions("retailrocket", tmp_path)) == {"257597": ["248676", "355908"], "992329": ["111016"]}
    assert seqs(read_interactions("retailrocket", tmp_path, events=["view"])) == {"257597": ["355908"]}


# ---- generic --------------------------------------------------------------------------------------


def test_sequences_file_positions_as_time(tmp_path):
    path = write(tmp_path / "Beauty.txt", "1 5 6 7\n2 6 5\n\n3 9\n", crlf=True)
    df = read_interactions("sequences", path)
    assert seqs(df) == {"1": ["5", "6", "7"], "2": ["6", "5"], "3": ["9"]}
    assert df[df["user"] == "1"]["timestamp"].tolist() == [0, 1, 2]
    write(tmp_path / "Toys.txt", "1 2\n")
    with pytest.raises(DataError, match="several files"):
        read_interactions("sequences", tmp_path)
    assert seqs(read_interactions("sequences", tmp_path, file="Toys.txt")) == {"1": ["2"]}


def test_sequences_user_on_two_lines_continues_in_file_order(tmp_path):
    path = write(tmp_path / "Beauty.txt", "u1 a b c\nu2 x y z\nu1 d e\n")
    df = read_interactions("sequences", path)
    assert seqs(df) == {"u1": ["a", "b", "c", "d", "e"], "u2": ["x", "y", "z"]}  # not a d b e c
    assert df[df["user"] == "u1"]["timestamp"].tolist() == [0, 1, 2, 3, 4]


def test_pairs_in_order_and_bad_line(tmp_path):
    path = write(tmp_path / "data.txt", "1 10\n2 11\n1 12\n1 10\n")
    assert seqs(read_interactions("pairs", path)) == {"1": ["10", "12", "10"], "2": ["11"]}
    write(tmp_path / "bad.txt", "1 10\n2\n")
    with pytest.raises(DataError, match="line 2 has 1 fields"):
        read_interactions("pairs", tmp_path / "bad.txt")


def test_csv_generic_columns_units_and_parquet(tmp_path):
    write(tmp_path / "log.tsv", "ts\tuid\tsku\n2000\ta\tx\n1000\ta\ty\n1500\tb\tx\n")
    cols = {"user": "uid", "item": "sku", "timestamp": "ts"}
    df = read_interactions("csv", tmp_path / "log.tsv", columns=cols, timestamp_unit="ms")
    assert seqs(df) == {"a": ["y", "x"], "b": ["x"]} and sorted(df["timestamp"]) == [1, 1, 2]
    write(tmp_path / "noheader.csv", "a,x,2020-01-02\na,y,2020-01-01\n")
    df = read_interactions("csv", tmp_path / "noheader.csv", header=False, columns={"user": 0, "item": 1, "timestamp": 2},
                           timestamp_unit="%Y-%m-%d")
    assert seqs(df) == {"a": ["y", "x"]}
    pq.write_table(pa.table({"u": ["a", "a"], "i": [3, 4]}), tmp_path / "t.parquet")
    assert seqs(read_interactions("csv", tmp_path / "t.parquet", columns={"user": "u", "item": "i"})) == {"a": ["3", "4"]}
    with pytest.raises(DataError, match="no column nope"):
        read_interactions("csv", tmp_path / "log.tsv", columns={"user": "nope", "item": "sku"})


def test_sequences_and_pairs_split_like_str_split(tmp_path):
    path = write(tmp_path / "Beauty.txt", "1 5 6 \n 2 6 5\n \t \n3\t9\n")  # trailing, leading, whitespace-only
    df = read_interactions("sequences", path)
    assert seqs(df) == {"1": ["5", "6"], "2": ["6", "5"], "3": ["9"]}
    assert df[df["user"] == "2"]["timestamp"].tolist() == [0, 1]
    path = write(tmp_path / "pairs.txt", "u1 a \n\n u2 b\n  \nu1\tc,\n")
    assert seqs(read_interactions("pairs", path)) == {"u1": ["a", "c"], "u2": ["b"]}
    write(tmp_path / "bad.txt", "u1 a\n\n\nu2\n")
    with pytest.raises(DataError, match="line 4 has 1 fields"):
        read_interactions("pairs", tmp_path / "bad.txt")


def test_csv_generic_empty_ids_are_errors(tmp_path):
    write(tmp_path / "log.csv", "user,item,timestamp\nu1,i1,5\nu1,,5\n")
    with pytest.raises(DataError, match="log.csv: missing or empty item in data row 2"):
        read_interactions("csv", tmp_path / "log.csv")
    write(tmp_path / "log2.csv", "user,item,timestamp\nu1,i1,5\n  ,i2,5\n")
    with pytest.raises(DataError, match="log2.csv: missing or empty user in data row 2"):
        read_interactions("csv", tmp_path / "log2.csv")


def test_csv_generic_iso_mixed_precision_and_offsets(tmp_path):
    write(tmp_path / "log.csv", "user,item,timestamp\na,x,2020-01-01T10:00:00.700Z\na,y,2020-01-01T10:00:00.200Z\n"
          "a,z,2020-01-01\nb,x,2020-01-01T12:00:00+02:00\n")
    df = read_interactions("csv", tmp_path / "log.csv", timestamp_unit="iso")
    assert seqs(df) == {"a": ["z", "y", "x"], "b": ["x"]}  # .200 before .700 within the same second
    ten = pd.Timestamp("2020-01-01T10:00:00Z").timestamp()
    assert df.set_index(["user", "item"])["timestamp"].to_dict() == {
        ("a", "z"): ten - 36_000, ("a", "y"): ten, ("a", "x"): ten, ("b", "x"): ten}
    write(tmp_path / "bad.csv", "user,item,timestamp\na,x,2020-01-01T10:00:00Z\na,y,2020-13-45T10:00:00Z\n")
    with pytest.raises(DataError, match="unparsable or missing timestamp '2020-13-45T10:00:00Z' in data row 2"):
        read_interactions("csv", tmp_path / "bad.csv", timestamp_unit="iso")


def test_csv_generic_fractional_seconds_sort_before_the_cut(tmp_path):
    write(tmp_path / "log.csv", "user,item,timestamp\na,x,1.7\na,y,1.2\nb,z,3\n")
    df = read_interactions("csv", tmp_path / "log.csv")
    assert seqs(df) == {"a": ["y", "x"], "b": ["z"]} and sorted(df["timestamp"]) == [1, 1, 3]


def test_csv_generic_bad_seconds_named_by_their_text(tmp_path):
    write(tmp_path / "bad.csv", "user,item,timestamp\na,x,12\na,y,soon\n")
    with pytest.raises(DataError, match="unparsable or missing timestamp 'soon' in data row 2"):
        read_interactions("csv", tmp_path / "bad.csv")


@pytest.mark.parametrize("kind", [pa.timestamp("ms"), pa.timestamp("us", tz="Europe/Copenhagen"), pa.timestamp("ns")])
def test_csv_generic_parquet_datetimes_in_their_own_unit(tmp_path, kind):
    times = [pd.Timestamp("2023-05-01T10:00:00.700Z"), pd.Timestamp("2023-05-01T10:00:00.200Z"), pd.Timestamp("2023-05-02T00:00:00Z")]
    pq.write_table(pa.table({"u": ["a", "a", "b"], "i": ["x", "y", "z"], "t": pa.array(times, kind)}), tmp_path / "t.parquet")
    df = read_interactions("csv", tmp_path / "t.parquet", columns={"user": "u", "item": "i", "timestamp": "t"})
    assert seqs(df) == {"a": ["y", "x"], "b": ["z"]}
    assert sorted(df["timestamp"]) == [int(times[1].timestamp()), int(times[0].timestamp()), int(times[2].timestamp())]


def test_recbole_inter(tmp_path):
    write(tmp_path / "ml.inter", "user_id:token\titem_id:token\trating:float\ttimestamp:float\n"
          "1\t10\t4\t978300760\n1\t11\t5\t978300700.5\n2\t10\t3\t978300800\n")
    df = read_interactions("recbole", tmp_path)
    assert seqs(df) == {"1": ["11", "10"], "2": ["10"]} and "rating" in df


def test_recbole_float_times_order_by_exact_value_and_floor_to_seconds(tmp_path):
    """10.9996 is before 11.0 (rounding to milliseconds made them tie, and file order put b first),
    and it lies in second 10, not 11."""
    write(tmp_path / "x.inter", "user_id:token\titem_id:token\ttimestamp:float\n1\tb\t11.0\n1\ta\t10.9996\n"
          "1\tc\t12.0004\n1\td\t12.0001\n")
    df = read_interactions("recbole", tmp_path)
    assert seqs(df) == {"1": ["a", "b", "d", "c"]}
    assert sorted(df["timestamp"].tolist()) == [10, 11, 12, 12]


def test_a_utf8_byte_order_mark_is_not_part_of_the_first_column_name(tmp_path):
    write(tmp_path / "events.csv", "\ufeffuser,item,timestamp\n1,a,3\n1,b,4\n")
    assert seqs(read_interactions("csv", tmp_path)) == {"1": ["a", "b"]}
    write(tmp_path / "ml" / "ratings.csv", "\ufeffuserId,movieId,rating,timestamp\n1,5,4.0,10\n1,6,3.0,11\n")
    assert seqs(read_interactions("movielens", tmp_path / "ml")) == {"1": ["5", "6"]}


# ---- errors and the pipeline ---------------------------------------------------------------------


def test_missing_file_names_path_and_fetch_command(tmp_path):
    (tmp_path / "mind").mkdir()
    spec = DatasetSpec.from_dict({"name": "mind-small", "reader": "mind", "path": str(tmp_path / "mind")})
    with pytest.raises(DataError) as err:
        prepare_split(spec, "loo", cache_dir=tmp_path / "cache")
    assert str(tmp_path / "mind" / "behaviors.tsv") in str(err.value) and "seqrec-data fetch mind-small" in str(err.value)


def test_malformed_rows_are_one_line_errors(tmp_path):
    write(tmp_path / "yoochoose-clicks.dat", "1,not-a-time,5,0\n")
    with pytest.raises(DataError, match="yoochoose-clicks.dat: cannot parse"):
        read_interactions("yoochoose", tmp_path)
    write(tmp_path / "m/behaviors.tsv", mind_line(1, "U1", "yesterday", "", "N1-1"))
    with pytest.raises(DataError, match="unparsable or missing timestamp 'yesterday' in data row 1"):
        read_interactions("mind", tmp_path / "m")


def test_seqrec_data_stats_takes_overrides_after_path(tmp_path, capsys):
    from benchmark.data import cli

    write(tmp_path / "userid-timestamp-artid-artname-traid-traname.tsv", "".join(
        f"user_{u}\t2009-05-04T2{k}:00:00Z\tA-{k % 2}\tBand\tT-{k}\tSong\n" for u in (1, 2) for k in range(4)))
    assert cli.main(["stats", "lastfm-1k", "--path", str(tmp_path), "item=artist", "user_core=1", "item_core=1"]) == 0
    assert json.loads(capsys.readouterr().out.splitlines()[-1])["raw"]["items"] == 2  # artists, not the 4 tracks


def test_single_file_path_runs_through_prepare_split(tmp_path):
    path = write(tmp_path / "Beauty.txt", "".join(f"{u} " + " ".join(str(10 + (u + k) % 7) for k in range(6)) + "\n" for u in range(20)))
    spec = DatasetSpec.from_dict({"name": "sequences", "reader": "sequences", "path": str(path), "dedupe": False,
                                  "user_core": 1, "item_core": 1, "min_seq_len": 3})
    split = prepare_split(spec, "loo", cache_dir=tmp_path / "cache").split
    assert split.n_users == 20 and split.n_items == 7


def test_hidden_files_are_never_the_data_file_found_in_a_folder(tmp_path):
    """The dataset hash skips hidden files, so reading one would let an edit to it reuse a stale split."""
    write(tmp_path / ".Beauty.txt", "1 5 6 7\n")
    with pytest.raises(MissingData):
        read_interactions("sequences", tmp_path)
    write(tmp_path / "Beauty.txt", "2 8 9 10\n")
    assert seqs(read_interactions("sequences", tmp_path)) == {"2": ["8", "9", "10"]}


@pytest.mark.parametrize("name", [".Beauty.txt", "Beauty.md", "sub/.hidden/Beauty.txt"])
def test_a_data_file_named_with_dataset_file_counts_in_the_dataset_hash(tmp_path, name):
    """The hash skips hidden files and .md notes, but not the file dataset.file names: an edit to it
    must prepare the split again, not serve the cached one."""
    data = tmp_path / "data"
    line = lambda u, first: f"{u} " + " ".join(str(first + k) for k in range(4)) + "\n"  # noqa: E731
    path = write(data / name, "".join(line(u, 10) for u in range(5)))
    spec = DatasetSpec.from_dict({"name": "sequences", "reader": "sequences", "path": str(data), "file": name,
                                  "dedupe": False, "user_core": 1, "item_core": 1, "min_seq_len": 3})
    first = prepare_split(spec, "loo", cache_dir=tmp_path / "cache")
    assert first.split.n_items == 4 and not first.from_cache
    write(path, "".join(line(u, 20 + u) for u in range(5)))
    again = prepare_split(spec, "loo", cache_dir=tmp_path / "cache")
    assert not again.from_cache and again.dataset_hash != first.dataset_hash and again.split.n_items == 8


def test_the_dataset_hash_sees_what_the_readers_read_through_symlinked_and_hidden_folders(tmp_path):
    """MIND's train/ linked to another disk: an edit there must change the hash (the split cache and a
    complete record's data check rest on it). A hidden folder is neither read nor hashed."""
    from benchmark.data.dataset import files_hash

    real = write(tmp_path / "disk" / "behaviors.tsv", mind_line(1, "U1", "11/11/2019 3:00:00 PM", "", "N1-1 N2-1"))
    (tmp_path / "mind").mkdir()
    (tmp_path / "mind" / "train").symlink_to(tmp_path / "disk", target_is_directory=True)
    (tmp_path / "disk" / "loop").symlink_to(tmp_path / "disk", target_is_directory=True)  # a link loop ends
    before = files_hash(tmp_path / "mind")
    with open(real, "a") as f:
        f.write(mind_line(2, "U2", "11/12/2019 3:00:00 PM", "", "N3-1"))
    assert files_hash(tmp_path / "mind") != before and set(read_interactions("mind", tmp_path / "mind")["user"]) == {"U1", "U2"}
    write(tmp_path / "mind" / ".old" / "behaviors.tsv", mind_line(3, "U9", "11/13/2019 3:00:00 PM", "", "N4-1"))
    assert set(read_interactions("mind", tmp_path / "mind")["user"]) == {"U1", "U2"}  # U9's hidden folder is not read


# ---- issue 23: gaps found on real files ------------------------------------------------------------

def test_diginetica_snake_case_header_as_sr_gnn_ships_it(tmp_path):
    path = write(tmp_path / "sample_train-item-views.csv", "session_id;user_id;item_id;timeframe;eventdate\n"
                 "1;NA;81;526309;2016-05-09\n1;NA;31;10;2016-05-09\n2;7;81;0;2016-05-10\n")
    assert seqs(read_interactions("diginetica", path)) == {"1": ["31", "81"], "2": ["81"]}  # the file given as dataset.path
    assert seqs(read_interactions("diginetica", tmp_path)) == {"1": ["31", "81"], "2": ["81"]}  # found in its folder


def test_diginetica_unknown_header_names_both_spellings(tmp_path):
    write(tmp_path / "train-item-views.csv", "sess;user;item;timeframe;eventdate\n1;NA;81;0;2016-05-09\n")
    with pytest.raises(DataError, match="expected header sessionId;userId;.* or session_id;user_id;.*, got sess;user;item"):
        read_interactions("diginetica", tmp_path)


def test_diginetica_same_day_sessions_of_a_user_never_interleave(tmp_path):
    """timeframe counts from each session's start: session 10's first view (timeframe 0) is not
    earlier than session 9's second one (timeframe 5000). Sessions follow each other by id."""
    write(tmp_path / "train-item-views.csv", "session_id;user_id;item_id;timeframe;eventdate\n"
          "10;7;A;0;2016-05-09\n9;7;B;0;2016-05-09\n10;7;C;900;2016-05-09\n9;7;D;5000;2016-05-09\n"
          "3;7;E;0;2016-05-10\n")
    assert seqs(read_interactions("diginetica", tmp_path, user="user")) == {"7": ["B", "D", "A", "C", "E"]}


def test_yoochoose_reads_session_rec_prepared_tsv(tmp_path):
    write(tmp_path / "yoochoose-clicks-1_64.txt", "SessionId\tItemId\tTime\n"
          "5\t214536500\t1396868049.868\n5\t214536502\t1396867869.277\n6\t214662742\t1396878997.614\n")
    df = read_interactions("yoochoose", tmp_path)
    assert seqs(df) == {"5": ["214536502", "214536500"], "6": ["214662742"]}
    assert df["timestamp"].min() == 1396867869


def otto_line(session: int, events: list[tuple[int, int, str]]) -> str:
    return json.dumps({"session": session, "events": [{"aid": a, "ts": t, "type": k} for a, t, k in events]}) + "\n"


def test_otto_json_lines_sessions_in_time_order_and_event_filter(tmp_path):
    write(tmp_path / "train.jsonl", otto_line(1, [(11, 1659304800500, "clicks"), (12, 1659304800100, "carts")])
          + otto_line(2, [(11, 1659304900000, "orders"), (13, 1659304901000, "clicks")]))
    df = read_interactions("otto", tmp_path)
    assert seqs(df) == {"1": ["12", "11"], "2": ["11", "13"]}
    assert df["timestamp"].min() == 1659304800
    assert seqs(read_interactions("otto", tmp_path, events=["carts", "orders"])) == {"1": ["12"], "2": ["11"]}
    with pytest.raises(DataError, match="unknown OTTO event type views; choose from clicks"):
        read_interactions("otto", tmp_path, events="views")


def test_no_error_prints_more_than_200_characters_of_a_data_line(tmp_path):
    long_line = otto_line(1, [(k, 1659304800000 + k, "clicks") for k in range(400)])
    path = write(tmp_path / "train.jsonl", long_line)
    assert len(long_line) > 10_000
    with pytest.raises(DataError) as err:  # the csv route reads the JSON line as a header
        read_interactions("csv", path)
    assert "more characters" in str(err.value) and len(str(err.value)) < len(str(path)) + 400
    write(tmp_path / "bad.jsonl", long_line[:-3] + "\n")  # truncated JSON
    with pytest.raises(DataError) as err:
        read_interactions("otto", tmp_path / "bad.jsonl")
    assert len(str(err.value)) < len(str(tmp_path)) + 400


def test_a_table_without_times_warns_that_order_is_file_order(tmp_path, caplog):
    """HetRec's user_artists.dat (userID, artistID, weight) is sorted by artist id, not by time."""
    path = write(tmp_path / "user_artists.dat", "userID\tartistID\tweight\n2\t51\t13883\n2\t52\t11690\n3\t51\t228\n")
    with caplog.at_level("WARNING", logger="seqrec"):
        df = read_interactions("csv", path, columns={"user": "userID", "item": "artistID", "timestamp": None}, sep="\t")
    assert seqs(df) == {"2": ["51", "52"], "3": ["51"]}
    assert "user_artists.dat: no timestamp column (dataset.columns.timestamp=null): each user's sequence is in file order" in caplog.text
    caplog.clear()
    with caplog.at_level("WARNING", logger="seqrec"):
        read_interactions("csv", path, columns={"user": "userID", "item": "artistID", "timestamp": "weight"}, sep="\t")
    assert "file order" not in caplog.text


def _mind_with_untimed_targets(tmp_path):
    """U1 clicked nothing in the log (both targets are history items), U3 one article (only its
    validation target is a history item), U2 two (both targets are timed impression clicks)."""
    return write(tmp_path / "behaviors.tsv",
                 mind_line(1, "U1", "11/11/2019 9:00:00 AM", "N1 N2 N3 N4", "N5-0 N6-0")
                 + mind_line(2, "U2", "11/11/2019 9:00:00 AM", "N1 N2", "N3-1 N6-0")
                 + mind_line(3, "U2", "11/11/2019 10:00:00 AM", "N1 N2", "N4-1")
                 + mind_line(4, "U3", "11/11/2019 11:00:00 AM", "N2 N3 N4", "N1-1")).parent


def test_seqrec_data_stats_reports_the_share_of_untimed_mind_targets(tmp_path, capsys):
    from benchmark.data import cli

    data = _mind_with_untimed_targets(tmp_path)
    assert cli.main(["stats", "mind-small", "--path", str(data), "user_core=1", "item_core=1"]) == 0
    out = capsys.readouterr().out
    assert json.loads(out.splitlines()[-1])["untimed_targets"] == {"valid": pytest.approx(2 / 3), "test": pytest.approx(1 / 3)}
    assert "untimed history items: valid 66.7%, test 33.3%" in out


def test_mind_history_targets_false_evaluates_only_timed_targets(tmp_path):
    data = _mind_with_untimed_targets(tmp_path)
    base = {"name": "mind-small", "reader": "mind", "path": str(data), "user_core": 1, "item_core": 1}
    every = prepare_split(DatasetSpec.from_dict(base), "loo", cache_dir=tmp_path / "cache").split
    timed = prepare_split(DatasetSpec.from_dict({**base, "history_targets": False}), "loo", cache_dir=tmp_path / "cache").split
    names = lambda es, split: sorted(split.user_ids[es.users])  # noqa: E731
    assert names(every.valid, every) == names(every.test, every) == ["U1", "U2", "U3"]
    assert names(timed.valid, timed) == ["U2"] and names(timed.test, timed) == ["U2", "U3"]
    assert np.array_equal(timed.train.offsets, every.train.offsets)  # every user's sequence still trains
    with pytest.raises(ConfigError, match="history_targets=false needs a reader that marks untimed items"):
        prepare_split(DatasetSpec.from_dict({**base, "reader": "sequences", "history_targets": False,
                                             "path": str(write(tmp_path / "s.txt", "u 1 2 3\n"))}), "loo", cache_dir=tmp_path / "c2")


def test_history_targets_at_its_default_leaves_older_record_identities_alone():
    from benchmark.record import config_hash

    config = {"dataset": {"name": "mind-small", "reader": "mind"}, "model": {"name": "pop"}, "protocol": {"name": "loo"}}
    assert config_hash({**config, "dataset": {**config["dataset"], "history_targets": True}}) == config_hash(config)
    assert config_hash({**config, "dataset": {**config["dataset"], "history_targets": False}}) != config_hash(config)
