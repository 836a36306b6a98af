"""The default reference is chosen on validation data: under a global null the markers keep their level."""

from __future__ import annotations

import math
from pathlib import Path

import numpy as np
import pandas as pd

from benchmark import stats
from benchmark.report.build import ReportOptions, _Block, _comparisons, choose_references
from benchmark.report.runs import Group, Run
from report_records import planted_ranks, write_run
from test_report_families import report_of

METRIC = "ndcg@10"
BASELINES = ("b0", "b1", "b2", "b3")
COMPARED = ("s0", "s1")  # k = 2 models compared with the reference


def null_group(test: np.ndarray, valid: np.ndarray, per_user: bool) -> Group:
    """One dataset from a trial's draws: test[model, user] per-user values, valid[model] validation means
    (per_user False: the records' means only, all that choosing a reference reads)."""
    users = np.array([f"u{i:03d}" for i in range(test.shape[1])])
    runs = []
    for i, name in enumerate((*BASELINES, *COMPARED)):
        metrics = {"test": {METRIC: float(test[i].mean())}, "valid": {METRIC: float(valid[i])}}
        frame = pd.DataFrame({"user": users, METRIC: test[i]}) if per_user else pd.DataFrame()
        runs.append(Run(dir=Path(name), dataset="ds", protocol="loo", name=name, seed=0, baseline=name in BASELINES,
                        variant="v", settings={}, config={}, metrics=metrics, env={}, per_user=frame, label=name))
    return Group("ds", "loo", runs, users)


def test_markers_under_a_global_null_keep_their_level_with_four_equal_baselines():
    # Choosing the reference by the test mean picks the luckiest of 4 baselines on the very users the
    # markers are computed on: the rate of ↓ was 0.077 instead of α/2 = 0.025, of ↑ 0.0006.
    # Every model is the same: per-user test values i.i.d.; validation (other targets) drawn independently.
    trials, n_users, models = 4000, 50, len(BASELINES) + len(COMPARED)
    rng = np.random.default_rng(2026)
    test = rng.normal(0.3, 0.1, (trials, models, n_users))
    valid = rng.normal(0.3, 0.1 / np.sqrt(n_users), (trials, models))
    options = ReportOptions(metrics=[METRIC], correction="none", alpha=0.05)
    ref = np.array([BASELINES.index(choose_references([null_group(test[t], valid[t], False)], options)["ds"])
                    for t in range(trials)])
    compared = test[:, len(BASELINES):]  # [trials, k, users]
    t_stat, p = stats.ttest(compared - test[np.arange(trials), ref][:, None, :])
    significant = p <= options.alpha  # no correction: each marker's level is α/2 per direction
    # The report's own markers (its t-test, its direction) agree with these on a sample of the trials.
    for t in range(0, trials, 200):
        group = null_group(test[t], valid[t], True)
        rows = _comparisons([_Block(group, "ds", None)], [METRIC], choose_references([group], options), options, "all")
        rows = rows.set_index("model").loc[list(COMPARED)]  # the other baselines are compared too; k = 2 here
        assert list(rows["significant"]) == list(significant[t])
        assert list(np.sign(rows["effect_size"])) == list(np.sign(t_stat[t]))
    n = significant.size
    down, up = (significant & (t_stat < 0)).sum() / n, (significant & (t_stat > 0)).sum() / n
    # The two comparisons of a trial share the reference (positively correlated): 4 binomial standard
    # errors of n independent ones leave room for that; the old bias (0.077 / 0.0006) lies far outside.
    tolerance = 4 * math.sqrt(0.025 * 0.975 / n)
    assert abs(down - 0.025) < tolerance, down
    assert abs(up - 0.025) < tolerance, up


def test_the_reference_is_the_best_baseline_on_validation_not_on_test(tmp_path):
    ranks = planted_ranks(80, 0.5, 0)
    # itemknn is better on test, pop on validation: pop is the reference.
    write_run(tmp_path, "ds", "pop", 0, ranks * 2, valid={METRIC: 0.3})
    write_run(tmp_path, "ds", "itemknn", 0, ranks, valid={METRIC: 0.2})
    write_run(tmp_path, "ds", "sasrec", 0, np.maximum(1, ranks // 2))
    table = report_of(tmp_path).tables["table"]
    assert table.cells[("itemknn", 0)].marker == "↑"
    assert "reference (pop; default: the non-sequential baseline with the best mean validation ndcg@10" in table.caption
    assert "chosen without test data" in table.caption
    assert "chosen with --reference" in report_of(tmp_path, reference="itemknn").tables["table"].caption


def test_a_baseline_without_validation_values_is_never_chosen_by_its_test_values(tmp_path):
    ranks = planted_ranks(80, 0.5, 0)
    write_run(tmp_path, "ds", "pop", 0, ranks, valid={})  # the better on test, but no validation recorded
    write_run(tmp_path, "ds", "itemknn", 0, ranks * 2, valid={METRIC: 0.1})
    write_run(tmp_path, "ds", "sasrec", 0, np.maximum(1, ranks // 2))
    report = report_of(tmp_path)
    assert set(report.pairwise["reference"]) == {"itemknn"}
    assert "Not eligible as reference (no validation ndcg@10 recorded): pop on ds." in report.tables["table"].caption
    # No baseline with validation values: no reference at all (and the caption says why), never a test-chosen one.
    for d in (tmp_path / "ds/loo/itemknn").iterdir():
        for f in d.iterdir():
            f.unlink()
        d.rmdir()
    report = report_of(tmp_path)
    caption = report.tables["table"].caption
    assert len(report.pairwise) == 0 and "No reference on ds: no non-sequential baseline there has a validation ndcg@10" in caption
    assert "set --reference" in caption and report.families is None


def test_bootstrap_on_few_users_with_a_difference_is_warned_in_the_caption_and_the_log(tmp_path, caplog):
    ranks = planted_ranks(120, 0.5, 0)
    better = ranks.copy()
    better[:30] = np.maximum(1, ranks[:30] // 3)  # only 30 users differ from the reference
    write_run(tmp_path, "ds", "pop", 0, ranks)
    write_run(tmp_path, "ds", "sasrec", 0, better)
    report = report_of(tmp_path, test="bootstrap", resamples=500, metrics=["ndcg@10"])
    row = report.pairwise.iloc[0]
    assert row.n_users == 120 and 0 < row.n_nonzero <= 30
    caption = report.tables["table"].caption
    assert "resting on fewer than 50 users with a non-zero difference: 1 of 1" in caption and "--test randomization" in caption
    assert any("--test randomization" in r.getMessage() and r.levelname == "WARNING" for r in caplog.records)
    caplog.clear()
    # The randomization test, or the bootstrap on enough users, draws no warning.
    assert "non-zero difference" not in report_of(tmp_path, test="randomization", resamples=500).tables["table"].caption
    write_run(tmp_path / "many", "ds", "pop", 0, ranks)
    write_run(tmp_path / "many", "ds", "sasrec", 0, np.maximum(1, ranks // 2))
    report = report_of(tmp_path / "many", test="bootstrap", resamples=500, metrics=["ndcg@10"])
    assert (report.pairwise["n_nonzero"] >= 50).all() and "non-zero difference" not in report.tables["table"].caption
    assert not caplog.records
