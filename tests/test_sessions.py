"""protocol=session: SR-GNN's preparation of YOOCHOOSE and DIGINETICA (the yoochoose-srgnn-64/-4 and
diginetica-srgnn presets), on made-up files in the native formats whose outcome is worked out by hand below."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from benchmark.data import cli as data_cli
from benchmark.data.dataset import DatasetSpec, prepare_split
from benchmark.errors import DataError
from conftest import compose_config, run_cli

A, B, C, D, E, R, U = "801", "802", "803", "804", "805", "806", "807"  # made-up item ids

# yoochoose-clicks.dat sessions (id, clicks as (ISO time with ms, item)). By hand, SR-GNN's steps give:
# 1. session 4 (one click) goes first, so D is counted 4 times (sessions 1, 5, 6, 9) and R twice: both are
#    removed; session 10's E counts (it is dropped only later), so E has exactly 5.
# 2. without D and R, session 3 is "A" alone: dropped. Sessions keep their date from the removed last click.
# 3. the latest date is session 9's 2014-09-29 23:59:59 (ms cut), so the split is 2014-09-28 23:59:59; session
#    10 ends exactly then (23:59:59.500) and is in neither part. Training: 1, 2, 5, 6; test: 7, 8, 11, 9.
# 4. catalogue {A, B, C, E}; U (5 clicks, only in test sessions) is removed: 7 -> A B, 8 -> C (dropped),
#    11 -> nothing (dropped), 9 -> B A B.
# 5. training examples 3 + 3 + 3 + 3 = 12, test examples 1 + 2 = 3; clicks 16 + 5 = 21; avg 21 / 6 = 3.5.
YOOCHOOSE = [
    ("1", [("2014-09-27T10:00:00.000Z", A), ("2014-09-27T10:01:00.000Z", B), ("2014-09-27T10:02:00.000Z", A),
           ("2014-09-27T10:03:00.000Z", C), ("2014-09-27T10:04:00.000Z", D)]),
    ("2", [("2014-09-27T11:00:00.000Z", B), ("2014-09-27T11:01:00.000Z", E), ("2014-09-27T11:02:00.000Z", E),
           ("2014-09-27T11:03:00.000Z", C)]),
    ("3", [("2014-09-27T12:00:00.000Z", A), ("2014-09-27T12:01:00.000Z", R)]),
    ("4", [("2014-09-27T13:00:00.000Z", D)]),
    ("5", [("2014-09-28T09:00:00.000Z", C), ("2014-09-28T09:01:00.000Z", E), ("2014-09-28T09:02:00.000Z", A),
           ("2014-09-28T09:03:00.000Z", B), ("2014-09-28T09:04:00.000Z", D)]),
    ("6", [("2014-09-28T10:00:00.000Z", A), ("2014-09-28T10:01:00.000Z", B), ("2014-09-28T10:02:00.000Z", R),
           ("2014-09-28T10:03:00.000Z", C), ("2014-09-28T10:04:00.000Z", D), ("2014-09-28T10:05:00.000Z", E)]),
    ("10", [("2014-09-28T23:50:00.000Z", C), ("2014-09-28T23:59:59.500Z", E)]),
    ("7", [("2014-09-29T20:00:00.000Z", A), ("2014-09-29T20:01:00.000Z", U), ("2014-09-29T20:02:00.000Z", B)]),
    ("8", [("2014-09-29T21:00:00.000Z", U), ("2014-09-29T21:01:00.000Z", C)]),
    ("11", [("2014-09-29T22:00:00.000Z", U), ("2014-09-29T22:01:00.000Z", U), ("2014-09-29T22:02:00.000Z", U)]),
    ("9", [("2014-09-29T23:00:00.000Z", B), ("2014-09-29T23:30:00.000Z", A), ("2014-09-29T23:59:00.000Z", B),
           ("2014-09-29T23:59:59.999Z", D)]),
]

# train-item-views.csv sessions (id, eventdate, clicks as (item, timeframe)); rows in file order, not by timeframe.
# By hand: session 4 (one click) is dropped first, so item 11 counts 5 (sessions 1, 2, 5, 6, 8) and stays; 13 is
# seen once: session 3 is then "12" alone and dropped. The latest date is 2016-05-10, the split 2016-05-03: session
# 5 (dated exactly then) is in neither part. Training 1, 2 (by timeframe: 11 12 10 and 10 11 10); catalogue
# {10, 11, 12}; item 14 (5 clicks, test only) is removed: 6 -> 11 12, 7 -> dropped, 8 -> 12 12 11 10.
# Training examples 2 + 2 = 4, test examples 1 + 3 = 4, clicks 6 + 6 = 12, avg 12 / 4 = 3.0.
DIGINETICA = [
    ("1", "2016-05-01", [("10", 5000), ("11", 1000), ("12", 3000)]),
    ("2", "2016-05-02", [("10", 0), ("11", 100), ("10", 200)]),
    ("3", "2016-05-02", [("12", 0), ("13", 10)]),
    ("4", "2016-05-02", [("11", 0)]),
    ("5", "2016-05-03", [("12", 0), ("11", 10), ("10", 20)]),
    ("6", "2016-05-06", [("14", 0), ("11", 5), ("12", 9)]),
    ("7", "2016-05-08", [("14", 0), ("14", 1), ("14", 2), ("14", 3)]),
    ("8", "2016-05-10", [("12", 0), ("11", 50), ("12", 20), ("10", 70)]),
]


def write_yoochoose(directory: Path) -> Path:
    """yoochoose-clicks.dat as the challenge ships it: no header, `session,time,item,category`."""
    directory.mkdir(parents=True, exist_ok=True)
    lines = [f"{session},{time},{item},0" for session, clicks in YOOCHOOSE for time, item in clicks]
    (directory / "yoochoose-clicks.dat").write_text("\n".join(lines) + "\n")
    return directory


def write_diginetica(directory: Path) -> Path:
    """train-item-views.csv as SR-GNN's copy spells its header; anonymous sessions (user NA)."""
    directory.mkdir(parents=True, exist_ok=True)
    lines = ["session_id;user_id;item_id;timeframe;eventdate"]
    lines += [f"{session};NA;{item};{frame};{day}" for session, day, clicks in DIGINETICA for item, frame in clicks]
    (directory / "train-item-views.csv").write_text("\n".join(lines) + "\n")
    return directory


