"""One experiment: (dataset, protocol, model, seed) -> a run record on disk."""

from __future__ import annotations

import dataclasses
import logging
import os
import random
import shutil
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import torch
from hydra.errors import InstantiationException
from hydra.utils import instantiate
from omegaconf import DictConfig, OmegaConf

from benchmark.config import TrainerConfig, validate_config
from benchmark.data.dataset import DatasetSpec, PreparedSplit, dataset_dir, files_hash, named_by_file, prepare_split
from benchmark.candidates import NEGATIVES_FILE, Candidates, negatives_frame, sample_negatives
from benchmark.data.split import EvalSet, SplitData, time_text
from benchmark.errors import BenchmarkError, ConfigError, DataError
from benchmark.evaluation import LIST_PROTOCOLS, EvalResult, evaluate
from benchmark.loggers import RunLogger, make_logger
from benchmark.models.base import Recommender
from benchmark.provenance import UNKNOWN, CodeVersion, code_version
from benchmark.models.persist import save_model
from benchmark.record import MODEL_FILE, config_hash, environment, is_complete, read_metrics, run_dir_for, write_record
from benchmark.refit import RefitRecord, chosen_epochs, refit_trainer
from benchmark.training import CUT_HOOKS, EPOCH_HOOKS, RESUME_HOOKS
from benchmark.tuning import job_result

log = logging.getLogger("seqrec")
TIE_POLICY = {False: "ties count against the target", True: "lists from recommend(); score ties go to the lower item id"}
# torch's thread count before any run: every run starts from it, so runs of one sweep process never
# inherit another's trainer.num_threads.
DEFAULT_THREADS = torch.get_num_threads()


def seed_everything(seed: int, deterministic: bool = True) -> None:
    """Seeds every RNG; with ``deterministic``, torch uses deterministic kernels (identical reruns)."""
    random.seed(seed)
    np.random.seed(seed)
    torch.manual_seed(seed)
    if deterministic:
        os.environ.setdefault("CUBLAS_WORKSPACE_CONFIG", ":4096:8")  # required for deterministic cuBLAS
    # warn_only: an op without a deterministic kernel warns instead of failing the run.
    if "torch._inductor.config" in sys.modules:  # torch.compile in use: set the compiler's flag too
        torch.use_deterministic_algorithms(deterministic, warn_only=True)
    else:  # the same switch without importing the compiler stack (seconds per process)
        torch._C._set_deterministic_algorithms(deterministic, warn_only=True)


def usable_cores() -> int:
    """The cores this process may run on: its CPU affinity (a SLURM allocation, taskset, a container's
    cpuset), not the machine's count."""
    try:
        return len(os.sched_getaffinity(0))
    except AttributeError:  # pragma: no cover - macOS, Windows
        return os.cpu_count() or 1


def launcher_setting(key: str) -> Any:
    """A key of the Hydra launcher this run was launched by (None outside Hydra or when it lacks it)."""
    from hydra.core.hydra_config import HydraConfig

    return OmegaConf.select(HydraConfig.get(), f"launcher.{key}", default=None) if HydraConfig.initialized() else None


