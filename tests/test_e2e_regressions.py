"""Findings of an end-to-end walk (seqrec -> seqrec-report) on real-format data, reproduced on tiny made-up data."""

from __future__ import annotations

import json
import re

import pandas as pd
import yaml

from benchmark.record import find_records
from benchmark.report.build import ReportOptions, build_report
from conftest import run_cli
from report_records import planted_ranks, write_run


def _density_cell(setup_md: str, dataset: str) -> str:
    row = next(line for line in setup_md.splitlines() if line.startswith(f"| {dataset} |"))
    return [c.strip() for c in row.strip("|").split("|")][5]


def test_setup_density_counts_distinct_pairs_like_seqrec_data_stats(tmp_path):
    """Music keeps repeated plays (dedupe=false): setup.md's density divided every play by users x items
    (1063.830% on the Last.fm sample, where `seqrec-data stats` says 50.213%); it must count distinct
    (user, item) pairs, as seqrec-data stats does, so it can never exceed 100%."""
    data = tmp_path / "plays.txt"
    # 4 users x 3 items, each user plays 2 distinct items 8 times: 8 distinct pairs of 12 cells, 32 plays.
    data.write_text("".join(f"u{u} " + " ".join(["1", "2"] * 4 if u % 2 else ["2", "3"] * 4) + "\n" for u in range(4)))
    run_cli("model=pop", "dataset=sequences", f"dataset.path={data}", "dataset.mask_history=false", tmp=tmp_path)
    records = find_records(tmp_path / "results")
    assert len(records) == 1
    metrics = json.loads((records[0] / "metrics.json").read_text())
    assert (metrics["n_users"], metrics["n_items"], metrics["n_interactions"]) == (4, 3, 32)
    report = build_report(records, ReportOptions(setup=True), "RESULTS")
    assert _density_cell(report.setup["setup.md"], "plays") == f"{8 / 12:.3%}"  # 66.667%, not 266.667%


def test_setup_density_of_an_older_record_with_repeats_is_not_guessed(tmp_path):
    """A record without the distinct-pair count: with dedupe on, interactions are distinct pairs; with
    repeats kept the density is unknown and shown as such, never as interactions / (users x items)."""
    run = write_run(tmp_path, "plays", "pop", 0, planted_ranks(50, 0.0, 0), n_items=10)  # 1,000 rows, 50 x 10 cells
    config = yaml.safe_load((run / "config.yaml").read_text())
    config["dataset"]["dedupe"] = False
    (run / "config.yaml").write_text(yaml.safe_dump(config))
    setup = build_report(find_records(tmp_path), ReportOptions(setup=True), "s").setup["setup.md"]
    cell = _density_cell(setup, "plays")
    assert not re.fullmatch(r"[\d.,]+%", cell), cell  # 200.000% before
    write_run(tmp_path / "deduped", "deduped", "pop", 0, planted_ranks(50, 0.0, 0), n_items=100)
    setup = build_report(find_records(tmp_path / "deduped"), ReportOptions(setup=True), "s").setup["setup.md"]
    assert _density_cell(setup, "deduped") == "20.000%"  # 1,000 / (50 x 100): dedupe on, rows are pairs


def test_a_sweep_over_protocols_ends_with_a_report_per_protocol(tiny_ml, tmp_path):
    """`seqrec -m protocol=loo,horizon ...` printed 'report skipped: runs use different protocols ...;
    pick one with --protocol' and left the sweep without any table: each protocol gets its report."""
    sweep = tmp_path / "sweep"
    proc = run_cli("hydra.mode=MULTIRUN", "model=pop,ease", "protocol=loo,horizon", "dataset.min_seq_len=11",
                   f"dataset.path={tiny_ml}", "dataset.user_core=1", "dataset.item_core=1", f"hydra.sweep.dir={sweep}",
                   tmp=tmp_path)
    assert "report skipped" not in proc.stderr, proc.stderr
    loo, horizon = (sweep / "report-loo" / "table.md").read_text(), (sweep / "report-horizon" / "table.md").read_text()
    assert "protocol: leave-one-out" in loo and "| hr@10 |" in loo
    assert "protocol: horizon-k with k = 5" in horizon and "| recall@10 |" in horizon
    assert "--protocol horizon" in horizon  # the footer's command rebuilds this very report
    assert len(pd.read_csv(sweep / "report-horizon" / "pairwise.csv")) == 2  # pop vs ease on ndcg@10, recall@10
    assert not (sweep / "table.md").exists()
    assert "protocol: leave-one-out" in proc.stdout and "protocol: horizon-k" in proc.stdout


