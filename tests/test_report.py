"""seqrec-report on synthetic run records: tables (golden files), pairwise tests, refusals, slices."""

import json
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import yaml

from benchmark.errors import BenchmarkError
from benchmark.provenance import CodeVersion
from benchmark.record import find_records
from benchmark.report.build import ReportOptions, build_report, slicing, write_report
from benchmark.report.runs import group_runs, load_runs
from benchmark.report.table import render_latex, render_markdown
from conftest import REPO, run_cli
from report_records import planted_ranks, user_ids, write_run

GOLDEN = Path(__file__).parent / "golden"
COMMAND = "seqrec-report RESULTS"


def write_benchmark(root: Path) -> Path:
    """Two datasets; pop and itemknn baselines, gru4rec slightly and sasrec clearly better than itemknn;
    pop has a single seed."""
    for ds, n, offset in (("ds-a", 300, 0), ("ds-b", 200, 10)):
        for model, quality, seeds in (("pop", 0.0, [0]), ("itemknn", 0.3, [0, 1]), ("gru4rec", 0.35, [0, 1]), ("sasrec", 1.0, [0, 1])):
            for s in seeds:
                write_run(root, ds, model, s, planted_ranks(n, quality, s + offset))
    return root


def report_of(root: Path, **options):
    return build_report(find_records(root), ReportOptions(**options), "RESULTS")


def check_golden(name: str, text: str) -> None:
    path = GOLDEN / name
    if os.environ.get("UPDATE_GOLDEN"):
        path.write_text(text)
    assert text == path.read_text(), f"{name} differs from the golden file (UPDATE_GOLDEN=1 rewrites it after review)"


def test_tables_match_golden_files_with_bold_underline_markers_and_caption(tmp_path):
    report = report_of(write_benchmark(tmp_path))
    table = report.tables["table"]
    md, tex = render_markdown(table), render_latex(table)
    check_golden("table.md", md + "\n")
    check_golden("table.tex", tex + "\n")
    # What the golden files must show, stated independently of them:
    sasrec_row = next(line for line in md.splitlines() if line.startswith("| sasrec"))
    assert sasrec_row.count("**") == 12 and sasrec_row.count("↑") == 6  # best everywhere, significant
    gru_row = next(line for line in md.splitlines() if line.startswith("| gru4rec"))
    assert gru_row.count("<u>") == 6  # second everywhere
    pop_row = next(line for line in md.splitlines() if line.startswith("| pop"))
    assert "±" not in pop_row and pop_row.count("↓") == 6  # single seed; worse than itemknn
    item_row = next(line for line in md.splitlines() if line.startswith("| itemknn"))
    assert "↑" not in item_row and "↓" not in item_row  # the reference itself
    for phrase in ("leave-one-out", "ties count against the target", "300 on ds-a and 200 on ds-b test users",
                   "seeds 0, 1", "single seed, no ±: pop", "paired t-test", "Holm-corrected over the 18 comparisons",
                   "reference (itemknn", "full ranking"):
        assert phrase in table.caption, phrase
    assert r"\toprule" in tex and r"\multicolumn{3}{c}{ds-a}" in tex and r"\textbf{" in tex and r"\underline{" in tex
    assert r"$^{\uparrow}$" in tex and r"\texttt{seqrec-report RESULTS}" in tex


def test_pairwise_lists_every_test_with_run_ids_and_seed_averaged_users(tmp_path):
    root = write_benchmark(tmp_path)
    report = report_of(root, test="wilcoxon", correction="bonferroni")
    pw = report.pairwise
    assert len(pw) == 2 * 3 * 3  # datasets x metrics x non-reference models
    assert (pw["p_corrected"] >= pw["p_value"]).all() and set(pw["effect"]) == {"rank-biserial"}
    row = pw[(pw.dataset == "ds-a") & (pw.model == "sasrec") & (pw.metric == "ndcg@10")].iloc[0]
    runs = sorted(d.name for d in root.glob("ds-a/loo/sasrec/*"))
    assert sorted(row.model_runs.split()) == runs and row.reference == "itemknn"
    # The tested per-user values are averaged over seeds: their mean equals the mean of the seed means.
    seed_means = [pd.read_parquet(root / "ds-a/loo/sasrec" / r / "per_user.parquet")["ndcg@10"].mean() for r in runs]
    assert row.mean_model == pytest.approx(np.mean(seed_means))
    assert row.ci_low < row.mean_diff < row.ci_high and row.significant


