"""Bad input, table-driven: each case runs what `seqrec` runs (in-process, for speed) and must exit 2
with one line naming the culprit, leave no run record, and, for config errors, do no work at all."""

from __future__ import annotations

from pathlib import Path

import pytest

from benchmark import cli
from benchmark.record import find_records
from conftest import compose_config, run_cli, write_movielens_csv

HEADER = "userId,movieId,rating,timestamp\n"
GOOD_ROWS = "".join(f"{u},{i},4.0,{1000 + 60 * t}\n" for u in (1, 2, 3) for t, i in enumerate((10, 11, 12, 13)))


def ratings(*lines: str) -> dict[str, bytes]:
    return {"ratings.csv": (HEADER + GOOD_ROWS + "".join(lines)).encode()}


# (id, overrides, files of the dataset directory (None: the tiny permutation dataset), words the message must hold)
CONFIG_CASES = [
    ("lr negative", ["trainer.lr=-0.1"], ["trainer.lr=-0.1", "> 0"]),
    ("lr zero", ["trainer.lr=0"], ["trainer.lr=0", "> 0"]),
    ("lr not a number", ["trainer.lr=fast"], ["trainer.lr='fast'", "a number"]),
    ("batch size zero", ["trainer.batch_size=0"], ["trainer.batch_size=0", ">= 1"]),
    ("batch size float", ["trainer.batch_size=2.5"], ["trainer.batch_size=2.5", "an integer"]),
    ("max epochs zero", ["trainer.max_epochs=0"], ["trainer.max_epochs=0", ">= 1"]),
    ("patience zero", ["trainer.patience=0"], ["trainer.patience=0", ">= 1"]),
    ("eval batch negative", ["trainer.eval_batch_size=-5"], ["trainer.eval_batch_size=-5", ">= 1"]),
    ("weight decay negative", ["trainer.weight_decay=-1"], ["trainer.weight_decay=-1", ">= 0"]),
    ("grad clip zero", ["trainer.grad_clip=0"], ["trainer.grad_clip=0", "null or a number > 0"]),
    ("beta2 of one", ["trainer.betas=[0.9,1.0]"], ["trainer.betas=[0.9, 1.0]", "two numbers in [0, 1)"]),
    ("unknown optimizer", ["trainer.optimizer=sgd"], ["trainer.optimizer='sgd'", "adam or adagrad"]),
    ("unknown activation", ["model.activation=tanh"], ["model.activation='tanh'", "gelu or relu"]),
    ("unknown training", ["model=gru4rec", "model.training=bptt"], ["model.training='bptt'", "windows or session_parallel"]),
    ("session-parallel attention", ["model=sasrec", "+model.training=session_parallel"],
     ["model.training=session_parallel", "model.encoder=rnn"]),
    ("unknown device", ["trainer.device=tpu"], ["trainer.device='tpu'", "cuda"]),
    ("device this machine lacks", ["trainer.device=cuda:7"], ["trainer.device='cuda:7'", "not available here", "auto or cpu"]),
    ("unknown logger key", ["logger=wandb", "+logger.foo=1"], ["unknown key logger.foo", "project, entity"]),
    ("logger value of the wrong type", ["logger=wandb", "logger.init_timeout=abc"], ["logger.init_timeout='abc'", "a number"]),
    ("a key for logger=none", ["+logger.project=x"], ["unknown key logger.project", "no keys"]),
    ("unknown metric", ["trainer.valid_metric=auc"], ["trainer.valid_metric='auc'", "ndcg"]),
    ("metric K not computed", ["trainer.valid_metric=ndcg@50"], ["trainer.valid_metric='ndcg@50'", "ndcg@10"]),
    ("metric not of the protocol", ["trainer.valid_metric=recall@10"], ["trainer.valid_metric='recall@10'", "protocol loo", "mrr@10"]),
    ("precision is never computed", ["trainer.valid_metric=precision@10"], ["trainer.valid_metric='precision@10'", "recall"]),
    ("resume not a bool", ["trainer.resume=maybe"], ["trainer.resume='maybe'", "true or false"]),
    ("unknown trainer key", ["+trainer.lrr=0.1"], ["trainer.lrr", "lr, batch_size"]),
    ("K zero", ["protocol.ks=[0,10]"], ["protocol.ks=[0, 10]", "integers >= 1"]),
    ("no K", ["protocol.ks=[]"], ["protocol.ks=[]", "non-empty"]),
    ("K not a list", ["protocol.ks=ten"], ["protocol.ks='ten'", "a list of an integer"]),
    ("unknown protocol", ["protocol.name=random"], ["protocol.name='random'", "loo"]),
    ("negatives seed negative", ["protocol.candidates=sampled", "protocol.negatives_seed=-1"],
     ["protocol.negatives_seed=-1", ">= 0"]),
    ("unknown protocol key", ["+protocol.n_folds=5"], ["protocol.n_folds", "ks"]),
    ("max_len zero", ["model.max_len=0"], ["model.max_len=0", ">= 1"]),
    ("max_len not an int", ["model.max_len=long"], ["model.max_len='long'", "an integer"]),
    ("hidden negative", ["model.hidden=-8"], ["model.hidden=-8", ">= 1"]),
    ("layers zero", ["model.layers=0"], ["model.layers=0", ">= 1"]),
    ("heads do not divide hidden", ["model.heads=3"], ["model.heads=3", "model.hidden=64"]),
    ("dropout above 1", ["model.dropout=1.5"], ["model.dropout=1.5", "[0, 1)"]),
    ("caser without filters", ["model=caser", "model.horizontal_filters=0", "model.vertical_filters=0"],
     ["model.horizontal_filters=0 and model.vertical_filters=0", "at least one"]),
    ("caser filters negative", ["model=caser", "model.vertical_filters=-1"], ["model.vertical_filters=-1", ">= 0"]),
    ("unknown encoder", ["model.encoder=cnnn"], ["model.encoder='cnnn'", "attention"]),
    ("unknown objective", ["model.objective=hinge"], ["model.objective='hinge'", "ce"]),
    ("unknown model key", ["+model.hiden=32"], ["model.hiden", "hidden"]),
    ("unknown rnn cell", ["model=gru4rec", "model.cell=rnn"], ["model.cell='rnn'", "gru or lstm"]),
    ("typo in a CNN key", ["model=caser", "+model.windw=3"], ["model.windw", "window"]),
    ("kernel zero", ["model=nextitnet", "model.kernel=0"], ["model.kernel=0", ">= 1"]),
    ("dilation zero", ["model=nextitnet", "model.dilations=[1,0]"], ["model.dilations=[1, 0]", "integers >= 1"]),
    ("stride with the seq2seq head", ["model=seq2seq_rnn", "+model.stride=10"], ["model.stride=10", "head=next_item"]),
    ("init_std not positive", ["model=sasrec", "model.init_std=0"], ["model.init_std=0", "> 0"]),
    ("mask probability 1", ["model=bert4rec", "model.mask_prob=1.0"], ["model.mask_prob=1.0", "(0, 1)"]),
    ("beam size zero", ["model=seq2seq_rnn", "model.beam_size=0"], ["model.beam_size=0", ">= 1"]),
    ("model class missing", ["model._target_=benchmark.models.Nope"], ["model._target_", "Nope"]),
    ("lr NaN", ["trainer.lr=nan"], ["trainer.lr=nan", "a finite number"]),
    ("lr infinite", ["trainer.lr=inf"], ["trainer.lr=inf", "a finite number"]),
    ("grad clip infinite", ["trainer.grad_clip=inf"], ["trainer.grad_clip=inf", "a finite number"]),
    ("dropout NaN", ["model.dropout=nan"], ["model.dropout=nan", "a finite number"]),
    ("EASE l2 NaN", ["model=ease", "model.l2=nan"], ["model.l2=nan", "a finite number"]),
    ("EASE l2 infinite", ["model=ease", "model.l2=inf"], ["model.l2=inf", "a finite number"]),
    ("EASE l2 zero", ["model=ease", "model.l2=0"], ["model.l2=0", "> 0"]),
    ("ItemKNN shrink NaN", ["model=itemknn", "model.shrink=nan"], ["model.shrink=nan", "a finite number"]),
    ("ItemKNN shrink negative", ["model=itemknn", "model.shrink=-1"], ["model.shrink=-1", ">= 0"]),
    ("BPR-MF dim zero", ["model=bprmf", "model.dim=0"], ["model.dim=0", ">= 1"]),
    ("BPR-MF l2 negative", ["model=bprmf", "model.l2=-1.0"], ["model.l2=-1.0", ">= 0"]),
    ("k-core below 1", ["dataset.user_core=0"], ["dataset.user_core=0", ">= 1"]),
    ("item core negative", ["dataset.item_core=-2"], ["dataset.item_core=-2", ">= 1"]),
    ("sequences too short for loo", ["dataset.min_seq_len=2", "dataset.user_core=1"], ["dataset.min_seq_len=2", ">= 3"]),
    ("dedupe not a bool", ["dataset.dedupe=maybe"], ["dataset.dedupe='maybe'", "true or false"]),
    ("min rating not a number", ["dataset.min_rating=high"], ["dataset.min_rating='high'", "a number"]),
    ("unknown reader", ["dataset.reader=parquet"], ["dataset.reader='parquet'", "movielens"]),
    ("unknown dataset key", ["+dataset.separator=x"], ["dataset.separator", "min_seq_len"]),
    ("seed negative", ["seed=-1"], ["seed=-1", ">= 0"]),
    ("unknown top-level key", ["+seeds=3"], ["unknown key seeds", "seed"]),
]