def default_threads() -> int:
    """torch threads of a run with trainer.num_threads=null: the usable cores shared among the runs the
    launcher starts beside it on this machine (joblib's n_jobs; -1 = one per core), at least 1, and no
    more than OMP_NUM_THREADS when that is set. With more busy threads than cores, OpenMP threads
    waiting at barriers make small training steps many times slower."""
    cores = usable_cores()
    n_jobs = launcher_setting("n_jobs")
    parallel = 1
    if isinstance(n_jobs, int) and n_jobs != 1:
        parallel = min(n_jobs, cores) if n_jobs > 0 else max(1, cores + 1 + n_jobs)
    threads = max(1, cores // parallel)
    omp = os.environ.get("OMP_NUM_THREADS", "")
    return min(threads, int(omp)) if omp.isdigit() and int(omp) > 0 else threads


# A SLURM job's training stops this long before the job's time limit, so that testing the best
# weights and writing the record fit in the time left: 10% of the job's time, at least 10 minutes.
SLURM_MARGIN = (0.1, 10.0)


def time_limit_minutes(trainer: TrainerConfig) -> float | None:
    """trainer.time_limit, or under the SLURM launcher preset (submitit) its timeout_min minus a margin."""
    if trainer.time_limit is not None:
        return trainer.time_limit
    timeout, target = launcher_setting("timeout_min"), str(launcher_setting("_target_") or "")
    if not isinstance(timeout, (int, float)) or not target.endswith("SlurmLauncher"):
        return None
    margin = max(SLURM_MARGIN[0] * timeout, SLURM_MARGIN[1])
    return timeout - margin if timeout > margin else timeout / 2


def build_model(model_cfg: dict[str, Any]) -> Recommender:
    """Instantiates the model (hyper-parameters only; state is created in fit), unwrapping Hydra's
    wrapper around a constructor's ConfigError."""
    try:
        return instantiate(model_cfg, _convert_="all")
    except InstantiationException as e:
        cause = e.__cause__
        if isinstance(cause, BenchmarkError):
            raise cause from None
        raise ConfigError(f"model {model_cfg.get('name')!r} cannot be built: {cause or e}") from None


def check_writable_dir(key: str, value: str | os.PathLike) -> None:
    """Refuses a directory that cannot be created or written before any work, without creating
    anything (a refused run leaves no trace): its nearest existing ancestor must be a writable folder."""
    path = existing = Path(value)
    while not existing.exists() and existing != existing.parent:
        existing = existing.parent
    if not existing.is_dir():
        where = "is not a directory" if existing == path else f"cannot be created: {existing} is not a directory"
        raise ConfigError(f"{key}={value} {where}")
    try:  # a real write: permission bits say nothing for root, read-only mounts or /proc
        tempfile.TemporaryFile(dir=existing).close()
    except OSError as e:
        raise ConfigError(f"{key}={value} is not writable: cannot write in {existing} ({e.strerror or e})") from None


def check_same_data(run_dir: Path, config: dict[str, Any]) -> None:
    """A complete record stands in for a run only on the data it was computed from: a dataset changed
    in place (same path, same config) would otherwise be reported with the old data's results."""
    spec = DatasetSpec.from_dict(config["dataset"])
    directory = dataset_dir(spec)
    if not directory.exists():  # nothing to compare with (e.g. the data moved away): the record stands
        return
    recorded = read_metrics(run_dir).get("dataset_hash")
    current = files_hash(directory, spec.options.get("file"))
    if recorded and recorded != current:
        raise DataError(f"{run_dir} is a complete record of this configuration, computed from other data than "
                        f"{directory} holds now (dataset hash {recorded[:12]}, now {current[:12]}); move the record "
                        "away to re-run it, or set another results_dir")


def check_same_code(run_dir: Path, current: str, reuse: str) -> None:
    """A complete record stands in for a run only if the same code made it (or with reuse=any_code):
    after a model file is edited, a relaunch must not silently mix old results into the table."""
    recorded = read_metrics(run_dir).get("code_hash") or UNKNOWN
    if recorded == current:
        return
    made_by = ("code of unknown version (recorded before code hashes)" if recorded == UNKNOWN
               else f"other code (code hash {recorded[:12]}, now {current[:12]})")
    if reuse == "any_code":
        log.warning("reusing %s, made by %s (reuse=any_code)", run_dir, made_by)
        return
    raise ConfigError(f"{run_dir} is a complete record of this configuration made by {made_by}; "
                      "rerun=true runs it again and replaces the record, reuse=any_code keeps it")


def checkpoint_dir_for(run_dir: Path) -> Path:
    """Hidden sibling of the run record (ignored by find_records), removed once the record exists."""
    return run_dir.parent / f".{run_dir.name}.ckpt"


def checkpoint_for(checkpoints: Path, split_key: str) -> Path:
    """The checkpoint of this split: named by its content hash, so a relaunch on changed data does
    not resume weights trained on the old data. Checkpoints of other data (and the state kept beside
    them, e.g. a tracker's run id) are discarded: that attempt is over."""
    path = checkpoints / f"last-{split_key}.pt"
    others = [p for p in checkpoints.glob("last*.pt") if p != path]
    if others:
        log.warning("discarding the checkpoint %s: it was trained on other data (the split changed)", others[0])
        shutil.rmtree(checkpoints, ignore_errors=True)
    return path


def out_of_memory(stage: str, keys: dict[str, int], error: BaseException | None = None) -> BenchmarkError:
    lower = " or ".join(f"{k} (now {v})" for k, v in keys.items())
    where = "GPU memory" if error is None or isinstance(error, torch.OutOfMemoryError) else "memory"
    return BenchmarkError(f"out of {where} during {stage}; lower {lower}")


def is_out_of_memory(error: BaseException) -> bool:
    """CUDA's OutOfMemoryError, and the CPU allocator's failure (a RuntimeError, or Python's MemoryError)."""
    return isinstance(error, (torch.OutOfMemoryError, MemoryError)) or (
        isinstance(error, RuntimeError) and "can't allocate memory" in str(error))


# Model sizes that set how much memory a model needs, named when it runs out (those the config has).
SIZE_KEYS = ("hidden", "max_len", "layers", "dim", "max_items")


def run_config(cfg: DictConfig | dict[str, Any]) -> dict[str, Any]:
    """The composed config as a run sees it (resolved, no hydra node, generic formats named after their file)."""
    config = OmegaConf.to_container(cfg, resolve=True) if isinstance(cfg, DictConfig) else dict(cfg)
    config.pop("hydra", None)
    if isinstance(config.get("dataset"), dict):  # the generic formats are named after their file
        config["dataset"] = named_by_file(config["dataset"])
    return config


def run_experiment(cfg: DictConfig | dict[str, Any]) -> Path:
    """Runs one experiment and returns its record directory (skips work when already complete)."""
    config = run_config(cfg)
    validate_config(config)  # before any work: a bad key fails here with one line
    run_dir = run_dir_for(config["results_dir"], config)
    code = code_version(config)
    if is_complete(run_dir) and not config.get("rerun"):
        check_same_data(run_dir, config)
        job_result(run_dir)  # a damaged metrics.json is refused before the record stands in for the run
        check_same_code(run_dir, code.code_hash, config.get("reuse", "same_code"))
        if (config.get("trainer") or {}).get("save_model") and not (run_dir / MODEL_FILE).is_file():
            log.warning("%s is complete but was run without trainer.save_model: it has no %s; move it away to re-run "
                        "it with the model saved", run_dir, MODEL_FILE)
        # A run killed between publishing its record and removing its checkpoints left them behind.
        shutil.rmtree(checkpoint_dir_for(run_dir), ignore_errors=True)
        cut = read_metrics(run_dir).get("cut_by_time_limit")
        log.info("skip %s: complete record exists%s", run_dir,
                 " (its training was cut by trainer.time_limit; rerun=true runs it again)" if cut else "")
        return run_dir
    if config.get("rerun"):  # a fresh run: no checkpoint of an earlier attempt is resumed
        shutil.rmtree(checkpoint_dir_for(run_dir), ignore_errors=True)
    check_writable_dir("results_dir", config["results_dir"])  # not after training, losing the result
    if config.get("cache_dir"):
        check_writable_dir("cache_dir", config["cache_dir"])
    logger = make_logger(config.get("logger"))
    try:
        return _run(config, run_dir, logger, code)
    except BaseException:  # a failed or interrupted run: close the tracker's run as failed
        logger.abort()
        raise
    finally:  # the next run of an in-process sweep starts from the default again
        torch.set_num_threads(DEFAULT_THREADS)


def overridden_keys(group: str) -> set[str]:
    """Keys of ``group`` this run sets on the command line or through its sweep (Hydra's task
    overrides), e.g. {"layers"} for ``model.layers=3``; empty outside Hydra."""
    from hydra.core.hydra_config import HydraConfig

    if not HydraConfig.initialized():
        return set()
    keys = (o.split("=", 1)[0].lstrip("+~") for o in HydraConfig.get().overrides.task)
    return {k[len(group) + 1:] for k in keys if k.startswith(group + ".")}


def sweep_name() -> str | None:
    """The multirun's directory name (the tracker's group), or None outside a Hydra sweep."""
    from hydra.core.hydra_config import HydraConfig

    if not HydraConfig.initialized() or str(HydraConfig.get().mode) != "RunMode.MULTIRUN":
        return None
    return Path(HydraConfig.get().sweep.dir).name


def prepare_run_split(config: dict[str, Any], refit: bool = False) -> tuple[PreparedSplit, tuple[int, ...], Candidates]:
    """The split a run's (or a record's) config trains and validates on, with its metric cut-offs and candidate
    set; ``refit``: protocol.refit's split instead (trained before the test cut: the one a refit run tests on)."""
    protocol = dict(config["protocol"])
    ks = tuple(protocol.pop("ks", (5, 10, 20)))
    protocol.pop("refit", None)  # the run's choice, not an option of the split function
    candidates = Candidates.pop_from(protocol)
    prepared = prepare_split(DatasetSpec.from_dict(config["dataset"]), protocol.pop("name"), protocol,
                             cache_dir=config.get("cache_dir"), seed=int(config.get("seed", 0)), refit=refit)
    return prepared, ks, candidates


def fit_model(model: Recommender, split: SplitData, trainer: TrainerConfig, config: dict[str, Any]) -> list:
    """``model.fit``, with running out of memory turned into one line naming the sizes to lower."""
    try:
        return model.fit(split, trainer)
    except (RuntimeError, MemoryError) as e:  # torch.OutOfMemoryError is a RuntimeError
        if not is_out_of_memory(e):
            raise
        sizes = {f"model.{k}": config["model"][k] for k in SIZE_KEYS if isinstance(config["model"].get(k), int)}
        raise out_of_memory("training", {**({} if isinstance(e, torch.OutOfMemoryError) else sizes),
                                         "trainer.batch_size": trainer.batch_size,
                                         "trainer.eval_batch_size": trainer.eval_batch_size}, e) from None


def refit_model(config: dict[str, Any], trainer: TrainerConfig, selection: PreparedSplit, epochs: int | None,
                candidates: Candidates, spent_minutes: float, cut: list[int],
                ) -> tuple[Recommender, PreparedSplit, np.ndarray | None, RefitRecord]:
    """protocol.refit's second fit: a fresh model (same initialisation) on every interaction before the test cut,
    for the ``epochs`` validation chose on ``selection``; its split, its test negatives and the record's block."""
    prepared = prepare_run_split(config, refit=True)[0]
    split = prepared.split
    log.info("refit: %s on every interaction before the test cut (%s training interactions, %s users, %s items)",
             f"{epochs} epochs (chosen on validation)" if epochs else "fitted once", f"{len(split.train.items):,}",
             f"{split.n_users:,}", f"{split.n_items:,}")
    negatives = None
    if candidates.sampled:  # drawn from the refit's catalogue, as the test ranks among it
        negatives = sample_negatives(split, candidates.n_negatives, candidates.sampler, candidates.negatives_seed)
    seed_everything(int(config["seed"]), trainer.deterministic)  # the same initialisation as the first fit
    model = build_model(config["model"])
    start = time.perf_counter()
    CUT_HOOKS.append(cut.append)
    try:
        history = fit_model(model, split, refit_trainer(trainer, epochs, spent_minutes), config)
    finally:
        CUT_HOOKS.remove(cut.append)
    record = RefitRecord(
        epochs=epochs, epochs_trained=len(history), train_interactions=int(len(split.train.items)),
        n_users=split.n_users, n_items=split.n_items, train_seconds=time.perf_counter() - start,
        losses=[h.loss for h in history], selection_split_key=selection.split_key,
        selection_n_users=selection.split.n_users, selection_n_items=selection.split.n_items,
        selection_train_interactions=int(len(selection.split.train.items)))
    return model, prepared, negatives, record


def _run(config: dict[str, Any], run_dir: Path, logger: RunLogger, code: CodeVersion) -> Path:
    seed = int(config["seed"])
    spec = DatasetSpec.from_dict(config["dataset"])
    trainer = TrainerConfig.from_dict({**config.get("trainer", {}), "seed": seed, "mask_history": spec.mask_history})
    checkpoints = checkpoint_dir_for(run_dir)
    torch.set_num_threads(trainer.num_threads or default_threads())  # run_experiment restores it after the run
    trainer = dataclasses.replace(trainer, time_limit=time_limit_minutes(trainer))
    seed_everything(seed, trainer.deterministic)
    model = build_model(config["model"])
    overridden = overridden_keys("model")
    for key, why in model.ignored_settings().items():
        if key in overridden:  # a preset's placeholder is no user's setting
            log.warning("model.%s=%r has no effect %s", key, config["model"].get(key), why)

    prepared, ks, candidates = prepare_run_split(config)
    split = prepared.split
    # What preprocessing removed, in the run's log: users too short for the protocol are dropped there.
    log.info("%s: %s", spec.name, " -> ".join(f"{step} {users:,} users, {items:,} items, {rows:,} rows"
                                             for step, users, items, rows in prepared.steps))
    if split.temporal is not None:
        log.info("%s", temporal_text(split))
    if split.session is not None:
        log.info("%s", session_text(split))
    if spec.shuffle_order:
        log.info("order control: training sequences and evaluation histories shuffled (seed %d); targets unchanged", seed)
    if trainer.resume:
        trainer = dataclasses.replace(trainer, checkpoint_path=str(checkpoint_for(checkpoints, prepared.split_key)))
    negatives = None
    if candidates.sampled:
        negatives = sample_negatives(split, candidates.n_negatives, candidates.sampler, candidates.negatives_seed)

    logger.start(config, run_dir, group=sweep_name(), state_dir=checkpoints if trainer.resume else None)
    start = time.perf_counter()
    resumed: list = []  # epochs restored from a checkpoint, trained by earlier attempts
    cut: list[int] = []  # complete epochs, when trainer.time_limit ended training
    hooks = [(EPOCH_HOOKS, logger.log_epoch), (RESUME_HOOKS, logger.log_resumed), (RESUME_HOOKS, resumed.extend),
             (CUT_HOOKS, cut.append)]
    for hook_list, hook in hooks:
        hook_list.append(hook)
    try:
        history = fit_model(model, split, trainer, config)
    finally:
        for hook_list, hook in hooks:
            hook_list.remove(hook)
    # Training time of all attempts: this one's plus the epochs that earlier (resumed) ones trained.
    train_seconds = time.perf_counter() - start + sum(h.seconds for h in resumed)

    def evaluate_on(fitted: Recommender, data: SplitData, eval_set: EvalSet, drawn: np.ndarray | None) -> EvalResult:
        try:
            return evaluate(fitted, data, eval_set, ks=ks, batch_size=trainer.eval_batch_size,
                            mask_history=spec.mask_history, negatives=drawn)
        except (RuntimeError, MemoryError) as e:
            if not is_out_of_memory(e):
                raise
            raise out_of_memory("evaluation", {"trainer.eval_batch_size": trainer.eval_batch_size}, e) from None

    refit = None
    if config["protocol"].get("refit"):
        # Validation (model selection) is the first fit's; the test is the refit model's, on the refit's split.
        valid = evaluate_on(model, split, split.valid, negatives)
        del model  # the refit starts from scratch; the first model's memory is not needed beside it
        model, prepared, negatives, refit = refit_model(config, trainer, prepared, chosen_epochs(history), candidates,
                                                         spent_minutes=(time.perf_counter() - start) / 60, cut=cut)
        split = prepared.split
        train_seconds += refit.train_seconds
        result = evaluate_on(model, split, split.test, negatives)
    else:
        result, valid = evaluate_on(model, split, split.test, negatives), evaluate_on(model, split, split.valid, negatives)

    per_user = per_user_frame(split, result)

    metrics = {
        "test": result.aggregate,
        "valid": valid.aggregate,
        "valid_best": max((h.valid_metric for h in history), default=valid.aggregate.get(trainer.valid_metric)),
        "valid_metric": trainer.valid_metric,
        "train_seconds": train_seconds,
        "eval_seconds": result.seconds,
        "ms_per_user": 1000 * result.seconds / max(len(result.users), 1),
        "epochs": len(history),
        "cut_by_time_limit": bool(cut),  # training ended at trainer.time_limit, not by early stopping
        "time_limit_min": trainer.time_limit,
        "trains": model.trains,  # False: the trainer section is not part of the run's identity
        "n_params": model.n_params(),
        "n_users": split.n_users,
        "n_items": split.n_items,
        # after preprocessing (the session protocol: the clicks of its training window and test sessions)
        "n_interactions": split.session.clicks if split.session is not None else
        int(prepared.steps[-1][3]) if prepared.steps else None,
        "n_pairs": split.n_pairs(),  # distinct (user, item) pairs after preprocessing: the density's numerator
        "n_evaluated": len(result.users),
        "protocol": split.protocol,
        "candidates": candidates.candidates,  # "full" or "sampled" (then sampled_* metrics exist)
        **({"sampled_candidates": candidates.describe()} if candidates.sampled else {}),
        "tie_policy": TIE_POLICY[split.protocol in LIST_PROTOCOLS],
        "mask_history": spec.mask_history,
        "dataset": spec.name,
        "model": model.name,
        "seed": seed,
        "config_hash": config_hash(config),
        "dataset_hash": prepared.dataset_hash,
        "split_key": prepared.split_key,
        "code_hash": code.code_hash,  # which code made it (env.json has the commit and the dirty flag too)
        "shuffle_order": spec.shuffle_order,
        **({"temporal": dataclasses.asdict(split.temporal)} if split.temporal is not None else {}),
        **({"refit": refit.as_dict()} if refit is not None else {}),
        **({"session": {k: v for k, v in dataclasses.asdict(split.session).items() if k != "steps"}}
           if split.session is not None else {}),
        **model.extra_metrics(),
    }
    env = environment(seed, prepared.dataset_hash, str(model.device), code)
    extra = {NEGATIVES_FILE: negatives_frame(split, negatives)} if negatives is not None else {}
    model_file = {MODEL_FILE: lambda path: save_model(model, path)} if trainer.save_model else {}
    write_record(run_dir, config, metrics, per_user, history, env, before_publish=lambda tmp: logger.finish(tmp, metrics),
                 extra_tables=extra, extra_files=model_file, replace=bool(config.get("rerun")))
    shutil.rmtree(checkpoints, ignore_errors=True)
    hit = "hr@10" if "hr@10" in result.aggregate else "recall@10"
    log.info(
        "done %s seed=%d on %s: valid %s=%.4f | test ndcg@10=%.4f %s=%.4f | %d epochs%s, train %.1fs -> %s",
        model.name, seed, spec.name, trainer.valid_metric, valid.aggregate.get(trainer.valid_metric, float("nan")),
        result.aggregate.get("ndcg@10", float("nan")), hit, result.aggregate.get(hit, float("nan")),
        len(history), f" + {refit.epochs_trained} refit" if refit is not None else "", train_seconds, run_dir,
    )
    return run_dir


def temporal_text(split: SplitData) -> str:
    """The temporal protocol's cuts and the users it evaluates and leaves out, for the run's log."""
    info = split.temporal
    return (f"temporal cuts: training before {time_text(info.valid_cut)}, test from {time_text(info.test_cut)}; "
            f"{len(split.valid):,} validation and {len(split.test):,} test users; not evaluated at test: "
            f"{info.no_target:,} users without an interaction after the test cut, {info.no_history:,} users with one "
            "but without training history")


def session_text(split: SplitData) -> str:
    """The session protocol's split in the published tables' terms, for the run's log."""
    info = split.session
    return (f"session split at {time_text(info.split_time)}: {info.train_examples:,} training examples "
            f"({info.valid_examples:,} of them held out for validation), {info.test_examples:,} test examples from "
            f"{info.test_sessions:,} sessions, {info.items:,} items ranked, {info.clicks:,} clicks")


def per_user_frame(split: SplitData, result: EvalResult) -> pd.DataFrame:
    """One row per evaluated user: id, metric columns, and what the targets were.

    Rank protocols (one target) keep the target's rank and item; list protocols (a target set)
    keep the number of targets, their mean training popularity and the first target's time."""
    test, popularity = split.test, split.item_popularity()
    per_user = pd.DataFrame({"user": split.user_ids[result.users]})
    if result.ranks is not None:
        per_user["rank"] = result.ranks[:, 0]
    for name, values in result.per_user.items():
        per_user[name] = values
    # The session protocol's users are prefixes without training sequences: their history is the prefix.
    per_user["history_len"] = test.histories.lengths if split.session is not None else split.train.lengths[result.users]
    if result.ranks is not None:
        per_user["target_item"] = split.item_ids[test.targets[:, 0]]
        per_user["target_pop"] = popularity[test.targets[:, 0]]
    else:
        real = test.targets > 0
        per_user["n_targets"] = real.sum(1)
        per_user["target_pop"] = (popularity[test.targets] * real).sum(1) / np.maximum(real.sum(1), 1)
    per_user["target_time"] = test.target_times[:, 0]
    return per_user
