"""A record knows the code that made it, and a relaunch never silently reuses a record of other code."""

from __future__ import annotations

import json
import sys

import pytest

from benchmark import cli
from benchmark.provenance import code_hash, mixed_code_note
from benchmark.record import find_records
from conftest import compose_config

USER_MODEL = '''from baselines.pop import MostPop


class MyPop(MostPop):
    """A user's own model, in a folder of theirs."""
{body}'''


@pytest.fixture
def user_model(tmp_path, monkeypatch):
    """A model module outside the packages (tests/ is on sys.path already: a folder of its own)."""
    folder = tmp_path / "mine"
    folder.mkdir()
    path = folder / "my_models_r22.py"
    path.write_text(USER_MODEL.format(body=""))
    monkeypatch.syspath_prepend(str(folder))
    yield path
    sys.modules.pop("my_models_r22", None)


def launch(tmp_path, tiny_ml, capsys, *overrides: str) -> tuple[int, str]:
    """Exit code and stderr of `seqrec` on the user's model, in-process."""
    config = compose_config(f"dataset.path={tiny_ml}", "model=pop", "model._target_=my_models_r22.MyPop",
                            "dataset.user_core=1", "dataset.item_core=1", *overrides, tmp=tmp_path)
    try:
        cli.run(config)
        code = 0
    except SystemExit as e:
        code = e.code
    return code, capsys.readouterr().err


def test_the_record_holds_the_commit_a_dirty_flag_and_the_code_hash(user_model, tiny_ml, tmp_path, capsys):
    assert launch(tmp_path, tiny_ml, capsys)[0] == 0
    [record] = find_records(tmp_path / "results")
    env, metrics = (json.loads((record / f).read_text()) for f in ("env.json", "metrics.json"))
    assert {"git_commit", "git_dirty", "code_hash"} <= set(env)
    assert env["git_dirty"] in (True, False, None) and len(env["code_hash"]) == 64
    assert metrics["code_hash"] == env["code_hash"]


def test_the_code_hash_covers_a_user_module_that_a_target_names(user_model):
    config = {"model": {"_target_": "my_models_r22.MyPop"}}
    before = code_hash(config)
    assert code_hash(config) == before and code_hash({"model": {"_target_": "baselines.pop.MostPop"}}) != before
    user_model.write_text(USER_MODEL.format(body="    trains = False\n"))
    assert code_hash(config) != before


def test_a_record_of_other_code_is_refused_unless_rerun_or_reuse_says_otherwise(user_model, tiny_ml, tmp_path, capsys):
    assert launch(tmp_path, tiny_ml, capsys)[0] == 0
    [record] = find_records(tmp_path / "results")
    old = json.loads((record / "metrics.json").read_text())["code_hash"]
    assert launch(tmp_path, tiny_ml, capsys)[0] == 0  # same code: the record stands in for the run

    user_model.write_text(USER_MODEL.format(body="    # edited after the record was made\n"))
    code, err = launch(tmp_path, tiny_ml, capsys)
    assert code == 2 and len(err.strip().splitlines()) == 1, err
    assert str(record) in err and "other code" in err and "rerun=true" in err and "reuse=any_code" in err
    assert json.loads((record / "metrics.json").read_text())["code_hash"] == old  # untouched
    assert not (tmp_path / "results" / ".hydra").exists()

    assert launch(tmp_path, tiny_ml, capsys, "reuse=any_code")[0] == 0  # explicit acceptance keeps the old record
    assert json.loads((record / "metrics.json").read_text())["code_hash"] == old

    assert launch(tmp_path, tiny_ml, capsys, "rerun=true")[0] == 0  # a fresh run replaces it
    assert find_records(tmp_path / "results") == [record]
    new = json.loads((record / "metrics.json").read_text())["code_hash"]
    assert new != old and not list(record.parent.glob(".*.tmp"))
    assert launch(tmp_path, tiny_ml, capsys)[0] == 0  # the new record now stands in for the run


def test_rerun_runs_again_even_with_the_same_code(user_model, tiny_ml, tmp_path, capsys):
    assert launch(tmp_path, tiny_ml, capsys)[0] == 0
    [record] = find_records(tmp_path / "results")
    (record / "history.csv").write_text("epoch,loss,valid_metric,seconds,valid_seconds\n")  # a mark of the old record
    (record / "marker").write_text("old")
    assert launch(tmp_path, tiny_ml, capsys, "rerun=true")[0] == 0
    assert not (record / "marker").exists() and find_records(tmp_path / "results") == [record]


def test_a_record_from_before_code_hashes_counts_as_other_code(user_model, tiny_ml, tmp_path, capsys):
    assert launch(tmp_path, tiny_ml, capsys)[0] == 0
    [record] = find_records(tmp_path / "results")
    metrics = json.loads((record / "metrics.json").read_text())
    del metrics["code_hash"]
    (record / "metrics.json").write_text(json.dumps(metrics))
    code, err = launch(tmp_path, tiny_ml, capsys)
    assert code == 2 and "unknown version" in err and "reuse=any_code" in err


@pytest.mark.parametrize("override, words", [("reuse=always", ["reuse='always'", "same_code, any_code"]),
                                             ("rerun=maybe", ["rerun='maybe'", "true or false"])])
def test_rerun_and_reuse_are_validated(override, words, user_model, tiny_ml, tmp_path, capsys):
    code, err = launch(tmp_path, tiny_ml, capsys, override)
    assert code == 2 and all(w in err for w in words), err


def test_rerun_and_reuse_do_not_change_a_runs_identity(tmp_path):
    from benchmark.record import run_dir_for

    plain = compose_config("model=pop", tmp=tmp_path)
    assert {"rerun", "reuse"} <= set(plain)
    flagged = compose_config("model=pop", "rerun=true", "reuse=any_code", tmp=tmp_path)
    legacy = {k: v for k, v in plain.items() if k not in ("rerun", "reuse")}  # a record's config from before the keys
    assert run_dir_for("r", plain) == run_dir_for("r", flagged) == run_dir_for("r", legacy)


def test_a_caption_over_records_of_several_code_versions_says_so():
    assert mixed_code_note(["a" * 64, "a" * 64]) is None
    note = mixed_code_note(["a" * 64, "b" * 64, None])
    assert "3 versions of the code" in note and "aaaaaaaa" in note and "1 run(s) of unrecorded code" in note


def test_a_report_over_records_of_two_code_versions_says_so_in_its_caption(tmp_path):
    import numpy as np

    from benchmark.report.build import ReportOptions, build_report
    from report_records import write_run

    ranks = np.arange(1, 41)
    runs = [write_run(tmp_path, "ds", model, 0, ranks) for model in ("pop", "sasrec")]

    def caption() -> str:
        report = build_report(find_records(tmp_path), ReportOptions(), "seqrec-report", "RESULTS")
        return " ".join(t.caption for t in report.tables.values())

    for run, code in zip(runs, ("1" * 64, "1" * 64)):
        metrics = json.loads((run / "metrics.json").read_text())
        (run / "metrics.json").write_text(json.dumps({**metrics, "code_hash": code}))
    assert "versions of the code" not in caption()
    metrics = json.loads((runs[1] / "metrics.json").read_text())
    (runs[1] / "metrics.json").write_text(json.dumps({**metrics, "code_hash": "2" * 64}))
    assert "2 versions of the code (code hashes 11111111, 22222222)" in caption()
