"""How far back each sequence model looks: occlusion of one history item at a time.

For a sample of test users, the model's top item under the full test history is found (history
masked as in the evaluation); then for every distance d = 1 (the newest history item) .. depth the
history without the item at distance d is scored again. The change at d is the top item's score with
the full history minus its score without that item (positive: the item supported the recommendation).
Scores of different models have different scales, so each user's changes are also given as shares,
|change_d| / sum over d' of |change_d'|, which are comparable across models. A user counts at d only
if their history has an item there. Needs the fitted models: records written with trainer.save_model=true.

``seqrec explain RECORD user=U`` prints, for one user, the history items that move the top item most.
"""

from __future__ import annotations

import sys
import warnings
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd
import torch

from benchmark.data.split import SplitData
from benchmark.errors import BenchmarkError
from benchmark.models.base import Batch, Recommender, top_n
from benchmark.models.persist import load_model
from benchmark.record import MODEL_FILE, read_metrics
from benchmark.report.runs import Group, ReportError, Run

ROWS_PER_BATCH = 2048  # occluded histories scored at once (times n_items + 1 scores in memory)


@dataclass
class Occlusion:
    """Per user (rows) and distance d = 1..depth (columns)."""

    top: np.ndarray  # int64 [U] the top item under the full history
    change: np.ndarray  # float64 [U, depth] its score minus its score without the item at d; NaN: no item there
    items: np.ndarray  # int64 [U, depth] the history item at d (0: none)

    def shares(self) -> np.ndarray:
        """|change| / the user's total |change| over d, [U, depth]; NaN where the total is 0 (nothing moves it)."""
        size = np.abs(self.change)
        total = np.nansum(size, axis=1, keepdims=True)
        with np.errstate(invalid="ignore", divide="ignore"):
            return np.where(total > 0, size / total, np.nan)


def without_each_of_the_newest(history: torch.Tensor, depth: int) -> torch.Tensor:
    """[B, depth, L]: row (b, d - 1) is history b (left-padded, [B, L]) without its item at distance d,
    the older items moved one place right (the history stays left-padded)."""
    width = history.shape[1]
    padded = torch.cat([torch.zeros_like(history[:, :1]), history], dim=1)  # [B, L + 1], column j = history[j - 1]
    column = torch.arange(width)
    cut = width - torch.arange(1, depth + 1)  # the column of the item at distance d
    source = torch.where(column[None, :] <= cut[:, None], column[None, :], column[None, :] + 1)  # [depth, L]
    return padded[:, None, :].expand(-1, depth, -1).gather(2, source[None].expand(len(history), -1, -1))


