"""The global temporal protocol: cuts in time, and no information from after the cut in training,
preprocessing (k-core) or popularity counts, on a fixture built to leak if any step looked ahead."""

from __future__ import annotations

import json

import numpy as np
import pandas as pd
import pytest

from baselines.pop import MostPop
from benchmark.data.dataset import DatasetSpec, prepare_split
from benchmark.data.split import Sequences, temporal, time_cuts
from benchmark.errors import DataError
from benchmark.models.base import Batch
from conftest import run_cli, write_movielens_csv

DAY = 86_400
START = 1_577_836_800  # 2020-01-01 00:00 UTC
VALID_DATE, TEST_DATE = "2020-01-10", "2020-01-20"


def at(day: float) -> int:
    return int(START + (day - 1) * DAY)


def leaky_rows() -> list[tuple]:
    """Users 1-6 are ordinary. After the test cut, item 90 appears (only there), item 80 (seen once before the
    validation cut) and item 15 (twice before, the least popular of the kept items) become the most popular, and
    user 7 (two interactions before the cuts) interacts five times: a k-core over all rows would keep 80 and
    user 7, and popularity over all rows would put 15 and 80 first."""
    rows = []
    pre = {1: [10, 11, 12, 80], 2: [10, 11, 13, 14], 3: [10, 12, 13, 15], 4: [11, 12, 14, 10],
           5: [10, 13, 14, 11], 6: [12, 11, 15, 10]}
    window = {1: 13, 2: 12, 3: 11, 5: 12}  # between the cuts: validation targets (users 4 and 6 have none)
    after = {1: [90, 14], 2: [80, 15], 3: [90, 14], 4: [90, 80, 13], 6: [14]}  # user 5: no test target
    for u, items in pre.items():
        rows += [(u, i, 4.0, at(1 + d)) for d, i in enumerate(items)]
    rows += [(u, i, 4.0, at(12)) for u, i in window.items()]
    for u, items in after.items():
        rows += [(u, i, 4.0, at(21 + d)) for d, i in enumerate(items)]
    rows += [(7, 10, 4.0, at(2)), (7, 11, 4.0, at(3))] + [(7, i, 4.0, at(21 + d)) for d, i in enumerate([12, 13, 15, 80, 90])]
    rows += [(u, 90, 4.0, at(25)) for u in (2, 3, 5, 6)] + [(u, 15, 4.0, at(26)) for u in (1, 4)]
    rows += [(u, 80, 4.0, at(27)) for u in (3, 5, 6)]
    return rows


@pytest.fixture
def leaky(tmp_path):
    write_movielens_csv(tmp_path / "leaky", leaky_rows())
    spec = DatasetSpec.from_dict({"name": "leaky", "reader": "movielens", "path": str(tmp_path / "leaky"),
                                  "user_core": 3, "item_core": 2, "min_seq_len": 3})
    return prepare_split(spec, "temporal", {"test_date": TEST_DATE, "valid_date": VALID_DATE},
                         cache_dir=tmp_path / "cache").split


def test_nothing_after_the_cut_decides_the_catalogue_the_users_or_the_popularity(leaky):
    items, users = list(leaky.item_ids[1:]), list(leaky.user_ids)
    assert "90" not in items  # only after the cut
    assert "80" not in items  # one interaction before the cut: below item_core=2 there, whatever came later
    assert "7" not in users  # two interactions before the cut: below min_seq_len=3, whatever came later
    assert users == ["1", "2", "3", "4", "5", "6"]
    # Popularity = interactions before the validation cut only (item 15: 2 there, 7 in all the files).
    popularity = dict(zip(leaky.item_ids[1:], leaky.item_popularity()[1:]))
    assert popularity == {"10": 6, "11": 5, "12": 4, "13": 3, "14": 3, "15": 2}
    pop = MostPop()
    pop.fit(leaky)
    ranked = leaky.item_ids[pop.score(Batch(torch_users(2), torch_history(2))).argsort(descending=True)[0, :-1].numpy()]
    assert list(ranked[:2]) == ["10", "11"] and ranked[-1] == "15"
    assert leaky.temporal.no_history == 1  # user 7: an interaction after the cut, no training history
    assert leaky.temporal.no_target == 1  # user 5: training history, nothing after the test cut


