"""Sweep machinery in-process (fast): record publishing, interruption, config presets, search
spaces, the tuning objective, the wandb logger's fallbacks, progress bars."""

from __future__ import annotations

import json
import logging
from pathlib import Path

import pandas as pd
import yaml
import pytest
from hydra import compose, initialize_config_dir
from omegaconf import OmegaConf

from benchmark import cli
from benchmark.record import find_records, is_complete, write_record
from conftest import REPO, run_cli

CONF = str(REPO / "conf")


def _record(run_dir: Path, value: float, **kwargs) -> Path:
    per_user = pd.DataFrame({"user": ["a"], "ndcg@10": [value]})
    return write_record(run_dir, {"seed": 0}, {"valid": {"ndcg@10": value}}, per_user, [], {"seed": 0}, **kwargs)


def test_publishing_keeps_the_first_record_and_removes_killed_attempts_temps(tmp_path):
    run_dir = tmp_path / "d" / "loo" / "m" / "seed0-abc"
    run_dir.parent.mkdir(parents=True)
    leftover = run_dir.parent / f".{run_dir.name}.killed.tmp"  # what a SIGKILL during a write leaves
    (leftover / "sub").mkdir(parents=True)
    (leftover / "metrics.json").write_text("{}")
    other_run = run_dir.parent / ".seed1-def.x.tmp"
    other_run.mkdir()

    _record(run_dir, 0.25)
    assert is_complete(run_dir) and not leftover.exists()
    assert other_run.exists()  # another run's temp is not this run's business
    _record(run_dir, 0.75)  # a duplicate of the same run finishing later
    assert json.loads((run_dir / "metrics.json").read_text())["valid"]["ndcg@10"] == 0.25
    assert find_records(tmp_path) == [run_dir]
    assert sorted(p.name for p in run_dir.parent.iterdir()) == [".seed1-def.x.tmp", run_dir.name]


def test_interrupt_while_publishing_leaves_nothing(tmp_path):
    run_dir = tmp_path / "seed0-abc"

    def interrupt(tmp: Path) -> None:
        assert is_complete(tmp)  # all files are written before the logger's hook
        raise KeyboardInterrupt

    with pytest.raises(KeyboardInterrupt):
        _record(run_dir, 0.5, before_publish=interrupt)
    assert list(tmp_path.iterdir()) == []


class RecordingLogger:
    def __init__(self) -> None:
        self.calls: list[str] = []

    def start(self, config, run_dir, group=None, state_dir=None):
        self.calls.append("start")

    def log_resumed(self, epochs):
        self.calls.append("resumed")

    def log_epoch(self, epoch):
        self.calls.append("epoch")

    def finish(self, record_tmp, metrics):
        self.calls.append("finish")

    def abort(self):
        self.calls.append("abort")


def _tiny_config(tiny_ml: Path, tmp_path: Path, *overrides: str) -> dict:
    with initialize_config_dir(config_dir=CONF, version_base="1.3"):
        cfg = compose("config", overrides=[
            f"results_dir={tmp_path / 'results'}", f"cache_dir={tmp_path / 'cache'}", f"dataset.path={tiny_ml}",
            "dataset.user_core=1", "dataset.item_core=1", "trainer.max_epochs=2", "trainer.patience=5",
            *overrides])
    return OmegaConf.to_container(cfg, resolve=True)


