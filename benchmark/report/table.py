"""Aggregate run records over seeds into a results table."""

from __future__ import annotations

from pathlib import Path
from typing import Iterable

import pandas as pd

from benchmark.record import read_record


def runs_frame(run_dirs: Iterable[Path]) -> pd.DataFrame:
    """One row per run: dataset, protocol, model, seed, dir, and every test metric plus timings."""
    rows = []
    for d in run_dirs:
        rec = read_record(Path(d))
        m = rec["metrics"]
        rows.append({
            "dataset": m["dataset"], "protocol": m["protocol"], "model": m["model"], "seed": m["seed"],
            "dir": str(d), "train_seconds": m["train_seconds"], "eval_seconds": m["eval_seconds"],
            "n_params": m["n_params"], "ms_per_user": m.get("ms_per_user"), **m["test"],
        })
    return pd.DataFrame(rows)


def mean_std_table(runs: pd.DataFrame, metrics: list[str], extra: list[str] = ("train_seconds",)) -> pd.DataFrame:
    """Rows (dataset, protocol, model); cells 'mean ± std' over seeds (just 'mean' for one seed)."""
    cols = list(metrics) + list(extra)
    grouped = runs.groupby(["dataset", "protocol", "model"], sort=True)
    out = grouped[cols].agg(["mean", "std", "count"])

    def fmt(mean: float, std: float, n: int, digits: int) -> str:
        return f"{mean:.{digits}f}" if n < 2 else f"{mean:.{digits}f} ± {std:.{digits}f}"

    table = pd.DataFrame(index=out.index)
    for c in cols:
        digits = 1 if c.endswith("seconds") else 4
        table[c] = [fmt(m, s, int(n), digits) for m, s, n in zip(out[(c, "mean")], out[(c, "std")], out[(c, "count")])]
    table["seeds"] = grouped.size()
    return table.reset_index()


def to_markdown(table: pd.DataFrame) -> str:
    header = "| " + " | ".join(map(str, table.columns)) + " |"
    sep = "|" + "|".join("---" for _ in table.columns) + "|"
    body = ["| " + " | ".join(map(str, row)) + " |" for row in table.itertuples(index=False)]
    return "\n".join([header, sep, *body])
