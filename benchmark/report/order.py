"""Does order matter here? The order control of ``dataset.shuffle_order=true`` read back from the records.

Per dataset, the sequence model with the best mean *validation* metric among the runs in true order (chosen
without test data) is compared with the same configuration trained and evaluated on shuffled order, by the
report's paired test on per-user test metrics (each user's value averaged over seeds), the comparisons of
all datasets corrected as one family. Runs in shuffled order are a control, not a model: they stay out of
the results table (their training data differ, so they are no paired comparison with the others there).
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
import pandas as pd

from benchmark import stats
from benchmark.report.runs import Group, ReportError, Run
from benchmark.report.table import DOWN, UP, Cell, Column, Table

ORDER_ROW = "order effect"  # the families table's line
ORDER_COLUMNS = ("dataset", "protocol", "model", "metric", "valid_mean", "seeds_true", "seeds_shuffled", "n_users",
                 "mean_true", "mean_shuffled", "mean_diff", "ci_low", "ci_high", "effect_size", "p_value", "p_corrected",
                 "significant", "test", "correction", "verdict")


def is_shuffled(run: Run) -> bool:
    """Whether the run was trained with the order control on (records before it have no such key: off)."""
    return bool((run.config.get("dataset") or {}).get("shuffle_order", False))


def set_aside_shuffled(runs: list[Run]) -> tuple[list[Run], list[Run]]:
    """(runs in true order, runs in shuffled order)."""
    shuffled = [r for r in runs if is_shuffled(r)]
    true = [r for r in runs if not is_shuffled(r)]
    if shuffled and not true:
        raise ReportError(f"all {len(shuffled)} runs were trained with dataset.shuffle_order=true; the order control "
                          "needs the same models in true order (dataset.shuffle_order=false) too")
    return true, shuffled


@dataclass
class OrderEffect:
    table: Table
    rows: pd.DataFrame  # ORDER_COLUMNS, one row per dataset


def _valid_mean(runs: list[Run], metric: str) -> float:
    values = [float(r.metrics["valid"][metric]) for r in runs if metric in (r.metrics.get("valid") or {})]
    return float(np.mean(values)) if values else math.nan


def _per_user(runs: list[Run], users: np.ndarray, metric: str) -> np.ndarray:
    """Each user's metric averaged over the runs' seeds, in the order of ``users`` (pairing is by user id)."""
    columns = []
    for r in runs:
        table = r.per_user.set_index(r.per_user["user"].astype(str))
        if metric not in table.columns:
            raise ReportError(f"{r.dir / 'per_user.parquet'} has no column {metric!r}; the order effect needs per-user values")
        if len(table) != len(users) or not table.index.isin(users).all():
            raise ReportError(f"cannot compare {r.dir} with the runs in true order: it was evaluated on other users "
                              f"({len(table)} vs {len(users)})")
        columns.append(table[metric].loc[users].to_numpy(dtype=np.float64))
    return np.mean(columns, axis=0)


def _verdict(diff: float, significant: bool) -> str:
    if not significant:
        return f"no significant order effect ({diff:+.4f})"
    return f"order helps here by {diff:+.4f} (significant)" if diff > 0 else f"order hurts here by {diff:+.4f} (significant)"


def order_effect(groups: list[Group], shuffled: list[Run], metric: str, higher_is_better: bool, test: str = "ttest",
                 correction: str = "holm", alpha: float = 0.05, resamples: int = 10_000, stat_seed: int = 0) -> OrderEffect:
    """One row per dataset of ``groups`` (the runs in true order): its best sequence model on validation
    ``metric`` against the same configuration (same row label) in ``shuffled``."""
    sign = 1.0 if higher_is_better else -1.0
    rows = []
    for g in groups:
        sequence = [m for m in g.models if not g.is_baseline(m)]
        valid = {m: _valid_mean(g.runs_of(m), metric) for m in sequence}
        eligible = [m for m in sequence if not math.isnan(valid[m])]
        row = dict.fromkeys(ORDER_COLUMNS, math.nan) | {"dataset": g.dataset, "protocol": g.protocol, "metric": metric,
                                                         "model": "", "significant": False, "test": test,
                                                         "correction": correction, "verdict": ""}
        if not eligible:
            rows.append(row | {"verdict": "no sequence model with a validation value in true order"})
            continue
        best = max(eligible, key=lambda m: (sign * valid[m], m))
        true_runs = g.runs_of(best)
        control = sorted((r for r in shuffled if r.dataset == g.dataset and r.protocol == g.protocol and r.label == best),
                         key=lambda r: r.seed)
        row |= {"model": best, "valid_mean": valid[best], "seeds_true": len(true_runs), "seeds_shuffled": len(control)}
        if not control:
            rows.append(row | {"verdict": f"no runs of {best} with dataset.shuffle_order=true"})
            continue
        users = np.asarray(g.users).astype(str)
        a, b = _per_user(true_runs, users, metric), _per_user(control, users, metric)
        res = stats.paired_test(a, b, test, alpha, resamples, stat_seed)
        row |= {"n_users": res.n, "mean_true": float(a.mean()), "mean_shuffled": float(b.mean()), "mean_diff": res.mean_diff,
                "ci_low": res.ci_low, "ci_high": res.ci_high, "effect_size": res.effect_size, "p_value": res.p_value}
        rows.append(row)
    frame = pd.DataFrame(rows, columns=list(ORDER_COLUMNS))
    tested = frame["p_value"].notna().to_numpy()
    frame["p_corrected"] = np.nan
    frame.loc[tested, "p_corrected"] = stats.correct(frame.loc[tested, "p_value"].to_numpy(dtype=np.float64), correction)
    frame["significant"] = frame["p_corrected"] <= alpha
    frame["verdict"] = [_verdict(d, bool(sig)) if test_made else v
                        for v, d, sig, test_made in zip(frame["verdict"], frame["mean_diff"], frame["significant"], tested)]
    return OrderEffect(_table(frame, metric), frame)


def _marker(r: pd.Series) -> str:
    return "" if not r["significant"] else UP if r["mean_diff"] > 0 else DOWN


def _table(frame: pd.DataFrame, metric: str) -> Table:
    columns = [Column("", "model"), Column("", f"true order {metric}"), Column("", f"shuffled {metric}"),
               Column("", "difference"), Column("", "p (corrected)"), Column("", "verdict")]
    cells: dict[tuple[str, int], Cell] = {}
    for _, r in frame.iterrows():
        d = r["dataset"]
        cells[(d, 0)] = Cell(math.nan, text=r["model"] or "–")
        if not pd.isna(r["mean_diff"]):
            cells[(d, 1)] = Cell(r["mean_true"])
            cells[(d, 2)] = Cell(r["mean_shuffled"])
            cells[(d, 3)] = Cell(r["mean_diff"], text=f"{r['mean_diff']:+.4f} [{r['ci_low']:+.4f}, {r['ci_high']:+.4f}]",
                                 marker=_marker(r))
            cells[(d, 4)] = Cell(r["p_corrected"], text=f"{r['p_corrected']:.3g}")
        cells[(d, 5)] = Cell(math.nan, text=str(r["verdict"]))
    return Table(list(frame["dataset"]), columns, cells, caption="", label="tab:order", row_header="Dataset")


def order_caption(effect: OrderEffect, metric: str, test: str, correction: str, alpha: float) -> str:
    n = int(effect.rows["p_value"].notna().sum())
    corr = ("no correction for multiple comparisons" if correction == "none" else
            f"{stats.CORRECTION_NAMES[correction]}-corrected over the {n} dataset{'s' * (n != 1)}")
    return (f"Does order matter? Per dataset, the sequence model with the best validation {metric} in true order (mean over "
            f"seeds; chosen without test data) against the same configuration trained with dataset.shuffle_order=true "
            f"(each user's training items and evaluation histories in a random order per seed; targets unchanged). "
            f"Difference = true − shuffled test {metric}, with its {1 - alpha:.0%} interval; two-sided "
            f"{stats.TEST_NAMES[test]} on per-user {metric} averaged over seeds, {corr}, α = {alpha:g}; "
            f"{UP}/{DOWN}: order helps/hurts significantly.")


def add_order_row(table: Table, groups: list[Group], effect: OrderEffect) -> None:
    """The families table's order line: per dataset, the model compared and true − shuffled, with its marker."""
    by_dataset = effect.rows.set_index("dataset")
    table.rows.append(ORDER_ROW)
    for j, g in enumerate(groups):
        if g.dataset not in by_dataset.index:
            continue
        r = by_dataset.loc[g.dataset]
        if not pd.isna(r["mean_diff"]):
            table.cells[(ORDER_ROW, j)] = Cell(r["mean_diff"], text=f"{r['model']} {r['mean_diff']:+.4f}",
                                               marker=_marker(r))
    table.caption += (f" Last row ({ORDER_ROW}): true − shuffled order test {effect.rows['metric'].iloc[0]} of the dataset's "
                      "best sequence model on validation (order_effect.md), marker by its own corrected paired test.")