def split_of(preset: str, path: Path, tmp_path: Path, **protocol: object):
    config = compose_config(f"dataset={preset}", f"dataset.path={path}", tmp=tmp_path)
    options = {k: v for k, v in config["protocol"].items() if k in ("test_days", "train_fraction", "valid_fraction")}
    return prepare_split(DatasetSpec.from_dict(config["dataset"]), "session", {**options, **protocol},
                         cache_dir=tmp_path / "cache").split


def rows(split, seqs, k: int) -> list[str]:
    return [split.item_ids[i] for i in seqs.items[seqs.offsets[k]:seqs.offsets[k + 1]]]


def examples(split, es) -> list[tuple[str, list[str], str]]:
    return [(split.user_ids[u], rows(split, es.histories, k), split.item_ids[es.targets[k, 0]]) for k, u in enumerate(es.users)]


def test_yoochoose_as_sr_gnn_prepares_it(tmp_path):
    split = split_of("yoochoose-srgnn-64", write_yoochoose(tmp_path / "yc"), tmp_path, train_fraction=1.0)
    info = split.session
    assert (info.clicks, info.train_sessions, info.train_examples, info.test_sessions, info.test_examples) == (21, 4, 12, 2, 3)
    assert (info.items, info.window_items, info.avg_len) == (4, 4, 3.5)
    assert list(split.item_ids) == ["", A, B, C, E]  # the catalogue: D, R (rare) and U (test only) are not ranked
    # The newest 10% of the 12 examples (at least one) held out as whole sessions: session 6, the newest.
    assert (info.valid_sessions, info.valid_examples) == (1, 3)
    assert [rows(split, split.train, k) for k in range(3)] == [[A, B, A, C], [B, E, E, C], [C, E, A, B]]  # repeats kept
    assert split.train.lengths[3:].tolist() == [0] * 6  # validation and test examples train nothing
    assert examples(split, split.valid) == [("6#1", [A], B), ("6#2", [A, B], C), ("6#3", [A, B, C], E)]
    assert examples(split, split.test) == [("7#1", [A], B), ("9#1", [B], A), ("9#2", [B, A], B)]


