"""Readers, preprocessing, leave-one-out split and the split cache."""

from __future__ import annotations

import os

import numpy as np
import pandas as pd
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from benchmark.data.dataset import DatasetSpec, prepare_split
from benchmark.data.preprocess import PreprocessConfig, preprocess
from benchmark.data.readers import read_interactions
from benchmark.data.split import leave_one_out
from benchmark.errors import DataError
from conftest import write_movielens_csv

ROWS = [(7, 30, 4.0, 500), (7, 10, 3.5, 100), (8, 20, 5.0, 300), (7, 20, 1.0, 100)]


def test_movielens_csv_crlf(tmp_path):
    write_movielens_csv(tmp_path, ROWS, crlf=True)
    df = read_interactions("movielens", tmp_path)
    assert list(df.columns) == ["user", "item", "timestamp", "rating"]
    assert df["user"].tolist() == ["7", "7", "8", "7"]  # file order kept
    assert df["item"].tolist() == ["30", "10", "20", "20"]
    assert df["timestamp"].tolist() == [500, 100, 300, 100]
    assert df["rating"].tolist() == [4.0, 3.5, 5.0, 1.0]


def test_movielens_dat_double_colon(tmp_path):
    (tmp_path / "ratings.dat").write_text("".join(f"{u}::{i}::{int(r)}::{t}\n" for u, i, r, t in ROWS))
    df = read_interactions("movielens", tmp_path)
    assert df["user"].tolist() == ["7", "7", "8", "7"] and df["timestamp"].tolist() == [500, 100, 300, 100]
    assert df["rating"].tolist() == [4.0, 3.0, 5.0, 1.0]


def test_movielens_u_data_tab(tmp_path):
    (tmp_path / "u.data").write_text("".join(f"{u}\t{i}\t{int(r)}\t{t}\n" for u, i, r, t in ROWS))
    df = read_interactions("movielens", tmp_path)
    assert df["item"].tolist() == ["30", "10", "20", "20"] and df["timestamp"].tolist() == [500, 100, 300, 100]


def test_movielens_missing_files_names_directory(tmp_path):
    with pytest.raises(DataError, match=str(tmp_path)):
        read_interactions("movielens", tmp_path)


def test_movielens_bad_timestamp_names_file_and_row(tmp_path):
    write_movielens_csv(tmp_path, [(1, 2, 3.0, 10), (1, 3, 3.0, "soon")])
    with pytest.raises(DataError, match=r"ratings\.csv.*row 2"):
        read_interactions("movielens", tmp_path)


def frame(rows):
    return pd.DataFrame(rows, columns=["user", "item", "timestamp"]).astype({"user": str, "item": str})


def test_timestamp_ties_keep_file_order_and_ids_are_contiguous():
    df = frame([("u", "c", 5), ("u", "a", 5), ("u", "b", 1), ("u", "d", 5), ("v", "a", 0)])
    p = preprocess(df, PreprocessConfig(min_seq_len=1))
    seq = p.sequences
    items = [p.item_ids[i] for i in seq.items[seq.offsets[0]:seq.offsets[1]]]
    assert items == ["b", "c", "a", "d"]  # b first (t=1), then c, a, d in file order (t=5 ties)
    assert p.item_ids[0] == "" and sorted(set(seq.items)) == list(range(1, p.n_items + 1))
    assert list(p.user_ids) == ["u", "v"]


def test_rating_threshold_and_dedupe_keep_first():
    df = frame([("u", "a", 1), ("u", "b", 2), ("u", "a", 3), ("u", "c", 4)])
    df["rating"] = [5.0, 1.0, 5.0, 4.0]
    p = preprocess(df, PreprocessConfig(min_rating=4.0, dedupe=True, min_seq_len=1))
    assert [p.item_ids[i] for i in p.sequences.items] == ["a", "c"]
    assert p.sequences.times.tolist() == [1, 4]


def test_empty_after_filtering_reports_counts_per_step():
    df = frame([("u", "a", 1), ("u", "b", 2), ("v", "a", 3)])
    with pytest.raises(DataError, match=r"empty after filtering.*raw: 2 users, 2 items, 3 rows.*k-core.*0 users"):
        preprocess(df, PreprocessConfig(user_core=5))


interaction_tables = st.lists(
    st.tuples(st.integers(0, 12), st.integers(0, 15), st.integers(0, 6)), min_size=0, max_size=150
).map(lambda rows: frame([(f"u{u}", f"i{i}", t) for u, i, t in rows]))


@settings(max_examples=60, deadline=None)
@given(df=interaction_tables, user_core=st.integers(1, 5), item_core=st.integers(1, 4), dedupe=st.booleans())
def test_kcore_and_leave_one_out_invariants(df, user_core, item_core, dedupe):
    cfg = PreprocessConfig(dedupe=dedupe, user_core=user_core, item_core=item_core, min_seq_len=3)
    try:
        p = preprocess(df, cfg)
    except DataError as e:
        assert "after filtering" in str(e)
        return
    seq = p.sequences
    assert (seq.lengths >= max(user_core, 3)).all()
    assert (np.bincount(seq.items, minlength=p.n_items + 1)[1:] >= item_core).all()
    # chronological within each user
    for u in range(p.n_users):
        t = seq.times[seq.offsets[u]:seq.offsets[u + 1]]
        assert (np.diff(t) >= 0).all()
    split = leave_one_out(seq, p.user_ids, p.item_ids)
    for u in range(p.n_users):
        full = seq.items[seq.offsets[u]:seq.offsets[u + 1]]
        train = split.train.items[split.train.offsets[u]:split.train.offsets[u + 1]]
        assert split.test.targets[u, 0] == full[-1] and split.valid.targets[u, 0] == full[-2]
        assert list(train) == list(full[:-2])
        test_hist = split.test.histories.items[split.test.histories.offsets[u]:split.test.histories.offsets[u + 1]]
        assert list(test_hist) == list(full[:-1])
        if dedupe:  # without repeats, no target item appears in its user's training data
            assert full[-1] not in train and full[-2] not in train