def test_seqrec_data_stats_takes_nested_keys_like_seqrec(tmp_path, capsys):
    """`seqrec-data stats csv --path log.csv columns.user=uid ...` failed with 'bad dataset override: Could
    not append to config. An item is already at dataset.columns.user': a dotted key was added with
    '+' because only top-level keys counted as existing, so a CSV's columns could not be named."""
    from benchmark.data import cli

    log = tmp_path / "log.csv"
    log.write_text("uid,sku,ts\n" + "".join(f"{u},{i},{100 * u + t}\n" for u in range(4) for t, i in enumerate((1, 2, 3, u + 4))))
    assert cli.main(["stats", "csv", "--path", str(log), "columns.user=uid", "columns.item=sku",
                     "columns.timestamp=ts"]) == 0
    out = capsys.readouterr().out
    stats = json.loads(out.strip().splitlines()[-1])
    assert stats["raw"]["users"] == 4 and stats["raw"]["items"] == 7 and stats["raw"]["interactions"] == 16
    assert cli.main(["stats", "csv", "--path", str(log), "columns.usr=uid"]) == 2  # a misspelled key stays an error
    assert "usr" in capsys.readouterr().err


def test_caption_names_the_dataset_where_a_model_has_a_single_seed(tmp_path):
    """A sweep finished on one dataset and cut short on another: the caption said 'single seed, no ±: ease'
    while ease's cells on the other datasets show ± over two seeds; it must say on which dataset."""
    for ds, seeds in (("ds-a", (0, 1)), ("ds-b", (0,))):
        for s in seeds:
            write_run(tmp_path, ds, "pop", s, planted_ranks(60, 0.0, s))
            write_run(tmp_path, ds, "gru4rec", s, planted_ranks(60, 0.5, s + 5))
    write_run(tmp_path, "ds-b", "itemknn", 0, planted_ranks(60, 0.2, 9))
    caption = build_report(find_records(tmp_path), ReportOptions(), "s").tables["table"].caption
    assert "single seed, no ±: gru4rec on ds-b, itemknn, pop on ds-b." in caption, caption


def test_a_csv_without_a_time_column_is_read_with_columns_timestamp_null(tmp_path, capsys):
    """HetRec's user_artists.dat has no time column: `columns.timestamp=null` failed with 'no column None'
    (and seqrec-data takes no '~key' to drop the preset's timestamp column), so such a file could not
    be read at all there; null now means no such column: rows keep file order (0-based positions)."""
    from benchmark.data import cli
    from benchmark.data.readers import read_interactions

    log = tmp_path / "user_artists.dat"
    log.write_text("userID\tartistID\tweight\n" + "".join(f"{u}\t{i}\t{7 * i}\n" for u in range(3) for i in (5, 3, 9, u + 1)))
    df = read_interactions("csv", log, columns={"user": "userID", "item": "artistID", "timestamp": None, "rating": None})
    assert df[df.user == "0"]["item"].tolist() == ["5", "3", "9", "1"] and df[df.user == "0"]["timestamp"].tolist() == [0, 1, 2, 3]
    assert cli.main(["stats", "csv", "--path", str(log), "columns.user=userID", "columns.item=artistID",
                     "columns.timestamp=null"]) == 0
    assert json.loads(capsys.readouterr().out.strip().splitlines()[-1])["raw"]["interactions"] == 12


def test_a_recbole_time_field_is_left_out_with_columns_timestamp_null(tmp_path):
    from benchmark.data.readers import read_interactions

    inter = tmp_path / "x.inter"
    inter.write_text("user_id:token\titem_id:token\ttimestamp:float\n" + "".join(f"u\t{i}\t{10 - i}\n" for i in range(4)))
    assert read_interactions("recbole", tmp_path)["item"].tolist() == ["3", "2", "1", "0"]  # by time
    kept = read_interactions("recbole", tmp_path, columns={"timestamp": None})
    assert kept["item"].tolist() == ["0", "1", "2", "3"] and kept["timestamp"].tolist() == [0, 1, 2, 3]  # file order
    assert read_interactions("recbole", tmp_path, columns={"timestamp": "timestamp"})["item"].tolist() == ["3", "2", "1", "0"]
