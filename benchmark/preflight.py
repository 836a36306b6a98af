"""Hydra callback: before a multirun launches anything, check what every run of it will need.

The launcher's prerequisites (SLURM's ``sbatch``/``srun`` for the submitit SLURM launcher, the
``joblib`` package for the joblib one), and for every job of the sweep: its config (the same checks
as a single run), its dataset's files, and whether a complete record of it was made by other code.
A failure is a BenchmarkError, which ``seqrec`` prints as one line with exit code 2; nothing was
submitted and no sweep folder was created (the sweeper creates it after this callback).
"""

from __future__ import annotations

import importlib.util
import json
import os
import shutil
from typing import Any

from hydra.core.global_hydra import GlobalHydra
from hydra.experimental.callback import Callback
from omegaconf import DictConfig, OmegaConf

from benchmark.errors import BenchmarkError, DataError

BASIC_SWEEPER = "hydra._internal.core_plugins.basic_sweeper.BasicSweeper"
SLURM_COMMANDS = ("sbatch", "srun")  # submitit submits with sbatch and starts each run with srun


def check_launcher(launcher: DictConfig) -> None:
    target = str(launcher.get("_target_", ""))
    if target.endswith("SlurmLauncher"):
        missing = [c for c in SLURM_COMMANDS if shutil.which(c) is None]
        if missing:
            raise BenchmarkError(f"hydra/launcher=slurm needs SLURM's {' and '.join(missing)} on PATH and this machine "
                                 "has none: launch from a login node of the cluster, or drop hydra/launcher=slurm "
                                 "(hydra/launcher=joblib runs the sweep here)")
    elif target.endswith("JoblibLauncher") and importlib.util.find_spec("joblib") is None:
        raise BenchmarkError("hydra/launcher=joblib needs the joblib package, which is not installed (pip install joblib)")


def sweep_jobs(config: DictConfig) -> list[list[str]]:
    """The override list of every job the basic sweeper will launch (command line and
    hydra.sweeper.params). Other sweepers (optuna) choose their jobs while they run: then one job,
    the command line's fixed overrides, the config every trial starts from."""
    from hydra._internal.core_plugins.basic_sweeper import BasicSweeper
    from hydra.core.override_parser.overrides_parser import OverridesParser

    parser = OverridesParser.create(config_loader=GlobalHydra.instance().config_loader())
    if OmegaConf.select(config, "hydra.sweeper._target_") != BASIC_SWEEPER:
        return [[o.input_line for o in parser.parse_overrides(list(config.hydra.overrides.task))
                 if not o.is_sweep_override()]]
    params = OmegaConf.select(config, "hydra.sweeper.params") or {}
    arguments = [f"{k}={v}" for k, v in params.items()] + list(config.hydra.overrides.task)
    return [job for batch in BasicSweeper.split_arguments(parser.parse_overrides(arguments), None) for job in batch]


def job_config(config: DictConfig, overrides: list[str]) -> dict[str, Any]:
    """The resolved config one job of the sweep will run (what the launcher composes for it)."""
    loader = GlobalHydra.instance().config_loader()
    composed = loader.load_sweep_config(config, list(overrides))
    job = OmegaConf.to_container(composed, resolve=False)
    job.pop("hydra", None)  # the job's hydra node (${now:}, output dirs) is not resolvable here
    return OmegaConf.to_container(OmegaConf.create(job), resolve=True)


def check_data_readable(dataset: dict[str, Any]) -> None:
    """The dataset's folder (or file) exists and holds a readable file (a sweep over data never
    fetched would otherwise start, or submit, every one of its runs to fail)."""
    from benchmark.data.catalog import fetch_hint
    from benchmark.data.dataset import DatasetSpec, dataset_dir

    spec = DatasetSpec.from_dict(dataset)
    where = dataset_dir(spec)
    files = [where] if where.is_file() else (p for p in where.rglob("*") if p.is_file() and not p.name.startswith("."))
    seen = 0
    for path in files:  # the first readable file will do: a folder of many files is not listed in full
        if os.access(path, os.R_OK):
            return
        seen += 1
    what = "is not readable" if seen else "has no data files" if where.exists() else "does not exist"
    raise DataError(f"dataset {spec.name}: {where} {what}; {fetch_hint(spec.files_of, where, spec.options)}")


class Preflight(Callback):
    def on_multirun_start(self, config: DictConfig, **kwargs: Any) -> None:
        # Hydra turns a callback's exception into a warning and launches anyway: refuse by exiting.
        from benchmark.cli import fail

        try:
            check_launcher(config.hydra.launcher)
            check_jobs(config)
        except BenchmarkError as e:
            fail(f"{e}; nothing was launched")


def check_jobs(config: DictConfig) -> None:
    """Every job's config, dataset files and existing record, as the run itself would check them.
    Jobs that differ only in their seed share one composition (composing is the slow part)."""
    import yaml

    from benchmark.config import validate_config
    from benchmark.provenance import code_hash
    from benchmark.record import is_complete, run_dir_for
    from benchmark.run import check_same_code

    exact = OmegaConf.select(config, "hydra.sweeper._target_") == BASIC_SWEEPER  # else the trials' base config
    composed: dict[tuple[str, ...], dict[str, Any]] = {}
    datasets: set[str] = set()
    for overrides in sweep_jobs(config):
        rest = tuple(o for o in overrides if not o.startswith("seed="))
        if rest not in composed:
            composed[rest] = job_config(config, list(rest))
        job = dict(composed[rest])
        for seed in (o for o in overrides if o.startswith("seed=")):
            job["seed"] = yaml.safe_load(seed.split("=", 1)[1])
        try:
            validate_config(job)
            dataset = json.dumps(job["dataset"], sort_keys=True, default=str)
            if dataset not in datasets:
                check_data_readable(job["dataset"])
                datasets.add(dataset)
            run_dir = run_dir_for(job["results_dir"], job)
            if exact and not job["rerun"] and job["reuse"] != "any_code" and is_complete(run_dir):
                check_same_code(run_dir, code_hash(job), job["reuse"])
        except BenchmarkError as e:
            raise type(e)(f"{e} (job {' '.join(overrides)})" if overrides else str(e)) from None
