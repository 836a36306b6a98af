"""Run records: one directory per (dataset, protocol, model, seed, config).

Files are written into a hidden temp directory that is renamed into place as the last step, so a
directory with the final name is always a complete record and a killed run leaves none.
"""

from __future__ import annotations

import hashlib
import json
import os
import shutil
import sys
import tempfile
from dataclasses import asdict
from pathlib import Path
from typing import Any, Callable

import pandas as pd
import yaml

from benchmark.errors import DataError
from benchmark.files import umask_mode, walk_once
from benchmark.provenance import CodeVersion

RECORD_FILES = ("config.yaml", "metrics.json", "per_user.parquet", "history.csv", "env.json")
# Keys that say where or how to log, or whether to reuse a record, not what is computed: they do not
# change a run's identity.
NON_IDENTITY_KEYS = ("results_dir", "logger", "cache_dir", "hydra", "rerun", "reuse")
# trainer.resume only decides whether checkpoints are kept (a resumed run is the same run), trainer.save_model
# whether the fitted model is kept too.
# trainer.time_limit: a run the limit does not reach is the run without it, and one it cuts says so in
# its metrics.json (cut_by_time_limit), so the limit (e.g. derived from a SLURM job's time) splits no run.
NON_IDENTITY_TRAINER_KEYS = ("resume", "time_limit", "save_model")
MODEL_FILE = "model.pt"  # the fitted model, in records of runs with trainer.save_model=true


def model_attribute(model: dict[str, Any] | None, name: str, default: Any) -> Any:
    """A class attribute of the model a config section names (``trains``, ``reads_order``, ``family``);
    ``default`` where the class cannot be imported (validation says so; it is not this function's to refuse)."""
    from benchmark.config import import_target
    from benchmark.errors import ConfigError

    try:
        return getattr(import_target(str((model or {}).get("_target_", ""))), name, default)
    except ConfigError:
        return default


def model_trains(model: dict[str, Any] | None) -> bool:
    """Whether the model class of a model config section trains (``Recommender.trains``)."""
    return bool(model_attribute(model, "trains", True))


# Keys added after records existed, each with the value that does what the code did before the key:
# at that value a key is left out of the identity, so a record made before it keeps its hash (and
# its report row); any other value is a new configuration.
LATER_KEYS: dict[str, dict[str, Any]] = {
    "dataset": {"history_targets": True},
    "protocol": {"refit": False},
    "trainer": {"optimizer": "adam", "betas": [0.9, 0.999], "momentum": 0.0},
    "model": {"activation": "gelu", "scale_embeddings": None, "hidden_dropout": 0.0, "training": "windows",
              "sampler": "uniform", "sample_alpha": 1.0, "in_batch_negatives": False, "bpreg": 0.0, "logq": 0.0},
}


def identity_config(config: dict[str, Any], trains: bool) -> dict[str, Any]:
    """The config without the keys that do not change results (the trainer section too for a model
    that does not train) and without later keys at their earlier behaviour (``LATER_KEYS``): what a
    run's identity, and a report's row, are made of."""
    ident = {k: v for k, v in config.items() if k not in NON_IDENTITY_KEYS}
    if isinstance(ident.get("dataset"), dict) and not ident["dataset"].get("shuffle_order", True):
        # off is the default every record made before the order control was computed with: same identity
        ident["dataset"] = {k: v for k, v in ident["dataset"].items() if k != "shuffle_order"}
    if not trains:
        ident.pop("trainer", None)
    if isinstance(ident.get("trainer"), dict):
        ident["trainer"] = {k: v for k, v in ident["trainer"].items() if k not in NON_IDENTITY_TRAINER_KEYS}
    for group, earlier in LATER_KEYS.items():
        if isinstance(ident.get(group), dict):
            ident[group] = {k: v for k, v in ident[group].items() if k not in earlier or not _same(v, earlier[k])}
    return ident


def _same(value: Any, earlier: Any) -> bool:
    """Equal as YAML values: a tuple is a list, 1 is 1.0."""
    if isinstance(value, (list, tuple)) and isinstance(earlier, list):
        return len(value) == len(earlier) and all(_same(v, e) for v, e in zip(value, earlier))
    return value == earlier and isinstance(value, bool) == isinstance(earlier, bool)


