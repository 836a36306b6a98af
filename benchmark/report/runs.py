"""Run records loaded for a report, grouped by (dataset, protocol), with the checks that make
paired comparisons valid: every run of a group saw the same data, split and users."""

from __future__ import annotations

import hashlib
import json
import math
from dataclasses import dataclass, field
from pathlib import Path
from typing import Iterable

import numpy as np
import pandas as pd

from benchmark.errors import BenchmarkError
from benchmark.record import identity_config, read_record

# Identity keys that differ between the runs of one table row: a row is one model configuration.
_NOT_VARIANT = ("seed", "dataset", "protocol")


class ReportError(BenchmarkError):
    """Runs that cannot be compared, or report options that do not fit the runs."""


@dataclass
class Run:
    dir: Path
    dataset: str
    protocol: str
    name: str  # model name from the record
    seed: int
    baseline: bool  # a non-sequential baseline: its model class declares reads_order = False
    variant: str  # hash of the model/trainer configuration without seed and dataset
    settings: dict[str, str]  # that configuration, flat: model.hidden -> "128"
    config: dict
    metrics: dict
    env: dict
    per_user: pd.DataFrame
    label: str = ""  # row label in tables: the model name, plus the settings that differ where a name has several
    differs: str = ""  # those settings ("hidden=128"); "" where the name has one configuration
    family: str | None = None  # its row in the families table, as its model class declares (None: none)

    @property
    def run_id(self) -> str:
        return self.dir.name


def _variant_settings(config: dict, trains: bool = True) -> dict[str, str]:
    """The settings that make a table row, flat ("model.hidden" -> "128"). What the record's identity
    ignores (trainer.resume, a non-training model's trainer section) splits no row."""
    flat: dict[str, str] = {}

    def walk(prefix: str, value) -> None:
        if isinstance(value, dict) and value:
            for k, v in value.items():
                walk(f"{prefix}.{k}" if prefix else str(k), v)
        else:
            flat[prefix] = json.dumps(value, default=str) if isinstance(value, (list, dict)) else str(value)

    walk("", {k: v for k, v in identity_config(config, trains).items() if k not in _NOT_VARIANT})
    return flat


def _variant(settings: dict[str, str]) -> str:
    return hashlib.sha256(json.dumps(settings, sort_keys=True).encode()).hexdigest()[:6]


def _setting_text(key: str, value: str) -> str:
    # Model keys read as the model's own (hidden=128); other sections keep theirs (trainer.lr=0.01).
    return f"{key.removeprefix('model.')}={value}"


# What a report reads from a record: the metrics.json keys, and config.yaml sections that must be mappings if present.
_METRICS_KEYS = ("dataset", "protocol", "model", "seed")
_CONFIG_SECTIONS = ("dataset", "protocol", "model", "trainer")


def _record_problem(metrics: dict, config: dict, per_user: pd.DataFrame) -> str | None:
    """What makes a parseable record unusable for a report, or None."""
    missing = [k for k in _METRICS_KEYS if k not in metrics]
    if missing:
        return f"metrics.json has no {', '.join(map(repr, missing))}"
    try:
        int(metrics["seed"])
    except (TypeError, ValueError):
        return f"metrics.json: seed {_plain(metrics['seed'])} is not an integer"
    if not isinstance(metrics.get("test", {}), dict):
        return "metrics.json: 'test' is not a mapping"
    for section in _CONFIG_SECTIONS:
        if section in config and not isinstance(config[section], dict):
            return f"config.yaml: {section!r} is not a mapping"
    if "user" not in per_user.columns:
        return "per_user.parquet has no 'user' column"
    return None


def load_run(run_dir: Path) -> Run:
    try:
        rec = read_record(run_dir)
        per_user = pd.read_parquet(run_dir / "per_user.parquet")
    except (OSError, ValueError) as e:
        raise ReportError(f"cannot read run record {run_dir}: {e}") from None
    m, cfg = rec["metrics"], rec["config"]
    problem = _record_problem(m, cfg, per_user)
    if problem:
        raise ReportError(f"cannot read run record {run_dir}: {problem}")
    model = cfg.get("model") or {}
    model_class = record_model_class(run_dir, model)
    per_user["user"] = per_user["user"].astype(str)
    return Run(
        dir=Path(run_dir), dataset=str(m["dataset"]), protocol=str(m["protocol"]), name=str(m["model"]),
        seed=int(m["seed"]), baseline=not model_class.reads_order,
        variant=_variant(settings := _variant_settings(cfg, bool(m.get("trains", True)))), settings=settings,
        config=cfg, metrics=m, env=rec["env"], per_user=per_user, family=model_class.family(model),
    )


