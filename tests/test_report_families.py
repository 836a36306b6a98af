"""Families table (benchmark/report/families.py) against the rest of the report: the metric's
direction, metrics without per-user values, and models without validation metrics."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from benchmark.record import find_records
from benchmark.report.build import ReportOptions, build_report
from benchmark.report.table import render_markdown
from report_records import planted_ranks, write_run

ATTENTION = {"encoder": "attention", "head": "next_item"}


def report_of(root: Path, **options):
    return build_report(find_records(root), ReportOptions(**options), "RESULTS")


def write_arp(root: Path) -> Path:
    """arp@10 (lower is better in the report): bert4rec has the better (lower) validation arp@10."""
    for seed in (0, 1):
        for model, quality, arp, cfg in (("pop", 0.0, 50.0, None), ("itemknn", 0.1, 40.0, None),
                                         ("sasrec", 1.0, 30.0, ATTENTION), ("bert4rec", 0.5, 10.0, ATTENTION)):
            d = write_run(root, "ds-a", model, seed, planted_ranks(60, quality, seed), model_config=cfg,
                          valid={"ndcg@10": 0.1, "arp@10": arp})
            metrics = json.loads((d / "metrics.json").read_text())
            metrics["test"]["arp@10"] = arp + seed
            (d / "metrics.json").write_text(json.dumps(metrics))
    return root


def test_representative_follows_the_metrics_direction(tmp_path):
    # The reference is the baseline with the lowest arp@10 (itemknn); the family's representative must
    # be chosen the same way: bert4rec (validation 10), not sasrec (validation 30).
    report = report_of(write_arp(tmp_path), metrics=["arp@10", "ndcg@10"])
    _, rows = report.families
    assert rows.iloc[0]["reference"] == "itemknn"
    assert rows.iloc[0]["model"] == "bert4rec"


def test_cells_are_differences_for_a_metric_without_per_user_values(tmp_path):
    # arp@10 has no per-user column, so no paired test: the cell still is the test difference to the
    # reference the caption promises (10.5 - 40.5), not the model's own value.
    report = report_of(write_arp(tmp_path), metrics=["arp@10", "ndcg@10"])
    table, rows = report.families
    r = rows.iloc[0]
    assert r["mean_diff"] == pytest.approx(10.5 - 40.5)
    assert not r["significant"] and r["direction"] == ""
    md = render_markdown(table)
    assert "| attention encoder-only | bert4rec -30.0000 |" in md


def test_reference_as_its_familys_representative_is_no_absolute_value(tmp_path):
    root = write_arp(tmp_path)
    # --reference a sequence model: it represents its own family (validation ties: the later name),
    # and its cell must not show its test ndcg@10 where every other cell shows a difference.
    report = report_of(root, reference="sasrec")
    table, rows = report.families
    r = rows.set_index("model").loc["sasrec"]
    assert r["mean_diff"] == 0.0
    assert "| attention encoder-only | sasrec +0.0000 |" in render_markdown(table)


def test_a_family_without_validation_metrics_is_named_not_dropped_silently(tmp_path):
    # seq2seq_rnn's records carry no validation metrics (older records): its family cannot get a
    # representative chosen without test data, and the caption must say so instead of the row vanishing.
    for seed in (0, 1):
        write_run(tmp_path, "ds-a", "pop", seed, planted_ranks(60, 0.0, seed))
        write_run(tmp_path, "ds-a", "sasrec", seed, planted_ranks(60, 1.0, seed), model_config=ATTENTION,
                  valid={"ndcg@10": 0.3})
        write_run(tmp_path, "ds-a", "seq2seq_rnn", seed, planted_ranks(60, 0.5, seed),
                  model_config={"encoder": "rnn", "head": "autoregressive"}, valid={})
    table, rows = report_of(tmp_path).families
    assert "seq2seq_rnn" not in set(rows.model)
    assert "seq2seq_rnn on ds-a" in table.caption and "no validation ndcg@10" in table.caption


def test_without_a_reference_the_caption_says_the_cells_are_test_values(tmp_path):
    for model, encoder in (("gru4rec", "rnn"), ("sasrec", "attention")):
        write_run(tmp_path, "ds-x", model, 0, planted_ranks(50, 1.0, 0), model_config={"encoder": encoder, "head": "next_item"},
                  valid={"ndcg@10": 0.2})
    table, rows = report_of(tmp_path).families
    assert rows["reference"].isna().all()
    assert "No reference on ds-x (no non-sequential baseline there; set --reference): its cells give the test ndcg@10 itself." in table.caption


def test_the_domain_comes_from_the_records_dataset_config_before_the_catalog(tmp_path):
    # dataset=sequences dataset.name=Beauty dataset.domain=product: the catalog knows no "Beauty".
    import yaml

    for model, cfg in (("pop", None), ("sasrec", ATTENTION)):
        for ds, domain in (("Beauty", "product"), ("ml-1m", "generic")):
            run = write_run(tmp_path, ds, model, 0, planted_ranks(40, 0.5 if cfg else 0.0, 0), model_config=cfg)
            config = yaml.safe_load((run / "config.yaml").read_text())
            config["dataset"]["domain"] = domain
            (run / "config.yaml").write_text(yaml.safe_dump(config))
    table, rows = report_of(tmp_path).families
    assert "| Family | Beauty (product) ndcg@10 | ml-1m (movie) ndcg@10 |" in render_markdown(table)
    assert dict(zip(rows.dataset, rows.domain)) == {"Beauty": "product", "ml-1m": "movie"}  # generic: the catalog's