def test_ctrl_c_during_training_leaves_no_record_and_closes_the_tracker(tiny_ml, tmp_path, monkeypatch):
    from benchmark import run as run_module
    from benchmark.training import EPOCH_HOOKS, RESUME_HOOKS

    logger = RecordingLogger()
    monkeypatch.setattr(run_module, "make_logger", lambda cfg: logger)
    original = run_module.evaluate
    calls = {"n": 0}

    def evaluate_then_interrupt(*args, **kwargs):  # validation of epoch 2 gets Ctrl-C
        calls["n"] += 1
        if calls["n"] == 2:
            raise KeyboardInterrupt
        return original(*args, **kwargs)

    monkeypatch.setattr("benchmark.evaluation.evaluate", evaluate_then_interrupt)
    with pytest.raises(KeyboardInterrupt):
        run_module.run_experiment(_tiny_config(tiny_ml, tmp_path, "model=gru4rec", "model.hidden=16"))
    assert logger.calls == ["start", "epoch", "abort"]
    assert EPOCH_HOOKS == [] and RESUME_HOOKS == []
    assert not [p for p in (tmp_path / "results").rglob("*") if p.is_file()]


def test_cli_ctrl_c_exits_130_with_one_line(monkeypatch, capsys):
    def interrupted() -> None:
        raise KeyboardInterrupt

    monkeypatch.setattr(cli, "app", interrupted)
    monkeypatch.setenv("HYDRA_FULL_ERROR", "0")  # main() sets it to 1: undone after, or later CLI tests print tracebacks
    with pytest.raises(SystemExit) as exit_info:
        cli.main()
    assert exit_info.value.code == 130
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1 and "interrupted" in err and "again" in err


def test_wandb_failure_never_fails_the_run(tiny_ml, tmp_path, monkeypatch, caplog):
    wandb = pytest.importorskip("wandb")

    def unreachable(**kwargs):
        raise ConnectionError("api.wandb.ai unreachable")

    monkeypatch.setattr(wandb, "init", unreachable)
    monkeypatch.setenv("WANDB_MODE", "offline")
    from benchmark.run import run_experiment

    with caplog.at_level(logging.WARNING, logger="seqrec"):
        run_dir = run_experiment(_tiny_config(tiny_ml, tmp_path, "model=pop", "logger=wandb"))
    assert is_complete(run_dir) and not (run_dir / "wandb").exists()
    assert "run goes on without wandb" in caplog.text and "unreachable" in caplog.text


def test_wandb_falls_back_to_offline_when_online_fails(tmp_path, monkeypatch):
    wandb = pytest.importorskip("wandb")
    from benchmark.loggers import WandbLogger

    modes = []

    def init(mode, **kwargs):
        modes.append(mode)
        if mode == "online":
            raise TimeoutError("no answer from the server")
        return object()

    monkeypatch.setattr(wandb, "init", init)
    monkeypatch.setenv("WANDB_MODE", "online")
    logger = WandbLogger()
    logger.start({"model": {"name": "sasrec"}, "dataset": {"name": "d"}}, tmp_path / "d" / "seed0-x", group="g")
    assert modes == ["online", "offline"] and logger.run is not None


def test_wandb_mode_is_offline_unless_logged_in(tmp_path, monkeypatch):
    from benchmark.loggers import wandb_mode

    netrc = tmp_path / "netrc"
    netrc.write_text("machine example.org login user password x\n")
    monkeypatch.setenv("NETRC", str(netrc))
    for name in ("WANDB_MODE", "WANDB_API_KEY", "WANDB_BASE_URL"):
        monkeypatch.delenv(name, raising=False)
    assert wandb_mode() == "offline"
    netrc.write_text("machine api.wandb.ai login user password x\n")
    assert wandb_mode() == "online"
    monkeypatch.setenv("WANDB_MODE", "disabled")
    assert wandb_mode() == "disabled"


def test_search_space_parses_the_optuna_plugin_syntax():
    import optuna.distributions as d

    from benchmark.tuning import search_space

    space, fixed = search_space([
        "model.hidden=choice(32, 64)", "model.layers=range(1, 4)", "model.dropout=interval(0.0, 0.5)",
        "trainer.lr=tag(log, interval(1e-4, 1e-2))", "model.heads=choice(1, 2)",
        "dataset.path=/data/x", "model=sasrec", "model.heads=2",  # the command line fixes heads
    ])
    assert space == {
        "model.hidden": d.CategoricalDistribution([32, 64]),
        "model.layers": d.IntDistribution(1, 3),
        "model.dropout": d.FloatDistribution(0.0, 0.5),
        "trainer.lr": d.FloatDistribution(1e-4, 1e-2, log=True),
    }
    assert fixed == ["dataset.path=/data/x", "model=sasrec", "model.heads=2"]


