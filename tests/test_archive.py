"""The committable archive of run records: pack, restore, and what a restored record is worth."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import numpy as np
import pandas as pd
import yaml

from benchmark.archive import MANIFEST, SPLITS, pack, restore
from benchmark.record import find_records, is_complete
from conftest import REPO, run_cli
from report_records import planted_ranks, write_run

SCRIPT = REPO / "scripts" / "archive_records.py"


def records_with_arp(root: Path, n_users: int = 400) -> list[Path]:
    """Two models x two seeds on one dataset (one split), each with per-user arp@K as the evaluator writes them."""
    rng = np.random.default_rng(0)
    made = []
    for model, quality in (("pop", 0.1), ("sasrec", 0.6)):
        for seed in (0, 1):
            run = write_run(root, "toy", model, seed, planted_ranks(n_users, quality, seed))
            per_user = pd.read_parquet(run / "per_user.parquet")
            for k in (5, 10):
                per_user[f"arp@{k}"] = rng.gamma(2.0, 50.0, n_users)
            per_user.to_parquet(run / "per_user.parquet", index=False)
            made.append(run)
    return made


def test_restore_rebuilds_every_kept_column_exactly_and_the_small_files_byte_for_byte(tmp_path):
    runs = records_with_arp(tmp_path / "runs")
    packed = pack(tmp_path / "runs", tmp_path / "archive")
    assert len(packed.written) == 4 and not packed.unchanged
    assert len(list((tmp_path / "archive" / SPLITS).iterdir())) == 1  # one split: one shared table of its users

    restored, present = restore(tmp_path / "archive", tmp_path / "again")
    assert len(restored) == 4 and not present
    for run in runs:
        back = tmp_path / "again" / run.relative_to(tmp_path / "runs")
        assert is_complete(back)
        for name in ("metrics.json", "history.csv", "env.json"):
            assert (back / name).read_bytes() == (run / name).read_bytes()
        config = yaml.safe_load((run / "config.yaml").read_text())  # less where the first machine kept its records
        assert yaml.safe_load((back / "config.yaml").read_text()) == {**config, "results_dir": str(tmp_path / "again")}
        assert "results_dir" not in (tmp_path / "archive" / run.relative_to(tmp_path / "runs") / "config.yaml").read_text()
        original = pd.read_parquet(run / "per_user.parquet")
        pd.testing.assert_frame_equal(pd.read_parquet(back / "per_user.parquet"),
                                      original.drop(columns=["arp@5", "arp@10"]), check_exact=True)


def test_a_column_the_ranks_do_not_give_back_is_kept_as_it_is(tmp_path):
    run = write_run(tmp_path / "runs", "toy", "sasrec", 0, planted_ranks(300, 0.5, 0))
    per_user = pd.read_parquet(run / "per_user.parquet")
    per_user.loc[3, "ndcg@10"] = 0.123  # e.g. a multi-target NDCG: not a function of one rank
    per_user.to_parquet(run / "per_user.parquet", index=False)
    pack(tmp_path / "runs", tmp_path / "archive")
    restore(tmp_path / "archive", tmp_path / "again")
    back = pd.read_parquet(tmp_path / "again" / run.relative_to(tmp_path / "runs") / "per_user.parquet")
    pd.testing.assert_frame_equal(back, per_user, check_exact=True)


def test_the_archive_is_a_fraction_of_the_records(tmp_path):
    records_with_arp(tmp_path / "runs", n_users=5000)
    packed = pack(tmp_path / "runs", tmp_path / "archive")
    originals = sum(f.stat().st_size for f in (tmp_path / "runs").rglob("per_user.parquet"))
    assert packed.bytes_written < originals / 4, (packed.bytes_written, originals)


def test_pack_and_restore_skip_what_is_there_and_pack_follows_a_changed_record(tmp_path):
    runs = records_with_arp(tmp_path / "runs")
    pack(tmp_path / "runs", tmp_path / "archive")
    again = pack(tmp_path / "runs", tmp_path / "archive")
    assert not again.written and len(again.unchanged) == 4

    metrics = runs[0] / "metrics.json"  # a record replaced by a re-run (rerun=true) is archived anew
    metrics.write_text(metrics.read_text().replace('"epochs": 3', '"epochs": 4'))
    changed = pack(tmp_path / "runs", tmp_path / "archive")
    assert len(changed.written) == 1 and (changed.written[0] / "metrics.json").read_bytes() == metrics.read_bytes()

    restore(tmp_path / "archive", tmp_path / "again")
    kept = tmp_path / "again" / runs[1].relative_to(tmp_path / "runs") / "history.csv"
    kept.write_text("epoch,loss,valid_metric,seconds,valid_seconds\n")  # a record there is left alone
    restored, present = restore(tmp_path / "archive", tmp_path / "again")
    assert not restored and len(present) == 4
    assert kept.read_text() == "epoch,loss,valid_metric,seconds,valid_seconds\n"


def test_a_sweeps_runs_txt_comes_back_listing_the_records_where_they_were_restored(tmp_path):
    runs = records_with_arp(tmp_path / "runs")
    listing = tmp_path / "runs" / "sweeps" / "reference" / "toy" / "pop" / "runs.txt"
    listing.parent.mkdir(parents=True)
    listing.write_text("".join(f"{r.resolve()}\n" for r in runs[:2]) + "/elsewhere/seed0-x\n")  # as a multirun writes
    pack(tmp_path / "runs", tmp_path / "archive")
    archived = (tmp_path / "archive" / listing.relative_to(tmp_path / "runs")).read_text()
    assert str(tmp_path) not in archived and "/elsewhere/seed0-x" in archived  # no machine folder in the repository
    restore(tmp_path / "archive", tmp_path / "moved" / "runs")
    back = (tmp_path / "moved" / "runs" / listing.relative_to(tmp_path / "runs")).read_text().split()
    assert back[:2] == [str(tmp_path / "moved" / "runs" / r.relative_to(tmp_path / "runs")) for r in runs[:2]]
    assert all(is_complete(Path(line)) for line in back[:2]) and back[2] == "/elsewhere/seed0-x"


def test_pack_can_take_only_the_records_a_runs_file_lists(tmp_path):
    runs = records_with_arp(tmp_path / "runs")
    packed = pack(tmp_path / "runs", tmp_path / "archive", only={runs[2].resolve()})
    assert [p.name for p in packed.written] == [runs[2].name]


def test_a_damaged_archive_is_one_line_naming_the_record_and_restores_nothing(tmp_path):
    records_with_arp(tmp_path / "runs")
    subprocess.run([sys.executable, str(SCRIPT), "pack", "--results", str(tmp_path / "runs"),
                    "--archive", str(tmp_path / "archive")], check=True, capture_output=True)
    for table in (tmp_path / "archive" / SPLITS).iterdir():
        table.unlink()
    proc = subprocess.run([sys.executable, str(SCRIPT), "restore", "--archive", str(tmp_path / "archive"),
                           "--results", str(tmp_path / "again")], capture_output=True, text=True)
    assert proc.returncode == 2
    assert proc.stderr.count("\n") == 1 and "archived record cannot be restored" in proc.stderr
    assert "toy" in proc.stderr
    assert not (tmp_path / "again").exists() or not find_records(tmp_path / "again")  # nothing half-written
    missing = subprocess.run([sys.executable, str(SCRIPT), "restore", "--archive", str(tmp_path / "nowhere")],
                             capture_output=True, text=True)
    assert missing.returncode == 2 and "nowhere: no such folder" in missing.stderr


def test_a_restored_real_record_reports_the_same_table_and_a_relaunch_skips_it(tmp_path, tiny_ml):
    overrides = [f"dataset.path={tiny_ml}", "model=gru4rec", "trainer.max_epochs=2", "dataset.user_core=1",
                 "dataset.item_core=1"]
    run_cli(*overrides, tmp=tmp_path)
    (record,) = find_records(tmp_path / "results")
    assert any(c.startswith("arp@") for c in pd.read_parquet(record / "per_user.parquet").columns)
    pack(tmp_path / "results", tmp_path / "archive")
    (manifest,) = (tmp_path / "archive").rglob(MANIFEST)
    assert json.loads(manifest.read_text())["dropped"] == ["arp@5", "arp@10", "arp@20"]
    restore(tmp_path / "archive", tmp_path / "elsewhere" / "results")

    def table(results: Path) -> pd.DataFrame:
        out = results.parent / "report"
        subprocess.run([sys.executable, "-m", "benchmark.report.cli", str(results), "--out", str(out)],
                       cwd=REPO, check=True, capture_output=True)
        return pd.read_csv(out / "table.csv")

    pd.testing.assert_frame_equal(table(tmp_path / "elsewhere" / "results"), table(tmp_path / "results"))
    again = run_cli(*overrides, tmp=tmp_path / "elsewhere")  # the same run where its record was restored
    assert "skip" in again.stdout + again.stderr and "epoch 1/" not in again.stdout + again.stderr
