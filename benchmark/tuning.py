"""Hyper-parameter tuning: ``hydra/sweeper=optuna``, a Hydra sweeper driven by optuna.

The sweeper class lives in ``hydra_plugins/seqrec_optuna`` (Hydra only loads plugins from that
namespace); this module holds what it is made of.

    seqrec hparams=sasrec model=sasrec dataset=movie hydra.sweeper.n_trials=30

``conf/hparams/<model>.yaml`` holds a model's search space as ``hydra.sweeper.params``, in the
syntax of Hydra's optuna plugin: ``choice(32, 64)``, ``range(1, 4)``, ``interval(0.0, 0.5)``,
``tag(log, interval(1e-4, 1e-2))``; a plain value (or a command-line override) fixes a key.

Why not the hydra-optuna-sweeper plugin: it pins optuna<3 (2021), whose study storage fails on
SQLAlchemy 2, so it cannot live in a current environment. This sweeper reads the same syntax on a
current optuna, and trials still run through any Hydra launcher (joblib, submitit/SLURM).

What is optimised is the validation metric (``trainer.valid_metric``) and nothing else: each job
hands back a ``RunResult`` holding its record directory and ``metrics.json["valid"][valid_metric]``;
the sweeper never sees a test metric. The study's trials land in the sweep directory
(``optuna_trials.csv``), and the best trial's configuration is written as an experiment file that
re-runs it over seeds (see ``write_best_config``). A relaunched study replays the same trials (seeded
sampler) and reuses their complete run records, so it resumes where it stopped.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any, Sequence

import yaml
from hydra.core.override_parser.overrides_parser import OverridesParser
from hydra.core.override_parser.types import IntervalSweep, Override, RangeSweep

from benchmark.errors import ConfigError

TRIALS_FILE = "optuna_trials.csv"
DIRECTIONS = ("maximize", "minimize")
# Config groups whose choice the best-config file repeats (as `override /group: choice`).
TUNED_GROUPS = ("dataset", "model", "protocol", "trainer")


@dataclass(frozen=True)
class RunResult:
    """What one `seqrec` job hands back to Hydra: its record and its validation objective."""

    run_dir: str
    valid: float  # metrics.json["valid"][valid_metric]: the only number a sweeper may optimise
    valid_metric: str

    def __str__(self) -> str:  # callbacks that list a sweep's runs read the record directory
        return self.run_dir


def validation_objective(metrics: dict[str, Any]) -> tuple[float, str]:
    """(value, name) of the trainer's validation metric in a record's metrics. Reads only the
    ``valid`` block: model selection on test metrics would leak the test set into the result."""
    name = str(metrics["valid_metric"])
    return float(metrics["valid"][name]), name


def job_result(run_dir: Path) -> RunResult:
    """The record's validation objective; a record without one (a damaged metrics.json that a re-run
    found complete) -> DataError naming the file."""
    from benchmark.record import damaged, read_metrics  # not at import: `seqrec` and the sweeper start without pandas

    try:
        value, name = validation_objective(read_metrics(run_dir))
    except (KeyError, TypeError, ValueError) as e:
        raise damaged(Path(run_dir) / "metrics.json", f"has no validation value ({type(e).__name__}: {e})") from None
    return RunResult(str(run_dir), value, name)


def _integer(value: Any, low: int) -> bool:
    return isinstance(value, int) and not isinstance(value, bool) and value >= low


def check_sweeper_settings(n_trials: Any, n_jobs: Any, seed: Any, direction: Any, rerun_seeds: Any) -> None:
    """The sweeper's own keys, before any trial runs: n_trials=0 ran nothing and failed on reporting
    it, an unknown direction failed inside optuna, and rerun_seeds=[] wrote a best config that cannot run."""
    rules = (
        ("n_trials", n_trials, _integer(n_trials, 1), "an integer >= 1"),
        ("n_jobs", n_jobs, _integer(n_jobs, 1), "an integer >= 1 (trials launched together)"),
        ("seed", seed, seed is None or _integer(seed, 0), "null or an integer >= 0"),
        ("direction", direction, direction in DIRECTIONS, " or ".join(DIRECTIONS)),
        ("rerun_seeds", rerun_seeds,
         isinstance(rerun_seeds, (list, tuple)) and len(rerun_seeds) > 0 and all(_integer(s, 0) for s in rerun_seeds),
         "a non-empty list of integers >= 0 (the seeds the best config re-runs)"),
    )
    for key, value, ok, allowed in rules:
        if not ok:
            raise ConfigError(f"hydra.sweeper.{key}={value!r} is not allowed; it must be {allowed}")


def distribution(override: Override) -> Any:
    """The optuna distribution of one sweep override (choice / range / interval, tag(log, ...))."""
    import optuna.distributions as d

    value = override.value()
    if override.is_choice_sweep() or (isinstance(value, RangeSweep) and value.shuffle):
        return d.CategoricalDistribution(list(override.sweep_iterator()))
    if isinstance(value, RangeSweep):
        if any(isinstance(v, float) for v in (value.start, value.stop, value.step)):
            return d.FloatDistribution(value.start, value.stop - value.step, step=value.step)
        start, stop, step = int(value.start), int(value.stop), int(value.step)
        return d.IntDistribution(start, start + (stop - 1 - start) // step * step, step=step)  # stop is exclusive
    if isinstance(value, IntervalSweep):
        log_scale = "log" in value.tags
        if isinstance(value.start, int) and isinstance(value.end, int):
            return d.IntDistribution(value.start, value.end, log=log_scale)
        return d.FloatDistribution(float(value.start), float(value.end), log=log_scale)
    raise ConfigError(f"hydra.sweeper.params: {override.input_line!r} is not a choice, range or interval")


def search_space(arguments: Sequence[str]) -> tuple[dict[str, Any], list[str]]:
    """Splits overrides into the search space {key: distribution} and the fixed overrides (kept
    verbatim). A later fixed override of a key (the command line) takes the key out of the space."""
    space: dict[str, Any] = {}
    fixed: dict[str, str] = {}
    for override in OverridesParser.create().parse_overrides(list(arguments)):
        key = override.get_key_element()
        space.pop(key, None)
        fixed.pop(key, None)
        if override.is_sweep_override():
            space[key] = distribution(override)
        else:
            fixed[key] = override.input_line
    return space, list(fixed.values())


def shown_path(path: Path) -> str:
    """``path`` relative to the working directory where it lies below it: a committed file names no machine."""
    path = path.resolve()
    return path.relative_to(Path.cwd().resolve()).as_posix() if path.is_relative_to(Path.cwd().resolve()) else str(path)


def rerun_command(path: Path) -> str:
    """The command that re-runs a written experiment file: by its group name where it lies in the package's
    own ``conf/experiment/`` (e.g. ``experiment=reference/ease-ml-latest-small-loo``), else by --config-dir."""
    own = (Path(__file__).resolve().parent / "conf" / "experiment").resolve()
    path = path.resolve()
    if path.is_relative_to(own):
        return f"seqrec experiment={path.relative_to(own).with_suffix('').as_posix()}"
    return f"seqrec --config-dir {shown_path(path.parent.parent)} experiment={path.stem}"


# How and where the best trial ran, not what it computed: the tuned file leaves them to the trainer preset and
# the command line of whoever re-runs it (a study launched with trainer.num_threads=1 beside another job does
# not pin one thread on a 64-core node; save_model=false of the trials does not drop the re-runs' weights).
RUNTIME_TRAINER_KEYS = ("device", "num_threads", "resume", "save_model", "time_limit")


def write_best_config(path: Path, result: RunResult, choices: dict[str, str], params: dict[str, Any],
                      n_trials: int, seeds: Sequence[int]) -> Path:
    """An experiment file that re-runs the best trial over ``seeds``: the chosen config groups, and
    the resolved model/trainer/dataset/protocol sections of the best trial's run record (less the trainer's
    RUNTIME_TRAINER_KEYS)."""
    config = yaml.safe_load((Path(result.run_dir) / "config.yaml").read_text())
    if isinstance(config.get("trainer"), dict):
        config["trainer"] = {k: v for k, v in config["trainer"].items() if k not in RUNTIME_TRAINER_KEYS}
    tuned = ", ".join(f"{k}={v}" for k, v in params.items())
    header = (
        "# @package _global_\n"
        f"# Tuned with optuna ({n_trials} trials): best valid {result.valid_metric} = {result.valid:.6g}\n"
        f"#   {tuned}\n"
        f"# from run {shown_path(Path(result.run_dir))}\n"
        f"# Re-run over seeds: {rerun_command(path)}\n"
    )
    body = {
        "defaults": [{f"override /{group}": choices[group]} for group in TUNED_GROUPS if group in choices],
        **{section: config[section] for section in ("dataset", "model", "protocol", "trainer") if section in config},
        "hydra": {"mode": "MULTIRUN", "sweeper": {"params": {"seed": ",".join(str(s) for s in seeds)}}},
    }
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.tmp")
    tmp.write_text(header + yaml.safe_dump(body, sort_keys=False))
    tmp.replace(path)
    return path


def write_trials(path: Path, rows: list[dict[str, Any]]) -> None:
    import pandas as pd

    pd.DataFrame(rows).to_csv(path, index=False)


def describe(error: Any) -> str:
    if isinstance(error, BaseException):
        lines = str(error).strip().splitlines()
        return f"{type(error).__name__}: {lines[0] if lines else ''}"
    return f"the job returned {error!r}, not a RunResult"
