"""Bring your own model (docs/extending.md): the doc's examples, copied out of the markdown into a folder
outside the repository, run beside the zoo through SEQREC_USER_DIR; parts that declare themselves; errors
that say what is wrong."""

from __future__ import annotations

import os
import re
import shlex
import subprocess
import sys
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import torch

from benchmark.config import TrainerConfig, check_model, validate_config
from benchmark.errors import ConfigError
from benchmark.models import Batch, SequentialRecommender
from benchmark.models.encoders import ENCODERS, Encoder
from benchmark.models.sequential import HEADS, OBJECTIVES, unread_settings
from benchmark.record import find_records
from benchmark.report.runs import load_runs
from benchmark.userdir import ENV, load_user_dirs
from conftest import REPO, compose_config, write_movielens_csv, permutation_rows

DOC = REPO / "docs" / "extending.md"
SEQREC = Path(sys.executable).parent / "seqrec"  # the installed command: its sys.path[0] is not the cwd


def doc_blocks() -> list[tuple[str, str]]:
    """(language, text) of every fenced block of docs/extending.md."""
    return re.findall(r"^```(\w+)\n(.*?)^```", DOC.read_text(), flags=re.S | re.M)


def write_doc_files(folder: Path) -> list[Path]:
    """The doc's Python and YAML blocks whose first line names their file (``# my_models/x.py``), written there."""
    written = []
    for language, text in doc_blocks():
        first = text.splitlines()[0]
        if language in ("python", "yaml") and first.startswith("# ") and first.endswith((".py", ".yaml")):
            path = folder / first[2:].strip()
            path.parent.mkdir(parents=True, exist_ok=True)
            path.write_text(text)
            written.append(path)
    return written


def doc_command() -> list[str]:
    """The doc's `seqrec -m ...` command, as arguments after `seqrec`."""
    commands = [line for language, text in doc_blocks() if language == "bash"
                for line in text.splitlines() if line.startswith("seqrec -m ")]
    assert len(commands) == 1, commands
    return shlex.split(commands[0])[1:]


@pytest.fixture
def project(tmp_path: Path) -> Path:
    """A researcher's folder outside the repository holding the doc's files (2 models, 2 presets)."""
    folder = tmp_path / "my_project"
    written = write_doc_files(folder)
    assert {p.relative_to(folder).as_posix() for p in written} == {
        "my_models/attn_gru.py", "my_models/covisit.py", "conf/model/attn_gru.yaml", "conf/model/covisit.yaml"}
    assert REPO not in folder.parents
    return folder


@pytest.fixture
def registry():
    """Restores the encoder registry, sys.path and the user modules after a test that loads a user folder."""
    encoders, path = dict(ENCODERS), list(sys.path)
    modules = set(sys.modules)
    yield
    ENCODERS.clear()
    ENCODERS.update(encoders)
    sys.path[:] = path
    for name in set(sys.modules) - modules:
        if name.split(".")[0] in ("my_models", "broken", "elsewhere"):
            del sys.modules[name]


def seqrec(*args: str, cwd: Path, env: dict[str, str], timeout: int = 600) -> subprocess.CompletedProcess:
    clean = {k: v for k, v in os.environ.items() if k not in ("PYTHONPATH", ENV)}
    return subprocess.run([str(SEQREC), *args], cwd=cwd, capture_output=True, text=True, timeout=timeout,
                          env={**clean, "WANDB_MODE": "disabled", "OMP_NUM_THREADS": "1", **env})


def tiny(tmp_path: Path) -> list[str]:
    """A tiny MovieLens-format fixture in place of the default dataset; one epoch, results under tmp_path."""
    data = tmp_path / "tiny-ml"
    write_movielens_csv(data, permutation_rows(n_users=40, n_items=20, length=8))
    return [f"dataset.path={data}", "dataset.user_core=1", "dataset.item_core=1", "trainer.max_epochs=1",
            "trainer.num_threads=1", f"results_dir={tmp_path / 'results'}", f"cache_dir={tmp_path / 'cache'}",
            f"hydra.sweep.dir={tmp_path / 'sweep'}"]


# ---- the doc's examples, end to end --------------------------------------------------------------------


