"""seqrec-report over a folder of several settings (protocols, candidate sets): one report each; and the
files meant for a paper: no machine paths, labels unique per report, wide tables."""

from __future__ import annotations

import json
import re
from pathlib import Path

from report_records import planted_ranks, write_run
from test_report import report_cli

SAMPLED = {"candidates": "sampled", "n_negatives": 100, "sampler": "uniform", "negatives_seed": 0}


def write_mixed(root: Path) -> Path:
    """The README's own examples in one folder: loo, horizon and loo with sampled candidates."""
    for model, quality in (("pop", 0.0), ("sasrec", 1.0)):
        write_run(root, "ds", model, 0, planted_ranks(60, quality, 0))
        write_run(root, "ds", model, 0, planted_ranks(60, quality, 0), protocol="horizon", split_key="h5")
        run = write_run(root / "sampled", "ds", model, 0, planted_ranks(60, quality, 0), candidates="sampled")
        metrics = json.loads((run / "metrics.json").read_text())
        (run / "metrics.json").write_text(json.dumps(metrics | {"sampled_candidates": SAMPLED}))
    return root


def test_a_mixed_folder_gets_one_report_per_protocol_and_candidate_set(tmp_path):
    results = write_mixed(tmp_path / "results")
    done = report_cli(results)
    assert done.returncode == 0, done.stderr
    report = results / "report"
    settings = {"loo", "horizon", "loo-sampled100-uniform"}
    assert {p.name for p in report.iterdir() if p.is_dir()} == settings and not (report / "table.md").exists()
    for setting in settings:
        md = (report / setting / "table.md").read_text()
        assert "| sasrec |" in md and "| pop |" in md
    assert "horizon-k" in (report / "horizon" / "table.md").read_text()
    assert "SAMPLED" in (report / "loo-sampled100-uniform" / "table.md").read_text()
    assert "SAMPLED" not in (report / "loo" / "table.md").read_text()
    # Filters: one setting left is the report itself; the setting folders of the earlier report go.
    done = report_cli(results, "--protocol", "horizon")
    assert done.returncode == 0, done.stderr
    assert "horizon-k" in (report / "table.md").read_text() and not any(p.is_dir() for p in report.iterdir())
    done = report_cli(results, "--candidates", "sampled")
    assert done.returncode == 0 and "SAMPLED" in (report / "table.md").read_text()
    done = report_cli(results, "--protocol", "loo", "--candidates", "full")
    assert done.returncode == 0 and "SAMPLED" not in (report / "table.md").read_text()


def test_a_filter_that_matches_nothing_is_one_plain_line(tmp_path):
    results = write_mixed(tmp_path / "results")
    done = report_cli(results, "--protocol", "temporal")
    assert done.returncode == 2 and done.stderr.count("\n") == 1
    assert done.stderr == ("seqrec-report: error: no run records with protocol temporal; recorded: horizon (full), "
                           "loo (full), loo (sampled)\n")
    assert not re.search(r"[{}\[\]]", done.stderr)  # never a Python repr
    assert report_cli(results, "--candidates", "nope").returncode == 2


def test_paper_files_carry_no_machine_paths_and_unique_labels(tmp_path):
    results = write_mixed(tmp_path / "results")
    done = report_cli(results, "--slice", "history", "--setup", "--out", tmp_path / "out")
    assert done.returncode == 0, done.stderr
    labels = []
    for path in (tmp_path / "out").rglob("*"):
        if path.suffix in (".md", ".tex", ".csv"):
            text = path.read_text()
            assert str(tmp_path) not in text and "/tmp" not in text, path
            labels += re.findall(r"\\label\{([^}]*)\}", text)
    assert len(labels) == len(set(labels)) and "tab:results-loo-results" in labels and "tab:results-horizon-history" in labels
    tex = (tmp_path / "out" / "loo" / "table.tex").read_text()
    assert r"\texttt{seqrec-report results --slice history --setup --protocol loo --candidates full}" in tex
    assert r"\begin{table}[t]" in tex and r"\resizebox" not in tex


def test_latex_wide_and_a_report_name(tmp_path):
    results = tmp_path / "results"
    for model, quality in (("pop", 0.0), ("sasrec", 1.0)):
        write_run(results, "ds", model, 0, planted_ranks(40, quality, 0))
    done = report_cli(results, "--latex-wide", "--name", "My Paper")
    assert done.returncode == 0, done.stderr
    tex = (results / "report" / "table.tex").read_text()
    assert tex.startswith(r"\begin{table*}[t]") and tex.rstrip().endswith(r"\end{table*}")
    assert r"\resizebox{\textwidth}{!}{%" in tex and r"\end{tabular}}" in tex and r"\label{tab:my-paper-results}" in tex
    assert r"\label{tab:my-paper-families}" not in tex