def test_yoochoose_fraction_keeps_the_newest_examples_cutting_the_oldest_session(tmp_path):
    """int(12 * 0.34) = 4 newest examples: session 6's three and the shortest prefix of session 5, whose first two
    clicks (C E) train; session 6 validates. The test set and the catalogue do not change with the fraction."""
    split = split_of("yoochoose-srgnn-64", write_yoochoose(tmp_path / "yc"), tmp_path, train_fraction=0.34)
    info = split.session
    assert (info.train_examples, info.train_sessions, info.valid_examples, info.clicks) == (4, 2, 3, 2 + 4 + 5)
    assert rows(split, split.train, 0) == [C, E] and split.train.lengths[1:].sum() == 0
    assert info.test_examples == 3 and info.items == 4


def test_diginetica_as_sr_gnn_prepares_it(tmp_path):
    split = split_of("diginetica-srgnn", write_diginetica(tmp_path / "dg"), tmp_path)
    info = split.session
    assert (info.clicks, info.train_examples, info.test_sessions, info.test_examples, info.items) == (12, 4, 2, 4, 3)
    assert info.avg_len == 3.0 and info.test_days == 7
    assert rows(split, split.train, 0) == ["11", "12", "10"]  # clicks by timeframe, not file order
    assert examples(split, split.valid) == [("2#1", ["10"], "11"), ("2#2", ["10", "11"], "10")]
    assert examples(split, split.test) == [("6#1", ["11"], "12"), ("8#1", ["12"], "12"), ("8#2", ["12", "12"], "11"),
                                           ("8#3", ["12", "12", "11"], "10")]


def test_stats_show_the_counts_beside_the_published_ones(tmp_path, capsys):
    # YOOCHOOSE 1/4 keeps int(12 / 4) = 3 examples, session 6 alone: validation would take all of it
    assert data_cli.main(["stats", "yoochoose-srgnn-4", "--path", str(write_yoochoose(tmp_path / "yc"))]) == 2
    assert "protocol.valid_fraction=0.1 leaves no training session" in capsys.readouterr().err
    assert data_cli.main(["stats", "diginetica-srgnn", "--path", str(write_diginetica(tmp_path / "dg"))]) == 0
    out = capsys.readouterr().out.splitlines()
    table = "\n".join(out[:-1])
    assert "training sessions (prefixes)" in table and "719,470" in table and "60,858" in table
    stats = json.loads(out[-1])
    assert stats["session"]["test_examples"] == 4 and stats["published"]["test_examples"] == 60_858


def test_seqrec_runs_the_preset_end_to_end(tmp_path):
    """`seqrec dataset=yoochoose-srgnn-64` selects protocol=session; pop ranks every prefix of the test sessions."""
    run_cli("dataset=yoochoose-srgnn-64", f"dataset.path={write_yoochoose(tmp_path / 'yc')}", "protocol.train_fraction=1",
            "model=pop", tmp=tmp_path)
    [record] = (tmp_path / "results" / "yoochoose-srgnn-64" / "session" / "pop").iterdir()
    metrics = json.loads((record / "metrics.json").read_text())
    assert metrics["protocol"] == "session" and metrics["n_evaluated"] == 3 and metrics["n_items"] == 4
    assert metrics["session"]["train_examples"] == 12 and metrics["n_interactions"] == 21
    per_user = pd.read_parquet(record / "per_user.parquet")
    assert per_user["user"].tolist() == ["7#1", "9#1", "9#2"] and per_user["history_len"].tolist() == [1, 1, 2]
    # every item was trained on 3 times: all tie, and ties count against the target (rank 4 of 4)
    assert np.array_equal(per_user["rank"], [4, 4, 4])


@pytest.mark.parametrize("override, message", [
    ("protocol.train_fraction=0", "protocol.train_fraction=0 is not allowed; it must be a number in (0, 1]"),
    ("protocol.test_days=-1", "protocol.test_days=-1 is not allowed; it must be a number of days > 0"),
])
def test_bad_session_settings_are_one_line_errors(tmp_path, override, message):
    proc = run_cli("dataset=yoochoose-srgnn-64", f"dataset.path={tmp_path}", override, tmp=tmp_path, check=False)
    assert proc.returncode == 2 and message in proc.stderr


def test_session_split_refuses_a_window_without_training_sessions(tmp_path):
    with pytest.raises(DataError, match="protocol.train_fraction=0.015625 keeps no training example of 12"):
        split_of("yoochoose-srgnn-64", write_yoochoose(tmp_path / "yc"), tmp_path)