DATA_CASES = [
    ("missing directory", None, ["nowhere"]),
    ("no ratings file", {"README.txt": b"nothing here\n"}, ["ratings.csv", "not found"]),
    ("semicolon separator", {"ratings.csv": HEADER.replace(",", ";").encode() + b"1;10;4.0;1000\n"},
     ["ratings.csv", "expected header"]),
    ("wrong columns", {"ratings.csv": b"user,item,score,time\n1,10,4.0,1000\n"}, ["ratings.csv", "expected header"]),
    ("non-UTF-8 bytes", {"ratings.csv": HEADER.encode() + b"1,10,4.0,1000\n\xff\xfe,11,4.0,1060\n"},
     ["ratings.csv", "UTF-8", "line 3"]),
    ("missing timestamp", ratings("4,10,4.0,\n"), ["ratings.csv", "timestamp", "data row 13"]),
    ("unparsable timestamp", ratings("4,10,4.0,yesterday\n"), ["ratings.csv", "'yesterday'", "data row 13"]),
    ("infinite timestamp", ratings("4,10,4.0,inf\n"), ["ratings.csv", "'inf'", "data row 13"]),
    ("too few columns", ratings("4,10\n"), ["ratings.csv", "Expected 4 columns, got 2: 4,10"]),
    ("missing item", ratings("4,,4.0,1000\n"), ["ratings.csv", "missing user or item", "data row 13"]),
    ("unparsable rating", ratings("4,10,good,1000\n"), ["ratings.csv", "'good'", "data row 13"]),
    ("zero-byte file", {"ratings.csv": b""}, ["ratings.csv", "file is empty"]),
    ("header only", {"ratings.csv": HEADER.encode()}, ["empty after filtering", "raw: 0 users"]),
    ("every user too short", {"ratings.csv": (HEADER + "1,10,4,1\n1,11,4,2\n2,10,4,1\n").encode()},
     ["empty after filtering", "k-core"]),
    ("single item", {"ratings.csv": (HEADER + "".join(f"{u},10,4,{t}\n" for u in (1, 2) for t in range(4))).encode()},
     ["single item"]),
    ("empty after rating filter", ratings(), ["empty after filtering", "rating >= 6"]),
    ("u.data without timestamps", {"u.data": b"1\t10\t4\n1\t11\t4\n"}, ["u.data", "Expected 4 columns, got 3"]),
    ("ratings.dat with commas", {"ratings.dat": b"1,10,4,1000\n"}, ["ratings.dat", "got 1: 1,10,4,1000"]),
]
EXTRA_OVERRIDES = {"empty after rating filter": ["dataset.min_rating=6"], "single item": ["dataset.dedupe=false"]}