def test_training_validation_and_test_follow_the_cuts(leaky):
    name = dict(enumerate(leaky.item_ids))
    train = {leaky.user_ids[u]: [name[i] for i in leaky.train.items[leaky.train.offsets[u]:leaky.train.offsets[u + 1]]]
             for u in range(leaky.n_users)}
    assert train["1"] == ["10", "11", "12"] and train["4"] == ["11", "12", "14", "10"]  # before the validation cut
    assert (leaky.train.times < pd.Timestamp(VALID_DATE, tz="UTC").timestamp()).all()
    valid = {leaky.user_ids[u]: name[t] for u, t in zip(leaky.valid.users, leaky.valid.targets[:, 0])}
    assert valid == {"1": "13", "2": "12", "3": "11", "5": "12"}
    test = {leaky.user_ids[u]: name[t] for u, t in zip(leaky.test.users, leaky.test.targets[:, 0])}
    # The first interaction after the test cut with an item the model knows (90 and 80 are not in the catalogue).
    assert test == {"1": "14", "2": "15", "3": "14", "4": "13", "6": "14"}
    # Test histories are everything before the test cut: training plus the window between the cuts.
    first = leaky.test.histories
    history_1 = [name[i] for i in first.items[first.offsets[0]:first.offsets[1]]]
    assert history_1 == ["10", "11", "12", "13"]
    assert (leaky.test.target_times[:, 0] >= pd.Timestamp(TEST_DATE, tz="UTC").timestamp()).all()


def torch_users(n: int):
    import torch

    return torch.arange(n)


def torch_history(n: int):
    import torch

    return torch.zeros(n, 1, dtype=torch.long)


def test_quantile_cuts_and_their_refusals():
    times = np.arange(100)
    assert time_cuts(times, 0.9, 0.8) == (80, 90)  # 80 % of the interactions lie before the validation cut
    assert time_cuts(times, 0.5, 0.2, valid_date="1970-01-01 00:00:30") == (30, 50)
    with pytest.raises(DataError, match="validation cut .* must lie before the test cut"):
        time_cuts(times, 0.5, 0.7)
    with pytest.raises(DataError, match="protocol.test_date='soon' is not a date"):
        time_cuts(times, test_date="soon")
    seqs = Sequences(np.array([1, 2, 3, 1, 2]), np.array([0, 3, 5]), np.array([1, 2, 3, 1, 2]))
    with pytest.raises(DataError, match="no user has both training history .* and a test target"):
        temporal(seqs, np.array(["a", "b"]), np.array(["", "x", "y", "z"]), valid_quantile=0.5, test_date="1970-01-01 00:00:10")


def test_every_model_and_the_report_with_slices_run_on_the_temporal_protocol(tmp_path):
    write_movielens_csv(tmp_path / "leaky", leaky_rows())
    models = "pop,itemknn,ease,bprmf,sasrec,seq2seq_rnn"  # every kind: counting, neighbours, closed-form, MF, sequence, generative
    proc = run_cli("hydra.mode=MULTIRUN", f"hydra.sweep.dir={tmp_path / 'sweep'}", f"model={models}", "protocol=temporal",
                   f"protocol.test_date={TEST_DATE}", f"protocol.valid_date={VALID_DATE}", "dataset.path=" + str(tmp_path / "leaky"),
                   "dataset.user_core=3", "dataset.item_core=2", "dataset.min_seq_len=3", "trainer.max_epochs=1",
                   tmp=tmp_path)
    runs = sorted((tmp_path / "results" / "ml-latest-small" / "temporal").glob("*/seed0-*"))
    assert len(runs) == len(models.split(","))
    for run in runs:
        metrics = json.loads((run / "metrics.json").read_text())
        assert metrics["protocol"] == "temporal" and metrics["n_evaluated"] == 5
        assert metrics["temporal"]["no_history"] == 1 and metrics["temporal"]["no_target"] == 1
        assert {"hr@10", "ndcg@10", "mrr@10"} <= set(metrics["test"])
    per_user = pd.read_parquet(runs[0] / "per_user.parquet")
    assert dict(zip(per_user["target_item"], per_user["target_pop"])) == {"14": 3, "15": 2, "13": 3}
    assert "not evaluated at test: 1 users without an interaction after the test cut, 1 users with one" in proc.stdout + proc.stderr
    from benchmark.report.build import ReportOptions, build_report

    report = build_report(runs, ReportOptions(slices=["history", "popularity", "time"]), "seqrec-report", "x")
    assert {"table", "slice_history", "slice_popularity", "slice_time"} <= set(report.tables)
    assert "global temporal" in report.tables["table"].caption


@pytest.mark.parametrize("override, words", [
    ("protocol.test_quantile=1.5", "protocol.test_quantile=1.5 is not allowed; it must be a number in (0, 1)"),
    ("protocol.valid_date=someday", "protocol.valid_date='someday' is not allowed; it must be a date YYYY-MM-DD (UTC), or null"),
    ("+protocol.k=2", "unknown key protocol.k; protocol (temporal) takes"),  # one target: no next-k option
])
def test_bad_temporal_settings_are_one_line_naming_the_key(override, words, tmp_path):
    from benchmark.config import validate_config
    from benchmark.errors import ConfigError
    from conftest import compose_config

    config = compose_config("protocol=temporal", "protocol.test_date=2018-01-01", tmp=tmp_path)
    assert config["protocol"]["test_date"] == "2018-01-01"  # a date on the command line stays a date
    validate_config(config)
    bad = compose_config("protocol=temporal", override, tmp=tmp_path)
    with pytest.raises(ConfigError) as e:
        validate_config(bad)
    assert str(e.value).startswith(words) and "\n" not in str(e.value)