def test_model_equal_to_the_reference_gets_no_marker(tmp_path):
    ranks = planted_ranks(150, 0.5, 0)
    write_run(tmp_path, "ds", "pop", 0, ranks)
    write_run(tmp_path, "ds", "same", 0, ranks)
    write_run(tmp_path, "ds", "better", 0, np.maximum(1, ranks // 2))
    report = report_of(tmp_path, test="randomization", resamples=2000)
    cells = report.tables["table"].cells
    assert cells[("same", 0)].marker == "" and cells[("better", 0)].marker == "↑"
    assert "Single seed per model" in report.tables["table"].caption and cells[("better", 0)].std is None
    assert "SAMPLED" not in report.tables["table"].caption


def test_caption_labels_sampled_candidates(tmp_path):
    ranks = planted_ranks(60, 0.5, 0)
    write_run(tmp_path, "ds", "pop", 0, ranks, candidates="sampled")
    write_run(tmp_path, "ds", "sasrec", 0, ranks // 2 + 1, candidates="sampled")
    assert "sampled_* metrics are SAMPLED" in report_of(tmp_path).tables["table"].caption


def test_refuses_runs_on_different_users_dataset_hashes_or_protocols(tmp_path):
    ranks = planted_ranks(50, 0.5, 0)
    a = write_run(tmp_path / "users", "ds", "pop", 0, ranks)
    b = write_run(tmp_path / "users", "ds", "sasrec", 0, ranks, users=np.array([f"x{i}" for i in range(50)]))
    with pytest.raises(BenchmarkError, match="different users") as err:
        report_of(tmp_path / "users")
    assert str(a) in str(err.value) and str(b) in str(err.value)
    write_run(tmp_path / "hash", "ds", "pop", 0, ranks)
    write_run(tmp_path / "hash", "ds", "sasrec", 0, ranks, dataset_hash="e" * 64)
    with pytest.raises(BenchmarkError, match="dataset hashes differ"):
        report_of(tmp_path / "hash")
    write_run(tmp_path / "proto", "ds", "pop", 0, ranks)
    write_run(tmp_path / "proto", "ds", "sasrec", 0, ranks, protocol="temporal")
    with pytest.raises(BenchmarkError, match="different settings.*--protocol"):
        report_of(tmp_path / "proto")
    assert len(report_of(tmp_path / "proto", protocol="loo").tables["table"].rows) == 1


def test_slices_efficiency_setup_and_friedman_files(tmp_path):
    root = write_benchmark(tmp_path / "results")
    report = report_of(root, slices=["history", "popularity", "time"], efficiency=True, setup=True)
    hist = report.tables["slice_history"]
    assert [c.group for c in hist.columns[::3]][:3] == ["ds-a hist ≤5 (n=23)", "ds-a hist 6–20 (n=113)", "ds-a hist >20 (n=164)"]
    # A slice cell is the mean over seeds of the per-run mean over the slice's users.
    per_run = []
    for run in sorted((root / "ds-a/loo/sasrec").iterdir()):
        pu = pd.read_parquet(run / "per_user.parquet")
        per_run.append(pu.loc[pu.history_len <= 5, "hr@10"].mean())
    assert hist.cells[("sasrec", 1)].mean == pytest.approx(np.mean(per_run))
    assert set(report.pairwise["slice"]) == {"all", "history", "popularity", "time"}
    assert "head" in report.tables["slice_popularity"].columns[-1].group
    main = report.tables["table"]
    assert [c.name for c in main.columns[:6]] == ["ndcg@10", "hr@10", "mrr@10", "params", "train s", "ms/user"]
    assert main.cells[("sasrec", 3)].text == "6.00k"
    out = tmp_path / "out"
    names = {p.name for p in write_report(report, out)}
    assert {"table.md", "table.tex", "table.csv", "pairwise.csv", "cd_diagram.png", "cd_diagram.pdf", "setup.md",
            "setup.tex", "slice_time.md", "nemenyi.csv", "friedman.md"} <= names
    assert (out / "cd_diagram.png").read_bytes()[:4] == b"\x89PNG"
    # LaTeX's default font prints a bare > as ¿: slice headers are escaped.
    slice_tex = (out / "slice_history.tex").read_text()
    assert r"hist \textgreater{}20" in slice_tex and "hist >20" not in slice_tex
    setup = (out / "setup.md").read_text()
    assert "| ds-a | 300 | 500 | 6,000 | 20.00 | 4.000% | 300 |" in setup and "Holm-corrected" in setup
    assert "Friedman test on ndcg@10 over 2 datasets" in report.friedman_text
    csv = pd.read_csv(out / "table.csv")
    assert csv["ds-a/ndcg@10"].iloc[-1] == pytest.approx(main.cells[("sasrec", 0)].mean)


def test_sweep_callback_and_report_command_end_to_end(tiny_ml, tmp_path):
    proc = run_cli("hydra.mode=MULTIRUN", "model=pop,gru4rec", "seed=0", f"dataset.path={tiny_ml}", "trainer.max_epochs=1",
                   "dataset.user_core=1", "dataset.item_core=1", f"hydra.sweep.dir={tmp_path / 'sweep'}",
                   tmp=tmp_path)
    sweep = tmp_path / "sweep"
    assert "| gru4rec |" in proc.stdout and "paired t-test" in proc.stdout and "reference (pop" in proc.stdout
    for name in ("table.md", "table.tex", "table.csv", "pairwise.csv", "families.md", "efficiency.png"):
        assert (sweep / name).is_file(), name
    assert len(pd.read_csv(sweep / "pairwise.csv")) == 3
    # The families table, printed too: gru4rec is the RNN encoder-only family's model, against pop.
    assert "| RNN encoder-only | gru4rec " in proc.stdout and "| reference | pop " in proc.stdout
    assert "families.md/.tex/.csv" in proc.stdout and "efficiency.png/.pdf" in proc.stdout
    cmd = [sys.executable, "-m", "benchmark.report.cli", str(tmp_path / "results"), "--test", "bootstrap",
           "--resamples", "500", "--slice", "history", "--setup"]
    done = subprocess.run(cmd, cwd=REPO, capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stderr
    report_dir = tmp_path / "results" / "report"
    assert "paired bootstrap test" in (report_dir / "table.md").read_text()
    assert "60 test users" in done.stdout and (report_dir / "slice_history.tex").is_file()
    bad = subprocess.run([*cmd[:4], "--metrics", "nope@3"], cwd=REPO, capture_output=True, text=True, timeout=120)
    assert bad.returncode == 2 and "nope@3" in bad.stderr and "ndcg@10" in bad.stderr


def test_missing_folder_is_a_one_line_error(tmp_path):
    done = subprocess.run([sys.executable, "-m", "benchmark.report.cli", str(tmp_path / "none")], cwd=REPO,
                          capture_output=True, text=True, timeout=60)
    assert done.returncode == 2 and done.stderr.strip() == f"seqrec-report: error: results folder not found: {tmp_path / 'none'}"


def test_user_ids_are_aligned_not_positional(tmp_path):
    ranks = planted_ranks(80, 0.5, 0)
    users = user_ids(80)
    write_run(tmp_path, "ds", "pop", 0, ranks, users=users)
    shuffle = np.random.default_rng(0).permutation(80)
    write_run(tmp_path, "ds", "copy", 0, ranks[shuffle], users=users[shuffle])  # same users' values, other order
    row = report_of(tmp_path).pairwise.iloc[0]
    assert row.mean_diff == 0 and row.p_value == 1.0


def test_wilcoxon_marker_follows_the_signed_ranks_not_the_mean(tmp_path):
    """Many users a little worse and a few much better: the mean difference is positive, the
    signed-rank test finds the model significantly lower; the marker must say ↓."""
    ref = np.array([9] * 50 + [11] * 10)
    model = np.array([10] * 50 + [1] * 10)
    write_run(tmp_path, "ds", "pop", 0, ref)
    write_run(tmp_path, "ds", "sasrec", 0, model)
    report = report_of(tmp_path, test="wilcoxon", metrics=["ndcg@10"])
    row = report.pairwise.iloc[0]
    assert row.mean_diff > 0 and row.effect_size < 0 and row.significant
    assert report.tables["table"].cells[("sasrec", 0)].marker == "↓"


def test_non_finite_per_user_metric_is_a_one_line_error_naming_the_file(tmp_path):
    ranks = planted_ranks(40, 0.5, 0)
    write_run(tmp_path, "ds", "pop", 0, ranks)
    run = write_run(tmp_path, "ds", "sasrec", 0, ranks // 2 + 1)
    per_user = pd.read_parquet(run / "per_user.parquet")
    per_user.loc[3, "ndcg@10"] = np.nan
    per_user.to_parquet(run / "per_user.parquet")
    with pytest.raises(BenchmarkError, match="per_user.parquet: column 'ndcg@10' has 1 non-finite") as err:
        report_of(tmp_path)
    assert str(run) in str(err.value) and "\n" not in str(err.value)


def test_default_reference_is_the_best_baseline_also_where_lower_is_better(tmp_path):
    ranks = planted_ranks(80, 0.5, 0)
    # pop worse (larger ranks), also on validation: the reference is chosen there.
    write_run(tmp_path, "ds", "pop", 0, ranks * 3, valid={"rank": 3 * ranks.mean(), "ndcg@10": 0.1})
    write_run(tmp_path, "ds", "itemknn", 0, ranks, valid={"rank": ranks.mean(), "ndcg@10": 0.2})
    write_run(tmp_path, "ds", "sasrec", 0, np.maximum(1, ranks // 2))
    for metrics in (["rank", "ndcg@10"], ["ndcg@10"]):
        assert set(report_of(tmp_path, metrics=metrics).pairwise["reference"]) == {"itemknn"}


def test_a_seed_without_a_metric_the_other_seeds_have_is_an_error(tmp_path):
    ranks = planted_ranks(40, 0.5, 0)
    write_run(tmp_path, "ds", "pop", 0, ranks)
    write_run(tmp_path, "ds", "sasrec", 0, ranks // 2 + 1)
    run = write_run(tmp_path, "ds", "sasrec", 1, ranks // 2 + 1)
    per_user = pd.read_parquet(run / "per_user.parquet")
    per_user.drop(columns=["ndcg@10"]).to_parquet(run / "per_user.parquet")
    with pytest.raises(BenchmarkError, match="has no column 'ndcg@10', which other seeds of sasrec have") as err:
        report_of(tmp_path)
    assert str(run) in str(err.value)


def test_runs_on_different_sampled_negatives_are_not_paired(tmp_path):
    ranks = planted_ranks(50, 0.5, 0)
    for model, n in (("pop", 100), ("sasrec", 50)):
        run = write_run(tmp_path, "ds", model, 0, ranks, candidates="sampled")
        metrics = json.loads((run / "metrics.json").read_text())
        metrics["sampled_candidates"] = {"candidates": "sampled", "n_negatives": n, "sampler": "uniform", "negatives_seed": 0}
        (run / "metrics.json").write_text(json.dumps(metrics))
    with pytest.raises(BenchmarkError, match="different settings .*loo-sampled100-uniform.*loo-sampled50-uniform"):
        report_of(tmp_path)


def test_methods_paragraph_describes_the_trained_models_and_each_datasets_masking(tmp_path):
    ranks = planted_ranks(60, 0.5, 0)
    for ds in ("ds-a", "ds-b"):
        for model in ("pop", "sasrec"):
            run = write_run(tmp_path, ds, model, 0, ranks if model == "pop" else ranks // 2 + 1)
            config = yaml.safe_load((run / "config.yaml").read_text())
            config["trainer"]["max_epochs"] = 50 if model == "pop" else 7  # pop never reads its trainer section
            (run / "config.yaml").write_text(yaml.safe_dump(config))
            metrics = json.loads((run / "metrics.json").read_text())
            metrics["mask_history"] = ds == "ds-a"
            (run / "metrics.json").write_text(json.dumps(metrics))
    methods = report_of(tmp_path, setup=True).setup["setup.md"]
    assert "at most 7 epochs" in methods and "50 epochs" not in methods
    assert "ds-a: excluding the user's history; ds-b: including the user's history" in methods


def test_a_model_that_does_not_train_is_one_row_whatever_its_trainer_section(tmp_path):
    """`-m model=pop,sasrec trainer.lr=a,b`: pop runs once (same identity); older or hand-made records
    of pop that differ only in the trainer section are one row, not two variants."""
    ranks = planted_ranks(40, 0.5, 0)
    for lr, model in ((0.001, "pop"), (0.01, "pop"), (0.001, "sasrec"), (0.01, "sasrec")):
        run = write_run(tmp_path / str(lr), "ds", model, 0, ranks if model == "pop" else ranks // 2 + 1)
        config = yaml.safe_load((run / "config.yaml").read_text())
        config["trainer"]["lr"] = lr
        (run / "config.yaml").write_text(yaml.safe_dump(config))
        metrics = json.loads((run / "metrics.json").read_text())
        metrics["trains"] = model != "pop"
        (run / "metrics.json").write_text(json.dumps(metrics))
    with pytest.raises(BenchmarkError, match="same model and seed"):  # pop's two records are one configuration
        report_of(tmp_path)
    rows = report_of(tmp_path / "0.001").tables["table"].rows + report_of(tmp_path / "0.01").tables["table"].rows
    assert rows == ["pop", "sasrec", "pop", "sasrec"]


def test_tercile_cuts_that_differ_never_read_alike():
    from benchmark.report.build import _fmt_count, _fmt_time, _terciles

    hours = pd.Series(1_300_000_000 + 3600 * np.arange(12.0))  # 12 hours of one day: day-level dates would tie
    _, text = _terciles(hours, ("early", "middle", "late"), _fmt_time)
    cuts = text.replace(" < ", " ≤ ").split(" ≤ ")[1::2]
    assert len(set(cuts)) == 2 and ":" in cuts[0], text
    close = pd.Series([1.00001, 1.00002, 1.00003, 1.00004, 1.00005, 1.00006])
    _, text = _terciles(close, ("tail", "torso", "head"), _fmt_count)
    assert len(set(text.replace(" < ", " ≤ ").split(" ≤ ")[1::2])) == 2, text
    _, text = _terciles(pd.Series([5.0, 120.0, 4000.0]), ("tail", "torso", "head"), _fmt_count)
    assert text == "tail ≤ 81.67 < torso ≤ 1413 < head"  # distinct at 4 digits: unchanged


def test_a_resumed_seed_is_a_seed_of_the_same_row(tmp_path):
    """trainer.resume only keeps checkpoints: the record's identity ignores it, so must the table's rows."""
    write_run(tmp_path, "ds", "pop", 0, planted_ranks(40, 0.0, 0))
    for seed in (0, 1):
        run = write_run(tmp_path, "ds", "gru4rec", seed, planted_ranks(40, 0.5, seed))
        config = yaml.safe_load((run / "config.yaml").read_text())
        config["trainer"]["resume"] = seed == 1
        (run / "config.yaml").write_text(yaml.safe_dump(config))
    table = report_of(tmp_path).tables["table"]
    assert table.rows == ["pop", "gru4rec"]
    assert "Mean ± std over 1–2 seeds per model" in table.caption and table.cells[("gru4rec", 0)].std is not None


def report_cli(*args, timeout: int = 120) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "benchmark.report.cli", *map(str, args)], cwd=REPO,
                          capture_output=True, text=True, timeout=timeout)


def corrupt_per_user(path: Path) -> None:
    pd.read_parquet(path).rename(columns={"user": "uid"}).to_parquet(path)


@pytest.mark.parametrize("file, damage, reason", [
    ("metrics.json", "{}", "metrics.json has no 'dataset', 'protocol', 'model', 'seed'"),
    ("metrics.json", "[]", "metrics.json holds a list, not a mapping"),
    ("config.yaml", "", "config.yaml is empty"),
    ("config.yaml", "- a\n- b\n", "config.yaml holds a list, not a mapping"),
    ("config.yaml", "model: [\n", "config.yaml is not valid: "),
    ("config.yaml", "trainer: 3\n", "config.yaml: 'trainer' is not a mapping"),
    ("per_user.parquet", corrupt_per_user, "per_user.parquet has no 'user' column"),
])
def test_a_corrupt_but_parseable_record_is_a_one_line_error_naming_it(tmp_path, file, damage, reason):
    write_run(tmp_path, "ds", "pop", 0, planted_ranks(30, 0.0, 0))
    run = write_run(tmp_path, "ds", "sasrec", 0, planted_ranks(30, 1.0, 0))
    if callable(damage):
        damage(run / file)
    else:
        (run / file).write_text(damage)
    done = report_cli(tmp_path, "--setup")
    assert done.returncode == 2, done.stderr
    assert done.stderr.startswith(f"seqrec-report: error: cannot read run record {run}: {reason}")
    assert done.stderr.count("\n") == 1 and not (tmp_path / "report").exists()


def test_a_negative_stat_seed_is_a_one_line_error(tmp_path):
    write_run(tmp_path, "ds", "pop", 0, planted_ranks(30, 0.0, 0))
    write_run(tmp_path, "ds", "sasrec", 0, planted_ranks(30, 1.0, 0))
    done = report_cli(tmp_path, "--test", "randomization", "--resamples", "200", "--stat-seed", "-1")
    assert done.returncode == 2 and done.stderr == "seqrec-report: error: --stat-seed -1 must be >= 0\n"


def test_an_unusable_out_is_a_one_line_error_naming_it(tmp_path):
    write_run(tmp_path / "results", "ds", "pop", 0, planted_ranks(30, 0.0, 0))
    write_run(tmp_path / "results", "ds", "sasrec", 0, planted_ranks(30, 1.0, 0))
    a_file = tmp_path / "taken"
    a_file.write_text("mine")
    for out, reason in ((a_file, "exists and is not a folder"), (a_file / "sub", "cannot create the report folder")):
        done = report_cli(tmp_path / "results", "--out", out)
        assert done.returncode == 2 and done.stderr.startswith(f"seqrec-report: error: --out {out}"), done.stderr
        assert reason in done.stderr and done.stderr.count("\n") == 1
    assert a_file.read_text() == "mine" and not list(tmp_path.glob(".*"))  # no staging folder left behind


def test_a_new_report_replaces_the_earlier_one_and_keeps_other_files(tmp_path):
    from benchmark.report.build import REPORT_FILES

    for protocol in ("loo", "horizon"):
        for ds in ("ds-a", "ds-b"):
            for model, quality in (("pop", 0.0), ("gru4rec", 0.5), ("sasrec", 1.0)):
                write_run(tmp_path, ds, model, 0, planted_ranks(40, quality, 0), protocol=protocol)
    out = tmp_path / "report"
    first = report_cli(tmp_path, "--protocol", "loo", "--setup", "--slice", "history,popularity,time", "--efficiency")
    assert first.returncode == 0, first.stderr
    written = {p.name for p in out.iterdir()}
    assert written <= REPORT_FILES
    assert {"setup.tex", "slice_time.csv", "slice_time.png", "efficiency_points.csv", "cd_diagram.pdf"} <= written
    (out / "notes.txt").write_text("mine")  # not the report's: stays
    second = report_cli(tmp_path, "--protocol", "horizon")
    assert second.returncode == 0, second.stderr
    assert {p.name for p in out.iterdir()} == {"table.md", "table.tex", "table.csv", "pairwise.csv", "friedman.md",
                                              "nemenyi.csv", "cd_diagram.png", "cd_diagram.pdf", "notes.txt"}
    assert "horizon" in (out / "table.md").read_text() and (out / "notes.txt").read_text() == "mine"
    assert not list(tmp_path.glob(".*")) and not list(out.glob(".*"))  # no staging folder left behind


def test_slice_figure_points_are_seed_averaged_user_means_with_a_t_interval(tmp_path):
    from scipy import stats as scipy_stats

    report = report_of(write_benchmark(tmp_path), metrics=["ndcg@10", "hr@10"], slices=["history"])
    points, title = report.figures["slice_history"]
    assert "ndcg@10 by history slice" in title and "95% t-interval over users" in title
    assert set(points["metric"]) == {"ndcg@10"}  # the first metric, the one that ranks models
    # By hand for one cell: gru4rec's two seeds on ds-a, users with 6-20 training interactions.
    runs = [pd.read_parquet(d / "per_user.parquet") for d in find_records(tmp_path)
            if "/ds-a/" in str(d) and "/gru4rec/" in str(d)]
    assert len(runs) == 2
    per_user = (runs[0]["ndcg@10"] + runs[1]["ndcg@10"]) / 2
    mask = (runs[0]["history_len"] > 5) & (runs[0]["history_len"] <= 20)
    values = per_user[mask].to_numpy()
    n = len(values)
    half = scipy_stats.t.ppf(0.975, n - 1) * values.std(ddof=1) / np.sqrt(n)
    row = points[(points.dataset == "ds-a") & (points.model == "gru4rec") & (points.slice == "hist 6–20")].iloc[0]
    assert row.n_users == n and row.seeds == 2 and not row.baseline
    assert row["mean"] == pytest.approx(values.mean()) and row.ci_high - row["mean"] == pytest.approx(half)
    assert row["mean"] - row.ci_low == pytest.approx(half)
    # The point is the slice table's value (mean over seeds of each seed's mean).
    assert points[(points.model == "itemknn")].baseline.all()
    assert len(points) == 2 * 4 * 3  # datasets x models x history buckets


def test_efficiency_figure_points_are_means_over_seeds(tmp_path):
    report = report_of(write_benchmark(tmp_path), metrics=["ndcg@10"], efficiency=True)
    points, _ = report.figures["efficiency"]
    row = points[(points.dataset == "ds-b") & (points.model == "sasrec")].iloc[0]
    records = [json.loads((d / "metrics.json").read_text()) for d in find_records(tmp_path)
               if "/ds-b/" in str(d) and "/sasrec/" in str(d)]
    assert row.train_seconds == pytest.approx(np.mean([m["train_seconds"] for m in records]))
    assert row["mean"] == pytest.approx(np.mean([m["test"]["ndcg@10"] for m in records]))
    assert row["std"] == pytest.approx(np.std([m["test"]["ndcg@10"] for m in records], ddof=1))
    pop = points[(points.dataset == "ds-b") & (points.model == "pop")].iloc[0]
    assert pop.baseline and pop.seeds == 1 and np.isnan(pop["std"])
    assert "efficiency" not in report_of(tmp_path).figures and not report_of(tmp_path).figures


def test_figures_are_written_as_png_pdf_and_their_points_as_csv(tmp_path):
    write_benchmark(tmp_path / "results")
    done = report_cli(tmp_path / "results", "--slice", "history,time", "--efficiency", "--out", tmp_path / "report")
    assert done.returncode == 0, done.stderr
    out = tmp_path / "report"
    for stem in ("slice_history", "slice_time", "efficiency"):
        assert (out / f"{stem}.png").read_bytes().startswith(b"\x89PNG")
        assert (out / f"{stem}.pdf").read_bytes().startswith(b"%PDF")
        points = pd.read_csv(out / f"{stem}_points.csv")
        assert set(points.dataset) == {"ds-a", "ds-b"} and {"mean", "model"} <= set(points.columns)
    assert not (out / "slice_popularity.png").exists()


FAMILY_MODELS = {  # name: (encoder, head, test quality, validation ndcg@10)
    "gru4rec": ("rnn", "next_item", 0.4, 0.30),
    "lstm": ("rnn", "next_item", 1.2, 0.10),  # better on test, worse on validation: not the RNN's representative
    "nextitnet": ("nextitnet", "next_item", 1.0, 0.20),
    "sasrec": ("attention", "next_item", 1.5, 0.25),
    "seq2seq_attention": ("attention", "autoregressive", -0.5, 0.05),
}


def write_families(root: Path, datasets=("ml-1m", "ds-x")) -> Path:
    for ds in datasets:
        for s in (0, 1):
            for model, quality, valid in (("pop", 0.0, 0.1), ("itemknn", 0.3, 0.12)):
                write_run(root, ds, model, s, planted_ranks(200, quality, s), valid={"ndcg@10": valid})
            for model, (encoder, head, quality, valid) in FAMILY_MODELS.items():
                write_run(root, ds, model, s, planted_ranks(200, quality, s), model_config={"encoder": encoder, "head": head},
                          valid={"ndcg@10": valid + 0.01 * s})
    return root


def test_families_table_answers_which_family_beats_the_baseline_where(tmp_path):
    report = report_of(write_families(tmp_path), metrics=["ndcg@10", "hr@10"])
    table, rows = report.families
    assert table.rows == ["reference", "RNN encoder-only", "CNN encoder-only", "attention encoder-only",
                          "attention encoder–decoder"]
    md = render_markdown(table)
    assert "| Family | ds-x ndcg@10 | ml-1m (movie) ndcg@10 |" in md  # the domain where the catalog knows the dataset
    pairwise = report.pairwise[(report.pairwise.slice == "all") & (report.pairwise.metric == "ndcg@10")]
    for ds in ("ml-1m", "ds-x"):
        here = rows[rows.dataset == ds].set_index("family")
        # Chosen by validation: gru4rec, though lstm is better on test.
        assert here.loc["RNN encoder-only", "model"] == "gru4rec" and here.loc["RNN encoder-only", "candidates"] == "gru4rec,lstm"
        assert set(here.index) == {"RNN encoder-only", "CNN encoder-only", "attention encoder-only", "attention encoder–decoder"}
        for family, r in here.iterrows():
            tested = pairwise[(pairwise.block == ds) & (pairwise.model == r.model)].iloc[0]
            assert r.mean_diff == pytest.approx(tested.mean_diff) and r.significant == tested.significant
            assert r.reference == tested.reference == "itemknn"
    # The cells repeat the main table's markers: sasrec clearly better, the seq2seq model clearly worse.
    assert "sasrec +" in md and "↑" in md.split("attention encoder-only")[1].splitlines()[0]
    assert "seq2seq_attention -" in md and "↓" in md.split("attention encoder–decoder")[1].splitlines()[0]
    assert "| reference | itemknn " in md and "Holm-corrected over its" in table.caption
    assert "chosen without test data" in table.caption
    tex = render_latex(table)
    assert r"attention encoder--decoder" in tex and r"seq2seq\_attention" in tex


def test_families_files_are_written_and_absent_without_sequence_models(tmp_path):
    write_families(tmp_path / "results", datasets=("ds-x",))
    done = report_cli(tmp_path / "results", "--out", tmp_path / "report")
    assert done.returncode == 0, done.stderr
    assert "| RNN encoder-only | gru4rec " in done.stdout
    rows = pd.read_csv(tmp_path / "report" / "families.csv")
    assert list(rows.family) == ["RNN encoder-only", "CNN encoder-only", "attention encoder-only", "attention encoder–decoder"]
    assert (tmp_path / "report" / "families.tex").read_text().startswith(r"\begin{table}")
    baselines_only = tmp_path / "baselines"
    for model in ("pop", "itemknn"):
        write_run(baselines_only, "ds-x", model, 0, planted_ranks(50, 0.0, 0))
    assert report_of(baselines_only).families is None


def test_setup_tex_methods_paragraph_is_escaped_latex(tmp_path):
    ranks = planted_ranks(40, 0.5, 0)
    write_run(tmp_path, "b&c", "pop", 0, ranks)
    write_run(tmp_path, "b&c", "m_%1", 0, ranks // 2 + 1)
    write_run(tmp_path, "b&c", "m_%1", 1, ranks // 2 + 1)
    tex = report_of(tmp_path, setup=True).setup["setup.tex"]
    methods = tex.split("% Methods paragraph\n")[1]
    for escaped in (r"b\&c", r"m\_\%1", r"Cohen's d\_z", r"$\pm$", r"$\alpha$ = 0.05"):
        assert escaped in methods, escaped
    for raw in ("±", "α", "d_z", "b&c", "m_%1"):
        assert raw not in methods, raw


def test_slice_caption_gives_each_datasets_tercile_cuts(tmp_path):
    """Popularity and time cuts are terciles of each dataset's users: ds-b's 200 users cut elsewhere than ds-a's 300."""
    report = report_of(write_benchmark(tmp_path), slices=["popularity", "time", "history"])
    groups = group_runs(load_runs(find_records(tmp_path)))
    for kind, prefix in (("popularity", "tail ≤ "), ("time", "early ≤ ")):
        cuts = {g.dataset: slicing(g, kind).description for g in groups}
        assert cuts["ds-a"] != cuts["ds-b"] and prefix in cuts["ds-a"]
        caption = report.tables[f"slice_{kind}"].caption
        assert f"ds-a: {cuts['ds-a']}; ds-b: {cuts['ds-b']}" in caption, caption
    # The same description for every dataset is given once.
    assert "by slice: users by training-history length (≤5, 6–20, >20 interactions);" in report.tables["slice_history"].caption


def test_a_slice_table_names_its_slice_even_when_only_one_has_users(tmp_path):
    ranks = planted_ranks(40, 0.5, 0)
    for model in ("pop", "sasrec"):
        run = write_run(tmp_path, "ds", model, 0, ranks if model == "pop" else ranks // 2 + 1)
        per_user = pd.read_parquet(run / "per_user.parquet")
        per_user["history_len"] = 2  # every user in the coldest slice
        per_user.to_parquet(run / "per_user.parquet")
    table = report_of(tmp_path, slices=["history"], metrics=["ndcg@10"]).tables["slice_history"]
    assert "| Model | hist ≤5 (n=40) ndcg@10 |" in render_markdown(table)
    assert r"\multicolumn{1}{c}{hist $\leq$5 (n=40)}" in render_latex(table)


def test_repeated_metrics_and_slices_count_once(tmp_path):
    write_run(tmp_path, "ds", "pop", 0, planted_ranks(40, 0.0, 0))
    write_run(tmp_path, "ds", "sasrec", 0, planted_ranks(40, 1.0, 0))
    done = report_cli(tmp_path, "--metrics", "ndcg@10,hr@10,ndcg@10", "--slice", "history,history")
    assert done.returncode == 0, done.stderr
    pairwise = pd.read_csv(tmp_path / "report" / "pairwise.csv")
    assert sorted(pairwise.metric[pairwise.slice == "all"]) == ["hr@10", "ndcg@10"]
    assert len(pairwise[pairwise.slice == "history"]) == 2 * 3  # 2 metrics in 3 history slices, not twice
    table = (tmp_path / "report" / "table.md").read_text()
    assert "| Model | ndcg@10 | hr@10 |" in table and "over the 2 comparisons" in table


def test_repeated_metrics_and_slices_count_once_when_build_report_is_called_directly(tmp_path):
    """The Python entry point, not only the CLI: a repeated metric would be tested twice and enter the
    multiple-comparison correction twice."""
    write_run(tmp_path, "ds", "pop", 0, planted_ranks(40, 0.0, 0))
    write_run(tmp_path, "ds", "sasrec", 0, planted_ranks(40, 1.0, 0))
    once = report_of(tmp_path, metrics=["ndcg@10", "hr@10"], slices=["history"])
    twice = report_of(tmp_path, metrics=["ndcg@10", "hr@10", "ndcg@10"], slices=["history", "history"])
    pd.testing.assert_frame_equal(twice.pairwise, once.pairwise)
    assert list(twice.tables) == ["table", "slice_history"]
    assert render_markdown(twice.tables["table"]) == render_markdown(once.tables["table"])


def test_a_one_model_report_says_no_comparison_was_made_and_writes_the_pairwise_header(tmp_path):
    write_run(tmp_path, "ds", "pop", 0, planted_ranks(30, 0.0, 0))
    done = report_cli(tmp_path)
    assert done.returncode == 0, done.stderr
    table = (tmp_path / "report" / "table.md").read_text()
    assert "no comparison with the reference (pop; default: the non-sequential baseline with the best mean validation ndcg@10 on each dataset, chosen without test data) was made, it is the only model" in table
    assert "comparisons" not in table and "↑/↓" not in table
    header = (tmp_path / "report" / "pairwise.csv").read_text()
    assert header.startswith("dataset,protocol,slice,block,metric,model,reference,") and header.count("\n") == 1
    # The header is the same as a report with tests writes.
    write_run(tmp_path, "ds", "sasrec", 0, planted_ranks(30, 1.0, 0))
    assert report_cli(tmp_path).returncode == 0
    assert (tmp_path / "report" / "pairwise.csv").read_text().splitlines()[0] == header.strip()


@pytest.mark.parametrize("k_of, stated", [({"ds-a": 5, "ds-b": 5}, "horizon-k with k = 5 ("),
                                          ({"ds-a": 5, "ds-b": 3}, "horizon-k with k = 5 on ds-a and 3 on ds-b (")])
def test_a_horizon_report_states_its_k(tmp_path, k_of, stated):
    for ds, k in k_of.items():
        for model, quality in (("pop", 0.0), ("sasrec", 1.0)):
            run = write_run(tmp_path, ds, model, 0, planted_ranks(40, quality, 0), protocol="horizon")
            config = yaml.safe_load((run / "config.yaml").read_text())
            config["protocol"]["k"] = k
            (run / "config.yaml").write_text(yaml.safe_dump(config))
    report = report_of(tmp_path, setup=True)
    assert stated in report.tables["table"].caption
    assert f"Protocol: {stated}" in report.setup["setup.md"]


def test_cd_bar_is_drawn_at_full_length_when_cd_exceeds_the_rank_axis():
    from benchmark.report.cd import cd_figure
    from benchmark.stats import FriedmanResult

    # 3 models on 2 datasets: CD = 2.34 > k - 1 = 2.
    result = FriedmanResult(["a", "b", "c"], np.array([1.0, 2.0, 3.0]), 4.0, 0.135, 2, 2.344, 0.05, np.ones((3, 3)))
    ax = cd_figure(result).axes[0]
    (bar,) = [line for line in ax.lines if list(line.get_ydata()) == [1.0, 1.0]]
    assert max(bar.get_xdata()) == pytest.approx(1 + 2.344)
    assert ax.get_xlim()[0] <= 1 and ax.get_xlim()[1] >= 1 + 2.344  # inside the axes: not clipped


def test_a_model_of_no_known_family_stays_out_of_the_families_table(tmp_path):
    write_families(tmp_path, datasets=("ds-x",))
    write_run(tmp_path, "ds-x", "mymodel", 0, planted_ranks(200, 2.0, 0), valid={"ndcg@10": 0.9})  # no encoder/head
    _, rows = report_of(tmp_path).families
    assert "mymodel" not in set(rows.model) and "mymodel" not in ",".join(rows.candidates)


def test_friedman_leaves_out_a_model_whose_records_lack_the_metric(tmp_path):
    """Records written before a metric existed: the test across datasets uses the models measured
    everywhere (it raised a TypeError on the missing value)."""
    write_benchmark(tmp_path)
    for run in find_records(tmp_path):
        if "/gru4rec/" in str(run) and "/ds-b/" in str(run):
            metrics = json.loads((run / "metrics.json").read_text())
            del metrics["test"]["coverage@10"]
            (run / "metrics.json").write_text(json.dumps(metrics))
    report = report_of(tmp_path, metrics=["coverage@10"])
    assert report.friedman is not None and report.friedman.models == ["itemknn", "pop", "sasrec"]
    assert "3 models" in report.friedman_text


def test_records_in_symlinked_folders_are_found_once(tmp_path):
    """Results kept elsewhere (scratch) and linked into the results folder: rglob did not follow links."""
    scratch, results = tmp_path / "scratch", tmp_path / "results"
    write_run(scratch, "ds", "pop", 0, planted_ranks(30, 0.0, 0))
    write_run(results, "ds", "sasrec", 0, planted_ranks(30, 1.0, 0))
    (results / "linked").symlink_to(scratch, target_is_directory=True)
    (results / "linked-again").symlink_to(scratch, target_is_directory=True)  # the same runs: counted once
    (results / "ds" / "up").symlink_to(results, target_is_directory=True)  # a loop
    records = find_records(results)
    assert len(records) == 2 and {r.parent.name for r in records} == {"pop", "sasrec"}
    [pop] = [r for r in records if r.parent.name == "pop"]
    assert results / "linked" in pop.parents  # of two links to one folder, the first by name
    assert report_of(results).tables["table"].rows == ["pop", "sasrec"]


def test_one_configuration_per_dataset_is_one_row_however_the_datasets_configurations_differ(tmp_path):
    """Each dataset's own tuned setting (EASE's l2, a dataset's trainer) splits no row: the table, the families
    and the Friedman/Nemenyi test across datasets see one model; two settings on one dataset still split."""
    ranks = planted_ranks(60, 0.5, 0)
    for dataset, hidden in (("a", 64), ("b", 128)):
        write_run(tmp_path, dataset, "pop", 0, ranks)
        write_run(tmp_path, dataset, "sasrec", 0, ranks // 2 + 1, hidden=hidden)
    report = report_of(tmp_path)
    assert report.tables["table"].rows == ["pop", "sasrec"] and report.variants is None
    assert report.friedman is not None and report.friedman.models == ["pop", "sasrec"]
    write_run(tmp_path, "b", "sasrec", 0, ranks // 3 + 1, hidden=32)  # a second configuration on b
    assert report_of(tmp_path).tables["table"].rows == ["pop", "sasrec", "sasrec (hidden=128)", "sasrec (hidden=32)"]


def test_two_configurations_of_a_model_are_labelled_by_the_settings_in_which_they_differ(tmp_path):
    ranks = planted_ranks(60, 0.5, 0)
    write_run(tmp_path, "ds", "pop", 0, ranks)
    folders = {hidden: sorted(write_run(tmp_path, "ds", "sasrec", s, ranks // 2 + 1, hidden=hidden).name for s in (0, 1))
               for hidden in (64, 128)}
    report = report_of(tmp_path)
    table = report.tables["table"]
    assert table.rows == ["pop", "sasrec (hidden=128)", "sasrec (hidden=64)"]
    assert "labelled by the settings in which they differ; variants.csv" in table.caption
    variants = report.variants.set_index("model")
    for hidden, runs in folders.items():
        row = variants.loc[f"sasrec (hidden={hidden})"]
        assert row.differs == f"hidden={hidden}" and row.runs.split() == runs  # the record folders' own ids
    out = tmp_path / "out"
    write_report(report, out)
    assert pd.read_csv(out / "variants.csv")["differs"].tolist() == ["hidden=128", "hidden=64"]
    # One configuration per name: no variants file, the plain name.
    single = tmp_path / "single"
    write_run(single, "ds", "pop", 0, ranks)
    write_run(single, "ds", "sasrec", 0, ranks // 2 + 1)
    report = report_of(single)
    assert report.variants is None and report.tables["table"].rows == ["pop", "sasrec"]


def test_setup_writes_each_models_hyperparameters_and_the_hardware_and_plain_names(tmp_path):
    from benchmark.record import environment

    ranks = planted_ranks(60, 0.5, 0)
    write_run(tmp_path, "ds", "pop", 0, ranks)
    for hidden, epochs in ((64, 1), (128, 2)):
        run = write_run(tmp_path, "ds", "sasrec", 0, ranks // 2 + 1, hidden=hidden)
        config = yaml.safe_load((run / "config.yaml").read_text())
        config["trainer"]["max_epochs"] = epochs
        (run / "config.yaml").write_text(yaml.safe_dump(config))
        env = json.loads((run / "env.json").read_text())
        env |= {"cpu": "Made-up CPU 9000", "gpu": None, "cuda": None, "device": "cpu", "torch_threads": 1,
                "versions": {"torch": "2.9.9", "python": "3.11.0"}}
        (run / "env.json").write_text(json.dumps(env))
    report = report_of(tmp_path, setup=True)
    md, tex = report.setup["setup.md"], report.setup["setup.tex"]
    assert "| sasrec (hidden=128, trainer.max_epochs=2) | model | hidden | 128 |" in md and "|  | trainer | max_epochs | 2 |" in md
    params = pd.read_csv(pd.io.common.StringIO(report.setup["hyperparameters.csv"]))
    assert set(params[params.model == "pop"].section) <= {"model"}  # pop does not train: no trainer section
    assert set(params[params.model == "sasrec (hidden=64, trainer.max_epochs=1)"].section) == {"model", "trainer"}
    assert "| Made-up CPU 9000 | none | cpu | 2.9.9 | none | 3.11.0 | 1 | 2 |" in md
    assert "| unrecorded | none | unrecorded | unrecorded | none | unrecorded | unrecorded | 1 |" in md  # pop's older env.json
    assert r"\label{tab:results-hyperparameters}" in tex and r"\label{tab:results-environment}" in tex
    # The methods paragraph: plain model names, and a range of epochs written as one.
    assert "We evaluate 2 models (pop, sasrec;" in md and "at most 1–2 epochs" in md and "1/2" not in md
    env = environment(0, "h", "cpu", CodeVersion(git_commit=None, git_dirty=None, code_hash="c0de"))
    assert isinstance(env["cpu"], str) and env["cpu"] and env["gpu"] is None and "cuda" in env