def test_split_is_cached_and_reused(tmp_path):
    data = tmp_path / "ml"
    write_movielens_csv(data, [(u, i, 4.0, 10 * i) for u in range(5) for i in range(1, 6)])
    spec = DatasetSpec.from_dict({"name": "tiny", "reader": "movielens", "path": str(data), "min_seq_len": 3})
    first = prepare_split(spec, "loo", cache_dir=tmp_path / "cache")
    second = prepare_split(spec, "loo", cache_dir=tmp_path / "cache")
    assert not first.from_cache and second.from_cache
    assert len(list((tmp_path / "cache").glob("*.npz"))) == 1
    np.testing.assert_array_equal(first.split.train.items, second.split.train.items)
    np.testing.assert_array_equal(first.split.test.targets, second.split.test.targets)
    assert list(first.split.user_ids) == list(second.split.user_ids)
    # A change in preprocessing or in the files is a new cache entry; the split key is the split's
    # content, so it changes only when the split does (min_seq_len 4 keeps these 5-item users alike).
    other = DatasetSpec.from_dict({"name": "tiny", "reader": "movielens", "path": str(data), "min_seq_len": 4})
    same = prepare_split(other, "loo", cache_dir=tmp_path / "cache")
    assert not same.from_cache and same.split_key == first.split_key
    write_movielens_csv(data, [(u, i, 4.0, 10 * i) for u in range(6) for i in range(1, 6)])
    changed = prepare_split(spec, "loo", cache_dir=tmp_path / "cache")
    assert not changed.from_cache and changed.split_key != first.split_key


@pytest.mark.parametrize("damage", [b"", b"not a zip at all", None])
def test_an_unreadable_cached_split_is_prepared_again(tmp_path, damage):
    data = tmp_path / "ml"
    write_movielens_csv(data, [(u, i, 4.0, 10 * i) for u in range(5) for i in range(1, 6)])
    spec = DatasetSpec.from_dict({"name": "tiny", "reader": "movielens", "path": str(data), "min_seq_len": 3})
    first = prepare_split(spec, "loo", cache_dir=tmp_path / "cache")
    (cache,) = (tmp_path / "cache").glob("*.npz")
    cache.write_bytes(cache.read_bytes()[: cache.stat().st_size // 2] if damage is None else damage)  # None: truncated
    again = prepare_split(spec, "loo", cache_dir=tmp_path / "cache")
    assert not again.from_cache and again.split_key == first.split_key
    assert prepare_split(spec, "loo", cache_dir=tmp_path / "cache").from_cache  # and written back whole


def test_cached_splits_are_readable_by_others_as_the_umask_allows(tmp_path):
    data = tmp_path / "ml"
    write_movielens_csv(data, [(u, i, 4.0, 10 * i) for u in range(5) for i in range(1, 6)])
    spec = DatasetSpec.from_dict({"name": "tiny", "reader": "movielens", "path": str(data), "min_seq_len": 3})
    old = os.umask(0o022)
    try:
        prepare_split(spec, "loo", cache_dir=tmp_path / "cache")
    finally:
        os.umask(old)
    (cache,) = (tmp_path / "cache").glob("*.npz")
    assert cache.stat().st_mode & 0o777 == 0o644


# ---- issue 23 item 7: generic formats are named after their file -------------------------------------

def _beauty(tmp_path):
    path = tmp_path / "in" / "Beauty.txt"
    path.parent.mkdir()
    path.write_text("".join(f"u{u} " + " ".join(str(10 + (u + k) % 7) for k in range(5)) + "\n" for u in range(6)))
    return path


@pytest.mark.parametrize("extra, name", [([], "Beauty"), (["dataset.name=my-beauty"], "my-beauty")])
def test_a_generic_file_records_and_reports_under_its_own_name(tmp_path, extra, name):
    import json

    from benchmark.report.runs import load_runs
    from benchmark.run import run_experiment
    from conftest import compose_config

    path = _beauty(tmp_path)
    run_dir = run_experiment(compose_config("model=pop", "dataset=sequences", f"dataset.path={path}", *extra, tmp=tmp_path))
    assert run_dir.relative_to(tmp_path / "results").parts[0] == name
    assert json.loads((run_dir / "metrics.json").read_text())["dataset"] == name
    assert [r.dataset for r in load_runs([run_dir])] == [name]


def test_presets_that_name_themselves_keep_their_name_and_identity(tmp_path):
    from benchmark.data.dataset import named_by_file
    from benchmark.record import config_hash
    from conftest import compose_config

    config = compose_config("dataset=s3rec-beauty", f"dataset.path={_beauty(tmp_path)}", tmp=tmp_path)
    assert named_by_file(config["dataset"]) is config["dataset"]  # untouched: the same record identity
    assert config["dataset"]["name"] == "s3rec-beauty" and config_hash(config)
    from benchmark.errors import ConfigError

    with pytest.raises(ConfigError, match="dataset.name is null .* dataset.path is not set"):
        named_by_file({"name": None, "reader": "sequences", "path": None})
