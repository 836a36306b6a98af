"""The performance scripts run end to end on tiny inputs (timings are never asserted), and their
data helpers do what the comparison relies on. The RecBole side runs only where RecBole's own
virtual environment already exists (tests never install anything)."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from conftest import REPO, permutation_rows, write_movielens_csv

sys.path.insert(0, str(REPO / "scripts"))
import bench_vs_recbole  # noqa: E402
import perf_common  # noqa: E402

RECBOLE_VENV = Path(os.environ.get("SEQREC_RECBOLE_VENV", bench_vs_recbole.DEFAULT_VENV))


def run_script(*args: str, timeout: int = 600) -> subprocess.CompletedProcess:
    proc = subprocess.run([sys.executable, *args], cwd=REPO, capture_output=True, text=True, timeout=timeout)
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-3000:]
    return proc


def test_synthetic_movielens_is_native_format_with_zipf_popularity(tmp_path):
    n = perf_common.write_synthetic_movielens(tmp_path, n_users=300, n_items=200, mean_len=20, seed=3)
    text = (tmp_path / "ratings.csv").read_text()
    assert text.startswith("userId,movieId,rating,timestamp\n")
    df = pd.read_csv(tmp_path / "ratings.csv")
    assert len(df) == n and df["userId"].nunique() == 300
    assert df["movieId"].nunique() == 200  # every item occurs
    assert not df.duplicated(["userId", "movieId"]).any()
    assert (df.groupby("userId").size() >= 3).all()
    assert (df.groupby("userId")["timestamp"].diff().dropna() >= 0).all()  # chronological within a user
    counts = df["movieId"].value_counts().to_numpy()
    assert counts[0] > 10 * np.median(counts)  # a popularity head, as with Zipf


def test_update_section_rewrites_only_its_own_block(tmp_path):
    md = tmp_path / "perf.md"
    perf_common.update_section(md, "a", "first A")
    perf_common.update_section(md, "b", "only B")
    perf_common.update_section(md, "a", "second A")
    text = md.read_text()
    assert "second A" in text and "first A" not in text and "only B" in text
    assert text.index("second A") < text.index("only B")
    perf_common.update_json(tmp_path / "perf.json", "a", {"x": 1})
    perf_common.update_json(tmp_path / "perf.json", "b", [2])
    assert json.loads((tmp_path / "perf.json").read_text()) == {"a": {"x": 1}, "b": [2]}


def test_atomic_export_keeps_our_order_with_rank_timestamps(tmp_path, tiny_ml):
    from benchmark.data.dataset import DatasetSpec, prepare_split

    split = prepare_split(DatasetSpec.from_dict({"name": "t", "reader": "movielens", "path": str(tiny_ml)}), "loo",
                          cache_dir=tmp_path / "cache").split
    rows = bench_vs_recbole.export_atomic(split, tmp_path / "atomic", "t")
    inter = pd.read_csv(tmp_path / "atomic" / "t.inter", sep="\t", dtype={"user_id:token": str, "item_id:token": str})
    assert list(inter.columns) == ["user_id:token", "item_id:token", "timestamp:float"] and len(inter) == rows
    # Sorting as RecBole does (user, then float32 timestamp) gives back each user's sequence.
    inter["ts32"] = inter["timestamp:float"].astype(np.float32)
    inter = inter.sort_values(["user_id:token", "ts32"], kind="stable")
    for u, group in inter.groupby("user_id:token", sort=False):
        uid = int(np.flatnonzero(split.user_ids == u)[0])
        seq = split.test.histories.items[split.test.histories.offsets[uid]:split.test.histories.offsets[uid + 1]]
        expected = list(split.item_ids[seq]) + [split.item_ids[split.test.targets[uid, 0]]]
        assert list(group["item_id:token"]) == expected
    last = inter.groupby("user_id:token").tail(1)
    assert set(zip(last["user_id:token"], last["item_id:token"])) == bench_vs_recbole.split_pairs(split, "test")


def test_bench_vs_recbole_runs_on_a_tiny_dataset(tmp_path, tiny_ml):
    with_recbole = bench_vs_recbole.python_of(RECBOLE_VENV).exists()
    args = ["scripts/bench_vs_recbole.py", "--data-dir", str(tiny_ml), "--models", "sasrec,pop", "--seeds", "0",
            "--max-epochs", "2", "--eval-users", "300", "--eval-items", "100", "--work", str(tmp_path / "work"),
            "--out", str(tmp_path / "out"), "--recbole-venv", str(RECBOLE_VENV)]
    proc = run_script(*args, *([] if with_recbole else ["--skip-recbole"]))
    report = json.loads((tmp_path / "out" / "perf.json").read_text())["vs_recbole"]
    rows = {r["model"]: r for r in report["summary"]}
    assert set(rows) == {"sasrec", "pop"}
    assert len(report["runs"]["sasrec"][0]["ours"]["epochs"]) >= 1
    assert 0 <= rows["sasrec"]["ours_ndcg"][0] <= 1
    assert rows["pop"]["ours_ndcg"][0] <= rows["pop"]["ours_ndcg_favourable_ties"][0] <= 1
    target = report["eval_target"]
    assert target["users"] >= 250 and target["items"] == 100
    # The evaluation target is the median of repeated timings; the default (with top-10 lists) is timed too.
    assert len(target["ours_eval_runs"]) == bench_vs_recbole.EVAL_REPEATS
    assert target["ours_eval_s"] == sorted(target["ours_eval_runs"])[len(target["ours_eval_runs"]) // 2]
    assert target["ours_eval_with_lists_s"] > 0
    md = (tmp_path / "out" / "perf.md").read_text()
    assert "| sasrec |" in md and "| pop |" in md and "| sasrec |" in proc.stdout
    for text in (md, (tmp_path / "out" / "perf.json").read_text()):  # results/ is committed: no machine paths
        assert str(tmp_path) not in text and str(REPO) not in text and "/work/" not in text
    if with_recbole:
        check = report["split_check"]
        assert check["same_valid_users_and_targets"] and check["same_test_users_and_targets"]
        assert check["train_samples_recbole"] == check["train_targets_ours"]
        assert rows["sasrec"]["recbole_epoch_s"] > 0 and report["runs"]["sasrec"][0]["recbole"]["anomaly"] is False
        assert len(target["recbole_eval_runs"]) == bench_vs_recbole.EVAL_REPEATS


def test_bench_vs_recbole_merge_adds_seeds_to_the_report_and_says_so(tmp_path, tiny_ml):
    common = ["scripts/bench_vs_recbole.py", "--models", "pop", "--single-seed", "", "--skip-recbole", "--skip-eval-target",
              "--work", str(tmp_path / "work"), "--out", str(tmp_path / "out")]
    run_script(*common, "--data-dir", str(tiny_ml), "--seeds", "0,2")
    first = json.loads((tmp_path / "out" / "perf.json").read_text())["vs_recbole"]
    run_script(*common, "--data-dir", str(tiny_ml), "--seeds", "1,2", "--merge", "--why", "a test's reason")
    report = json.loads((tmp_path / "out" / "perf.json").read_text())["vs_recbole"]
    runs = report["runs"]["pop"]
    assert [r["seed"] for r in runs] == [0, 1, 2]  # seed 2 replaced, seed 1 added, in seed order
    assert runs[0] == first["runs"]["pop"][0] and "added" not in runs[0]
    assert all("--merge --why" in r["added"]["command"] and r["added"]["git_commit"] for r in runs[1:])
    assert all(r["added"]["why"] == "a test's reason" for r in runs[1:])
    assert report["summary"][0]["seeds"] == [0, 1, 2] and report["machine_at_start"] == first["machine_at_start"]
    md = (tmp_path / "out" / "perf.md").read_text()
    assert "Runs added to this report later (--merge):" in md and "pop seed 1, pop seed 2: commit" in md  # no RecBole here
    assert md.count("(a test's reason)") == 1
    # Runs on other data cannot join the table: refused before any run, the report unchanged.
    other = tmp_path / "other"
    write_movielens_csv(other, permutation_rows(n_users=40))
    before = (tmp_path / "out" / "perf.json").read_text()
    proc = subprocess.run([sys.executable, *common, "--data-dir", str(other), "--seeds", "3", "--merge"], cwd=REPO,
                          capture_output=True, text=True)
    assert proc.returncode != 0 and "is not the report's" in proc.stderr
    assert not (tmp_path / "work" / "pop-3-ours.result.json").exists()
    assert (tmp_path / "out" / "perf.json").read_text() == before
    # The same counts, other sequences (each user's items reversed): the split's content hash differs.
    shuffled = tmp_path / "shuffled"
    rows = permutation_rows()
    write_movielens_csv(shuffled, [(u, i, r, 2_000_000 - t) for u, i, r, t in rows])
    proc = subprocess.run([sys.executable, *common, "--data-dir", str(shuffled), "--seeds", "3", "--merge"], cwd=REPO,
                          capture_output=True, text=True)
    assert proc.returncode != 0 and "is not the report's" in proc.stderr and "split_key" in proc.stderr
    # Other training settings than the report states, or a RecBole side the report does not have: refused.
    for extra, words in ((["--lr", "0.01"], "--lr 0.01 (the report's: 0.001)"), (["--max-epochs", "7"], "--max-epochs 7")):
        proc = subprocess.run([sys.executable, *common, "--data-dir", str(tiny_ml), "--seeds", "3", "--merge", *extra],
                              cwd=REPO, capture_output=True, text=True)
        assert proc.returncode != 0 and words in proc.stderr, proc.stderr
    with_recbole = [a for a in common if a != "--skip-recbole"]
    proc = subprocess.run([sys.executable, *with_recbole, "--data-dir", str(tiny_ml), "--seeds", "3", "--merge"], cwd=REPO,
                          capture_output=True, text=True)
    assert proc.returncode != 0 and "has no RecBole side" in proc.stderr
    assert (tmp_path / "out" / "perf.json").read_text() == before
    lone = subprocess.run([sys.executable, *common, "--data-dir", str(tiny_ml), "--seeds", "3", "--why", "x"], cwd=REPO,
                          capture_output=True, text=True)
    assert lone.returncode != 0 and "--why goes with --merge" in lone.stderr
    assert (tmp_path / "out" / "perf.json").read_text() == before


def test_targets_mark_time_to_accuracy_missed_where_a_seed_never_reaches_recboles_best():
    def run(seed: int, ours_valid: list[float]) -> dict:
        epochs = [{"train_seconds": 1.0, "valid_seconds": 0.1, "valid_ndcg@10": v} for v in ours_valid]
        side = {"test_eval_seconds": 0.1, "peak_rss_mb": 100.0, "test": {"ndcg@10": 0.03, "hr@10": 0.06}}
        recbole = {**side, "epochs": [{"train_seconds": 20.0, "valid_seconds": 1.0, "valid_ndcg@10": 0.04}],
                   "best_valid_ndcg@10": 0.04, "peak_rss_mb": 200.0}
        return {"seed": seed, "ours": {**side, "epochs": epochs}, "recbole": recbole}

    reached = bench_vs_recbole.summarise("sasrec", [run(0, [0.02, 0.05]), run(1, [0.03, 0.041])])
    missed = bench_vs_recbole.summarise("sasrec", [run(0, [0.02, 0.05]), run(1, [0.03, 0.039])])
    line = lambda row: bench_vs_recbole.targets({"summary": [row]})[0]  # noqa: E731
    assert "≥ 5× shorter (9.55×) ✓" in line(reached)  # 2.2 s against 21 s
    assert "≥ 5× shorter ✗ (not reached in 1 of 2 seeds)" in line(missed)


def test_targets_noise_is_each_sides_own_spread_and_seeds_pair_by_seed():
    def run(seed: int, ours_ndcg: float, recbole_ndcg: float | None, epoch_s: float = 1.0) -> dict:
        side = lambda v, s: {"test_eval_seconds": 0.1, "peak_rss_mb": 100.0, "test": {"ndcg@10": v, "hr@10": 0.1},  # noqa: E731
                             "epochs": [{"train_seconds": s, "valid_seconds": 0.0, "valid_ndcg@10": v}]}
        out = {"seed": seed, "ours": side(ours_ndcg, epoch_s)}
        if recbole_ndcg is not None:
            out["recbole"] = {**side(recbole_ndcg, 9.96), "best_valid_ndcg@10": recbole_ndcg}
        return out

    line = lambda row: bench_vs_recbole.targets({"summary": [row]})[0]  # noqa: E731
    # Worse on every seed with no spread on either side: a miss (pooling both sides called the gap noise).
    worse = bench_vs_recbole.summarise("sasrec", [run(s, 0.10, 0.15) for s in range(3)])
    assert "test NDCG@10 not worse (-0.0500, noise ±0.0000) ✗" in line(worse)
    # Within each side's spread: met; noise = 2 * sqrt(var/3 + var/3) = 2 * sqrt(2 * 1e-4 / 3).
    close = bench_vs_recbole.summarise("sasrec", [run(0, 0.09, 0.10), run(1, 0.10, 0.11), run(2, 0.11, 0.12)])
    assert "(-0.0100, noise ±0.0163) ✓" in line(close)
    # A seed without a RecBole side is not paired with another seed's RecBole run.
    mixed = bench_vs_recbole.summarise("sasrec", [run(0, 0.01, None), run(1, 0.12, 0.11)])
    assert mixed["ours_reached"] == [True] and mixed["ndcg_diff"] == pytest.approx(0.01)
    # The measured ratio is printed beside its mark: 9.96 s against 1 s is a 9.96× miss, not "10.0×".
    assert "epoch ≥ 10× faster (9.96×) ✗" in line(close)


def test_profile_epoch_times_and_profiles_a_model_in_the_comparison_settings(tiny_ml):
    proc = run_script("scripts/profile_epoch.py", "--model", "nextitnet", "--data-dir", str(tiny_ml), "--epochs", "2",
                      "--ops", "5", "--set", "dilations=[1, 2]")
    header, timing = proc.stdout.splitlines()[:2]
    assert "nextitnet on ml-latest-small" in header and "'dilations': [1, 2]" in header and "windows per step" in header
    assert timing.startswith("s/epoch ") and "median of [" in timing and "ms per step" in timing
    assert "aten::" in proc.stdout  # the operator table
    # A few short rounds: the default 7 rounds of 100 steps of each of three steps took minutes here.
    floor = run_script("scripts/profile_epoch.py", "--model", "gru4rec", "--data-dir", str(tiny_ml), "--epochs", "1",
                       "--floor", "--floor-rounds", "3", "--floor-steps", "5").stdout.splitlines()[-1]
    ms = dict(part.rsplit(" ", 1) for part in floor.split(": ", 1)[1].split("; "))
    assert list(ms) == ["step", "step without encoder", "output layer forward + backward"]
    assert all(float(v) > 0 for v in ms.values()) and "targets), ms, median of 3 rounds of 5" in floor
    cloze = subprocess.run([sys.executable, "scripts/profile_epoch.py", "--model", "bert4rec", "--data-dir", str(tiny_ml),
                            "--floor"], cwd=REPO, capture_output=True, text=True)
    assert cloze.returncode == 2 and "--floor times next-item models" in cloze.stderr and "objective=cloze" in cloze.stderr
    bad = subprocess.run([sys.executable, "scripts/profile_epoch.py", "--model", "gru4rec", "--set", "dropout"],
                         cwd=REPO, capture_output=True, text=True)
    assert bad.returncode != 0 and "--set 'dropout': expected KEY=VALUE" in bad.stderr
    no_steps = subprocess.run([sys.executable, "scripts/profile_epoch.py", "--model", "gru4rec", "--floor", "--floor-steps", "0"],
                              cwd=REPO, capture_output=True, text=True)
    assert no_steps.returncode == 2 and "--floor-steps=0 must be >= 1" in no_steps.stderr


def test_bench_scale_runs_on_tiny_files(tmp_path):
    run_script("scripts/bench_scale.py", "--rows", "3000,6000", "--train-steps", "1", "--work", str(tmp_path / "work"),
               "--out", str(tmp_path / "out"))
    report = json.loads((tmp_path / "out" / "perf.json").read_text())["scaling"]
    small, large = report["sizes"]
    assert 0 < small["rows"] < large["rows"] and small["users"] < large["users"]
    assert all(r["kept_rows"] <= r["rows"] and r["train_windows"] >= r["timed_windows"] > 0 for r in report["sizes"])
    assert (tmp_path / "out" / "scaling.png").stat().st_size > 1000
    assert "## Scaling" in (tmp_path / "out" / "perf.md").read_text()
    for name in ("perf.md", "perf.json"):
        text = (tmp_path / "out" / name).read_text()
        assert str(tmp_path) not in text and str(REPO) not in text


def test_written_perf_files_carry_no_machine_paths(tmp_path):
    venv = Path.home() / "envs" / "recbole-venv"
    text = f"`bench --recbole-venv {venv} --work {REPO / '.bench' / 'work'}` https://recbole.io/a/b ms/user"
    perf_common.update_section(tmp_path / "perf.md", "x", text)
    perf_common.update_json(tmp_path / "perf.json", "x", {"recbole_venv": str(venv), "out": str(REPO / "results")})
    md, data = (tmp_path / "perf.md").read_text(), json.loads((tmp_path / "perf.json").read_text())
    assert "--recbole-venv .../recbole-venv --work .bench/work` https://recbole.io/a/b ms/user" in md
    assert data["x"] == {"recbole_venv": ".../recbole-venv", "out": "results"}
    # The committed results: no absolute path at all.
    for name in ("perf.md", "perf.json"):
        committed = (REPO / "results" / name).read_text()
        assert perf_common.without_machine_paths(committed) == committed, name


def test_bench_vs_recbole_rejects_unknown_model(tmp_path):
    proc = subprocess.run([sys.executable, "scripts/bench_vs_recbole.py", "--models", "nope", "--skip-recbole",
                           "--work", str(tmp_path)], cwd=REPO, capture_output=True, text=True)
    assert proc.returncode != 0 and "unknown model 'nope'" in proc.stderr


def test_favourable_ties_ndcg_counts_ties_for_the_model(tmp_path, tiny_ml):
    """A constant-score model ties every item: last under our rule, first with favourable ties."""
    import torch

    from benchmark.data.dataset import DatasetSpec, prepare_split
    from benchmark.evaluation import evaluate
    from benchmark.models.base import Recommender

    class Constant(Recommender):
        def fit(self, data, trainer=None):
            self.n = data.n_items + 1
            return []

        def score(self, batch):
            return torch.zeros(len(batch.users), self.n)

    split = prepare_split(DatasetSpec.from_dict({"name": "t", "reader": "movielens", "path": str(tiny_ml)}), "loo",
                          cache_dir=tmp_path).split
    model = Constant("constant")
    model.fit(split)
    assert bench_vs_recbole.favourable_ties_ndcg(model, split, mask_history=True, batch_size=7) == 1.0
    assert evaluate(model, split, split.test, ks=(10,)).aggregate["ndcg@10"] == 0.0  # more than 10 candidates tie


def test_baseline_grid_scores_with_the_datasets_masking_rule(tmp_path):
    """Every user's last item repeats an earlier one: with the dataset's mask_history=false those
    targets compete (Pop ranks the repeated, most popular item first), with masking they are misses."""
    rows = "".join(f"{u},{i},4.0,{t}\n" for u in range(1, 9) for t, i in enumerate([7, 2, 3, 4, 7, 7]))
    (tmp_path / "ratings.csv").write_text("userId,movieId,rating,timestamp\n" + rows)
    common = ["scripts/baseline_grid.py", "pop", "--data", f"path={tmp_path}", "--data", "dedupe=false",
              "--data", "user_core=1", "--data", "item_core=1"]
    def test_ndcg(out: str) -> float:
        header, _, row = out.strip().splitlines()[-3:]
        return float(dict(zip(header.strip("| ").split(" | "), row.strip("| ").split(" | ")))["test ndcg@10"])

    # Unmasked, the repeated item ties with three others on 8 training counts: rank 4, NDCG 1/log2(5).
    assert test_ndcg(run_script(*common, "--data", "mask_history=false").stdout) == pytest.approx(0.4307, abs=1e-4)
    assert test_ndcg(run_script(*common, "--data", "mask_history=true").stdout) == 0.0
