"""Config audit: settings that were silently ignored, and bad input that ended in a traceback, exit 0
or files written outside results_dir. Tiny made-up data, in-process where possible."""

from __future__ import annotations

import logging

import pytest

from benchmark.data import cli as data_cli
from benchmark.record import find_records
from conftest import run_cli
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


# ---- settings that had no effect and said nothing ---------------------------------------------


def warnings_of(caplog) -> list[str]:
    return [r.getMessage() for r in caplog.records if r.levelno >= logging.WARNING and r.name == "seqrec"]


def test_tf32_precision_off_cuda_is_warned(caplog):
    """Before: trainer.precision=tf32 on the CPU trained exactly as fp32, silently."""
    import torch

    from benchmark.config import TrainerConfig
    from benchmark.training import train_loop

    net = torch.nn.Linear(2, 1)
    x = torch.ones(4, 2)
    with caplog.at_level(logging.WARNING, logger="seqrec"):
        train_loop(net, lambda idx, g: net(x[idx]).pow(2).mean(), 4, lambda: 0.0,
                   TrainerConfig(precision="tf32", max_epochs=1, device="cpu"))
    assert any("trainer.precision='tf32' has no effect on cpu" in w for w in warnings_of(caplog))


def test_sampled_candidate_settings_under_full_ranking_are_warned(tmp_path, tiny_ml, capsys, caplog):
    """Before: protocol.n_negatives / sampler / negatives_seed with candidates=full (the default) changed
    nothing but the record's hash, silently."""
    with caplog.at_level(logging.WARNING, logger="seqrec"):
        code, _ = run_in_process([f"dataset.path={tiny_ml}", *TINY, "protocol.n_negatives=7", "protocol.sampler=popularity"],
                                 tmp_path, capsys)
    assert code == 0
    assert ("protocol.n_negatives=7, protocol.sampler='popularity' have no effect with protocol.candidates=full "
            "(read with candidates=sampled only)") in warnings_of(caplog)


def test_candidate_defaults_under_full_ranking_are_not_warned(caplog):
    from benchmark.candidates import Candidates

    with caplog.at_level(logging.WARNING, logger="seqrec"):
        Candidates.pop_from({"candidates": "full", "n_negatives": 100, "sampler": "uniform", "negatives_seed": 0})
        Candidates.pop_from({"candidates": "sampled", "n_negatives": 5, "sampler": "popularity", "negatives_seed": 3})
    assert not warnings_of(caplog)


@pytest.mark.parametrize("settings, ignored", [
    ({"encoder": "caser"}, {"layers", "heads"}),
    ({"encoder": "rnn"}, {"heads"}),
    ({"encoder": "nextitnet"}, {"heads"}),
    ({"encoder": "attention"}, set()),
    ({"encoder": "rnn", "head": "autoregressive"}, set()),  # the decoder reads heads
    ({"encoder": "caser", "head": "autoregressive"}, {"layers"}),
])
def test_shared_sizes_a_composition_does_not_read(settings, ignored):
    from benchmark.models import SequentialRecommender

    assert set(SequentialRecommender("m", **settings).ignored_settings()) == ignored


def test_layers_and_heads_set_for_an_encoder_without_them_are_warned_but_preset_placeholders_are_not(tmp_path, tiny_ml):
    """Before: `seqrec model=caser model.layers=3 model.heads=4` ran exactly as model=caser, silently.
    The presets keep layers/heads placeholders (an encoder swap finds them), so only a run's own
    setting is warned about."""
    base = [f"dataset.path={tiny_ml}", "dataset.user_core=1", "dataset.item_core=1", "trainer.max_epochs=1"]
    proc = run_cli("model=caser", "model.layers=3", "model.heads=4", *base, tmp=tmp_path)
    log = proc.stdout + proc.stderr
    assert "model.layers=3 has no effect with model.encoder=caser (read with encoder=rnn/nextitnet/attention/hstu only)" in log
    assert "model.heads=4 has no effect with model.encoder=caser and model.head=next_item" in log
    quiet = run_cli("model=gru4rec", "model.layers=2", *base, tmp=tmp_path / "other")
    assert "has no effect" not in quiet.stdout + quiet.stderr  # the preset's heads: 1 is a placeholder


# ---- seqrec-report and seqrec-data command lines -------------------------------------------


def report_main(argv: list[str], capsys) -> tuple[int, list[str]]:
    from benchmark.report import cli as report_cli

    with pytest.raises(SystemExit) as done:
        report_cli.main(argv)
    return done.value.code, capsys.readouterr().err.strip().splitlines()


@pytest.mark.parametrize("argv, words", [
    (["RESULTS", "--out", ""], "argument --out: is empty"),
    ([""], "argument results_dir: is empty"),
    (["RESULTS", "--alpha", "abc"], "argument --alpha: invalid float value: 'abc'"),
], ids=["empty --out", "empty results folder", "not a number"])
def test_report_usage_errors_are_one_line_and_write_nothing(argv, words, tmp_path, capsys, monkeypatch):
    """Before: --out '' wrote table.md, pairwise.csv, ... into the current folder with exit 0 (and
    removed report files of an earlier report there); argparse errors printed the whole usage block."""
    monkeypatch.chdir(tmp_path)
    (tmp_path / "RESULTS").mkdir()
    code, err = report_main(argv, capsys)
    assert code == 2 and len(err) == 1 and err[0].startswith(f"seqrec-report: error: {words}"), err
    assert sorted(p.name for p in tmp_path.iterdir()) == ["RESULTS"]


