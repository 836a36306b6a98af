"""The benchmark's question as one table: which sequence model family (RNN, CNN, attention; encoder-only
or encoder-decoder) beats the best non-sequential baseline, on which dataset (domain), significantly?

Each family is represented on each dataset by its model with the best mean *validation* metric, so
choosing the representative looks at no test data; its test difference to the reference and its
significance marker are the main table's (same test, same correction family): no new test is made.
"""

from __future__ import annotations

import math

import pandas as pd

from benchmark.report.runs import Group, Run
from benchmark.report.table import DOWN, UP, Cell, Column, Table

ENCODER_FAMILY = {"rnn": "RNN", "caser": "CNN", "nextitnet": "CNN", "attention": "attention", "hstu": "attention"}
ARCHITECTURES = {"next_item": "encoder-only", "autoregressive": "encoder–decoder"}
FAMILY_ORDER = [f"{family} {arch}" for arch in ARCHITECTURES.values() for family in ("RNN", "CNN", "attention")]
REFERENCE_ROW = "reference"


def family_of(run: Run) -> str | None:
    """'RNN encoder-only', 'attention encoder–decoder', ...; None for a non-sequential baseline and for a
    model that does not declare one of the known encoders and heads (it stays out of the families table)."""
    if run.baseline:
        return None
    model = run.config.get("model") or {}
    encoder, head = ENCODER_FAMILY.get(model.get("encoder")), ARCHITECTURES.get(model.get("head"))
    return f"{encoder} {head}" if encoder and head else None


def domain_of(dataset: str) -> str | None:
    from benchmark.data.catalog import lookup
    from benchmark.errors import BenchmarkError

    try:
        domain = lookup(dataset).domain
    except BenchmarkError:
        return None
    return None if domain == "generic" else domain


def _mean_of(runs: list[Run], split: str, metric: str) -> float:
    values = [float(r.metrics[split][metric]) for r in runs if metric in (r.metrics.get(split) or {})]
    return sum(values) / len(values) if values else math.nan


def unvalidated(groups: list[Group], metric: str) -> list[str]:
    """"MODEL on DATASET" for each model of a known family whose records carry no validation value of
    ``metric``: it cannot be chosen without test data, so it stays out of the table."""
    return [f"{m} on {g.dataset}" for g in groups for m in g.models
            if family_of(g.runs_of(m)[0]) is not None and math.isnan(_mean_of(g.runs_of(m), "valid", metric))]


# families.csv's columns, whether or not a comparison was made (a metric without per-user values has none).
ROW_COLUMNS = ("dataset", "domain", "family", "model", "candidates", "seeds", "valid_mean", "test_mean", "metric",
               "reference", "mean_diff", "ci_low", "ci_high", "p_corrected", "significant", "direction")


def family_rows(groups: list[Group], refs: dict[str, str | None], comparisons: pd.DataFrame, metric: str,
                higher_is_better: bool = True) -> pd.DataFrame:
    """One row per (dataset, family): the representative (the best validation mean, in the metric's
    direction, as the reference is chosen), its validation and test means over seeds, and its comparison
    with the reference from ``comparisons`` (the main table's, slice 'all'). Where no test was made (a
    metric without per-user values, or the reference itself) the difference is that of the test means."""
    tested = comparisons[(comparisons["slice"] == "all") & (comparisons["metric"] == metric)] if len(comparisons) else comparisons
    sign = 1.0 if higher_is_better else -1.0
    rows = []
    for g in groups:
        by_family: dict[str, list[str]] = {}
        for model in g.models:
            family = family_of(g.runs_of(model)[0])
            if family is not None:
                by_family.setdefault(family, []).append(model)
        for family, models in by_family.items():
            valid = {m: _mean_of(g.runs_of(m), "valid", metric) for m in models}
            eligible = [m for m in models if not math.isnan(valid[m])]
            if not eligible:
                continue
            best = max(eligible, key=lambda m: (sign * valid[m], m))  # ties: the later name, deterministic
            ref = refs.get(g.dataset)
            test_mean = _mean_of(g.runs_of(best), "test", metric)
            row = {"dataset": g.dataset, "domain": domain_of(g.dataset), "family": family, "model": best,
                   "candidates": ",".join(models), "seeds": len(g.runs_of(best)), "valid_mean": valid[best],
                   "test_mean": test_mean, "metric": metric, "reference": ref,
                   "mean_diff": math.nan, "ci_low": math.nan, "ci_high": math.nan, "p_corrected": math.nan,
                   "significant": False, "direction": ""}
            match = tested[(tested["block"] == g.dataset) & (tested["model"] == best)] if len(tested) else tested
            if len(match):
                c = match.iloc[0]
                row |= {"mean_diff": c["mean_diff"], "ci_low": c["ci_low"], "ci_high": c["ci_high"],
                        "p_corrected": c["p_corrected"], "significant": bool(c["significant"]),
                        "direction": (UP if c["effect_size"] > 0 else DOWN) if c["significant"] else ""}
            elif ref is not None:  # untested: the difference of the test means, without CI or marker
                row["mean_diff"] = 0.0 if best == ref else test_mean - _mean_of(g.runs_of(ref), "test", metric)
            rows.append(row)
    return pd.DataFrame(rows, columns=list(ROW_COLUMNS))


def families_table(groups: list[Group], rows: pd.DataFrame, refs: dict[str, str | None], metric: str) -> Table:
    """Families down, datasets across; a cell is the representative and its test difference to the
    reference, with the main table's marker. The first row names each dataset's reference."""
    columns = [Column(g.dataset + (f" ({d})" if (d := domain_of(g.dataset)) else ""), metric) for g in groups]
    families = [f for f in FAMILY_ORDER if f in set(rows["family"])]
    cells: dict[tuple[str, int], Cell] = {}
    for j, g in enumerate(groups):
        ref = refs.get(g.dataset)
        if ref is not None:
            ref_mean = _mean_of(g.runs_of(ref), "test", metric)
            cells[(REFERENCE_ROW, j)] = Cell(ref_mean, text=f"{ref} {ref_mean:.4f}")
        for r in rows[rows["dataset"] == g.dataset].itertuples(index=False):  # rows has ROW_COLUMNS
            text = f"{r.model} {r.test_mean:.4f}" if pd.isna(r.mean_diff) else f"{r.model} {r.mean_diff:+.4f}"
            cells[(r.family, j)] = Cell(r.test_mean, text=text, marker=r.direction)
    return Table([REFERENCE_ROW, *families], columns, cells, caption="", row_header="Family", label="tab:families",
                 label_groups=True)  # the header names the dataset even when there is one
