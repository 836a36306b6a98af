"""The order control: dataset.shuffle_order takes order, and only order, away; seqrec-report --order-effect finds
a large significant effect where order is the signal (a Markov chain) and none where there is no order."""

from __future__ import annotations

import copy

import numpy as np
import pytest

from benchmark.config import validate_config
from benchmark.data.dataset import DatasetSpec, prepare_split
from benchmark.data.split import Sequences, leave_one_out, shuffle_order
from benchmark.record import run_dir_for
from benchmark.report.build import ReportOptions, build_report
from benchmark.report.runs import ReportError
from conftest import compose_config, permutation_rows, write_movielens_csv


def markov_rows() -> list[tuple]:
    """The next item is a fixed function of the previous one (one long cycle through the catalogue)."""
    return permutation_rows(n_users=80, n_items=40, length=10, one_cycle=True)


def order_free_rows(n_users: int = 80, n_items: int = 60, length: int = 8, seed: int = 0) -> list[tuple]:
    """Each user's items drawn i.i.d. (without repeats) from one of four item groups: what co-occurs is learnable,
    the order is not there to learn."""
    rng = np.random.default_rng(seed)
    rows = []
    for u in range(n_users):
        group = np.arange(n_items)[np.arange(n_items) % 4 == u % 4]
        for t, item in enumerate(rng.choice(group, size=length, replace=False)):
            rows.append((100 + u, 1000 + int(item), 4.0, 1_000_000 + 60 * t))
    return rows


def planted_split(rows: list[tuple]):
    users = np.array([r[0] for r in rows])
    items = np.array([r[1] for r in rows]) - 999
    offsets = np.concatenate([[0], np.cumsum(np.unique(users, return_counts=True)[1])])
    sequences = Sequences(items, offsets, np.array([r[3] for r in rows]))
    return leave_one_out(sequences, np.unique(users).astype(str), np.array([""] + [str(i) for i in range(1, items.max() + 1)]))


def test_shuffling_changes_only_the_order_of_training_items_and_histories():
    split = planted_split(markov_rows())
    a, b, other = shuffle_order(split, 0), shuffle_order(split, 0), shuffle_order(split, 1)
    np.testing.assert_array_equal(a.train.items, b.train.items)  # deterministic per seed
    assert not np.array_equal(a.train.items, other.train.items)  # another seed, another order
    assert not np.array_equal(a.train.items, split.train.items)
    for before, after in ((split.train, a.train), (split.valid.histories, a.valid.histories),
                          (split.test.histories, a.test.histories)):
        np.testing.assert_array_equal(after.offsets, before.offsets)
        np.testing.assert_array_equal(after.times, before.times)  # times stay put: no item keeps its true time
        for u in range(len(before)):  # the same items per user, in another order
            lo, hi = before.offsets[u], before.offsets[u + 1]
            assert sorted(after.items[lo:hi]) == sorted(before.items[lo:hi])
    assert (a.test.histories.items != split.test.histories.items).mean() > 0.5  # the true last item is not kept last
    for name in ("valid", "test"):
        np.testing.assert_array_equal(getattr(a, name).targets, getattr(split, name).targets)
        np.testing.assert_array_equal(getattr(a, name).users, getattr(split, name).users)


def test_the_cached_split_is_keyed_by_the_order_control_and_its_seed(tmp_path):
    write_movielens_csv(tmp_path / "m", markov_rows())
    base = {"name": "m", "reader": "movielens", "path": str(tmp_path / "m")}
    cache = tmp_path / "cache"
    plain = prepare_split(DatasetSpec.from_dict(base), "loo", cache_dir=cache)
    off = prepare_split(DatasetSpec.from_dict({**base, "shuffle_order": False}), "loo", cache_dir=cache)
    assert off.from_cache and off.split_key == plain.split_key  # off: the key splits had before the control existed
    on = [prepare_split(DatasetSpec.from_dict({**base, "shuffle_order": True}), "loo", cache_dir=cache, seed=s) for s in (0, 0, 1)]
    assert not on[0].from_cache and on[1].from_cache and not on[2].from_cache
    assert len({plain.split_key, on[0].split_key, on[2].split_key}) == 3 and on[0].split_key == on[1].split_key
    np.testing.assert_array_equal(on[0].split.test.targets, plain.split.test.targets)
    assert len(list(cache.glob("*.npz"))) == 3


def test_the_order_control_is_part_of_a_runs_identity_only_when_on(tmp_path):
    def run_dir(*overrides: str, drop: bool = False):
        config = compose_config("model=gru4rec", *overrides, tmp=tmp_path)
        if drop:  # a record written before the order control existed has no such key
            del config["dataset"]["shuffle_order"]
        validate_config(config)
        return run_dir_for(config["results_dir"], config)

    assert run_dir("dataset.shuffle_order=false") == run_dir(drop=True)
    assert run_dir("dataset.shuffle_order=true") != run_dir("dataset.shuffle_order=false")


MODEL = ["model=gru4rec", "model.hidden=32", "model.dropout=0.0", "trainer=small", "trainer.lr=0.01",
         "trainer.max_epochs=12", "trainer.patience=12", "trainer.num_threads=1"]


@pytest.fixture(scope="module")
def planted_config(tmp_path_factory):
    """The run config, composed once (Hydra's compose costs seconds); each test sets its data and seeds."""
    return compose_config("dataset.user_core=1", "dataset.item_core=1", *MODEL, tmp=tmp_path_factory.mktemp("config"))


