"""The dataset statistics papers report, before and after preprocessing."""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass
from typing import Any

import numpy as np
import pandas as pd

from benchmark.data.catalog import fetch_hint
from benchmark.data.dataset import DatasetSpec, dataset_dir
from benchmark.data.preprocess import preprocess
from benchmark.data.readers import MissingData, read_interactions
from benchmark.errors import DataError


@dataclass
class Counts:
    users: int
    items: int
    interactions: int
    avg_len: float
    median_len: float
    density: float  # interactions / (users * items)


def counts_from_lengths(lengths: np.ndarray, n_items: int) -> Counts:
    lengths = np.asarray(lengths)
    users, n = len(lengths), int(lengths.sum())
    return Counts(users, n_items, n, float(n / users) if users else 0.0, float(np.median(lengths)) if users else 0.0,
                  float(n / (users * n_items)) if users and n_items else 0.0)


def dataset_stats(spec: DatasetSpec) -> dict[str, Any]:
    """Counts of the raw interactions (as read) and of the preprocessed sequences, plus each step."""
    directory = dataset_dir(spec)
    if not directory.exists():
        raise DataError(f"dataset directory not found: {directory}; {fetch_hint(spec.name, directory, spec.options)}")
    try:
        df = read_interactions(spec.reader, directory, **spec.options)
    except MissingData as e:
        raise MissingData(f"{e}; {fetch_hint(spec.name, directory, spec.options)}") from None
    raw = counts_from_lengths(df["user"].value_counts().to_numpy(), int(df["item"].nunique()))
    prepared = preprocess(df, spec.preprocess)
    final = counts_from_lengths(prepared.sequences.lengths, prepared.n_items)
    return {
        "dataset": spec.name, "reader": spec.reader, "path": str(directory), "options": spec.options,
        "preprocess": asdict(spec.preprocess), "raw": asdict(raw), "preprocessed": asdict(final),
        "steps": [{"step": s, "users": u, "items": i, "interactions": n} for s, u, i, n in prepared.steps],
    }


def stats_table(stats: dict[str, Any]) -> str:
    """A plain-text table: raw, each preprocessing step, final."""
    rows = [("raw", stats["raw"])]
    rows += [(s["step"], {**s, "avg_len": s["interactions"] / s["users"] if s["users"] else 0.0, "median_len": None,
                          "density": s["interactions"] / (s["users"] * s["items"]) if s["users"] and s["items"] else 0.0})
             for s in stats["steps"][1:]]
    rows.append(("preprocessed", stats["preprocessed"]))
    frame = pd.DataFrame([{
        "stage": name, "users": f"{c['users']:,}", "items": f"{c['items']:,}", "interactions": f"{c['interactions']:,}",
        "avg len": f"{c['avg_len']:.2f}", "median len": "-" if c["median_len"] is None else f"{c['median_len']:g}",
        "density": f"{c['density']:.3%}" if c["density"] >= 1e-4 else f"{c['density']:.2e}",
    } for name, c in rows])
    return f"{stats['dataset']} ({stats['path']})\n" + frame.to_string(index=False)


def stats_json(stats: dict[str, Any]) -> str:
    return json.dumps(stats, sort_keys=True, default=str)
