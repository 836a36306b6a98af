"""Order-only formats (S3-Rec's `user item item ...` lines, SASRec's pairs, tables without a time column): their
timestamps are positions within each user, so what needs real time (the temporal and session protocols, recent
popularity) refuses them in one line, STAN's time weight says it compares lengths, and loo runs as before."""

from __future__ import annotations

import dataclasses
import logging

import pytest

from baselines.recentpop import RecentPop
from baselines.sknn import SessionKNN
from benchmark.data.dataset import DatasetSpec, prepare_split, save_split
from benchmark.data.readers import POSITIONAL_TIMES, READERS, read_interactions
from benchmark.errors import ConfigError
from conftest import permutation_rows, run_cli, write_movielens_csv


def _sequences_file(folder, n_users: int = 30, n_items: int = 20, length: int = 8) -> None:
    folder.mkdir(parents=True, exist_ok=True)
    lines: dict[int, list[str]] = {}
    for u, i, _, _ in permutation_rows(n_users=n_users, n_items=n_items, length=length):
        lines.setdefault(u, []).append(f"i{i}")
    (folder / "Seq.txt").write_text("".join(f"u{u} {' '.join(items)}\n" for u, items in lines.items()))


def _spec(folder) -> DatasetSpec:
    return DatasetSpec.from_dict({"name": "seq", "reader": "sequences", "path": str(folder), "user_core": 1,
                                  "item_core": 1, "min_seq_len": 3, "dedupe": False})


def test_order_only_readers_mark_their_tables_and_timed_ones_do_not(tmp_path):
    _sequences_file(tmp_path / "seq")
    (tmp_path / "pairs").mkdir()
    (tmp_path / "pairs" / "p.txt").write_text("1 5\n1 6\n2 5\n")
    (tmp_path / "csv").mkdir()
    (tmp_path / "csv" / "t.csv").write_text("user,item\na,x\na,y\n")
    (tmp_path / "inter").mkdir()
    (tmp_path / "inter" / "d.inter").write_text("user_id:token\titem_id:token\n1\t2\n1\t3\n")
    (tmp_path / "inter-timed").mkdir()
    (tmp_path / "inter-timed" / "d.inter").write_text("user_id:token\titem_id:token\ttimestamp:float\n1\t2\t5\n1\t3\t9\n")
    ml = write_movielens_csv(tmp_path / "ml", permutation_rows(n_users=5, n_items=6, length=4)).parent

    marked = {name: bool(read_interactions(reader, tmp_path / name, **opts).attrs.get(POSITIONAL_TIMES))
              for name, reader, opts in [("seq", "sequences", {}), ("pairs", "pairs", {}),
                                         ("csv", "csv", {"columns": {"user": "user", "item": "item", "timestamp": None}}),
                                         ("inter", "recbole", {}), ("inter-timed", "recbole", {})]}
    marked["ml"] = bool(read_interactions("movielens", ml).attrs.get(POSITIONAL_TIMES))
    assert marked == {"seq": True, "pairs": True, "csv": True, "inter": True, "inter-timed": False, "ml": False}
    # The registry declares the formats that mark every table (what plans runs asks it); csv/recbole mark per file.
    assert sorted(name for name, info in READERS.items() if info.order_only) == ["pairs", "sequences"]


def test_the_split_keeps_the_mark_through_the_cache_and_its_key_does_not_depend_on_it(tmp_path):
    _sequences_file(tmp_path / "seq")
    first = prepare_split(_spec(tmp_path / "seq"), "loo", cache_dir=tmp_path / "cache")
    again = prepare_split(_spec(tmp_path / "seq"), "loo", cache_dir=tmp_path / "cache")
    assert not first.from_cache and again.from_cache
    assert first.split.times_are_positions and again.split.times_are_positions
    # the split key (records pair by it) is that of the same split unmarked: records made before the mark still pair
    unmarked = save_split(tmp_path / "unmarked.npz", dataclasses.replace(first.split, times_are_positions=False), [])
    assert unmarked == first.split_key


@pytest.mark.parametrize("protocol", ["temporal", "session"])
def test_protocols_that_cut_by_time_refuse_an_order_only_dataset_in_one_line(tmp_path, protocol):
    _sequences_file(tmp_path / "seq")
    with pytest.raises(ConfigError) as e:
        prepare_split(_spec(tmp_path / "seq"), protocol, cache_dir=tmp_path / "cache")
    assert str(e.value).startswith(f"protocol={protocol} cuts by time, and dataset seq has none (sequences format")
    assert "\n" not in str(e.value) and not list((tmp_path / "cache").glob("*"))


def test_recent_popularity_refuses_order_only_data_and_stan_says_its_time_weight_compares_lengths(tmp_path, caplog):
    _sequences_file(tmp_path / "seq")
    split = prepare_split(_spec(tmp_path / "seq"), "loo", cache_dir=tmp_path / "cache").split
    with pytest.raises(ConfigError, match="model=recentpop .* has no time .*use model=pop"):
        RecentPop().fit(split)
    with caplog.at_level(logging.WARNING, logger="baselines.sknn"):
        SessionKNN(lambda_time=3600.0).fit(split)
    assert "model.lambda_time=3600 weighs neighbours" in caplog.text and "history lengths" in caplog.text
    caplog.clear()
    with caplog.at_level(logging.WARNING, logger="baselines.sknn"):
        SessionKNN(lambda_time=None).fit(split)
        timed = dataclasses.replace(split, times_are_positions=False)
        SessionKNN(lambda_time=3600.0).fit(timed)
        RecentPop().fit(timed)  # real times: counts as before
    assert "lambda_time" not in caplog.text


def test_seqrec_refuses_recentpop_on_an_order_only_file_and_writes_no_record(tmp_path):
    _sequences_file(tmp_path / "data" / "seq")
    proc = run_cli("dataset=sequences", f"dataset.path={tmp_path / 'data' / 'seq'}", "model=recentpop",
                   tmp=tmp_path, check=False)
    assert proc.returncode == 2
    error = [line for line in proc.stderr.splitlines() if line.startswith("seqrec: error:")]
    assert len(error) == 1 and "model=recentpop" in error[0] and "use model=pop" in error[0]
    assert not list((tmp_path / "results").rglob("metrics.json"))
    ok = run_cli("dataset=sequences", f"dataset.path={tmp_path / 'data' / 'seq'}", "model=pop", tmp=tmp_path)
    assert ok.returncode == 0 and len(list((tmp_path / "results").rglob("metrics.json"))) == 1
