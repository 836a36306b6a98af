"""The literature's settings: the S3-Rec reproduction experiment and its table script, and the published
ML-1M / ML-20M SASRec settings, run end to end on tiny fixtures in the same native formats."""

from __future__ import annotations

import importlib.util
import json
from pathlib import Path

import pandas as pd
import pytest
from omegaconf import OmegaConf

from conftest import REPO, compose_config, permutation_rows, run_cli


def _table_script():
    spec = importlib.util.spec_from_file_location("reproduction_table", REPO / "scripts" / "reproduction_table.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def _record(root: Path, dataset: str, model: str, seed: int, ndcg: float, hr: float, protocol: str = "loo",
            candidates: str = "full", shuffled: bool = False, lr: float | None = None, valid: float | None = None,
            config: dict | None = None, tag: str = "") -> None:
    d = root / dataset / protocol / model / f"seed{seed}-abc{seed}{'s' if shuffled else ''}{lr or ''}{tag}"
    d.mkdir(parents=True)
    metrics = {"dataset": dataset, "model": model, "seed": seed, "protocol": protocol, "candidates": candidates,
               "train_seconds": 10.0 + seed, "epochs": 3, "test": {"ndcg@10": ndcg, "hr@10": hr},
               "valid": {"ndcg@10": ndcg if valid is None else valid}, "shuffle_order": shuffled}
    (d / "metrics.json").write_text(json.dumps(metrics))
    if lr is not None:
        (d / "config.yaml").write_text(f"trainer:\n  lr: {lr}\n  batch_size: 256\n")
    if config is not None:
        (d / "config.yaml").write_text(OmegaConf.to_yaml(OmegaConf.create(config)))
    (d / "env.json").write_text(json.dumps({"torch_threads": 1}))


def _experiment_config(tmp: Path, seed: int, *overrides: str) -> dict:
    """What `seqrec experiment=reproduce_s3rec dataset=s3rec-lastfm model=caser seed=SEED OVERRIDES` runs."""
    return compose_config("experiment=reproduce_s3rec", "dataset=s3rec-lastfm", "model=caser", f"seed={seed}",
                          *overrides, tmp=tmp)


def test_reproduction_table_sets_ours_beside_the_published_values(tmp_path):
    runs = tmp_path / "runs"
    _record(runs, "s3rec-beauty", "sasrec", 0, 0.0500, 0.0900)
    _record(runs, "s3rec-beauty", "sasrec", 1, 0.0540, 0.0940)
    _record(runs, "s3rec-beauty", "pop", 0, 0.0060, 0.0150)
    _record(runs, "s3rec-beauty", "sasrec", 2, 0.9, 0.9, protocol="horizon")          # another protocol: not read
    _record(runs, "s3rec-beauty", "gru4rec", 0, 0.9, 0.9, candidates="sampled")      # sampled metrics: not read
    _record(runs, "s3rec-beauty", "ease", 0, 0.9, 0.9)                               # not in the paper's table
    _record(runs, "s3rec-beauty", "sasrec", 0, 0.9, 0.9, shuffled=True)              # the order control: not read
    _record(runs, "s3rec-beauty", "sasrec", 1, 0.9, 0.9, lr=0.003)                    # another trainer: not read
    out = tmp_path / "out" / "reproduction"
    assert _table_script().main([str(runs), "--out", str(out)]) == 0

    rows = pd.read_csv(out.with_suffix(".csv")).set_index(["dataset", "model"])
    assert len(rows) == 20  # 4 datasets x 5 models, run or not
    sasrec = rows.loc[("Beauty", "SASRec")]
    assert sasrec["seeds"] == 2
    assert sasrec["ndcg@10"] == pytest.approx(0.052)
    assert sasrec["ndcg@10_std"] == pytest.approx(pd.Series([0.05, 0.054]).std())
    assert sasrec["ratio_ndcg@10"] == pytest.approx(0.052 / 0.0318)
    assert bool(sasrec["floor_met"]) and not bool(sasrec["aim_met"])  # above S3-Rec's, below eSASRec's SASRec-SS .0531
    pop = rows.loc[("Beauty", "PopRec")]
    assert pop["seeds"] == 1 and not bool(pop["floor_met"])  # .0060 / .0068 < 95%
    assert rows.loc[("Beauty", "GRU4Rec")]["seeds"] == 0 and rows.loc[("LastFM", "SASRec")]["seeds"] == 0

    md = out.with_suffix(".md").read_text()
    assert "| Beauty | SASRec | 0.0920 ± 0.0028 | 0.0605 | 0.0520 ± 0.0028 | 0.0318 | 1.64 | ✓ | 2 | 21 |" in md
    assert "| Beauty | PopRec | 0.0150 (1 seed) | 0.0152 | 0.0060 (1 seed) | 0.0068 | 0.88 | ✗ | 1 | 10 |" in md
    assert "| Sports | Caser | not run yet |" in md
    assert "Beauty: ours 0.0520 ± 0.0028, eSASRec's SASRec-SS 0.0531 — below ✗" in md