class MetricsWithSealedTest(dict):
    """metrics.json contents whose test block cannot be read."""

    def __getitem__(self, key):
        if key == "test":
            raise AssertionError("the tuning objective read a test metric")
        return super().__getitem__(key)

    def get(self, key, default=None):
        return self[key] if key in self else default


def test_tuning_objective_is_the_validation_metric_only():
    from benchmark.tuning import validation_objective

    metrics = MetricsWithSealedTest(valid_metric="hr@10", valid={"hr@10": 0.4, "ndcg@10": 0.2}, test={"hr@10": 0.9})
    assert validation_objective(metrics) == (0.4, "hr@10")


def test_every_hparams_file_is_a_valid_search_space_for_its_model():
    from benchmark.config import validate_config
    from benchmark.tuning import search_space

    files = sorted((REPO / "conf" / "hparams").glob("*.yaml"))
    assert files
    with initialize_config_dir(config_dir=CONF, version_base="1.3"):
        for path in files:
            if not (REPO / "conf" / "model" / path.name).is_file():
                continue  # a model another branch adds
            cfg = compose("config", overrides=[f"hparams={path.stem}", f"model={path.stem}"], return_hydra_config=True)
            assert cfg.hydra.sweeper._target_.endswith("OptunaSweeper"), path.name
            params = dict(cfg.hydra.sweeper.params)
            space, _ = search_space([f"{k}={v}" for k, v in params.items()])
            assert space, path.name
            for key in params:
                assert OmegaConf.select(cfg, key, throw_on_missing=False) is not None, f"{path.name}: {key}"
            # Every point of the space is a config the model accepts (an int key needs an int distribution).
            for end in ("low", "high"):
                point = [f"{k}={getattr(dist, end, None) if hasattr(dist, end) else dist.choices[-1]}" for k, dist in space.items()]
                config = OmegaConf.to_container(compose("config", overrides=[f"model={path.stem}", *point]), resolve=True)
                validate_config(config)



@pytest.mark.parametrize("experiment", ["reference", "reproduce_s3rec"])
def test_a_search_space_keeps_its_trainer_inside_an_experiment_that_names_another(experiment):
    # Both name trainer=default; GRU4Rec's official space searches Adagrad's lr and momentum, which
    # under Adam would be a different (and far too large) search.
    with initialize_config_dir(config_dir=CONF, version_base="1.3"):
        plain = compose("config", overrides=[f"experiment={experiment}", "model=gru4rec_official"])
        tuned = compose("config", overrides=["hparams=gru4rec_official", f"experiment={experiment}",
                                             "model=gru4rec_official"], return_hydra_config=True)
    assert plain.trainer.optimizer == "adam"
    assert tuned.trainer.optimizer == "adagrad" and tuned.trainer.grad_clip is None
    assert "trainer.momentum" in tuned.hydra.sweeper.params

PAPER_MODELS = ("pop", "itemknn", "bprmf", "ease", "gru4rec", "caser", "nextitnet", "sasrec", "bert4rec",
                "seq2seq_rnn", "seq2seq_cnn", "seq2seq_attention")
PAPER_DATASETS = ("news", "movie", "music", "product")