def test_the_docs_examples_run_beside_the_zoo_from_a_folder_outside_the_package(project, tmp_path, registry, monkeypatch):
    # Through joblib's worker processes: the user folder must reach them (submitit's: the next test).
    proc = seqrec(*doc_command(), *tiny(tmp_path), "hydra/launcher=joblib", "hydra.launcher.n_jobs=2", cwd=project,
                  env={ENV: str(project)})
    assert proc.returncode == 0, proc.stderr[-3000:]
    monkeypatch.setenv(ENV, str(project))  # as for seqrec-report: the records' classes are the user's
    load_user_dirs()
    records = find_records(tmp_path / "results")
    assert sorted(r.parent.name for r in records) == ["attn_gru", "covisit", "ease", "sasrec"]
    runs = {r.name: r for r in load_runs(records)}
    # Declared by the classes: covisit (outside the baselines package) is a non-sequential baseline.
    assert {name: r.baseline for name, r in runs.items()} == {"attn_gru": False, "covisit": True, "ease": True, "sasrec": False}
    assert runs["attn_gru"].family == "RNN+attention encoder-only"
    sweep = tmp_path / "sweep"
    table = (sweep / "table.md").read_text()
    assert "↑" in table or "↓" in table  # tested against the best non-sequential baseline
    families = pd.read_csv(sweep / "families.csv")
    assert dict(zip(families["family"], families["model"])) == {
        "attention encoder-only": "sasrec", "RNN+attention encoder-only": "attn_gru"}
    assert families["reference"].iloc[0] in ("covisit", "ease")
    assert "| RNN+attention encoder-only | attn_gru" in (sweep / "families.md").read_text()
    assert 'family="RNN+attention"' in (project / "my_models" / "attn_gru.py").read_text()


def test_the_user_folder_reaches_submitit_jobs(project, tmp_path):
    proc = seqrec("-m", "model=attn_gru,covisit", "hydra/launcher=submitit_local", *tiny(tmp_path), cwd=project,
                  env={ENV: str(project)})
    assert proc.returncode == 0, proc.stderr[-3000:]
    assert sorted(r.parent.name for r in find_records(tmp_path / "results")) == ["attn_gru", "covisit"]
    assert list((tmp_path / "sweep" / ".submitit").glob("*/*_log.out"))  # really ran as submitit jobs


def test_without_the_setting_the_users_model_is_not_found(project, tmp_path):
    proc = seqrec("model=covisit", *tiny(tmp_path), cwd=project, env={})
    assert proc.returncode == 2 and "model/covisit" in proc.stderr and len(proc.stderr.strip().splitlines()) == 1


# ---- parts that declare themselves --------------------------------------------------------------------


def test_the_packages_encoders_declare_their_family_and_keys():
    families = {name: cls.family for name, cls in ENCODERS.items()}
    assert families == {"rnn": "RNN", "caser": "CNN", "nextitnet": "CNN", "attention": "attention", "hstu": "attention"}
    assert {"window", "horizontal_filters"} <= set(ENCODERS["caser"].reads) and "layers" not in ENCODERS["caser"].reads
    assert "causal" in ENCODERS["attention"].reads and "causal" not in ENCODERS["rnn"].reads


def tiny_split():
    from benchmark.data.split import Sequences, leave_one_out

    rng = np.random.default_rng(0)
    lengths = np.full(30, 6)
    items = rng.integers(1, 16, lengths.sum()).astype(np.int64)
    offsets = np.concatenate([[0], np.cumsum(lengths)]).astype(np.int64)
    ids = np.array(["<pad>"] + [f"i{i}" for i in range(15)], dtype=object)
    return leave_one_out(Sequences(items, offsets, np.arange(len(items))), np.array([f"u{u}" for u in range(30)]), ids)


def test_a_new_encoder_composes_with_both_heads_and_every_objective(project, registry, monkeypatch):
    monkeypatch.setenv(ENV, str(project))
    load_user_dirs()
    assert ENCODERS["attn_gru"].family == "RNN+attention" and "causal" in ENCODERS["attn_gru"].reads
    data, trained = tiny_split(), set()
    for head in HEADS:
        for objective in OBJECTIVES:
            causal = objective != "cloze"
            if head == "autoregressive" and not causal:
                continue  # the decoder continues prefixes: no model composes that (a config error)
            model = SequentialRecommender("m", "attn_gru", head=head, objective=objective, causal=causal, max_len=6,
                                          hidden=8, heads=2, horizon=1, n_negatives=2)
            model.fit(data, TrainerConfig(max_epochs=1, batch_size=16, device="cpu"))
            scores = model.score(Batch(torch.arange(3), data.train.padded(np.arange(3))))
            assert scores.shape == (3, data.n_items + 1) and torch.isfinite(scores[:, 1:]).all()
            trained.add((head, objective))
    assert trained == {(h, o) for h in HEADS for o in OBJECTIVES} - {("autoregressive", "cloze")}
    # Its keys are known: a key of another encoder is warned about, naming who reads it.
    assert unread_settings("attn_gru", "next_item", "ce", {"cell": "lstm"}) == [
        "model.cell='lstm' has no effect with model.encoder=attn_gru (read with encoder=rnn only)"]
    assert unread_settings("rnn", "next_item", "ce", {"cell": "lstm"}) == []


