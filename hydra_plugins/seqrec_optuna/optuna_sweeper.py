"""The `hydra/sweeper=optuna` sweeper of seqrec-bench (see benchmark/tuning.py for the why and the how).

Hydra instantiates sweepers only from the ``hydra_plugins`` namespace, hence this module.
"""

from __future__ import annotations

import logging
import math
from pathlib import Path
from typing import Sequence

from hydra.core.plugins import Plugins
from hydra.core.utils import JobStatus
from hydra.plugins.sweeper import Sweeper
from hydra.types import HydraContext, TaskFunction
from omegaconf import DictConfig, ListConfig, OmegaConf

from benchmark.errors import BenchmarkError, ConfigError
from benchmark.tuning import (TRIALS_FILE, RunResult, check_sweeper_settings, describe, search_space, write_best_config,
                              write_trials)

log = logging.getLogger("seqrec")
RUN_ATTR = "seqrec_run"  # a complete trial's user attribute: its record, metric name and config choices


class OptunaSweeper(Sweeper):
    """Asks optuna for ``n_jobs`` trials at a time, runs them as one launcher batch, tells it the
    validation metric of each. Failed trials are marked failed; the study fails only if all do."""

    def __init__(self, params: DictConfig | None = None, n_trials: int = 20, n_jobs: int = 1, seed: int = 0,
                 direction: str = "maximize", study_name: str | None = None, storage: str | None = None,
                 best_config: str | None = None, rerun_seeds: Sequence[int] = (0, 1, 2, 3, 4)) -> None:
        if isinstance(rerun_seeds, ListConfig):  # as Hydra passes it
            rerun_seeds = OmegaConf.to_container(rerun_seeds)
        check_sweeper_settings(n_trials, n_jobs, seed, direction, rerun_seeds)
        self.params = dict(params or {})
        self.n_trials, self.n_jobs, self.seed, self.direction = n_trials, n_jobs, seed, direction
        self.study_name, self.storage, self.best_config = study_name, storage, best_config
        self.rerun_seeds = list(rerun_seeds)

    def setup(self, *, hydra_context: HydraContext, task_function: TaskFunction, config: DictConfig) -> None:
        self.config, self.hydra_context = config, hydra_context
        self.launcher = Plugins.instance().instantiate_launcher(
            config=config, hydra_context=hydra_context, task_function=task_function
        )

    def sweep(self, arguments: list[str]) -> None:
        import optuna

        space, fixed = search_space([f"{k}={v}" for k, v in self.params.items()] + list(arguments))
        if not space:
            raise ConfigError("hydra/sweeper=optuna needs a search space: add hparams=<model> or "
                              "hydra.sweeper.params entries such as model.hidden='choice(32,64)'")
        optuna.logging.set_verbosity(optuna.logging.WARNING)  # one line per trial is ours, below
        study = optuna.create_study(
            study_name=self.study_name, storage=self.storage, direction=self.direction, load_if_exists=True,
        )
        # Seeded by the trials already in a stored study: the same seed would re-propose the first
        # launch's points instead of adding new trials (a new study keeps the seed itself).
        seed = None if self.seed is None else int(self.seed) + len(study.trials)
        study.sampler = optuna.samplers.TPESampler(seed=seed)
        sweep_dir = Path(str(self.config.hydra.sweep.dir))
        sweep_dir.mkdir(parents=True, exist_ok=True)
        OmegaConf.save(self.config, sweep_dir / "multirun.yaml")
        log.info("optuna: %d trials of %s over %s", self.n_trials, self.direction, ", ".join(space))

        rows, errors, job_idx, completed = [], [], 0, 0
        while job_idx < self.n_trials:
            trials = [study.ask(space) for _ in range(min(self.n_jobs, self.n_trials - job_idx))]
            batch = [[*fixed, *(f"{k}={v}" for k, v in t.params.items())] for t in trials]
            returns = self.launcher.launch(batch, initial_job_idx=job_idx)
            job_idx += len(returns)
            for trial, ret in zip(trials, returns):
                result = ret._return_value if ret.status == JobStatus.COMPLETED else None
                if not isinstance(result, RunResult) or not math.isfinite(result.valid):
                    errors.append(ret._return_value)
                    study.tell(trial, state=optuna.trial.TrialState.FAIL)
                    log.warning("optuna: trial %d failed: %s", trial.number, describe(ret._return_value))
                    rows.append({"trial": trial.number, "state": "failed", **trial.params})
                    continue
                choices = {k: v for k, v in ret.hydra_cfg.hydra.runtime.choices.items() if v is not None}
                # Kept in the study, so a later launch on the same storage can write this trial as the best.
                trial.set_user_attr(RUN_ATTR, {"run_dir": result.run_dir, "valid_metric": result.valid_metric,
                                               "choices": choices})
                study.tell(trial, result.valid)
                completed += 1
                rows.append({"trial": trial.number, "state": "complete", result.valid_metric: result.valid,
                             **trial.params, "run_dir": result.run_dir})
                log.info("optuna: trial %d valid %s=%.4f (best %.4f) %s", trial.number, result.valid_metric,
                         result.valid, study.best_value, " ".join(f"{k}={v}" for k, v in trial.params.items()))
        write_trials(sweep_dir / TRIALS_FILE, rows)
        if not completed:
            raise BenchmarkError(f"all {self.n_trials} optuna trials failed; first error: {describe(errors[0])}")
        # The best of the whole study (every launch on a stored study), not only of this launch.
        done = [t for t in study.get_trials(states=(optuna.trial.TrialState.COMPLETE,)) if RUN_ATTR in t.user_attrs]
        best = (max if self.direction == "maximize" else min)(done, key=lambda t: t.value)
        run = best.user_attrs[RUN_ATTR]
        result = RunResult(run["run_dir"], best.value, run["valid_metric"])
        path = Path(self.best_config) if self.best_config else sweep_dir / "best" / "experiment" / "best.yaml"
        write_best_config(path, result, run["choices"], best.params, len(study.trials), self.rerun_seeds)
        log.info("optuna: best valid %s=%.4f (trial %d) with %s", result.valid_metric, best.value, best.number,
                 " ".join(f"{k}={v}" for k, v in best.params.items()))
        log.info("optuna: best config written to %s; re-run over seeds with:\n  seqrec --config-dir %s experiment=%s",
                 path, path.parent.parent, path.stem)
