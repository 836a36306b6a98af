"""protocol.refit: after model selection on the temporal protocol's validation set, a fresh model trains on every
interaction before the test cut, for the epoch count validation chose, and is tested; on a fixture built so that
an item or user known only between the cuts appears after the refit, and anything after the test cut would leak."""

from __future__ import annotations

import json
import math
import shutil

import numpy as np
import pandas as pd
import pytest
import torch

from baselines.pop import MostPop
from benchmark.config import TrainerConfig, validate_config
from benchmark.data.dataset import DatasetSpec, prepare_split
from benchmark.errors import ConfigError
from benchmark.models.base import Batch
from benchmark.record import config_hash
from benchmark.refit import chosen_epochs, refit_trainer
from benchmark.training import EpochLog, train_loop
from conftest import compose_config, run_cli, write_movielens_csv
from test_temporal import TEST_DATE, VALID_DATE, at, leaky_rows

TEST_CUT = int(pd.Timestamp(TEST_DATE, tz="UTC").timestamp())
DATASET = ["dataset.user_core=3", "dataset.item_core=2", "dataset.min_seq_len=3"]


def refit_rows() -> list[tuple]:
    """test_temporal's leaky rows (users 1-7; items 80 and 90 and user 7 leak if anything after the test cut is
    read, item 15 is rare before it and common after it), plus item 50, seen only between the cuts (users 1-6
    and 8: the most popular item before the test cut), and user 8, whose history starts between the cuts and who
    interacts with 15 after the test cut."""
    between = [(u, 50, 4.0, at(13)) for u in range(1, 7)]
    user_8 = [(8, 50, 4.0, at(12)), (8, 13, 4.0, at(13)), (8, 14, 4.0, at(14)), (8, 15, 4.0, at(22))]
    return leaky_rows() + between + user_8


@pytest.fixture
def data_dir(tmp_path):
    write_movielens_csv(tmp_path / "refit", refit_rows())
    return tmp_path / "refit"


def prepared(data_dir, tmp_path, refit: bool):
    spec = DatasetSpec.from_dict({"name": "refit", "reader": "movielens", "path": str(data_dir),
                                  "user_core": 3, "item_core": 2, "min_seq_len": 3})
    return prepare_split(spec, "temporal", {"test_date": TEST_DATE, "valid_date": VALID_DATE},
                         cache_dir=tmp_path / "cache", refit=refit)


def names(split, es):
    return {split.user_ids[u]: split.item_ids[t] for u, t in zip(es.users, es.targets[:, 0])}


def test_the_refit_trains_on_exactly_the_interactions_before_the_test_cut(data_dir, tmp_path):
    first, refit = prepared(data_dir, tmp_path, False).split, prepared(data_dir, tmp_path, True).split
    # Model selection's split is the temporal protocol's, untouched: 50 and user 8 come after its training cut.
    assert "50" not in first.item_ids and "8" not in first.user_ids
    assert names(first, first.valid) == {"1": "13", "2": "12", "3": "11", "5": "12"}
    # The refit's catalogue and users: counted before the test cut only (80: one interaction there, below
    # item_core=2; 90: only after it; user 7: two before it, below min_seq_len=3, whatever came later).
    assert list(refit.item_ids[1:]) == ["10", "11", "12", "13", "14", "15", "50"]
    assert list(refit.user_ids) == ["1", "2", "3", "4", "5", "6", "8"]
    # Its training data is every kept interaction before the test cut (the fixture's rows, counted here by hand
    # from them), and nothing at or after it.
    kept = [(u, i) for u, i, _, t in refit_rows() if t < TEST_CUT and u != 7 and i not in (80, 90)]
    assert len(refit.train.items) == len(kept) == 36 and (refit.train.times < TEST_CUT).all()
    train_8 = refit.train.items[refit.train.offsets[6]:refit.train.offsets[7]]
    assert list(refit.item_ids[train_8]) == ["50", "13", "14"]
    assert len(refit.valid) == 0 and refit.temporal.refit and refit.temporal.test_cut == TEST_CUT
    # Popularity counts the interactions between the cuts (50 is the most popular), none after the test cut
    # (there 15 is the most popular, 80 and 90 common).
    popularity = dict(zip(refit.item_ids[1:], refit.item_popularity()[1:].tolist()))
    assert popularity == {"10": 6, "11": 6, "12": 6, "13": 5, "14": 4, "15": 2, "50": 7}
    pop = MostPop()
    pop.fit(refit)
    ranked = refit.item_ids[pop.score(Batch(torch.arange(1), torch.zeros(1, 1, dtype=torch.long)))[0, 1:].argsort(
        descending=True).numpy() + 1]
    assert ranked[0] == "50" and ranked[-1] == "15"
    # The test: each user's first interaction after the test cut with a known item, from the whole history
    # before it; user 8 is evaluated now, user 5 has no target, user 7 no history.
    assert names(refit, refit.test) == {"1": "14", "2": "15", "3": "14", "4": "13", "6": "14", "8": "15"}
    assert (refit.test.target_times[:, 0] >= TEST_CUT).all()
    assert (refit.temporal.no_target, refit.temporal.no_history) == (1, 1)
    assert refit.test.histories.lengths.tolist() == refit.train.lengths[refit.test.users].tolist()


