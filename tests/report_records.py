"""Synthetic run records for report tests, written with benchmark.record.write_record (fast: no training)."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd

from benchmark.evaluation import metrics_from_ranks
from benchmark.record import config_hash, run_dir_for, write_record

BASELINE_TARGETS = {"pop": "baselines.pop.MostPop", "itemknn": "baselines.itemknn.ItemKNN"}


def user_ids(n: int) -> np.ndarray:
    return np.array([f"u{i:04d}" for i in range(n)])


def write_run(root: Path, dataset: str, model: str, seed: int, ranks: np.ndarray, *, users: np.ndarray | None = None,
              protocol: str = "loo", dataset_hash: str = "d" * 64, split_key: str = "split0", n_items: int = 500,
              hidden: int = 64, candidates: str = "full", model_config: dict | None = None,
              valid: dict | None = None, shuffle_order: bool = False) -> Path:
    """One complete run record whose per-user metrics come from the given target ranks (model_config:
    more model keys, e.g. encoder and head; valid: the record's validation metrics, default the test
    ones; {} for none; shuffle_order: a run of the order control, its split key its own per seed))."""
    ranks = np.asarray(ranks)
    users = user_ids(len(ranks)) if users is None else users
    order = np.arange(len(ranks))
    config = {
        "dataset": {"name": dataset, "reader": "movielens", "min_rating": None, "dedupe": True, "user_core": 5,
                    "item_core": 5, "min_seq_len": 3},
        "model": {"_target_": BASELINE_TARGETS.get(model, "benchmark.models.SequentialRecommender"), "name": model,
                  **({} if model in BASELINE_TARGETS else {"hidden": hidden}), **(model_config or {})},
        "protocol": {"name": protocol, "ks": [5, 10]},
        "trainer": {"max_epochs": 20, "patience": 3, "valid_metric": "ndcg@10"},
        "seed": seed,
        "results_dir": str(root),
    }
    if shuffle_order:
        config["dataset"]["shuffle_order"] = True
        split_key = f"{split_key}-shuffled{seed}"
    per_user = pd.DataFrame({"user": users, "rank": ranks})
    for name, values in metrics_from_ranks(ranks, (5, 10)).items():
        per_user[name] = values
    # Split properties, identical for every run of a dataset: they depend on the user only.
    per_user["history_len"] = 3 + (order * 7) % 40
    per_user["target_item"] = [f"i{(i * 13) % 97}" for i in order]
    per_user["target_pop"] = 1 + (order * 31) % 200
    per_user["target_time"] = 1_300_000_000 + order * 86_400
    metrics = {
        "test": {c: float(per_user[c].mean()) for c in per_user.columns if "@" in c} | {"coverage@10": 0.5},
        "train_seconds": 10.0 + len(model) + seed, "eval_seconds": 1.0, "ms_per_user": 0.25, "epochs": 3,
        "n_params": 1000 * len(model), "n_users": len(ranks), "n_items": n_items, "n_interactions": 20 * len(ranks),
        "n_evaluated": len(ranks), "protocol": protocol, "candidates": candidates,
        "tie_policy": "ties count against the target", "mask_history": True, "dataset": dataset, "model": model,
        "seed": seed, "config_hash": config_hash(config), "dataset_hash": dataset_hash, "split_key": split_key,
    }
    # Validation metrics (they choose the default reference): by default those of the test ranks; {}: none recorded.
    valid = metrics["test"] if valid is None else valid
    if valid:
        metrics["valid"] = dict(valid)
    env = {"seed": seed, "dataset_hash": dataset_hash, "versions": {}}
    return write_record(run_dir_for(root, config), config, metrics, per_user, [], env)


def planted_ranks(n_users: int, quality: float, seed: int) -> np.ndarray:
    """Ranks from a shared per-user difficulty plus noise: a higher quality gives better ranks."""
    difficulty = np.random.default_rng(12345).exponential(1.0, n_users)
    noise = np.random.default_rng(seed).normal(0, 0.3, n_users)
    return np.maximum(1, np.round(np.exp(1.0 + 2.0 * difficulty - quality + noise))).astype(np.int64)