def run_in_process(overrides: list[str], tmp: Path, capsys) -> tuple[int, str]:
    """Exit code and stderr of `seqrec OVERRIDES`, through the same function the command calls."""
    try:
        cli.run(compose_config(*overrides, tmp=tmp))
        code = 0
    except SystemExit as e:
        code = e.code
    return code, capsys.readouterr().err


def assert_one_line_error(code: int, err: str, words: list[str]) -> None:
    assert code == 2, err
    lines = err.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("seqrec: error: "), err
    for word in words:
        assert word in lines[0], f"{word!r} not in {lines[0]!r}"


@pytest.mark.parametrize("overrides, words", [c[1:] for c in CONFIG_CASES], ids=[c[0] for c in CONFIG_CASES])
def test_bad_config_fails_before_any_work(overrides, words, tmp_path, tiny_ml, capsys):
    code, err = run_in_process([f"dataset.path={tiny_ml}", *overrides], tmp_path, capsys)
    assert_one_line_error(code, err, words)
    assert not (tmp_path / "cache").exists(), "the dataset was read before the config was checked"
    assert not (tmp_path / "results").exists()


@pytest.mark.parametrize("files, words", [c[1:] for c in DATA_CASES], ids=[c[0] for c in DATA_CASES])
def test_bad_data_names_the_file_or_filter_step(request, files, words, tmp_path, capsys):
    data = tmp_path / ("nowhere" if files is None else "data")
    for name, content in (files or {}).items():
        data.mkdir(exist_ok=True)
        (data / name).write_bytes(content)
    overrides = [f"dataset.path={data}", "model=pop", "dataset.user_core=1", "dataset.item_core=1",
                 *EXTRA_OVERRIDES.get(request.node.callspec.id, [])]
    code, err = run_in_process(overrides, tmp_path, capsys)
    assert_one_line_error(code, err, words)
    assert not find_records(tmp_path / "results") and not list(tmp_path.rglob("metrics.json"))