def record_model_class(run_dir: Path, model: dict) -> type:
    """The class of a record's model: the report reads its declarations (reads_order, family)."""
    from benchmark.config import check_recommender_class, import_target
    from benchmark.errors import ConfigError

    target = str(model.get("_target_", ""))
    try:
        model_class = import_target(target)
        check_recommender_class(target, model_class)
    except ConfigError as e:
        raise ReportError(f"cannot read run record {run_dir}: {e}") from None
    return model_class


def load_runs(run_dirs: Iterable[Path], protocol: str | None = None, candidates: str | None = None) -> list[Run]:
    """Loads the records, keeps one protocol and candidate set, labels the rows; refuses a mix of settings
    (seqrec-report splits a folder into one report per setting before it gets here)."""
    from benchmark.report.settings import candidate_set, setting_name

    runs = [load_run(Path(d)) for d in run_dirs]
    runs = [r for r in runs if protocol in (None, r.protocol) and candidates in (None, candidate_set(r.metrics))]
    if not runs:
        wanted = " and ".join(f"{k} {v}" for k, v in (("protocol", protocol), ("candidates", candidates)) if v)
        raise ReportError("no run records to report" + (f" with {wanted}" if wanted else ""))
    by_setting = {setting_name(r.metrics): r for r in runs}
    if len(by_setting) > 1:
        named = ", ".join(f"{p} ({r.dir})" for p, r in sorted(by_setting.items()))
        raise ReportError(f"runs of different settings (protocol, candidate set) cannot share a table: {named}; report "
                          "each on its own (seqrec-report makes one report per setting; --protocol/--candidates pick)")
    _label_variants(runs)
    return runs


def _label_variants(runs: list[Run]) -> None:
    """Rows of one model name with several configurations on one dataset are labelled by the settings in which
    they differ there: sasrec (hidden=128), sasrec (hidden=64). One configuration per dataset is one row, however
    the datasets' configurations differ (each dataset's own tuned l2 or trainer: hyperparameters.csv says which)."""
    by_name: dict[tuple[str, str], dict[str, dict[str, str]]] = {}
    for r in runs:
        by_name.setdefault((r.dataset, r.name), {})[r.variant] = r.settings
    for r in runs:
        variants = by_name[(r.dataset, r.name)]
        if len(variants) == 1:
            r.label = r.name
            continue
        keys = sorted({k for v in variants.values() for k in v}
                      - {k for k in r.settings if all(v.get(k) == r.settings[k] for v in variants.values())})
        r.differs = ", ".join(_setting_text(k, r.settings.get(k, "unset")) for k in keys)
        r.label = f"{r.name} ({r.differs})"



def split_mean(runs: list[Run], split: str, metric: str) -> float:
    """Mean over runs of metrics.json[split][metric] ("valid" or "test"); NaN where no run records it."""
    values = [float(r.metrics[split][metric]) for r in runs if metric in (r.metrics.get(split) or {})]
    return sum(values) / len(values) if values else math.nan