def test_paper_experiment_is_every_model_on_every_domain_over_five_seeds():
    with initialize_config_dir(config_dir=CONF, version_base="1.3"):
        cfg = compose("config", overrides=["experiment=paper"], return_hydra_config=True)
        params = cfg.hydra.sweeper.params
        assert str(cfg.hydra.mode) == "RunMode.MULTIRUN"
        assert params.seed.split(",") == ["0", "1", "2", "3", "4"]
        assert set(params.model.split(",")) == set(PAPER_MODELS)
        assert set(params.dataset.split(",")) == set(PAPER_DATASETS)
        missing = [f"{group}/{name}" for group, names in (("model", PAPER_MODELS), ("dataset", PAPER_DATASETS))
                   for name in names if not (REPO / "conf" / group / f"{name}.yaml").is_file()]
        for model in PAPER_MODELS:  # every run that can be composed today composes
            for dataset in PAPER_DATASETS:
                if f"model/{model}" in missing or f"dataset/{dataset}" in missing:
                    continue
                job = compose("config", overrides=["experiment=paper", f"model={model}", f"dataset={dataset}"])
                assert job.model.name and job.dataset.name
    if missing:
        pytest.skip(f"presets not on this branch yet: {', '.join(missing)}")


def test_slurm_preset_makes_an_array_job_with_requeue(tmp_path):
    from submitit.slurm.slurm import SlurmExecutor, _make_sbatch_string

    with initialize_config_dir(config_dir=CONF, version_base="1.3"):
        cfg = compose("config", overrides=["hydra/launcher=slurm", "hydra.launcher.partition=gpu"],
                      return_hydra_config=True)
    params = OmegaConf.to_container(cfg.hydra.launcher)
    for key in ("_target_", "submitit_folder", "max_num_timeout", "name"):  # executor-level, not sbatch
        params.pop(key)
    # What hydra's submitit launcher and submitit's AutoExecutor do with the keys: rename to sbatch's.
    renames = SlurmExecutor._equivalence_dict()
    sbatch = _make_sbatch_string(command="run", folder=tmp_path, map_count=240, **{renames.get(k, k): v for k, v in params.items()})
    for line in ("--partition=gpu", "--time=240", "--cpus-per-task=4", "--gpus-per-node=1", "--mem=32",
                 "--array=0-239%64", "--signal=USR2@120", "#SBATCH --requeue"):
        assert line in sbatch, line
    assert cfg.hydra.launcher.max_num_timeout > 0


def test_progress_bars_only_on_a_terminal(monkeypatch):
    from benchmark import progress

    monkeypatch.delenv(progress.ENV, raising=False)
    monkeypatch.setattr("sys.stderr.isatty", lambda: False, raising=False)
    items = [1, 2, 3]
    assert progress.progress(items, 3, "epoch 1") is items
    monkeypatch.setenv(progress.ENV, "1")
    bar = progress.progress(items, 3, "epoch 1")
    assert bar is not items and list(bar) == items