def test_table_has_at_least_30_bad_inputs():
    assert len(CONFIG_CASES) + len(DATA_CASES) >= 30


def test_duplicate_rows_are_deduplicated_keeping_the_first(tmp_path):
    """Documented handling, not an error: dataset.dedupe=true keeps a (user, item)'s first interaction
    (exact duplicates and later repeats alike); dedupe=false keeps every row."""
    from benchmark.data.preprocess import PreprocessConfig, preprocess
    from benchmark.data.readers import read_interactions

    rows = [(1, 10, 4, 100), (1, 11, 4, 200), (1, 10, 4, 100), (1, 12, 4, 300), (1, 10, 5, 400)]
    write_movielens_csv(tmp_path, rows)
    table = read_interactions("movielens", tmp_path)
    kept = preprocess(table, PreprocessConfig(min_seq_len=1))
    assert kept.steps[-1][0].startswith("dedupe") and kept.steps[-1][3] == 3
    assert kept.item_ids[kept.sequences.items].tolist() == ["10", "11", "12"]
    assert kept.sequences.times.tolist() == [100, 200, 300]
    every = preprocess(table, PreprocessConfig(min_seq_len=1, dedupe=False))
    assert every.item_ids[every.sequences.items].tolist() == ["10", "10", "11", "12", "10"]


# A few true command-line checks: the one-line contract also holds for Hydra's own errors.
@pytest.mark.parametrize(
    "args, words",
    [
        (["trainer.lrr=1"], ["unknown key trainer.lrr", "lr, batch_size"]),
        (["model=nosuchmodel"], ["model/nosuchmodel", "sasrec", "pop"]),
        (["trainer.lr==2"], ["trainer.lr==2"]),
        (["trainer.lr=-1"], ["trainer.lr=-1", "> 0"]),
    ],
    ids=["unknown override key", "unknown model", "override syntax", "impossible value"],
)
def test_command_line_errors_are_one_line_with_exit_code_2(args, words, tmp_path):
    proc = run_cli(*args, tmp=tmp_path, check=False)
    assert_one_line_error(proc.returncode, proc.stderr, words)
    assert not (tmp_path / "results").exists() or not list((tmp_path / "results").rglob("metrics.json"))


def test_seq2seq_horizon_beyond_the_protocols_targets_is_refused():
    """A protocol that keeps k targets per user (horizon-k) cannot score a longer generated list."""
    from benchmark.config import check_combinations
    from benchmark.errors import ConfigError

    config = {"protocol": {"name": "horizon", "k": 3, "ks": [3]}, "dataset": {"min_seq_len": 8},
              "model": {"horizon": 5}, "trainer": {"valid_metric": "ndcg@3"}}
    with pytest.raises(ConfigError, match=r"model.horizon=5 .*protocol.k=3"):
        check_combinations(config)
    check_combinations({**config, "model": {"horizon": 3}})


@pytest.mark.parametrize("content", ['{"test":', "{}", "[]", '{"valid_metric": "ndcg@10", "valid": {}}'],
                         ids=["truncated", "empty object", "not an object", "no validation value"])