class Counter(torch.nn.Module):
    """One weight that every step moves by one: its value counts the steps trained."""

    def __init__(self) -> None:
        super().__init__()
        self.w = torch.nn.Parameter(torch.zeros(()))


def test_the_refit_trains_the_epoch_count_validation_chose_and_keeps_its_last_weights():
    net = Counter()
    scripted = iter([0.1, 0.3, 0.2, 0.25])  # the best epoch is the 2nd; patience 2 stops after the 4th
    cfg = TrainerConfig(max_epochs=10, patience=2, batch_size=4, lr=1.0, optimizer="adam", grad_clip=None)
    history = train_loop(net, lambda idx, g: (net.w - 100) ** 2 / 1e4, 4, lambda: next(scripted), cfg)
    assert [h.epoch for h in history] == [1, 2, 3, 4] and chosen_epochs(history) == 2

    refit_net, calls = Counter(), []
    refit_cfg = refit_trainer(cfg, chosen_epochs(history), spent_minutes=0.0)
    assert (refit_cfg.max_epochs, refit_cfg.refit, refit_cfg.checkpoint_path) == (2, True, None)

    def step(idx, g):
        calls.append(1)
        return (refit_net.w - 100) ** 2 / 1e4

    refit_history = train_loop(refit_net, step, 4, lambda: pytest.fail("a refit validates nothing"), refit_cfg)
    assert [h.epoch for h in refit_history] == [1, 2] and len(calls) == 2  # one batch of 4 per epoch
    assert all(math.isnan(h.valid_metric) for h in refit_history)
    # The last weights (after both steps), not a "best" epoch's: Adam moves w by lr per step towards 100.
    assert refit_net.w.item() == pytest.approx(2.0, rel=1e-3)


def test_chosen_epochs_is_the_epoch_train_loop_keeps():
    logs = [EpochLog(e, 1.0, m, 1.0) for e, m in enumerate([0.2, 0.5, 0.5, 0.1], start=1)]
    assert chosen_epochs(logs) == 2  # the first of equal bests, as train_loop keeps it
    assert chosen_epochs([EpochLog(e, 1.0, math.nan, 1.0) for e in (1, 2, 3)]) == 3  # no number: the last weights
    assert chosen_epochs([]) is None  # a model without epochs (pop) is simply fitted again
    limited = refit_trainer(TrainerConfig(time_limit=10.0), 3, spent_minutes=4.0)
    assert limited.time_limit == pytest.approx(6.0)  # trainer.time_limit bounds both fits together
    assert refit_trainer(TrainerConfig(time_limit=1.0), 3, spent_minutes=5.0).time_limit > 0  # spent: cut at once