def config_hash(config: dict[str, Any]) -> str:
    """Hash of the resolved config's identity (``identity_config``)."""
    ident = identity_config(config, model_trains(config.get("model")))
    return hashlib.sha256(json.dumps(ident, sort_keys=True, default=str).encode()).hexdigest()


def run_dir_for(results_dir: str | Path, config: dict[str, Any]) -> Path:
    name = f"seed{config.get('seed', 0)}-{config_hash(config)[:10]}"
    return Path(results_dir) / str(config["dataset"]["name"]) / str(config["protocol"]["name"]) / str(config["model"]["name"]) / name


def is_complete(run_dir: Path) -> bool:
    return all((run_dir / f).is_file() for f in RECORD_FILES)


def environment(seed: int, dataset_hash: str, device: str, code: CodeVersion) -> dict[str, Any]:
    import numpy
    import torch

    versions = {"python": sys.version.split()[0], "torch": torch.__version__, "numpy": numpy.__version__, "pandas": pd.__version__}
    try:
        import hydra

        versions["hydra-core"] = hydra.__version__
    except ImportError:  # pragma: no cover
        pass
    try:
        from importlib.metadata import version

        versions["seqrec-bench"] = version("seqrec-bench")
    except Exception:  # pragma: no cover - not installed
        pass
    return {
        "versions": versions,
        **asdict(code),  # git_commit, git_dirty, code_hash: which code made the record
        "seed": seed,
        "dataset_hash": dataset_hash,
        "device": device,
        "platform": sys.platform,
        "cpu": cpu_model(),
        "gpu": torch.cuda.get_device_name(torch.device(device)) if device.startswith("cuda") else None,
        "cuda": torch.version.cuda,  # the CUDA torch was built with; None for a CPU build
        "cpu_count": os.cpu_count(),
        "torch_threads": torch.get_num_threads(),  # seconds in the efficiency columns depend on it
    }


def cpu_model() -> str:
    """The CPU's model name (Linux /proc/cpuinfo, else what the platform says), for a paper's appendix."""
    import platform

    try:
        with open("/proc/cpuinfo") as f:
            for line in f:
                if line.startswith("model name"):
                    return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or platform.machine() or "unknown"


def write_record(
    run_dir: Path,
    config: dict[str, Any],
    metrics: dict[str, Any],
    per_user: pd.DataFrame,
    history: list[Any],
    env: dict[str, Any],
    before_publish: Callable[[Path], None] | None = None,
    extra_tables: dict[str, pd.DataFrame] | None = None,
    replace: bool = False,
    extra_files: dict[str, Callable[[Path], None]] | None = None,
) -> Path:
    """Writes all record files into a temp directory, then renames it to ``run_dir`` (atomic).

    ``before_publish(temp_dir)`` runs once the files are written and before the rename (a logger
    adds its files there). If another process published the same run meanwhile, its record is
    kept and ours discarded, so a run is never recorded twice; once published, the run's other
    temp directories (killed attempts) are removed. ``extra_tables`` maps further parquet file
    names to tables (e.g. sampled negatives). ``replace`` (``rerun=true``): a complete record of the
    run is replaced by this one: moved aside as a temp directory, then the new one renamed in; ``extra_files`` maps further file names to functions
    that write that file at the path given (e.g. the fitted model).
    """
    run_dir.parent.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(dir=run_dir.parent, prefix=f".{run_dir.name}.", suffix=".tmp"))
    try:
        tmp.chmod(umask_mode(0o777))  # mkdtemp's 0700 would hide the record from collaborators on a shared disk
        (tmp / "config.yaml").write_text(yaml.safe_dump(config, sort_keys=False))
        per_user.to_parquet(tmp / "per_user.parquet", index=False)
        rows = [asdict(h) if hasattr(h, "__dataclass_fields__") else dict(h) for h in history]
        pd.DataFrame(rows, columns=["epoch", "loss", "valid_metric", "seconds", "valid_seconds"] if not rows else None).to_csv(
            tmp / "history.csv", index=False
        )
        (tmp / "env.json").write_text(json.dumps(env, indent=2))
        for name, table in (extra_tables or {}).items():
            table.to_parquet(tmp / name, index=False)
        for name, write in (extra_files or {}).items():
            write(tmp / name)
        (tmp / "metrics.json").write_text(json.dumps(metrics, indent=2))
        for f in (*RECORD_FILES, *(extra_tables or {}), *(extra_files or {})):
            with open(tmp / f, "rb") as fh:
                os.fsync(fh.fileno())
        if before_publish is not None:
            before_publish(tmp)
        if is_complete(run_dir) and not replace:  # a concurrent duplicate of this run finished first
            shutil.rmtree(tmp)
            return run_dir
        if is_complete(run_dir):  # the old record goes aside under a temp name, removed below
            os.rename(run_dir, tempfile.mkdtemp(dir=run_dir.parent, prefix=f".{run_dir.name}.", suffix=".tmp"))
        elif run_dir.exists():  # an incomplete leftover of an older layout
            shutil.rmtree(run_dir)
        os.rename(tmp, run_dir)
    except BaseException as e:
        shutil.rmtree(tmp, ignore_errors=True)
        if isinstance(e, OSError) and is_complete(run_dir):  # a concurrent duplicate published first
            return run_dir
        raise
    remove_temps(run_dir)  # the run is complete: any other temp of it is a killed attempt's
    return run_dir