def test_a_cell_run_in_two_settings_shows_the_one_validation_prefers_never_a_mix(tmp_path):
    runs = tmp_path / "runs"
    for seed in (0, 1, 2):  # the experiment as it is, and at a weight decay: better on validation, worse on test
        _record(runs, "s3rec-lastfm", "caser", seed, 0.0150 + seed / 1000, 0.03, valid=0.031, tag="a",
                config=_experiment_config(tmp_path, seed))
        _record(runs, "s3rec-lastfm", "caser", seed, 0.0140, 0.03, valid=0.035, tag="b",
                config=_experiment_config(tmp_path, seed, "trainer.weight_decay=0.0001"))
    out = tmp_path / "out"
    assert _table_script().main([str(runs), "--out", str(out)]) == 0
    caser = pd.read_csv(out.with_suffix(".csv")).set_index(["dataset", "model"]).loc[("LastFM", "Caser")]
    assert caser["seeds"] == 3 and caser["settings"] == 2
    assert caser["ndcg@10"] == pytest.approx(0.0140) and caser["ndcg@10_std"] == pytest.approx(0.0)
    md = out.with_suffix(".md").read_text()
    assert "| LastFM | Caser | 0.0300 ± 0.0000 | 0.0413 | 0.0140 ± 0.0000 | 0.0214 | 0.65 | ✗ | 3‡ |" in md
    assert "‡ its records ran several settings" in md


def test_records_of_other_model_settings_stay_out_of_the_experiments_table(tmp_path):
    runs = tmp_path / "runs"  # a Caser file tuned on validation: better there, and still not the experiment's
    _record(runs, "s3rec-lastfm", "caser", 0, 0.0150, 0.03, valid=0.031, tag="a", config=_experiment_config(tmp_path, 0))
    _record(runs, "s3rec-lastfm", "caser", 0, 0.0190, 0.04, valid=0.040, tag="b",
            config=_experiment_config(tmp_path, 0, "model.window=3", "model.horizontal_filters=8"))
    out = tmp_path / "out"
    assert _table_script().main([str(runs), "--out", str(out)]) == 0
    caser = pd.read_csv(out.with_suffix(".csv")).set_index(["dataset", "model"]).loc[("LastFM", "Caser")]
    assert caser["seeds"] == 1 and caser["settings"] == 1 and caser["ndcg@10"] == pytest.approx(0.0150)