def test_a_users_encoder_and_model_pass_config_validation(project, registry, monkeypatch, tmp_path):
    monkeypatch.setenv(ENV, str(project))
    load_user_dirs()
    for model in ("attn_gru", "covisit"):
        validate_config(compose_config(f"model={model}", tmp=tmp_path))
    with pytest.raises(ConfigError, match="unknown key model.alfa; model .CoVisit. takes: name, alpha"):
        validate_config(compose_config("model=covisit", "+model.alfa=1", tmp=tmp_path))


def test_an_encoder_without_a_family_or_with_a_taken_name_is_refused(registry):
    with pytest.raises(ConfigError, match="encoder 'mine' .* declares no family"):
        class NoFamily(Encoder, name="mine"):
            pass
    with pytest.raises(ConfigError, match="encoder name 'rnn' of .*Taken is taken by benchmark.models.gru4rec.RNNEncoder"):
        class Taken(Encoder, name="rnn", family="RNN"):
            pass
    assert "mine" not in ENCODERS and ENCODERS["rnn"].__name__ == "RNNEncoder"


# ---- errors that help ----------------------------------------------------------------------------------


def write(path: Path, text: str) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text)


def test_a_target_whose_module_cannot_be_imported_is_one_line_and_exit_2(project, tmp_path):
    proc = seqrec("model=covisit", "model._target_=my_models.nowhere.Model", *tiny(tmp_path), cwd=project,
                  env={ENV: str(project)})
    assert proc.returncode == 2 and len(proc.stderr.strip().splitlines()) == 1, proc.stderr
    assert proc.stderr.startswith("seqrec: error: model._target_='my_models.nowhere.Model': module my_models.nowhere "
                                  "cannot be imported (ModuleNotFoundError: No module named 'my_models.nowhere')")
    assert find_records(tmp_path / "results") == []


@pytest.mark.parametrize("target, message", [
    ("my_models.covisit.CoVist", "module my_models.covisit has no class CoVist"),
    ("my_models.half.Half", "class Half has no score method; a model needs fit(data, trainer) and score(batch)"),
])
def test_a_missing_class_or_method_is_named(project, registry, monkeypatch, target, message):
    write(project / "my_models" / "half.py", "class Half:\n    reads_order = False\n\n    def fit(self, data, trainer=None):\n        return []\n")
    monkeypatch.setenv(ENV, str(project))
    load_user_dirs()
    with pytest.raises(ConfigError, match=re.escape(message)):
        check_model({"_target_": target, "name": "m"})


def test_a_module_that_fails_on_import_is_named_with_its_error(tmp_path, registry, monkeypatch):
    write(tmp_path / "elsewhere" / "model.py", "import not_a_real_dependency\n")
    monkeypatch.syspath_prepend(str(tmp_path))
    with pytest.raises(ConfigError) as error:
        check_model({"_target_": "elsewhere.model.Model", "name": "m"})
    assert str(error.value) == ("model._target_='elsewhere.model.Model': module elsewhere.model cannot be imported "
                                "(ModuleNotFoundError: No module named 'not_a_real_dependency'); a module of your own "
                                "must lie in a folder of SEQREC_USER_DIR (docs/extending.md)")


def test_a_model_must_declare_whether_it_reads_order(tmp_path, registry, monkeypatch):
    write(tmp_path / "elsewhere" / "undeclared.py",
          "from benchmark.models import Recommender\n\nclass Undeclared(Recommender):\n"
          "    def fit(self, data, trainer=None):\n        return []\n\n    def score(self, batch):\n        return None\n")
    monkeypatch.syspath_prepend(str(tmp_path))
    with pytest.raises(ConfigError, match="class Undeclared does not declare reads_order; set the class attribute"):
        check_model({"_target_": "elsewhere.undeclared.Undeclared", "name": "m"})


def test_a_broken_file_in_the_user_folder_is_named(tmp_path, registry, monkeypatch):
    write(tmp_path / "user" / "broken" / "enc.py", "def oops(:\n")
    monkeypatch.setenv(ENV, str(tmp_path / "user"))
    with pytest.raises(ConfigError, match=r"SEQREC_USER_DIR: .*broken/enc.py cannot be imported: SyntaxError: .*line 1"):
        load_user_dirs()
    monkeypatch.setenv(ENV, str(tmp_path / "missing"))
    with pytest.raises(ConfigError, match="missing is not a folder"):
        load_user_dirs()
