"""Property tests: any input table either prepares into a valid split or fails with a DataError,
never another exception from deep inside pandas, numpy or torch."""

from __future__ import annotations

import tempfile
from pathlib import Path

import numpy as np
import pandas as pd
from hypothesis import HealthCheck, event, given, settings
from hypothesis import strategies as st

from benchmark.data.preprocess import PreprocessConfig, preprocess
from benchmark.data.readers import read_interactions
from benchmark.data.split import leave_one_out
from benchmark.errors import DataError

SETTINGS = settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])

# Few distinct ids, so that users and items often survive the k-core (odd ones included).
users = st.sampled_from(["1", "2", "3", "a", "ü", "x y", "0", "00"])
items = st.sampled_from(["1", "2", "3", "1.0", "nan", " "])
timestamps = st.one_of(st.integers(-(2**62), 2**62), st.integers(0, 20))
configs = st.builds(
    PreprocessConfig,
    min_rating=st.one_of(st.none(), st.none(), st.floats(0, 5)),
    dedupe=st.booleans(),
    user_core=st.integers(1, 4),
    item_core=st.integers(1, 4),
    min_seq_len=st.integers(1, 5),
)


@st.composite
def interaction_tables(draw) -> pd.DataFrame:
    size = draw(st.sampled_from([0, 10, 30, 60]))  # hypothesis alone favours tiny tables that filter to nothing
    rows = draw(st.lists(st.tuples(users, items, timestamps, st.floats(0, 5)), min_size=size, max_size=size + 20))
    return pd.DataFrame(
        {
            "user": [r[0] for r in rows],
            "item": [r[1] for r in rows],
            "timestamp": np.array([r[2] for r in rows], dtype=np.int64),
            "rating": np.array([r[3] for r in rows], dtype=np.float64),
        }
    )


def check_prepared(table: pd.DataFrame, cfg: PreprocessConfig) -> None:
    try:
        prepared = preprocess(table, cfg)
    except DataError as e:
        assert str(e) and "\n" not in str(e)
        event(f"preprocess: DataError {str(e).split(' (')[0]}")
        return
    seqs = prepared.sequences
    lengths = seqs.lengths
    assert prepared.n_items >= 2 and prepared.item_ids[0] == ""
    assert len(seqs) == prepared.n_users and seqs.offsets[0] == 0 and (lengths > 0).all()
    assert set(np.unique(seqs.items)) == set(range(1, prepared.n_items + 1))  # contiguous, 0 is padding
    assert (lengths >= max(cfg.user_core, cfg.min_seq_len)).all()
    assert (np.bincount(seqs.items)[1:] >= cfg.item_core).all()
    user_of = np.repeat(np.arange(len(seqs)), lengths)
    starts = np.isin(np.arange(len(seqs.items)), seqs.offsets[:-1])
    assert (np.diff(seqs.times)[~starts[1:]] >= 0).all()  # chronological within each user
    if cfg.dedupe:
        assert not pd.DataFrame({"u": user_of, "i": seqs.items}).duplicated().any()
    # Every kept interaction is one of the input's (original ids survive the remapping).
    kept = set(zip(prepared.user_ids[user_of], prepared.item_ids[seqs.items], seqs.times.tolist()))
    assert kept <= set(zip(table["user"].astype(str), table["item"].astype(str), table["timestamp"].tolist()))
    try:
        split = leave_one_out(seqs, prepared.user_ids, prepared.item_ids)
    except DataError:
        assert (lengths < 3).any()
        event("split: DataError (short sequence)")
        return
    event("valid split")
    assert (split.train.lengths == lengths - 2).all()
    assert (split.test.targets[:, 0] == seqs.items[seqs.offsets[1:] - 1]).all()
    assert (split.valid.targets[:, 0] == seqs.items[seqs.offsets[1:] - 2]).all()


@SETTINGS
@given(table=interaction_tables(), cfg=configs)
def test_any_interaction_table_prepares_or_fails_with_a_data_error(table, cfg):
    check_prepared(table, cfg)


junk_fields = st.one_of(
    st.integers(-5, 30).map(str), st.sampled_from(["", "nan", "inf", "-1e400", "1e30", "3.5", "x", '"q,t"', "１"]),
    st.text(st.characters(blacklist_categories=("Cs",)), max_size=4),
)
valid_lines = st.tuples(users, items, st.sampled_from(["4", "3.5"]), st.integers(0, 20).map(str)).map(",".join)
junk_lines = st.lists(junk_fields, min_size=0, max_size=6).map(",".join)



@st.composite
def file_bodies(draw) -> list[str]:
    """Mostly well-formed lines, sometimes with one malformed line somewhere."""
    body = draw(st.lists(valid_lines, min_size=draw(st.sampled_from([0, 20])), max_size=40))
    if draw(st.booleans()):
        body.insert(draw(st.integers(0, len(body))), draw(junk_lines))
    return body


@SETTINGS
@given(body=file_bodies(), tail=st.one_of(st.just(b""), st.just(b""), st.binary(max_size=8)), newline=st.sampled_from(["\n", "\r\n"]))
def test_any_ratings_file_reads_or_fails_with_a_data_error(body, tail, newline):
    """Arbitrary lines (wrong column counts, quotes, unicode, junk bytes) after the MovieLens header."""
    with tempfile.TemporaryDirectory() as directory:
        text = newline.join(["userId,movieId,rating,timestamp", *body]) + newline
        (Path(directory) / "ratings.csv").write_bytes(text.encode() + tail)
        try:
            table = read_interactions("movielens", directory)
        except DataError as e:
            assert "ratings.csv" in str(e) and "\n" not in str(e)
            event(f"read: DataError {str(e).split(': ')[1]}")
            return
    assert list(table.columns[:3]) == ["user", "item", "timestamp"] and table["timestamp"].dtype == np.int64
    assert not table[["user", "item"]].isna().any().any()
    check_prepared(table, PreprocessConfig(user_core=1, item_core=1, min_seq_len=3))
