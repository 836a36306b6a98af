"""Config audit: settings that were silently ignored, and bad input that ended in a traceback, exit 0
or files written outside results_dir. Tiny made-up data, in-process where possible."""

from __future__ import annotations

import logging
from pathlib import Path

import pytest

from benchmark.data import cli as data_cli
from benchmark.record import find_records
from conftest import REPO
from test_bad_inputs import assert_one_line_error, run_in_process

TINY = ["model=pop", "dataset.user_core=1", "dataset.item_core=1"]


# ---- empty folders and names that are not folder names --------------------------------------


@pytest.mark.parametrize("overrides, words", [
    (["results_dir="], ["results_dir=''", "empty"]),
    (["cache_dir="], ["cache_dir=''", "empty"]),
    (["dataset.path="], ["dataset.path=''", "empty"]),
    (["dataset.name=../../escaped"], ["dataset.name='../../escaped'", "plain folder name"]),
    (["dataset.name="], ["dataset.name=''", "plain folder name"]),
    (["model.name=a/b"], ["model.name='a/b'", "plain folder name"]),
], ids=["results_dir empty", "cache_dir empty", "dataset.path empty", "dataset name escapes", "dataset name empty",
        "model name with a slash"])
def test_empty_folders_and_path_like_names_are_refused(overrides, words, tmp_path, tiny_ml, capsys, monkeypatch):
    """Before: results_dir='' wrote the record into the current folder, dataset.name=../../x two levels
    above results_dir, dataset.path='' silently read the default (embedded) data, all with exit 0."""
    monkeypatch.chdir(tmp_path)
    code, err = run_in_process([f"dataset.path={tiny_ml}", *TINY, *overrides], tmp_path, capsys)
    assert_one_line_error(code, err, words)
    assert not list(tmp_path.rglob("metrics.json")) and not (tmp_path / "cache").exists()


def test_seqrec_data_stats_refuses_an_empty_path(capsys):
    """Before: `seqrec-data stats ml-latest-small --path ''` described the embedded copy, exit 0."""
    assert data_cli.main(["stats", "ml-latest-small", "--path", ""]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and err[0].startswith("seqrec-data: error: dataset.path='' is empty"), err