@torch.no_grad()
def occlusion(model: Recommender, users: torch.Tensor, history: torch.Tensor, depth: int,
              mask_history: bool, times: torch.Tensor | None = None) -> Occlusion:
    """The occlusion of the newest ``depth`` history items for each user ([U] ids, [U, L] left-padded histories,
    and their timestamps [U, L] for models that read them: an item leaves with its time)."""
    if history.shape[1] < depth:
        history = torch.nn.functional.pad(history, (depth - history.shape[1], 0))
        times = None if times is None else torch.nn.functional.pad(times, (depth - times.shape[1], 0))
    step = max(1, ROWS_PER_BATCH // (depth + 1))
    tops, changes = [], []
    for lo in range(0, len(users), step):
        u, h = users[lo:lo + step], history[lo:lo + step]
        t = None if times is None else times[lo:lo + step]
        scores = model.score(Batch(u, h, t)).cpu()
        excluded = torch.zeros(scores.shape, dtype=torch.bool)
        excluded[:, 0] = True
        if mask_history:
            excluded.scatter_(1, h, True)
        top = top_n(scores, 1, excluded)  # [b, 1]
        occluded = without_each_of_the_newest(h, depth).reshape(len(h) * depth, -1)
        occluded_times = None if t is None else without_each_of_the_newest(t, depth).reshape(len(h) * depth, -1)
        again = model.score(Batch(u.repeat_interleave(depth), occluded, occluded_times)).cpu()
        kept = again.gather(1, top.repeat_interleave(depth, dim=0)).view(len(h), depth)
        changes.append((scores.gather(1, top) - kept).double().numpy())
        tops.append(top[:, 0].numpy())
    items = history[:, -depth:].flip(1).numpy()  # column d - 1 = the item at distance d
    change = np.concatenate(changes) if changes else np.zeros((0, depth))
    return Occlusion(np.concatenate(tops) if tops else np.zeros(0, np.int64), np.where(items > 0, change, np.nan), items)


# ---- records -------------------------------------------------------------------------------------

def model_path(run_dir: Path) -> Path:
    """The record's fitted model file; ReportError naming trainer.save_model where there is none."""
    path = Path(run_dir) / MODEL_FILE
    if not path.is_file():
        raise ReportError(f"{run_dir} has no {MODEL_FILE}: attribution needs the fitted model; move the record away "
                          "and re-run it with trainer.save_model=true")
    return path


def fitted_model(run_dir: Path, config: dict) -> Recommender:
    """The record's model, rebuilt from its config and given back its fitted state."""
    return load_model(model_path(run_dir), config["model"])


def record_split(config: dict, run_dir: Path) -> SplitData:
    """The split a record was evaluated on, refused if the data or its preparation changed since."""
    from benchmark.run import prepare_run_split

    prepared = prepare_run_split(config, refit=bool(config["protocol"].get("refit")))[0]  # the split tested on
    recorded = read_metrics(run_dir).get("split_key")
    if recorded and recorded != prepared.split_key:
        raise ReportError(f"{run_dir} was evaluated on another split than its config gives now (the data or its "
                          "preparation changed); re-run it to explain it")
    return prepared.split


def sample_rows(n: int, size: int, seed: int) -> np.ndarray:
    """``size`` of the ``n`` test users (all when fewer), drawn without replacement, sorted."""
    rng = np.random.default_rng(seed)
    return np.sort(rng.choice(n, size=min(size, n), replace=False))


def attribution_points(groups: list[Group], n_users: int, depth: int, seed: int = 0) -> pd.DataFrame:
    """One row per (dataset, sequence model, distance): mean change and mean share over the sampled users
    (each user's value averaged over the model's seeds first), with FIGURE_CONFIDENCE t-intervals."""
    from benchmark.report.build import mean_interval
    from benchmark.report.families import family_of

    sequence_models = {g.dataset: [m for m in g.models if not g.is_baseline(m)] for g in groups}
    for g in groups:  # every record is checked before any work
        for m in sequence_models[g.dataset]:
            for r in g.runs_of(m):
                model_path(r.dir)
    rows = []
    for g in groups:
        models = sequence_models[g.dataset]
        if not models:
            continue
        first: Run = g.runs_of(models[0])[0]
        split = record_split(first.config, first.dir)
        picked = sample_rows(len(split.test), n_users, seed)
        users = torch.from_numpy(split.test.users[picked])
        history = split.test.histories.padded(picked)
        times = split.test.histories.padded(picked, of_times=True)
        for m in models:
            runs = g.runs_of(m)
            mask = bool(runs[0].metrics.get("mask_history", True))
            per_seed = [occlusion(fitted_model(r.dir, r.config), users, history, depth, mask, times) for r in runs]
            with warnings.catch_warnings():  # 'Mean of empty slice': no item at d in any seed, NaN as meant
                warnings.simplefilter("ignore", RuntimeWarning)
                change = np.nanmean([o.change for o in per_seed], axis=0)
                share = np.nanmean([o.shares() for o in per_seed], axis=0)
            for d in range(depth):
                c, s = change[:, d], share[:, d]
                c_mean, c_low, c_high = mean_interval(c[~np.isnan(c)])
                s_mean, s_low, s_high = mean_interval(s[~np.isnan(s)])
                rows.append({"dataset": g.dataset, "model": m, "family": family_of(runs[0]) or "other sequence model",
                             "distance": d + 1, "n_users": int((~np.isnan(c)).sum()), "mean_change": c_mean,
                             "change_ci_low": c_low, "change_ci_high": c_high, "mean_share": s_mean,
                             "share_ci_low": s_low, "share_ci_high": s_high, "seeds": len(runs)})
    if not rows:
        raise ReportError("--attribution: no sequence model among the runs (non-sequential baselines do not read order)")
    return pd.DataFrame(rows)


ATTRIBUTION_TITLE = ("how far back each model looks: share of the top item's score change when the history item at "
                     "distance d is removed\nmean over sampled test users (each averaged over seeds), 95% t-interval")


# ---- seqrec explain ------------------------------------------------------------------------------

def explain(run_dir: Path, user: str, depth: int = 50) -> tuple[str, pd.DataFrame]:
    """The top item for ``user`` (original id) of a record's model, and the user's newest ``depth`` history
    items with the top item's score change when each is removed, the largest |change| first."""
    from benchmark.record import read_record

    try:
        config = read_record(run_dir)["config"]
    except (OSError, ValueError) as e:
        raise ReportError(f"cannot read run record {run_dir}: {e}") from None
    model = fitted_model(run_dir, config)
    split = record_split(config, run_dir)
    internal = np.flatnonzero(split.user_ids.astype(str) == user)
    row = np.flatnonzero(split.test.users == internal[0]) if len(internal) else []
    if not len(row):
        raise ReportError(f"user={user} is not a test user of {run_dir}")
    history = split.test.histories.padded(row)
    depth = max(1, min(depth, int((history > 0).sum())))
    mask = bool(read_metrics(run_dir).get("mask_history", True))
    result = occlusion(model, torch.from_numpy(split.test.users[row]), history, depth, mask,
                       split.test.histories.padded(row, of_times=True))
    table = pd.DataFrame({"distance": np.arange(1, depth + 1), "item": split.item_ids[result.items[0]],
                          "change": result.change[0], "share": result.shares()[0]})
    table = table.iloc[np.argsort(-np.abs(table["change"].to_numpy()), kind="stable")].reset_index(drop=True)
    return str(split.item_ids[result.top[0]]), table


EXPLAIN_USAGE = "usage: seqrec explain RECORD_DIR user=USER [top=10] [depth=50]"


def explain_main(argv: list[str]) -> int:
    """`seqrec explain RECORD_DIR user=U [top=N] [depth=D]`: one line per history item, most influential first."""
    try:
        if not argv or argv[0] in ("-h", "--help"):
            print(EXPLAIN_USAGE)
            return 0 if argv else 2
        options = {"top": "10", "depth": "50"}
        for arg in argv[1:]:
            key, sep, value = arg.partition("=")
            if not sep or key not in ("user", "top", "depth"):
                raise ReportError(f"{arg!r} is not an option; {EXPLAIN_USAGE}")
            options[key] = value
        if "user" not in options:
            raise ReportError(f"user=USER is missing; {EXPLAIN_USAGE}")
        numbers = {}
        for key in ("top", "depth"):
            if not options[key].isdigit() or int(options[key]) < 1:
                raise ReportError(f"{key}={options[key]} must be an integer >= 1")
            numbers[key] = int(options[key])
        record = Path(argv[0])
        if not (record / "metrics.json").is_file():
            raise ReportError(f"{record} is not a run record (no metrics.json)")
        top_item, table = explain(record, options["user"], numbers["depth"])
    except BenchmarkError as e:
        print(f"seqrec explain: error: {e}", file=sys.stderr)
        return 2
    print(f"user {options['user']}: top recommendation {top_item}; history items that move its score most "
          "(distance 1 = newest; change = score with the item minus without it):")
    print(table.head(numbers["top"]).to_string(index=False, float_format=lambda v: f"{v:.4g}"))
    return 0