def test_pop_and_gru4rec_are_refit_and_tested_on_the_split_before_the_test_cut(data_dir, tmp_path):
    proc = run_cli("hydra.mode=MULTIRUN", f"hydra.sweep.dir={tmp_path / 'sweep'}", "model=pop,gru4rec",
                   "protocol=temporal", "protocol.refit=true", f"protocol.test_date={TEST_DATE}",
                   f"protocol.valid_date={VALID_DATE}", f"dataset.path={data_dir}", *DATASET, "trainer.max_epochs=2",
                   tmp=tmp_path)
    runs = {r.parent.name: r for r in (tmp_path / "results" / "ml-latest-small" / "temporal").glob("*/seed0-*")}
    assert set(runs) == {"pop", "gru4rec"}
    for name, run in runs.items():
        metrics = json.loads((run / "metrics.json").read_text())
        refit = metrics["refit"]
        # Tested on the refit's split: its catalogue and users, user 8 among the evaluated.
        assert (refit["n_items"], refit["n_users"], refit["train_interactions"]) == (7, 7, 36)
        assert (refit["selection_n_items"], refit["selection_train_interactions"]) == (6, 23)
        assert metrics["n_items"] == 7 and metrics["n_evaluated"] == 6 and metrics["temporal"]["refit"]
        assert metrics["split_key"] != refit["selection_split_key"]
        per_user = pd.read_parquet(run / "per_user.parquet")
        assert dict(zip(per_user["user"], per_user["target_item"])) == {"1": "14", "2": "15", "3": "14", "4": "13",
                                                                        "6": "14", "8": "15"}
        assert dict(zip(per_user["target_item"], per_user["target_pop"])) == {"14": 4, "15": 2, "13": 5}
        # Validation comes from the first fit (its split's four validation users), recorded beside the refit.
        assert set(metrics["valid"]) >= {"ndcg@10", "hr@10"} and "ndcg@10" in metrics["test"]
        history = pd.read_csv(run / "history.csv")
        if name == "pop":
            assert refit["epochs"] is None and refit["epochs_trained"] == 0 and history.empty
            # Popularity before the test cut ranks each target among the items outside the user's history
            # (counts 10-12: 6, 13: 5, 14: 4, 15: 2): counts from after it would put 15 first.
            assert dict(zip(per_user["user"], per_user["rank"])) == {"1": 1, "2": 1, "3": 1, "4": 1, "6": 2, "8": 4}
        else:
            logs = [EpochLog(int(r.epoch), float(r.loss), float(r.valid_metric), float(r.seconds))
                    for r in history.itertuples()]
            assert len(logs) == 2 and refit["epochs"] == chosen_epochs(logs)
            assert refit["epochs_trained"] == refit["epochs"] == len(refit["losses"])
            assert metrics["train_seconds"] >= refit["train_seconds"] > 0
    assert "refit: " in proc.stdout + proc.stderr
    from benchmark.report.build import ReportOptions, build_report
    from benchmark.report.runs import ReportError
    from benchmark.report.settings import records_by_setting

    report = build_report(list(runs.values()), ReportOptions(), "seqrec-report", "x")
    assert "protocol.refit: after model selection on validation each model was retrained" in report.tables["table"].caption
    # A record without refit (its refit block gone) is another setting: never in one table with refit records,
    # and a folder holding both gets a report for each (the sweep's own report too).
    plain = tmp_path / "plain" / "pop"
    shutil.copytree(runs["pop"], plain)
    metrics = json.loads((plain / "metrics.json").read_text())
    del metrics["refit"]
    (plain / "metrics.json").write_text(json.dumps(metrics))
    with pytest.raises(ReportError, match="runs of different settings .*temporal .*temporal-refit"):
        build_report([runs["gru4rec"], plain], ReportOptions(), "seqrec-report", "x")
    assert set(records_by_setting([runs["gru4rec"], plain])[0]) == {"temporal", "temporal-refit"}


@pytest.mark.parametrize("protocol, why", [("loo", "no global cut"), ("horizon", "no global cut"),
                                           ("session", "validation sessions included")])
def test_refit_outside_the_temporal_protocol_is_refused_in_one_line(tmp_path, protocol, why):
    config = compose_config(f"protocol={protocol}", "protocol.refit=true", "dataset.min_seq_len=11", tmp=tmp_path)
    with pytest.raises(ConfigError) as e:
        validate_config(config)
    assert str(e.value).startswith(f"protocol.refit=true is defined for protocol=temporal only, not {protocol}")
    assert why in str(e.value)
    assert "\n" not in str(e.value)
    spec = DatasetSpec.from_dict({"name": "x", "reader": "movielens", "path": str(tmp_path)})
    with pytest.raises(ConfigError, match="protocol.refit=true is defined for protocol=temporal only"):
        prepare_split(spec, protocol, refit=True)


def test_refit_off_keeps_every_records_identity_and_on_is_a_new_configuration(tmp_path):
    for protocol in ("loo", "temporal"):
        config = compose_config(f"protocol={protocol}", tmp=tmp_path)
        assert config["protocol"]["refit"] is False
        before = {**config, "protocol": {k: v for k, v in config["protocol"].items() if k != "refit"}}
        assert config_hash(config) == config_hash(before)  # records made before the key keep their folder
    refit = compose_config("protocol=temporal", "protocol.refit=true", tmp=tmp_path)
    validate_config(refit)
    assert config_hash(refit) != config_hash(compose_config("protocol=temporal", tmp=tmp_path))
    pop = compose_config("model=pop", "protocol=temporal", "protocol.refit=true", tmp=tmp_path)
    assert config_hash(pop) != config_hash(compose_config("model=pop", "protocol=temporal", tmp=tmp_path))


def test_the_refit_split_takes_the_timed_targets_filter_without_a_validation_set():
    from benchmark.data.dataset import timed_targets_only
    from benchmark.data.split import Sequences, refit_at

    # User a: two interactions before the test cut (20), one after; b: the one after it has the untimed marker 25.
    seqs = Sequences(np.array([1, 2, 3, 1, 3, 2]), np.array([0, 3, 6]), np.array([1, 2, 30, 5, 15, 25]))
    split = refit_at(seqs, np.array(["a", "b"]), np.array(["", "x", "y", "z"]), valid_cut=10, test_cut=20)
    assert split.train.lengths.tolist() == [2, 2] and split.test.users.tolist() == [0, 1] and len(split.valid) == 0
    timed = timed_targets_only(split, untimed=25)  # MIND's dataset.history_targets=false
    assert timed.test.users.tolist() == [0] and len(timed.valid) == 0
