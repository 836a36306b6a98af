"""The dataset statistics papers report, before and after preprocessing."""

from __future__ import annotations

import inspect
import json
from dataclasses import asdict, dataclass
from typing import Any

import numpy as np
import pandas as pd

from benchmark.data.catalog import fetch_hint
from benchmark.data.dataset import DatasetSpec, dataset_dir
from benchmark.data.preprocess import preprocess
from benchmark.data.readers import UNTIMED, MissingData, read_interactions
from benchmark.data.sessions import PUBLISHED, session_split
from benchmark.data.split import time_text
from benchmark.errors import DataError


@dataclass
class Counts:
    users: int
    items: int
    interactions: int
    avg_len: float
    median_len: float
    density: float  # interactions / (users * items)


def counts_from_lengths(lengths: np.ndarray, n_items: int, distinct_pairs: int) -> Counts:
    """Density counts distinct (user, item) pairs, so repeated plays cannot push it above 1."""
    lengths = np.asarray(lengths)
    users, n = len(lengths), int(lengths.sum())
    return Counts(users, n_items, n, float(n / users) if users else 0.0, float(np.median(lengths)) if users else 0.0,
                  float(distinct_pairs / (users * n_items)) if users and n_items else 0.0)


def dataset_stats(spec: DatasetSpec, protocol: dict[str, Any] | None = None) -> dict[str, Any]:
    """Counts of the raw interactions (as read) and of the preprocessed sequences, plus each step. Under
    ``protocol=session`` (its config given), also the session split's counts beside the published ones."""
    directory = dataset_dir(spec)
    if not directory.exists():
        raise DataError(f"dataset directory not found: {directory}; {fetch_hint(spec.files_of, directory, spec.options)}")
    try:
        df = read_interactions(spec.reader, directory, **spec.options)
    except MissingData as e:
        raise MissingData(f"{e}; {fetch_hint(spec.files_of, directory, spec.options)}") from None
    pairs = int((~df.duplicated(["user", "item"])).sum())
    raw = counts_from_lengths(df["user"].value_counts().to_numpy(), int(df["item"].nunique()), pairs)
    stats: dict[str, Any] = {"dataset": spec.name, "reader": spec.reader, "path": str(directory), "options": spec.options,
                             "preprocess": asdict(spec.preprocess), "raw": asdict(raw), "preprocessed": None, "steps": []}
    try:
        prepared = preprocess(df, spec.preprocess)
    except DataError as e:  # the raw counts still stand; say why nothing is left
        stats["error"] = str(e)
        return stats
    seq = prepared.sequences
    user_of = np.repeat(np.arange(prepared.n_users), seq.lengths)
    pairs = len(np.unique(user_of * (prepared.n_items + 1) + seq.items))
    stats["preprocessed"] = asdict(counts_from_lengths(seq.lengths, prepared.n_items, pairs))
    stats["steps"] = [{"step": s, "users": u, "items": i, "interactions": n} for s, u, i, n in prepared.steps]
    if protocol is not None and protocol.get("name") == "session":
        options = {k: v for k, v in protocol.items() if k in inspect.signature(session_split).parameters}
        info = session_split(seq, prepared.user_ids, prepared.item_ids, **options).session
        stats["session_steps"] = [{"step": s, "users": u, "items": i, "interactions": n} for s, u, i, n in info.steps]
        stats["session"] = {k: v for k, v in asdict(info).items() if k != "steps"}
        if spec.name in PUBLISHED:
            stats["published"] = asdict(PUBLISHED[spec.name])
    if UNTIMED in df.attrs:
        stats["untimed_targets"] = untimed_target_shares(seq.times, seq.offsets, df.attrs[UNTIMED])
    return stats


def untimed_target_shares(times: np.ndarray, offsets: np.ndarray, untimed: int) -> dict[str, float]:
    """Share of leave-one-out validation (second-last) and test (last) targets that are untimed items
    (MIND's history clicks): what dataset.history_targets=false leaves out of evaluation."""
    ends, lengths = offsets[1:], np.diff(offsets)
    test = times[ends[lengths >= 1] - 1] == untimed
    valid = times[ends[lengths >= 2] - 2] == untimed
    return {"valid": float(valid.mean()) if len(valid) else 0.0, "test": float(test.mean()) if len(test) else 0.0}


# The session split's counts in the published tables' terms: (label, key in SessionInfo, key in Published)
SESSION_ROWS = [("clicks", "clicks", "clicks"), ("training sessions (prefixes)", "train_examples", "train_examples"),
                ("test sessions (prefixes)", "test_examples", "test_examples"),
                ("items (training window)", "window_items", "items"), ("average length", "avg_len", "avg_len")]


def session_table(stats: dict[str, Any]) -> str:
    """The session split's counts, beside the published table's row when the preset has one."""
    ours, published = stats["session"], stats.get("published")

    def text(value: Any) -> str:
        return f"{value:.2f}" if isinstance(value, float) else f"{value:,}"

    frame = pd.DataFrame([{"count": label, "this data": text(ours[key]),
                           **({"published (SR-GNN Table 1)": text(published[theirs])} if published else {})}
                          for label, key, theirs in SESSION_ROWS])
    return (f"session split: test = sessions ending in the last {ours['test_days']:g} days (after "
            f"{time_text(ours['split_time'])}); catalogue ranked: {ours['items']:,} items; of the training examples "
            f"{ours['valid_examples']:,} ({ours['valid_sessions']:,} newest sessions) are held out for validation\n"
            + frame.to_string(index=False))


def stats_table(stats: dict[str, Any]) -> str:
    """A plain-text table: raw, each preprocessing step, final (then the session protocol's steps)."""
    def counted(steps: list[dict[str, Any]]) -> list[tuple[str, dict[str, Any]]]:
        return [(s["step"], {**s, "avg_len": s["interactions"] / s["users"] if s["users"] else 0.0, "median_len": None,
                             "density": None}) for s in steps]

    rows = [("raw", stats["raw"])] + counted(stats["steps"][1:])
    if stats["preprocessed"]:
        rows.append(("preprocessed", stats["preprocessed"]))
    rows += counted(stats.get("session_steps", []))
    frame = pd.DataFrame([{
        "stage": name, "users": f"{c['users']:,}", "items": f"{c['items']:,}", "interactions": f"{c['interactions']:,}",
        "avg len": f"{c['avg_len']:.2f}", "median len": "-" if c["median_len"] is None else f"{c['median_len']:g}",
        "density": "-" if c["density"] is None else f"{c['density']:.3%}" if c["density"] >= 1e-4 else f"{c['density']:.2e}",
    } for name, c in rows])
    text = f"{stats['dataset']} ({stats['path']})\n" + frame.to_string(index=False)
    if "untimed_targets" in stats:
        shares = stats["untimed_targets"]
        text += (f"\nleave-one-out targets that are untimed history items: valid {shares['valid']:.1%}, test {shares['test']:.1%} "
                 "(dataset.history_targets=false evaluates only the users whose targets are timed)")
    if "session" in stats:
        text += "\n" + session_table(stats)
    return text + (f"\npreprocessed: nothing left: {stats['error']}" if "error" in stats else "")


def stats_json(stats: dict[str, Any]) -> str:
    return json.dumps(stats, sort_keys=True, default=str)