def remove_temps(run_dir: Path) -> list[Path]:
    """Removes the temp records of a complete run (``.<name>.*.tmp``): leftovers of attempts killed
    while writing, or of a duplicate that lost the race (it notices and keeps the record)."""
    removed = sorted(run_dir.parent.glob(f".{run_dir.name}.*.tmp"))
    for tmp in removed:
        shutil.rmtree(tmp, ignore_errors=True)
    return removed


def _read_mapping(path: Path, parse: Callable[[str], Any]) -> dict[str, Any]:
    # A corrupt file is a ValueError naming the file, on one line (YAML's messages span several).
    try:
        value = parse(path.read_text())
    except (ValueError, yaml.YAMLError) as e:
        raise ValueError(f"{path.name} is not valid: {' '.join(str(e).split())}") from None
    if not isinstance(value, dict):
        raise ValueError(f"{path.name} is empty" if value is None else
                         f"{path.name} holds a {type(value).__name__}, not a mapping")
    return value


def damaged(path: Path, what: str) -> DataError:
    """The error for a file of a complete record that cannot be used (hand-edited, disk trouble)."""
    return DataError(f"{path} {what}; the record is damaged: move the record away to re-run it")


def read_metrics(run_dir: str | Path) -> dict[str, Any]:
    """A record's metrics.json as a dict; a file that is not a JSON object -> DataError naming it
    (a re-run reads it to stand in for the run, and would otherwise end in a traceback)."""
    path = Path(run_dir) / "metrics.json"
    try:
        return _read_mapping(path, json.loads)
    except (OSError, ValueError) as e:
        raise damaged(path, f"cannot be used ({e})") from None


def read_record(run_dir: Path) -> dict[str, Any]:
    """The record's config, metrics and env as one dict (per-user table loaded separately).
    Raises OSError for a missing file, ValueError for one that is not a valid mapping."""
    return {
        "dir": run_dir,
        "config": _read_mapping(run_dir / "config.yaml", yaml.safe_load),
        "metrics": _read_mapping(run_dir / "metrics.json", json.loads),
        "env": _read_mapping(run_dir / "env.json", json.loads),
    }


def find_records(root: str | Path) -> list[Path]:
    """Every complete run record below ``root`` (temp directories are hidden and skipped). Symlinked
    folders are followed (results kept on scratch and linked in), each real folder once (a link back
    up the tree does not loop, two links to one folder do not count its runs twice)."""
    found = []
    for folder, subdirs, files in walk_once(root):
        if "metrics.json" in files and is_complete(folder):
            found.append(folder)
            subdirs.clear()  # records do not nest
        else:
            subdirs[:] = sorted(d for d in subdirs if not d.startswith("."))  # which link counts: the first by name
    return sorted(found)