def test_optuna_sweeper_batches_trials_marks_failures_and_writes_the_best(tmp_path):
    from hydra.core.utils import JobReturn, JobStatus

    from benchmark.tuning import RunResult
    from hydra_plugins.seqrec_optuna.optuna_sweeper import OptunaSweeper

    choices = OmegaConf.create({"hydra": {"runtime": {"choices": {"model": "sasrec", "dataset": "d", "hydra/launcher": "basic"}}}})
    batches = []

    def launch(batch, initial_job_idx):
        batches.append((initial_job_idx, [list(overrides) for overrides in batch]))
        returns = []
        for overrides in batch:
            params = dict(o.split("=", 1) for o in overrides)
            hidden = int(params["model.hidden"])
            if hidden == 32:  # e.g. a diverged run
                returns.append(JobReturn(status=JobStatus.FAILED, _return_value=RuntimeError("loss became nan")))
                continue
            run_dir = tmp_path / "results" / f"h{hidden}-{len(returns)}-{initial_job_idx}"
            run_dir.mkdir(parents=True)
            (run_dir / "config.yaml").write_text(f"model: {{name: sasrec, hidden: {hidden}}}\ntrainer: {{lr: 0.001}}\n")
            returns.append(JobReturn(status=JobStatus.COMPLETED, hydra_cfg=choices,
                                     _return_value=RunResult(str(run_dir), hidden / 100, "ndcg@10")))
        return returns

    best_file = tmp_path / "tuned" / "experiment" / "sasrec-d.yaml"
    sweeper = OptunaSweeper(params={"model.hidden": "choice(8, 16, 32)"}, n_trials=6, n_jobs=4, best_config=str(best_file))
    sweeper.config = OmegaConf.create({"hydra": {"sweep": {"dir": str(tmp_path / "sweep")}}})
    sweeper.launcher = type("FakeLauncher", (), {"launch": staticmethod(launch)})()
    sweeper.sweep(["model=sasrec", "trainer.max_epochs=1"])

    assert [(start, len(batch)) for start, batch in batches] == [(0, 4), (4, 2)]
    assert all(overrides[:2] == ["model=sasrec", "trainer.max_epochs=1"] for _, b in batches for overrides in b)
    trials = pd.read_csv(tmp_path / "sweep" / "optuna_trials.csv")
    assert len(trials) == 6
    assert (trials["state"] == "failed").sum() == (trials["model.hidden"] == 32).sum()
    done = trials[trials["state"] == "complete"]
    assert (done["ndcg@10"] == done["model.hidden"] / 100).all()
    written = yaml.safe_load(best_file.read_text())
    assert written["model"]["hidden"] == done["model.hidden"].max()
    assert written["defaults"] == [{"override /dataset": "d"}, {"override /model": "sasrec"}]
    assert written["hydra"]["sweeper"]["params"]["seed"] == "0,1,2,3,4"
    assert f"seqrec --config-dir {tmp_path / 'tuned'} experiment=sasrec-d" in best_file.read_text()


def test_a_tuned_file_in_the_packages_experiment_group_is_rerun_by_its_group_name(tmp_path):
    import benchmark
    from benchmark.tuning import rerun_command

    own = Path(benchmark.__file__).parent / "conf" / "experiment" / "reference" / "ease-x-loo.yaml"
    assert rerun_command(own) == "seqrec experiment=reference/ease-x-loo"  # no machine path in a committed file
    assert rerun_command(tmp_path / "e" / "f.yaml") == f"seqrec --config-dir {tmp_path} experiment=f"


def test_optuna_relaunch_on_a_stored_study_adds_new_trials_and_keeps_the_study_best(tmp_path):
    import optuna
    from hydra.core.utils import JobReturn, JobStatus

    from benchmark.tuning import RunResult
    from hydra_plugins.seqrec_optuna.optuna_sweeper import OptunaSweeper

    choices = OmegaConf.create({"hydra": {"runtime": {"choices": {"model": "sasrec", "dataset": "d"}}}})
    storage, scale = f"sqlite:///{tmp_path / 'optuna.db'}", {"valid": 1.0}

    def launch(batch, initial_job_idx):
        returns = []
        for overrides in batch:
            lr = float(dict(o.split("=", 1) for o in overrides)["trainer.lr"])
            run_dir = tmp_path / "results" / f"lr{lr}"
            run_dir.mkdir(parents=True, exist_ok=True)
            (run_dir / "config.yaml").write_text(yaml.safe_dump({"model": {"name": "sasrec"}, "trainer": {"lr": lr}}))
            returns.append(JobReturn(status=JobStatus.COMPLETED, hydra_cfg=choices,
                                     _return_value=RunResult(str(run_dir), scale["valid"] * lr, "ndcg@10")))
        return returns

    best_file = tmp_path / "tuned" / "experiment" / "sasrec-d.yaml"

    def sweep(name: str) -> pd.DataFrame:
        sweeper = OptunaSweeper(params={"trainer.lr": "interval(0.001, 0.1)"}, n_trials=3, seed=0,
                                study_name="s", storage=storage, best_config=str(best_file))
        sweeper.config = OmegaConf.create({"hydra": {"sweep": {"dir": str(tmp_path / name)}}})
        sweeper.launcher = type("FakeLauncher", (), {"launch": staticmethod(launch)})()
        sweeper.sweep(["model=sasrec"])
        return pd.read_csv(tmp_path / name / "optuna_trials.csv")

    first = sweep("sweep1")
    scale["valid"] = 0.01  # every trial of the relaunch is worse than the first launch's best
    second = sweep("sweep2")
    assert list(second["trial"]) == [3, 4, 5]
    assert set(second["trainer.lr"]).isdisjoint(first["trainer.lr"]), "the relaunch re-proposed the same points"
    study = optuna.load_study(study_name="s", storage=storage)
    assert len(study.trials) == 6 and study.best_value == pytest.approx(first["ndcg@10"].max())
    written = yaml.safe_load(best_file.read_text())
    assert written["trainer"]["lr"] == pytest.approx(first["trainer.lr"].max())  # the study's best, from launch 1
    assert f"= {study.best_value:.6g}" in best_file.read_text().splitlines()[1]


