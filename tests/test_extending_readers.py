"""docs/extending-readers.md's worked example, copied into a folder outside the repository and run."""

from __future__ import annotations

import json
import re
import shlex

import pytest

from benchmark.data.readers import READERS, read_interactions, reader_named
from benchmark.errors import ConfigError
from conftest import REPO, run_cli

DOC = REPO / "docs" / "extending-readers.md"


def doc_files() -> dict[str, str]:
    """Each fenced block announced by ``<!-- file: NAME -->``, by name."""
    return dict(re.findall(r"<!-- file: (\S+) -->\n```\w*\n(.*?)```", DOC.read_text(), flags=re.S))


def doc_command() -> list[str]:
    block = re.search(r"<!-- run -->\n```bash\n(.*?)```", DOC.read_text(), flags=re.S).group(1)
    line = next(line for line in block.splitlines() if "seqrec " in line)
    return shlex.split(line.split("seqrec ", 1)[1])


def user_project(tmp_path):
    project = tmp_path / "my_project"
    for name, text in doc_files().items():
        (project / name).parent.mkdir(parents=True, exist_ok=True)
        (project / name).write_text(text)
    return project


def test_the_worked_example_runs_from_a_folder_outside_the_package(tmp_path):
    project = user_project(tmp_path)
    assert not project.resolve().is_relative_to(REPO) and set(doc_files()) == {
        "my_readers.py", "conf/dataset/mydata.yaml", "data/clicks.tsv"}
    args = [a.replace("$PWD", str(project)) for a in doc_command()]
    env = {"SEQREC_USER_DIR": str(project)}  # the one setting: no PYTHONPATH, no search path by hand
    run_cli(*args, tmp=tmp_path, env=env)
    metrics = json.loads(next((tmp_path / "results" / "mydata" / "loo" / "pop").glob("*/metrics.json")).read_text())
    assert metrics["dataset"] == "mydata" and metrics["n_users"] == 3 and metrics["n_items"] == 4
    bad = run_cli(*args, "+dataset.evnet=click", tmp=tmp_path, env=env, check=False)
    assert bad.returncode == 2 and "dataset.evnet" in bad.stderr and "event" in bad.stderr


def test_a_user_reader_registers_and_is_found_by_module_path(tmp_path, monkeypatch):
    project = user_project(tmp_path)
    monkeypatch.syspath_prepend(str(project))
    monkeypatch.delitem(READERS, "mydata", raising=False)
    info = reader_named("my_readers:read_mydata")  # imports the module, which registers the reader
    assert READERS["mydata"] is info and info.files == ("clicks.tsv",) and info.options == ("event",)
    assert reader_named("my_readers.read_mydata") is info and reader_named("mydata") is info
    df = read_interactions("mydata", project / "data")
    assert list(df[df["user"] == "v1"]["item"]) == ["p1", "p2", "p3"]  # clicks only, in time order
    assert len(read_interactions("mydata", project / "data", event="purchase")) == 1
    monkeypatch.delitem(READERS, "mydata")


@pytest.mark.parametrize("name, words", [
    ("no_such_module:read", ["module no_such_module cannot be imported", "ModuleNotFoundError", "SEQREC_USER_DIR"]),
    ("json:no_such_function", ["module json has no function no_such_function"]),
    ("json:dumps", ["dumps is not a registered reader", "@register"]),
    ("parquet", ["dataset.reader='parquet' is unknown", "movielens", "module:function"]),
])
def test_a_reader_that_cannot_be_found_says_why_in_one_line(name, words):
    with pytest.raises(ConfigError) as err:
        reader_named(name)
    assert "\n" not in str(err.value) and all(w in str(err.value) for w in words)


def test_every_package_reader_declares_its_files_and_options():
    for info in READERS.values():
        assert info.files and info.summary, info.name
    assert READERS["otto"].options == ("events", "file") and READERS["lastfm"].options == ("item",)