def test_damaged_metrics_of_a_complete_record_is_one_line_naming_the_file(content, tmp_path, tiny_ml, capsys):
    """A re-run finds the complete record and reads its metrics.json: a damaged one is named, not a traceback."""
    overrides = [f"dataset.path={tiny_ml}", "model=pop", "dataset.user_core=1", "dataset.item_core=1"]
    assert run_in_process(overrides, tmp_path, capsys)[0] == 0
    [record] = find_records(tmp_path / "results")
    (record / "metrics.json").write_text(content)
    code, err = run_in_process(overrides, tmp_path, capsys)
    assert_one_line_error(code, err, [str(record / "metrics.json"), "move the record away to re-run it"])
    assert (record / "metrics.json").read_text() == content  # the record is left as it was


def gzip_bytes(text: str) -> bytes:
    import gzip

    return gzip.compress(text.encode())


CSV_TEXT = "user,item,timestamp\n" + "".join(f"{u},{i},{100 * t}\n" for u in range(1, 40) for t, i in enumerate(range(5, 25)))
# (id, file name, content, words the message must hold): the generic csv reader on files that are not what they say
ROUGH_FILES = [
    ("corrupt gzip", "log.csv.gz", gzip_bytes(CSV_TEXT)[:12] + b"\x00" * 40 + gzip_bytes(CSV_TEXT)[52:],
     ["log.csv.gz", "cannot decompress"]),
    ("truncated gzip", "log.csv.gz", gzip_bytes(CSV_TEXT)[:400], ["log.csv.gz", "cannot decompress (truncated)"]),
    ("plain text named .gz", "log.csv.gz", CSV_TEXT.encode(), ["log.csv.gz", "cannot decompress (not a gzip file)"]),
    ("binary file as CSV", "log.csv", bytes(range(256)) * 4, ["log.csv", "not a text file"]),
    ("empty file", "log.csv", b"", ["log.csv", "file is empty"]),
    ("blank lines only", "log.csv", b"\n\n", ["log.csv", "file is empty"]),
]


@pytest.mark.parametrize("name, content, words", [c[1:] for c in ROUGH_FILES], ids=[c[0] for c in ROUGH_FILES])
def test_rough_data_files_are_one_line_without_raw_bytes(name, content, words, tmp_path, capsys):
    (tmp_path / "data").mkdir()
    (tmp_path / "data" / name).write_bytes(content)
    code, err = run_in_process(["dataset=csv", f"dataset.path={tmp_path / 'data' / name}", "model=pop"], tmp_path, capsys)
    assert_one_line_error(code, err, words)
    assert err.isascii() and "\\x" not in err and "b'" not in err  # no raw bytes, no repr of them
    assert not (tmp_path / "results").exists()


@pytest.mark.parametrize("overrides, words", [
    (["seed=4294967296"], ["seed=4294967296", "< 2^32"]),
    (["seed=-3"], ["seed=-3", ">= 0"]),
    (["dataset=csv", "dataset.timestamp_unit=minutes"], ["dataset.timestamp_unit='minutes'", "ms", "strftime"]),
], ids=["seed 2^32", "seed negative", "unknown timestamp unit"])
def test_out_of_range_values_are_refused_before_the_data_is_read(overrides, words, tmp_path, capsys):
    """The dataset path does not exist: a refusal that read the data would name the missing file instead."""
    code, err = run_in_process([*overrides, f"dataset.path={tmp_path / 'not-read'}", "model=pop"], tmp_path, capsys)
    assert_one_line_error(code, err, words)


def test_a_refused_run_leaves_no_hydra_output_folder(tiny_ml, tmp_path):
    """Hydra writes its output folder (composed config, log) before the run is checked; a refusal removes it,
    and results_dir too when that is all it held."""
    cmd = [f"dataset.path={tiny_ml}", "model=pop", "seed=-1"]
    proc = run_cli(*cmd, "hydra.run.dir=${results_dir}/.hydra/x", tmp=tmp_path, check=False)
    assert_one_line_error(proc.returncode, proc.stderr, ["seed=-1"])
    assert not (tmp_path / "results").exists()
    (tmp_path / "results" / "kept").mkdir(parents=True)  # a results_dir in use stays
    proc = run_cli(*cmd, "hydra.run.dir=${results_dir}/.hydra/x", tmp=tmp_path, check=False)
    assert proc.returncode == 2 and sorted(p.name for p in (tmp_path / "results").iterdir()) == ["kept"]
