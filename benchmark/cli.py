"""The `seqrec` command: a thin Hydra entry point around run_experiment."""

from __future__ import annotations

import os
import sys
from pathlib import Path

import hydra
from hydra.core.hydra_config import HydraConfig
from omegaconf import DictConfig

from benchmark.errors import BenchmarkError
from benchmark.progress import ENV as PROGRESS_ENV
from benchmark.tuning import RunResult, job_result

# conf/ lives at the repository root (editable installs); a wheel carries it inside the package.
_ROOT_CONF = Path(__file__).resolve().parent.parent / "conf"
CONF_DIR = str(_ROOT_CONF if _ROOT_CONF.is_dir() else Path(__file__).resolve().parent / "conf")


@hydra.main(version_base="1.3", config_path=CONF_DIR, config_name="config")
def app(cfg: DictConfig) -> RunResult:
    from benchmark.run import run_experiment

    sweeping = in_multirun()
    if sweeping and not in_launching_process():
        os.environ.setdefault(PROGRESS_ENV, "0")  # parallel workers' bars would interleave
    try:
        return job_result(run_experiment(cfg))
    except BenchmarkError as e:
        if sweeping:  # Hydra marks this job failed; the other runs of the sweep go on
            raise
        print(f"seqrec: error: {e}", file=sys.stderr)
        sys.exit(2)


def in_multirun() -> bool:
    return str(HydraConfig.get().mode) == "RunMode.MULTIRUN"


def in_launching_process() -> bool:
    """Whether jobs run one after another in the `seqrec` process itself (Hydra's basic launcher)."""
    return HydraConfig.get().launcher._target_.endswith("BasicLauncher")


def main() -> None:
    try:
        app()
    except KeyboardInterrupt:  # Ctrl-C: the interrupted run left no record, finished ones are kept
        print("seqrec: interrupted; complete run records are kept, run the same command again to resume",
              file=sys.stderr)
        sys.exit(130)


if __name__ == "__main__":
    main()
