"""Report figures (benchmark/report/plots.py via build.py) on reports whose first metric has no
per-user values."""

from __future__ import annotations

from report_records import planted_ranks, write_run
from test_report_families import report_of


def test_slice_figure_is_drawn_when_the_first_metric_is_not_per_user(tmp_path):
    # coverage@10 is one number per run (no per-user column): the slice figure falls back to the first
    # metric that has per-user values instead of silently drawing nothing for --slice history.
    for seed in (0, 1):
        write_run(tmp_path, "ds-a", "pop", seed, planted_ranks(60, 0.0, seed))
        write_run(tmp_path, "ds-a", "sasrec", seed, planted_ranks(60, 1.0, seed))
    report = report_of(tmp_path, metrics=["coverage@10", "ndcg@10"], slices=["history"])
    assert "slice_history" in report.figures
    points, title = report.figures["slice_history"]
    assert set(points.metric) == {"ndcg@10"} and title.startswith("ndcg@10 by history slice")