@dataclass
class Group:
    """The runs of one dataset under one protocol: all evaluated on the same users."""

    dataset: str
    protocol: str
    runs: list[Run]
    users: np.ndarray  # sorted user ids; every run's per_user rows are in this order
    # per_user_mean by metric: the tables, their slices and the figures all read it
    _means: dict[str, pd.DataFrame] = field(default_factory=dict, repr=False, compare=False)

    @property
    def models(self) -> list[str]:
        """Row order: baselines first, then the other models, each alphabetically."""
        kinds = {r.label: r.baseline for r in self.runs}
        return sorted(kinds, key=lambda m: (not kinds[m], m))

    def runs_of(self, model: str) -> list[Run]:
        return sorted((r for r in self.runs if r.label == model), key=lambda r: r.seed)

    def is_baseline(self, model: str) -> bool:
        return any(r.baseline for r in self.runs_of(model))

    def per_user_mean(self, metric: str) -> pd.DataFrame:
        """[users x models]: each user's metric averaged over the model's seeds, rows = self.users
        (computed once per metric; callers must not modify it)."""
        if metric not in self._means:
            self._means[metric] = self._per_user_mean(metric)
        return self._means[metric]

    def _per_user_mean(self, metric: str) -> pd.DataFrame:
        columns = {}
        for model in self.models:
            every = self.runs_of(model)
            runs = [r for r in every if metric in r.per_user.columns]
            missing = [r for r in every if metric not in r.per_user.columns]
            if runs and missing:  # the table's cell would average every seed, the test only some
                raise ReportError(f"{missing[0].dir / 'per_user.parquet'} has no column {metric!r}, which other "
                                  f"seeds of {model} have; re-run it or leave it out of the report")
            for r in runs:
                bad = np.count_nonzero(~np.isfinite(r.per_user[metric].to_numpy(dtype=np.float64)))
                if bad:
                    raise ReportError(f"{r.dir / 'per_user.parquet'}: column {metric!r} has {bad} non-finite values; "
                                      "a paired test needs every user's value")
            if runs:
                columns[model] = np.mean([r.per_user[metric].to_numpy(dtype=np.float64) for r in runs], axis=0)
        return pd.DataFrame(columns, index=pd.Index(self.users, name="user"))

    def user_columns(self) -> pd.DataFrame:
        """Per-user properties of the split (history length, target popularity and time), rows = self.users."""
        return self.runs[0].per_user.set_index("user")


def _plain(value) -> str:
    """A value in an error message as text, never a Python repr of a dict or list."""
    if isinstance(value, dict):
        return ", ".join(f"{k}={_plain(v)}" for k, v in value.items()) or "none"
    if isinstance(value, (list, tuple)):
        return "; ".join(_plain(v) for v in value)
    return "none" if value is None else str(value)


def _same(runs: list[Run], key, what: str) -> None:
    first = runs[0]
    for r in runs[1:]:
        if key(r) != key(first):
            raise ReportError(f"cannot compare {first.dir} and {r.dir}: {what} differ ({_plain(key(first))} vs {_plain(key(r))})")


def group_runs(runs: list[Run]) -> list[Group]:
    """Groups by (dataset, protocol) and refuses groups whose runs are not paired comparisons."""
    keyed: dict[tuple[str, str], list[Run]] = {}
    for r in runs:
        keyed.setdefault((r.dataset, r.protocol), []).append(r)
    groups = []
    for (dataset, protocol), members in sorted(keyed.items()):
        members.sort(key=lambda r: (r.label, r.seed, str(r.dir)))
        _same(members, lambda r: r.metrics.get("dataset_hash"), "dataset hashes")
        _same(members, lambda r: r.metrics.get("split_key"), "splits (preprocessing or protocol options)")
        _same(members, lambda r: (r.metrics.get("candidates", "full"), r.metrics.get("sampled_candidates")),
              "candidate sets (full or sampled; sampled: n_negatives, sampler, negatives_seed)")
        _same(members, lambda r: r.metrics.get("tie_policy"), "tie policies")
        seen: dict[tuple[str, int], Run] = {}
        for r in members:
            if (r.label, r.seed) in seen:
                raise ReportError(f"{seen[r.label, r.seed].dir} and {r.dir} are the same model and seed; keep one")
            seen[r.label, r.seed] = r
        users = np.sort(members[0].per_user["user"].to_numpy())
        for r in members:
            mine = r.per_user["user"]
            if mine.duplicated().any():
                raise ReportError(f"{r.dir}/per_user.parquet lists user {mine[mine.duplicated()].iloc[0]!r} twice")
            if len(mine) != len(users) or not np.array_equal(np.sort(mine.to_numpy()), users):
                raise ReportError(f"cannot compare {members[0].dir} and {r.dir}: they were evaluated on different users "
                                  f"({len(users)} vs {len(mine)} users)")
            # Align every run's rows to the same sorted user order: pairing is by id, never by position.
            r.per_user = r.per_user.set_index("user").loc[users].reset_index()
        groups.append(Group(dataset, protocol, members, users))
    return groups