def order_effect_of(rows: list[tuple], config: dict, tmp_path):
    """seqrec -m dataset.shuffle_order=false,true seed=0,1,2 (in-process), then seqrec-report --order-effect."""
    from benchmark.run import run_experiment

    write_movielens_csv(tmp_path / "data", rows)
    records = []
    for shuffle in (False, True):
        for seed in (0, 1, 2):
            run = copy.deepcopy(config) | {"seed": seed, "results_dir": str(tmp_path / "results"), "cache_dir": str(tmp_path / "cache")}
            run["dataset"] |= {"path": str(tmp_path / "data"), "shuffle_order": shuffle}
            records.append(run_experiment(run))
    return build_report(records, ReportOptions(order_effect=True), "seqrec-report --order-effect", "planted")


@pytest.mark.parametrize("rows, effect", [(markov_rows(), True), (order_free_rows(), False)], ids=["markov", "order-free"])
def test_order_effect_is_large_and_significant_on_a_markov_chain_and_absent_without_order(rows, effect, planted_config,
                                                                                         tmp_path):
    report = order_effect_of(rows, planted_config, tmp_path)
    (row,) = report.order_effect.rows.to_dict("records")
    assert row["model"] == "gru4rec" and row["seeds_true"] == row["seeds_shuffled"] == 3 and row["n_users"] == 80
    if effect:
        # A set still tells much (co-occurrence on the chain): order adds the rest, on every seed.
        assert row["significant"] and row["mean_diff"] > 0.15 and row["mean_true"] > 1.3 * row["mean_shuffled"]
        assert row["verdict"].startswith("order helps here by +0.")
    else:
        assert not row["significant"] and abs(row["mean_diff"]) < 0.05
        assert row["verdict"].startswith("no significant order effect")
    # The shuffled runs are the control, not rows of the results table; the families table gets the order line.
    assert report.tables["table"].rows == ["gru4rec"] and "Left out: 3 runs trained on shuffled order" in report.tables["table"].caption
    families, _ = report.families
    assert families.rows[-1] == "order effect" and families.cells[("order effect", 0)].text.startswith("gru4rec ")


def write_order_runs(root, shuffled_models=("sasrec", "gru4rec")):
    """sasrec: best on validation, worse on test than gru4rec; each with shuffled-order runs that are worse."""
    from report_records import planted_ranks, write_run

    for model, encoder, quality, valid in (("sasrec", "attention", 1.0, 0.5), ("gru4rec", "rnn", 1.5, 0.3)):
        parts = {"encoder": encoder, "head": "next_item"}
        for seed in (0, 1):
            write_run(root, "ds", model, seed, planted_ranks(300, quality, seed), valid={"ndcg@10": valid}, model_config=parts)
            if model in shuffled_models:
                write_run(root, "ds", model, seed, planted_ranks(300, quality - 1.0, seed + 10), valid={"ndcg@10": valid / 2},
                          model_config=parts, shuffle_order=True)
    write_run(root, "ds", "pop", 0, planted_ranks(300, 0.0, 99))


def test_order_effect_compares_the_model_chosen_on_validation_with_its_shuffled_runs(tmp_path, capsys):
    from benchmark.record import find_records
    from benchmark.report.cli import main

    write_order_runs(tmp_path / "r")
    report = build_report(find_records(tmp_path / "r"), ReportOptions(order_effect=True), "c", "s")
    (row,) = report.order_effect.rows.to_dict("records")
    assert row["model"] == "sasrec" and row["seeds_true"] == row["seeds_shuffled"] == 2 and row["significant"]
    assert "order helps here by +" in row["verdict"] and "Holm-corrected over the 1 dataset" in report.order_effect.table.caption
    assert set(report.tables["table"].rows) == {"pop", "gru4rec", "sasrec"}  # shuffled runs are no rows of their own
    with pytest.raises(SystemExit) as stop:
        main([str(tmp_path / "r"), "--order-effect", "--out", str(tmp_path / "out")])
    assert stop.value.code == 0
    assert "order helps here by" in (tmp_path / "out" / "order_effect.md").read_text()
    assert (tmp_path / "out" / "order_effect.csv").is_file() and "order effect" in (tmp_path / "out" / "families.md").read_text()


def test_order_effect_says_when_the_chosen_model_has_no_shuffled_runs(tmp_path):
    from benchmark.record import find_records

    write_order_runs(tmp_path / "r", shuffled_models=("gru4rec",))
    report = build_report(find_records(tmp_path / "r"), ReportOptions(order_effect=True), "c", "s")
    (row,) = report.order_effect.rows.to_dict("records")
    assert row["model"] == "sasrec" and row["verdict"] == "no runs of sasrec with dataset.shuffle_order=true"


def test_order_effect_needs_both_orders(tmp_path):
    from benchmark.record import find_records
    from report_records import planted_ranks, write_run

    write_run(tmp_path / "true", "ds", "sasrec", 0, planted_ranks(50, 1.0, 0), valid={"ndcg@10": 0.1})
    with pytest.raises(ReportError, match="--order-effect needs runs trained with dataset.shuffle_order=true"):
        build_report(find_records(tmp_path / "true"), ReportOptions(order_effect=True), "c", "s")
    write_run(tmp_path / "shuffled", "ds", "sasrec", 0, planted_ranks(50, 1.0, 0), shuffle_order=True)
    with pytest.raises(ReportError, match="all 1 runs were trained with dataset.shuffle_order=true"):
        build_report(find_records(tmp_path / "shuffled"), ReportOptions(), "c", "s")