def test_report_of_a_runs_list_that_is_not_text_is_one_line(tmp_path, capsys):
    """Before: a binary or non-UTF-8 file given as RESULTS_DIR ended in a UnicodeDecodeError traceback."""
    listed = tmp_path / "runs.txt"
    listed.write_bytes(b"\xff\xfe\x00/runs\n")
    code, err = report_main([str(listed), "--out", str(tmp_path / "out")], capsys)
    assert code == 2 and len(err) == 1 and str(listed) in err[0] and "not UTF-8 text" in err[0], err
    assert not (tmp_path / "out").exists()


def test_seqrec_data_usage_errors_are_one_line(capsys):
    with pytest.raises(SystemExit) as done:
        data_cli.main(["stats"])
    err = capsys.readouterr().err.strip().splitlines()
    assert done.value.code == 2 and len(err) == 1 and "required: name" in err[0], err


# ---- huge sizes --------------------------------------------------------------------------------

CPU_ALLOC_FAILURE = ("[enforce fail at alloc_cpu.cpp:127] err == 0. DefaultCPUAllocator: can't allocate memory: you "
                     "tried to allocate 48000000000000 bytes. Error code 12 (Cannot allocate memory)")


@pytest.mark.parametrize("failure", [RuntimeError(CPU_ALLOC_FAILURE), MemoryError()], ids=["torch cpu", "python"])
def test_running_out_of_cpu_memory_is_one_line_naming_the_sizes(failure, tmp_path, tiny_ml, capsys, monkeypatch):
    """Before: `seqrec model=gru4rec model.hidden=2000000` (or model=sasrec model.max_len=100000000) ended
    in a 55-line traceback from torch's CPU allocator, exit 1 (the CUDA case was already one line)."""
    def build(self, n_items):
        raise failure

    monkeypatch.setattr("benchmark.models.sequential.SequentialRecommender.build", build)
    code, err = run_in_process([f"dataset.path={tiny_ml}", *TINY, "model=gru4rec", "model.hidden=2000000"], tmp_path, capsys)
    assert_one_line_error(code, err, ["out of memory during training", "model.hidden (now 2000000)",
                                      "model.max_len (now 50)", "trainer.batch_size"])
    assert not find_records(tmp_path / "results")


def test_other_runtime_errors_are_not_taken_for_memory(tmp_path, tiny_ml, capsys, monkeypatch):
    def build(self, n_items):
        raise RuntimeError("something else")

    monkeypatch.setattr("benchmark.models.sequential.SequentialRecommender.build", build)
    with pytest.raises(RuntimeError, match="something else"):
        run_in_process([f"dataset.path={tiny_ml}", *TINY, "model=gru4rec"], tmp_path, capsys)


# ---- reader keys ------------------------------------------------------------------------------

TABLE = "user,item,timestamp\n" + "".join(f"u{u},i{(u * 7 + t) % 11},{t}\n" for u in range(6) for t in range(5))
INTER = "user_id:token\titem_id:token\ttimestamp:float\n" + TABLE.split("\n", 1)[1].replace(",", "\t")


@pytest.mark.parametrize("reader, name, content, overrides, words", [
    ("sequences", "seqs.txt", "u1 a b c\nu2 b c d\n", ["dataset.file=other.txt"],
     ["dataset.file=other.txt cannot apply", "is a file"]),
    ("recbole", "log.inter", INTER, ["+dataset.columns.usr=user_id"], ["dataset.columns has unknown keys ['usr']"]),
    ("recbole", "log.inter", INTER, ["+dataset.columns.item=user_id"],
     ["dataset.columns.item and dataset.columns.user name the same column 'user_id'"]),
    ("csv", "log.csv", TABLE, ["dataset.columns.item=user"],
     ["dataset.columns.user and dataset.columns.item name the same column 'user'"]),
], ids=["file beside a file path", "recbole column typo", "recbole column twice", "csv column twice"])
def test_reader_keys_that_cannot_apply_are_refused(reader, name, content, overrides, words, tmp_path, capsys):
    """Before: dataset.file was ignored without a word when dataset.path named a file; a misspelled
    recbole dataset.columns key, or two keys naming one column, ended in a pyarrow KeyError traceback."""
    data = tmp_path / name
    data.write_text(content)
    code, err = run_in_process([f"dataset={reader}", f"dataset.path={data}", *TINY, *overrides], tmp_path, capsys)
    assert_one_line_error(code, err, words)
    assert not find_records(tmp_path / "results") and not list((tmp_path / "cache").glob("*.npz"))


def test_dataset_file_naming_the_file_of_the_path_is_accepted(tmp_path, capsys):
    data = tmp_path / "seqs.txt"
    data.write_text("".join(f"u{u} a b c d\n" for u in range(4)))
    code, err = run_in_process(["dataset=sequences", f"dataset.path={data}", "dataset.file=seqs.txt", *TINY], tmp_path, capsys)
    assert code == 0, err
