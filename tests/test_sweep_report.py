"""The sweep's end-of-run report (benchmark/report/callback.py) in a reused sweep folder."""

from __future__ import annotations

from omegaconf import OmegaConf

from benchmark.report.callback import RUNS_FILE, SweepReport
from report_records import planted_ranks, write_run


def end_sweep(sweep, runs) -> None:
    (sweep / RUNS_FILE).write_text("".join(f"{r}\n" for r in runs))
    SweepReport().on_multirun_end(OmegaConf.create({"hydra": {"sweep": {"dir": str(sweep)}}}))


def test_a_one_protocol_launch_removes_the_per_protocol_reports_of_an_earlier_launch(tmp_path):
    sweep, results = tmp_path / "sweep", tmp_path / "results"
    sweep.mkdir()
    runs = {p: [write_run(results, "ds-a", m, 0, planted_ranks(40, q, 0), protocol=p, split_key=p)
                for m, q in (("pop", 0.0), ("itemknn", 0.5))] for p in ("loo", "horizon")}
    end_sweep(sweep, runs["loo"] + runs["horizon"])
    assert (sweep / "report-horizon" / "table.md").is_file() and not (sweep / "table.md").exists()
    # The same sweep folder relaunched over loo only: its report is the sweep's, and no report-horizon/
    # of the earlier launch may stay beside it, read as this sweep's horizon results.
    end_sweep(sweep, runs["loo"])
    assert (sweep / "table.md").is_file()
    assert not (sweep / "report-horizon").exists() and not (sweep / "report-loo").exists()


def test_a_sweep_over_candidate_sets_gets_one_report_each_with_its_own_labels_and_no_paths(tmp_path):
    import json

    sweep, results = tmp_path / "sweep", tmp_path / "results"
    sweep.mkdir()
    runs = []
    for m, q in (("pop", 0.0), ("itemknn", 0.5)):
        runs.append(write_run(results, "ds-a", m, 0, planted_ranks(40, q, 0)))
        run = write_run(results / "sampled", "ds-a", m, 0, planted_ranks(40, q, 0), candidates="sampled")
        metrics = json.loads((run / "metrics.json").read_text())
        metrics["sampled_candidates"] = {"candidates": "sampled", "n_negatives": 99, "sampler": "popularity", "negatives_seed": 3}
        (run / "metrics.json").write_text(json.dumps(metrics))
        runs.append(run)
    end_sweep(sweep, runs)
    for setting in ("loo", "loo-sampled99-popularity-negseed3"):
        tex = (sweep / f"report-{setting}" / "table.tex").read_text()
        assert f"\\label{{tab:sweep-{setting}-results}}" in tex and str(tmp_path) not in tex