def test_tuning_keeps_one_study_and_one_best_config_per_protocol(tmp_path):
    """Tuning the same model on loo and on horizon must not share a study or overwrite one best file."""
    names = {}
    for protocol in ("loo", "horizon"):
        with initialize_config_dir(config_dir=CONF, version_base="1.3"):
            cfg = compose("config", return_hydra_config=True,
                          overrides=["hparams=sasrec", "model=sasrec", f"protocol={protocol}", f"results_dir={tmp_path}"])
        names[protocol] = (cfg.hydra.sweeper.study_name, cfg.hydra.sweeper.best_config)
    assert names["loo"][0] != names["horizon"][0] and names["loo"][1] != names["horizon"][1]
    assert names["horizon"][1].endswith("/tuned/experiment/sasrec-ml-latest-small-horizon.yaml")


@pytest.mark.parametrize("setting, words", [
    ("hydra.sweeper.n_trials=0", ["hydra.sweeper.n_trials=0", "an integer >= 1"]),
    ("hydra.sweeper.n_trials=-3", ["hydra.sweeper.n_trials=-3", "an integer >= 1"]),
    ("hydra.sweeper.n_jobs=0", ["hydra.sweeper.n_jobs=0", "an integer >= 1"]),
    ("hydra.sweeper.direction=foo", ["hydra.sweeper.direction='foo'", "maximize or minimize"]),
    ("hydra.sweeper.rerun_seeds=[]", ["hydra.sweeper.rerun_seeds=[]", "non-empty list of integers >= 0"]),
    ("hydra.sweeper.rerun_seeds=[0,-1]", ["hydra.sweeper.rerun_seeds=[0, -1]", "non-empty list of integers >= 0"]),
], ids=["no trials", "negative trials", "no jobs", "unknown direction", "no rerun seeds", "negative rerun seed"])
def test_impossible_sweeper_settings_fail_with_one_line_before_any_trial(setting, words, tiny_ml, tmp_path):
    """n_trials=0 ended in an IndexError, direction=foo in optuna's ValueError, rerun_seeds=[] in a
    best config with `seed: ''` that cannot run."""
    proc = run_cli("hparams=itemknn", "model=itemknn", f"dataset.path={tiny_ml}", "dataset.user_core=1",
                   "dataset.item_core=1", "hydra.sweeper.n_trials=1", f"hydra.sweep.dir={tmp_path / 'sweep'}", setting,
                   tmp=tmp_path, check=False)
    assert proc.returncode == 2, proc.stderr
    lines = proc.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("seqrec: error: "), proc.stderr
    for word in words:
        assert word in lines[0], f"{word!r} not in {lines[0]!r}"
    assert not list(tmp_path.rglob("metrics.json")) and not (tmp_path / "results" / "tuned").exists()
    assert not (tmp_path / "sweep" / "optuna_trials.csv").exists()