def test_keep_carries_the_cells_without_records_here_from_an_earlier_table(tmp_path, capsys):
    elsewhere, here = tmp_path / "elsewhere", tmp_path / "here"  # two machines; the first one's records are gone
    _record(elsewhere, "s3rec-toys", "sasrec", 0, 0.0520, 0.0841)
    _record(elsewhere, "s3rec-beauty", "sasrec", 0, 0.0400, 0.0800)
    assert _table_script().main([str(elsewhere), "--out", str(tmp_path / "earlier")]) == 0
    _record(here, "s3rec-beauty", "sasrec", 0, 0.0500, 0.0900)
    _record(here, "s3rec-beauty", "sasrec", 1, 0.0540, 0.0940)
    out = tmp_path / "new"
    assert _table_script().main([str(here), "--out", str(out), "--keep", str(tmp_path / "earlier.csv")]) == 0

    rows = pd.read_csv(out.with_suffix(".csv")).set_index(["dataset", "model"])
    beauty, toys = rows.loc[("Beauty", "SASRec")], rows.loc[("Toys", "SASRec")]
    assert beauty["seeds"] == 2 and beauty["ndcg@10"] == pytest.approx(0.052) and not beauty["carried"]  # records win
    assert toys["seeds"] == 1 and toys["ndcg@10"] == pytest.approx(0.052) and toys["carried"]
    assert toys["ratio_ndcg@10"] == pytest.approx(0.052 / 0.0374) and bool(toys["aim_met"]) is False
    assert rows.loc[("Sports", "SASRec")]["seeds"] == 0 and not rows.loc[("Sports", "SASRec")]["carried"]
    md = out.with_suffix(".md").read_text()
    assert "| Toys | SASRec | 0.0841 (1 seed) | 0.0675 | 0.0520 (1 seed) | 0.0374 | 1.39 | ✓ | 1† | 10 |" in md
    assert "| Beauty | SASRec | 0.0920 ± 0.0028 | 0.0605 | 0.0520 ± 0.0028 | 0.0318 | 1.64 | ✓ | 2 | 21 |" in md
    assert "† carried from the earlier table" in md

    (tmp_path / "bad.csv").write_text("a,b\n1,2\n")
    assert _table_script().main([str(here), "--out", str(tmp_path / "x"), "--keep", str(tmp_path / "bad.csv")]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "bad.csv" in err and "not a reproduction table" in err
    assert not (tmp_path / "x.md").exists()  # nothing half-written


def test_reproduction_table_refuses_a_missing_folder(tmp_path, capsys):
    assert _table_script().main([str(tmp_path / "nowhere")]) == 2
    assert "nowhere is not a folder" in capsys.readouterr().err


def test_reproduce_s3rec_runs_the_papers_grid_on_its_file_format(tmp_path):
    """The experiment composes the S3-Rec setting; a dataset preset reads its `user item item ...` file."""
    cfg = compose_config("experiment=reproduce_s3rec", tmp=tmp_path)
    # The grid lives in the Hydra section, which compose leaves out: read it from the file.
    grid = OmegaConf.load(REPO / "conf" / "experiment" / "reproduce_s3rec.yaml").hydra.sweeper.params
    assert grid.model.split(",") == ["pop", "gru4rec", "caser", "sasrec", "bert4rec"]
    assert set(grid.dataset.split(",")) == {"s3rec-beauty", "s3rec-sports", "s3rec-toys", "s3rec-lastfm"}
    assert len(grid.seed.split(",")) == 3
    assert cfg["trainer"]["lr"] == 0.001 and cfg["trainer"]["batch_size"] == 256 and cfg["model"]["max_len"] == 50
    assert cfg["dataset"]["mask_history"] is True and cfg["protocol"]["name"] == "loo"

    data = tmp_path / "data" / "s3rec-toys"
    data.mkdir(parents=True)
    lines = {}
    for u, i, _, _ in permutation_rows(n_users=30, n_items=20, length=8):
        lines.setdefault(u, []).append(str(i))
    (data / "Toys_and_Games.txt").write_text("".join(f"{u} {' '.join(items)}\n" for u, items in lines.items()))
    run_cli("experiment=reproduce_s3rec", "dataset=s3rec-toys", "model=pop,sasrec",
            "seed=0", "trainer.max_epochs=1", f"hydra.sweep.dir={tmp_path / 'sweep'}", tmp=tmp_path)
    records = sorted((tmp_path / "results" / "s3rec-toys" / "loo").glob("*/seed0-*/metrics.json"))
    assert [p.parts[-3] for p in records] == ["pop", "sasrec"]
    metrics = json.loads(records[1].read_text())
    assert metrics["dataset"] == "s3rec-toys" and metrics["n_users"] == 30 and metrics["n_items"] == 20


@pytest.mark.parametrize("experiment, item_core", [("sasrec_ml1m_ce", 5), ("sasrec_ml20m_ce", 1)])
def test_published_sasrec_settings_compose_and_run_on_the_native_format(experiment, item_core, tmp_path):
    cfg = compose_config(f"experiment={experiment}", tmp=tmp_path)
    model, dataset = cfg["model"], cfg["dataset"]
    assert (model["name"], model["objective"], model["max_len"]) == ("sasrec", "ce", 200)
    assert (dataset["user_core"], dataset["item_core"]) == (5, item_core)
    assert cfg["protocol"]["name"] == "loo" and cfg["protocol"].get("candidates", "full") == "full"

    # ML-1M's ratings.dat (UserID::MovieID::Rating::Timestamp); ml-20m reads ratings.csv.
    native = tmp_path / "native"
    native.mkdir()
    rows = permutation_rows(n_users=25, n_items=15, length=10)
    if experiment == "sasrec_ml1m_ce":
        (native / "ratings.dat").write_text("".join(f"{u}::{i}::{int(r)}::{t}\n" for u, i, r, t in rows))
    else:
        (native / "ratings.csv").write_text("userId,movieId,rating,timestamp\n" + "".join(f"{u},{i},{r},{t}\n" for u, i, r, t in rows))
    run_cli(f"experiment={experiment}", f"dataset.path={native}", "seed=0", "trainer.max_epochs=1",
            f"hydra.sweep.dir={tmp_path / 'sweep'}", tmp=tmp_path)
    [record] = (tmp_path / "results").glob("*/loo/sasrec/seed0-*/metrics.json")
    metrics = json.loads(record.read_text())
    assert metrics["n_users"] == 25 and metrics["epochs"] == 1


def test_poprec_variants_count_popularity_the_three_ways(tmp_path, capsys):
    """Item 3 is every user's test item: it is the most popular only when the test items are counted."""
    spec = importlib.util.spec_from_file_location("poprec_variants", REPO / "scripts" / "poprec_variants.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    data = tmp_path / "tiny.txt"
    data.write_text("1 1 2 4 3\n2 1 2 5 3\n3 2 1 6 3\n")
    assert module.main([str(data)]) == 0
    lines = capsys.readouterr().out.splitlines()
    # training counts: items 1 and 2 three times each (masked as history), 3 never: it ties with the two other
    # never-seen items, which count against it: rank 3, 1/log2(4)
    assert lines[1].endswith("NDCG@10 0.5000  HR@10 1.0000")
    assert lines[5].endswith("NDCG@10 1.0000  HR@10 1.0000")  # counted with the test items, 3 (3x) ranks first
