"""The `seqrec` command: a thin Hydra entry point around run_experiment."""

from __future__ import annotations

import sys
from pathlib import Path

import hydra
from omegaconf import DictConfig

from benchmark.errors import BenchmarkError

# conf/ lives at the repository root (editable installs); a wheel carries it inside the package.
_ROOT_CONF = Path(__file__).resolve().parent.parent / "conf"
CONF_DIR = str(_ROOT_CONF if _ROOT_CONF.is_dir() else Path(__file__).resolve().parent / "conf")


@hydra.main(version_base="1.3", config_path=CONF_DIR, config_name="config")
def app(cfg: DictConfig) -> str:
    from benchmark.run import run_experiment

    try:
        return str(run_experiment(cfg))
    except BenchmarkError as e:
        print(f"seqrec: error: {e}", file=sys.stderr)
        sys.exit(2)


def main() -> None:
    app()


if __name__ == "__main__":
    main()
