"""From run records to a report: tables with significance markers, pairwise tests, Friedman/Nemenyi
across datasets, slices by history length / target popularity / time, efficiency and setup.

Tests compare every model with one reference model per dataset on per-user metrics, users aligned
by id and each user's metric first averaged over the model's seeds. All comparisons in one table
form one family for the multiple-comparison correction.
"""

from __future__ import annotations

import logging
import math
import os
import re
import shlex
import shutil
import tempfile
from dataclasses import dataclass, field, replace
from datetime import datetime, timezone
from pathlib import Path
from typing import Any, Callable, Iterable

import numpy as np
import pandas as pd

from benchmark import stats
from benchmark.files import umask_mode
from benchmark.provenance import mixed_code_note
from benchmark.report.order import set_aside_shuffled
from benchmark.report.runs import Group, ReportError, Run, group_runs, load_runs, split_mean
from benchmark.report.table import (DOWN, UP, Cell, Column, Table, render_csv, render_latex, render_markdown,
                                    tex_escape, to_markdown)

log = logging.getLogger(__name__)

DEFAULT_METRICS = ("ndcg@10", "hr@10", "mrr@10")
# Headline metrics per protocol when --metrics is not given; sampled_* versions join when recorded.
PROTOCOL_METRICS = {"loo": DEFAULT_METRICS, "horizon": ("ndcg@10", "recall@10")}
# Metrics where more is better: these columns get best/second highlighting.
HIGHER_IS_BETTER = ("hr@", "ndcg@", "mrr@", "recall@", "precision@", "map@", "coverage@", "sampled_")
HISTORY_EDGES = (5, 20)  # cold-start buckets: <= 5, 6-20, > 20 training interactions
SLICES = ("history", "popularity", "time")
PROTOCOL_TEXT = {
    "loo": "leave-one-out (each user's last interaction is the test target, the second-last the validation target)",
    "horizon": "horizon-k with {k} (each user's last k interactions are the test target set, the k before them the validation "
               "set; Recall and NDCG of the model's ranked list against the set)",
    "temporal": "global temporal split ({cuts}; models train on the interactions before the validation cut, where the k-core "
                "and popularity are counted too; the validation and the test target is each user's first interaction after "
                "the validation and the test cut, predicted from the whole history before it; users without training history "
                "or without a target are not evaluated)",
    "session": "session-based split as in SR-GNN (test = the sessions of the last days; every prefix of a test session "
               "is one test user, its next click the target; training on the newest training sessions, repeats kept)",
}

# protocol.refit=true runs (temporal only): what the caption adds.
REFIT_TEXT = ("; protocol.refit: after model selection on validation each model was retrained from scratch on every "
              "interaction before the test cut (catalogue, k-core and popularity counted there) for the epoch count "
              "validation chose, and tested; validation figures are the first fit's")


@dataclass
class ReportOptions:
    metrics: list[str] | None = None  # None: PROTOCOL_METRICS of the runs' protocol
    reference: str | None = None  # model label; None: the best non-sequential baseline per dataset
    test: str = "ttest"
    correction: str = "holm"
    alpha: float = 0.05
    resamples: int = 10_000  # permutations (randomization) or bootstrap samples
    stat_seed: int = 0
    slices: list[str] = field(default_factory=list)
    efficiency: bool = False
    setup: bool = False
    protocol: str | None = None
    candidates: str | None = None  # "full" or "sampled": report only runs with this candidate set
    name: str | None = None  # the report's name in LaTeX labels (tab:<name>-results); None: the source folder's
    latex_wide: bool = False  # LaTeX tables as table* scaled to \textwidth
    order_effect: bool = False  # true vs shuffled order (dataset.shuffle_order runs): benchmark/report/order.py
    attribution: bool = False  # occlusion by history distance of every sequence model (needs model.pt)
    attribution_users: int = 500  # test users sampled per dataset (seeded by stat_seed)
    attribution_depth: int = 20  # distances 1 (newest) .. depth

    def check(self) -> None:
        if self.test not in stats.TESTS:
            raise ReportError(f"--test {self.test!r} is unknown; choose one of {', '.join(stats.TESTS)}")
        if self.correction not in stats.CORRECTIONS:
            raise ReportError(f"--correction {self.correction!r} is unknown; choose one of {', '.join(stats.CORRECTIONS)}")
        for s in self.slices:
            if s not in SLICES:
                raise ReportError(f"--slice {s!r} is unknown; choose from {', '.join(SLICES)}")
        if self.metrics is not None and not self.metrics:
            raise ReportError("--metrics is empty")
        if not 0 < self.alpha < 1:
            raise ReportError(f"--alpha {self.alpha} must be between 0 and 1")
        if self.resamples < 100:
            raise ReportError(f"--resamples {self.resamples} is too few (use >= 100)")
        if self.stat_seed < 0:  # numpy's generators take no negative seed
            raise ReportError(f"--stat-seed {self.stat_seed} must be >= 0")
        for flag, value in (("--attribution-users", self.attribution_users), ("--attribution-depth", self.attribution_depth)):
            if value < 1:
                raise ReportError(f"{flag} {value} must be >= 1")


@dataclass
class Report:
    tables: dict[str, Table]  # file stem -> table ("table", "slice_history", ...)
    pairwise: pd.DataFrame
    friedman: stats.FriedmanResult | None
    friedman_text: str
    setup: dict[str, str] = field(default_factory=dict)  # file name -> text
    # Which family beats the reference where (families.md/.tex) and its rows (families.csv); None: no sequence model
    families: tuple[Table, pd.DataFrame] | None = None
    # file stem -> (points, title) of a figure: "slice_history", ..., "efficiency"
    figures: dict[str, tuple[pd.DataFrame, str]] = field(default_factory=dict)
    # variants.csv: per configuration of a model name that has several, its differing settings and record folders
    variants: pd.DataFrame | None = None
    # model -> its colour, marker and line in every figure of the report (plots.model_styles)
    styles: dict[str, Any] = field(default_factory=dict)
    order_effect: Any = None  # benchmark.report.order.OrderEffect with --order-effect


def higher_is_better(metric: str) -> bool:
    return metric.startswith(HIGHER_IS_BETTER)


# ---- slices: a slicer maps a group's per-user properties to an ordered label per user ------------

@dataclass
class Slicing:
    labels: pd.Series  # per user (index = user id), ordered categorical
    description: str


def _column(group: Group, name: str) -> pd.Series:
    props = group.user_columns()
    if name not in props.columns:
        raise ReportError(f"{group.runs[0].dir}/per_user.parquet has no column {name!r} (re-run with a newer seqrec)")
    return props[name]


def _fmt_time(t: float, fine: bool = False) -> str:
    # Unix seconds in a plausible range become dates (with the time where dates alone would not tell
    # two cuts apart); anything else (ordinal steps) stays a number.
    if 3e8 < t < 4.2e9:
        return datetime.fromtimestamp(t, tz=timezone.utc).strftime("%Y-%m-%d %H:%M:%S" if fine else "%Y-%m-%d")
    return f"{t:.10g}" if fine else f"{t:g}"


def _fmt_count(v: float, fine: bool = False) -> str:
    return f"{v:.10g}" if fine else f"{v:.4g}"


def _terciles(values: pd.Series, names: tuple[str, str, str], fmt: Callable[[float, bool], str]) -> tuple[pd.Series, str]:
    q1, q2 = np.quantile(values.to_numpy(dtype=np.float64), [1 / 3, 2 / 3])
    labels = np.where(values <= q1, names[0], np.where(values <= q2, names[1], names[2]))
    fine = q1 != q2 and fmt(q1, False) == fmt(q2, False)  # two different cuts must not read alike
    text = f"{names[0]} ≤ {fmt(q1, fine)} < {names[1]} ≤ {fmt(q2, fine)} < {names[2]}"
    return pd.Series(pd.Categorical(labels, categories=list(names), ordered=True), index=values.index), text


def slicing(group: Group, kind: str) -> Slicing:
    if kind == "history":
        h = _column(group, "history_len")
        lo, hi = HISTORY_EDGES
        names = [f"hist ≤{lo}", f"hist {lo + 1}–{hi}", f"hist >{hi}"]
        labels = np.where(h <= lo, names[0], np.where(h <= hi, names[1], names[2]))
        return Slicing(pd.Series(pd.Categorical(labels, categories=names, ordered=True), index=h.index),
                       f"users by training-history length (≤{lo}, {lo + 1}–{hi}, >{hi} interactions)")
    if kind == "popularity":
        labels, text = _terciles(_column(group, "target_pop"), ("tail", "torso", "head"), _fmt_count)
        return Slicing(labels, f"test targets by training popularity in terciles ({text} interactions)")
    labels, text = _terciles(_column(group, "target_time"), ("early", "middle", "late"), _fmt_time)
    return Slicing(labels, f"test interactions by time in terciles ({text})")


# ---- tables ----------------------------------------------------------------------------------------

@dataclass
class _Block:
    """One column group: a dataset, or one slice of a dataset."""

    group: Group
    title: str
    users: np.ndarray | None  # bool mask over group.users; None = all users


def _run_value(run: Run, metric: str, block: _Block) -> float | None:
    if block.users is None and metric in run.metrics.get("test", {}):
        return float(run.metrics["test"][metric])
    if metric not in run.per_user.columns:
        return None
    values = run.per_user[metric].to_numpy(dtype=np.float64)  # rows aligned to block.group.users
    values = values if block.users is None else values[block.users]
    return float(values.mean()) if len(values) else None


def _seed_cell(values: list[float]) -> Cell | None:
    values = [v for v in values if v is not None]
    if not values:
        return None
    return Cell(float(np.mean(values)), float(np.std(values, ddof=1)) if len(values) > 1 else None)


def _style(cells: dict[str, Cell], digits: int) -> None:
    """Bold the best, underline the second best (ties at the shown precision share a style)."""
    shown = sorted({round(c.mean, digits) for c in cells.values() if not math.isnan(c.mean)}, reverse=True)
    for c in cells.values():
        r = round(c.mean, digits)
        c.style = "best" if shown and r == shown[0] else "second" if len(shown) > 1 and r == shown[1] else ""


def choose_references(groups: list[Group], options: ReportOptions) -> dict[str, str | None]:
    """Reference per dataset: --reference, else the non-sequential baseline with the best mean
    *validation* value of the first metric (in its direction). The test set decides the markers, so it
    must not also pick the model they are measured against. A baseline whose records carry no validation
    value of that metric cannot be chosen (reference_note says so); none left: no reference."""
    refs: dict[str, str | None] = {}
    primary = options.metrics[0]
    sign = 1.0 if higher_is_better(primary) else -1.0  # e.g. rank: the lowest is the best
    for g in groups:
        if options.reference is not None:
            if options.reference not in g.models:
                raise ReportError(f"--reference {options.reference} has no runs on {g.dataset}; models there: {', '.join(g.models)}")
            refs[g.dataset] = options.reference
            continue
        scored = [(sign * v, m) for m in g.models if g.is_baseline(m)
                  if not math.isnan(v := split_mean(g.runs_of(m), "valid", primary))]
        refs[g.dataset] = max(scored)[1] if scored else None  # ties: the later name, deterministic
    return refs


def unvalidated_baselines(groups: list[Group], metric: str) -> list[str]:
    """'MODEL on DATASET' for each baseline without a recorded validation ``metric``: never a default reference."""
    return [f"{m} on {g.dataset}" for g in groups for m in g.models
            if g.is_baseline(m) and math.isnan(split_mean(g.runs_of(m), "valid", metric))]


def reference_origin(options: ReportOptions) -> str:
    """How the reference was chosen, for every caption."""
    if options.reference is not None:
        return "chosen with --reference"
    return (f"default: the non-sequential baseline with the best mean validation {options.metrics[0]} on each dataset, "
            "chosen without test data")


def reference_notes(groups: list[Group], options: ReportOptions, refs: dict[str, str | None]) -> list[str]:
    """Caption sentences on default references that could not be chosen by validation data."""
    if options.reference is not None:
        return []
    metric, notes = options.metrics[0], []
    left_out = unvalidated_baselines(groups, metric)
    if left_out:
        notes.append(f"Not eligible as reference (no validation {metric} recorded): {_join(left_out)}.")
    unreferenced = [g.dataset for g in groups if refs.get(g.dataset) is None and any(g.is_baseline(m) for m in g.models)]
    if unreferenced:
        notes.append(f"No reference on {_join(unreferenced)}: no non-sequential baseline there has a validation "
                     f"{metric}, and the test set never picks one (set --reference).")
    return notes


# pairwise.csv's columns: written as its header even when no test was made.
PAIRWISE_COLUMNS = ("dataset", "protocol", "slice", "block", "metric", "model", "reference", "n_users", "n_nonzero", "mean_model",
                    "mean_reference", "mean_diff", "ci_low", "ci_high", "ci", "effect_size", "effect", "statistic",
                    "p_value", "p_corrected", "significant", "test", "correction", "model_seeds", "model_runs",
                    "reference_runs")


def _comparisons(blocks: list[_Block], metrics: list[str], refs: dict[str, str | None], options: ReportOptions, slice_kind: str) -> pd.DataFrame:
    rows = []
    for block in blocks:
        g, ref = block.group, refs[block.group.dataset]
        if ref is None:
            continue
        for metric in metrics:
            wide = g.per_user_mean(metric)
            if ref not in wide.columns:
                continue
            if block.users is not None:
                wide = wide[block.users]
            if len(wide) < 2:
                continue
            for model in g.models:
                if model == ref or model not in wide.columns:
                    continue
                res = stats.paired_test(wide[model].to_numpy(), wide[ref].to_numpy(), options.test, options.alpha,
                                        options.resamples, options.stat_seed)
                rows.append({
                    "dataset": g.dataset, "protocol": g.protocol, "slice": slice_kind, "block": block.title,
                    "metric": metric, "model": model, "reference": ref, "n_users": res.n,
                    "n_nonzero": int(np.count_nonzero(wide[model].to_numpy() != wide[ref].to_numpy())),
                    "mean_model": float(wide[model].mean()), "mean_reference": float(wide[ref].mean()),
                    "mean_diff": res.mean_diff, "ci_low": res.ci_low, "ci_high": res.ci_high,
                    "ci": "bootstrap percentile" if options.test == "bootstrap" else "t",
                    "effect_size": res.effect_size, "effect": res.effect_name, "statistic": res.statistic,
                    "p_value": res.p_value, "p_corrected": None, "significant": None,  # set over the whole family below
                    "test": options.test, "correction": options.correction,
                    "model_seeds": " ".join(str(r.seed) for r in g.runs_of(model)),
                    "model_runs": " ".join(r.run_id for r in g.runs_of(model)),
                    "reference_runs": " ".join(r.run_id for r in g.runs_of(ref)),
                })
    assert not rows or tuple(rows[0]) == PAIRWISE_COLUMNS, "a pairwise row and PAIRWISE_COLUMNS disagree"
    frame = pd.DataFrame(rows, columns=list(PAIRWISE_COLUMNS))
    frame["p_corrected"] = stats.correct(frame["p_value"].to_numpy(dtype=np.float64), options.correction)
    frame["significant"] = frame["p_corrected"] <= options.alpha
    return frame


def _human(n: float) -> str:
    for scale, suffix in ((1e9, "G"), (1e6, "M"), (1e3, "k")):
        if abs(n) >= scale:
            return f"{n / scale:.2f}{suffix}"
    return f"{n:.0f}"


EFFICIENCY = (("params", "n_params", _human), ("train s", "train_seconds", lambda v: f"{v:.1f}"),
              ("ms/user", "ms_per_user", lambda v: f"{v:.3f}"))


def _table(blocks: list[_Block], options: ReportOptions, refs: dict[str, str | None], comparisons: pd.DataFrame,
           efficiency: bool) -> Table:
    rows = list(dict.fromkeys(m for b in blocks for m in b.group.models))
    columns: list[Column] = []
    cells: dict[tuple[str, int], Cell] = {}
    sig = {}
    if len(comparisons):
        for r in comparisons.itertuples(index=False):
            if r.significant:
                # The test's direction: the sign of its effect size (Wilcoxon's can differ from the mean's).
                sig[(r.block, r.metric, r.model)] = UP if r.effect_size > 0 else DOWN
    for block in blocks:
        g = block.group
        for metric in options.metrics:
            j = len(columns)
            columns.append(Column(block.title, metric))
            col_cells = {}
            for model in g.models:
                cell = _seed_cell([_run_value(r, metric, block) for r in g.runs_of(model)])
                if cell is not None:
                    cell.marker = sig.get((block.title, metric, model), "")
                    cells[(model, j)] = col_cells[model] = cell
            if higher_is_better(metric):
                _style(col_cells, columns[j].digits)
        if efficiency:
            for name, key, fmt in EFFICIENCY:
                j = len(columns)
                columns.append(Column(block.title, name))
                for model in g.models:
                    values = [r.metrics.get(key) for r in g.runs_of(model)]
                    values = [float(v) for v in values if v is not None]
                    if values:
                        cells[(model, j)] = Cell(float(np.mean(values)), text=fmt(float(np.mean(values))))
    return Table(rows, columns, cells, caption="")


def _join(items: list[str]) -> str:
    return items[0] if len(items) == 1 else ", ".join(items[:-1]) + " and " + items[-1]


def protocol_text(groups: list[Group]) -> str:
    """The protocol in words; horizon-k with its k (protocol.k of the runs' configs), per dataset where it differs."""
    protocol = groups[0].protocol
    text = PROTOCOL_TEXT.get(protocol, protocol)
    if "{cuts}" in text:
        text = text.format(cuts=_per_dataset(groups, _cuts_text))
        if any(r.metrics.get("refit") for g in groups for r in g.runs):  # load_runs keeps a report all refit or none
            text += REFIT_TEXT
        return text
    if "{k}" not in text:
        return text
    ks = {g.dataset: _values([(r.config.get("protocol") or {}).get("k", "unrecorded") for r in g.runs]) for g in groups}
    if len(set(ks.values())) == 1:
        return text.format(k=f"k = {next(iter(ks.values()))}")
    return text.format(k="k = " + _join([f"{k} on {dataset}" for dataset, k in ks.items()]))


def _cuts_text(group: Group) -> str:
    from benchmark.data.split import time_text

    cuts = group.runs[0].metrics.get("temporal") or {}
    if "valid_cut" not in cuts:
        return "cuts not recorded"
    return f"validation cut {time_text(cuts['valid_cut'])}, test cut {time_text(cuts['test_cut'])}"


def caption(groups: list[Group], blocks: list[_Block], options: ReportOptions, refs: dict[str, str | None],
            comparisons: pd.DataFrame, what: str) -> str:
    runs = [r for g in groups for r in g.runs]
    users = _join([f"{len(g.users):,} on {g.dataset}" for g in groups]) if len(groups) > 1 else f"{len(groups[0].users):,}"
    parts = [f"{what}; protocol: {protocol_text(groups)}; {users} test users."]
    sampled = [r for r in runs if r.metrics.get("candidates", "full") != "full"]
    if sampled:
        info = sampled[0].metrics.get("sampled_candidates") or {}
        n_neg, sampler = info.get("n_negatives"), info.get("sampler")
        how = f" among the target(s) and {n_neg} {sampler}-sampled negatives per user" if n_neg else ""
        parts.append(f"Candidates: full ranking over all items; sampled_* metrics are SAMPLED{how} "
                     f"({len(sampled)} of {len(runs)} runs) and are not comparable to full-ranking numbers.")
    else:
        parts.append("Candidates: full ranking over all items.")
    masked = {bool(r.metrics.get("mask_history", True)) for r in runs}
    policies = sorted({str(r.metrics.get("tie_policy", "unknown")) for r in runs})
    parts.append(f"Ties: {'; '.join(policies)}; "
                 + ("items in the user's history are excluded." if masked == {True} else
                    "repeats of history items are candidates." if masked == {False} else
                    "history items are excluded on some datasets only."))
    seeds = sorted({r.seed for r in runs})
    per_model = {(g.dataset, m): len(g.runs_of(m)) for g in groups for m in g.models}
    # A model with one seed on some datasets and more on others: name where ("ease on ds-b"), since its
    # other cells do show ±.
    single = []
    for m in sorted({m for (_, m), n in per_model.items() if n == 1}):
        where = [d for (d, mm), n in per_model.items() if mm == m and n == 1]
        everywhere = len(where) == sum(1 for (_, mm) in per_model if mm == m)
        single.append(m if everywhere else f"{m} on {_join(where)}")
    counts = sorted(set(per_model.values()))
    if counts == [1]:
        parts.append(f"Single seed per model (seed{'s' if len(seeds) > 1 else ''} {', '.join(map(str, seeds))}): no ± shown.")
    else:
        span = str(counts[-1]) if len(counts) == 1 else f"{counts[0]}–{counts[-1]}"
        parts.append(f"Mean ± std over {span} seeds per model (seeds {', '.join(map(str, seeds))})"
                     + (f"; single seed, no ±: {', '.join(single)}." if single else "."))
    ref_sets = sorted({v for v in refs.values() if v is not None})
    if not ref_sets:
        parts.append("No significance markers: no non-sequential baseline to compare with (set --reference).")
    else:
        if len(ref_sets) == 1 and all(v is not None for v in refs.values()):
            ref_text = ref_sets[0]
        else:
            ref_text = "; ".join(f"{d}: {v or 'none'}" for d, v in refs.items())
        origin = reference_origin(options)
        n = len(comparisons)
        if not n:  # e.g. a one-model report: "corrected over 0 comparisons" would read as if tests were run
            why = ("it is the only model" if all(len(g.models) == 1 for g in groups)
                   else "no other model has per-user values to pair with it")
            parts.append(f"No significance markers: no comparison with the reference ({ref_text}; {origin}) was made, {why}.")
        else:
            how = ""
            if options.test == "randomization":
                how = f" ({options.resamples:,} sign flips, seed {options.stat_seed})"
            elif options.test == "bootstrap":
                how = f" ({options.resamples:,} resamples, seed {options.stat_seed})"
            corr = ("no correction for multiple comparisons" if options.correction == "none" else
                    f"{stats.CORRECTION_NAMES[options.correction]}-corrected over the {n} comparison{'s' * (n != 1)} in this table")
            parts.append(f"{UP}/{DOWN}: significantly higher/lower than the reference ({ref_text}; {origin}) by a two-sided "
                         f"{stats.TEST_NAMES[options.test]}{how} on per-user metrics averaged over seeds, "
                         f"{corr}, α = {options.alpha:g}.")
    parts += reference_notes(groups, options, refs)
    varied = sorted({r.name for r in runs if r.differs})
    if varied:
        parts.append(f"Configurations of one model ({', '.join(varied)}) are labelled by the settings in which they "
                     "differ; variants.csv lists each one's record folders.")
    if (warning := small_sample_warning(comparisons, options)):
        parts.append(f"Caution: {warning}.")
    parts.append("Best per column in bold, second underlined (columns where higher is better).")
    code_note = mixed_code_note([r.metrics.get("code_hash") for r in runs])  # records made by different code
    return " ".join(parts + ([code_note] if code_note else []))


# Below this many users with a non-zero difference the bootstrap's p-values are too small (false-positive
# rate 0.064 at 50 users, 0.10 at 10); the randomization test stays exact.
BOOTSTRAP_MIN_NONZERO = 50


def small_sample_warning(comparisons: pd.DataFrame, options: ReportOptions) -> str | None:
    """What to say when a bootstrap comparison rests on too few users with a non-zero difference."""
    if options.test != "bootstrap" or not len(comparisons):
        return None
    few = comparisons[comparisons["n_nonzero"] < BOOTSTRAP_MIN_NONZERO]
    if not len(few):
        return None
    return (f"bootstrap comparisons resting on fewer than {BOOTSTRAP_MIN_NONZERO} users with a non-zero difference: "
            f"{len(few)} of {len(comparisons)} (fewest: {int(few['n_nonzero'].min())}), where bootstrap p-values are too "
            "small; rerun with --test randomization")


def variants_frame(groups: list[Group]) -> pd.DataFrame | None:
    """One row per (dataset, row) of a model name with several configurations: the settings in which
    they differ and the record folders (seed<S>-<hash>) of its runs; None where every name has one."""
    rows = [{"dataset": g.dataset, "model": model, "name": runs[0].name, "differs": runs[0].differs,
             "runs": " ".join(r.run_id for r in runs)}
            for g in groups for model in g.models if (runs := g.runs_of(model))[0].differs]
    return pd.DataFrame(rows) if rows else None


# The command-line flag of each ReportOptions field that the footer's command repeats when not the default.
_FLAGS = {"metrics": "--metrics", "reference": "--reference", "test": "--test", "correction": "--correction",
          "alpha": "--alpha", "resamples": "--resamples", "stat_seed": "--stat-seed", "slices": "--slice",
          "efficiency": "--efficiency", "setup": "--setup", "protocol": "--protocol", "candidates": "--candidates",
          "name": "--name", "latex_wide": "--latex-wide", "order_effect": "--order-effect", "attribution": "--attribution",
          "attribution_users": "--attribution-users", "attribution_depth": "--attribution-depth"}


def report_command(options: ReportOptions, source: str) -> str:
    """The seqrec-report command of these options over ``source`` named by its last component only: a
    footer of a paper's table must not carry a machine's paths (a user or home folder)."""
    words = ["seqrec-report", Path(source).name or "."]
    defaults = ReportOptions()
    for key, flag in _FLAGS.items():
        value = getattr(options, key)
        if value == getattr(defaults, key) or value is None:
            continue
        if isinstance(value, bool):
            words.append(flag)
        else:
            words += [flag, ",".join(value) if isinstance(value, list) else str(value)]
    return shlex.join(words)


@dataclass
class Stamp:
    """What every table of one report carries: the footer, a label unique to the report, the width."""

    footer: str
    name: str  # the report's name in labels: tab:<name>-results, tab:<name>-families, ...
    wide: bool

    def apply(self, table: Table, what: str) -> Table:
        table.footer, table.label, table.wide = self.footer, f"tab:{self.name}-{what}", self.wide
        return table


def _stamp(options: ReportOptions, source: str, name: str | None, runs: int) -> Stamp:
    label = re.sub(r"[^a-z0-9]+", "-", (name or options.name or Path(source).name).lower()).strip("-") or "report"
    return Stamp(f"Generated by `{report_command(options, source)}` ({runs} runs).", label, options.latex_wide)


# ---- Friedman / Nemenyi across datasets ------------------------------------------------------------

def across_datasets(groups: list[Group], options: ReportOptions) -> tuple[stats.FriedmanResult | None, str]:
    metric = options.metrics[0]
    def measured(model: str) -> bool:  # on every dataset, by every run (records may predate a metric)
        return all(model in g.models and all(_run_value(r, metric, _Block(g, g.dataset, None)) is not None
                                             for r in g.runs_of(model)) for g in groups)

    common = [m for m in groups[0].models if measured(m)] if groups else []
    if len(groups) < 2 or len(common) < 2:
        return None, (f"Friedman/Nemenyi across datasets skipped: needs >= 2 datasets and >= 2 models run on all of "
                      f"them with {metric} (have {len(groups)} dataset(s), {len(common)} common model(s)).")
    scores = np.array([[np.mean([_run_value(r, metric, _Block(g, g.dataset, None)) for r in g.runs_of(m)]) for m in common]
                       for g in groups])
    res = stats.friedman_nemenyi(scores, common, options.alpha, higher_is_better(metric))
    order = np.argsort(res.avg_ranks)
    ranks = pd.DataFrame({"model": [common[i] for i in order], "average rank": [f"{res.avg_ranks[i]:.2f}" for i in order]})
    text = (f"Friedman test on {metric} over {res.n_blocks} datasets ({', '.join(g.dataset for g in groups)}) and "
            f"{len(common)} models: chi² = {res.statistic:.3f}, p = {res.p_value:.4g}. Nemenyi critical difference "
            f"at α = {options.alpha:g}: CD = {res.cd:.3f} (average ranks, 1 = best).\n\n{to_markdown(ranks)}")
    return res, text


# ---- setup: dataset statistics and a methods paragraph ---------------------------------------------

def setup_texts(groups: list[Group], options: ReportOptions, stamp: Stamp) -> dict[str, str]:
    rows, cells = [], {}
    columns = [Column("", "users", 0), Column("", "items", 0), Column("", "interactions", 0),
               Column("", "avg. length", 2), Column("", "density", 5), Column("", "test users", 0)]
    for g in groups:
        m = g.runs[0].metrics
        users, items, inter = m.get("n_users"), m.get("n_items"), m.get("n_interactions")
        # Density counts distinct (user, item) pairs, as seqrec-data stats does: with repeats kept
        # (dedupe off) interactions would exceed it. Older records lack the count: only deduplicated
        # interactions are pairs.
        pairs = m.get("n_pairs", inter if g.runs[0].config.get("dataset", {}).get("dedupe") else None)
        values = [users, items, inter, inter / users if inter and users else None,
                  pairs / (users * items) if pairs and users and items else None, len(g.users)]
        rows.append(g.dataset)
        for j, v in enumerate(values):
            if v is not None:
                cells[(g.dataset, j)] = Cell(float(v), text=f"{v:,.{columns[j].digits}f}" if j != 4 else f"{v:.3%}")
    table = stamp.apply(Table(rows, columns, cells, caption="Dataset statistics after preprocessing.", row_header="Dataset"),
                        "datasets")
    methods = methods_paragraph(groups, options)
    from benchmark.report.appendix import appendix_texts, hyperparameters

    appendix_md, appendix_tex = appendix_texts(groups, f"tab:{stamp.name}")
    return {"setup.md": render_markdown(table) + "\n\n" + methods + "\n\n" + appendix_md + "\n",
            "setup.tex": render_latex(table) + "\n\n% Methods paragraph\n" + tex_escape(methods) + "\n\n" + appendix_tex + "\n",
            "hyperparameters.csv": hyperparameters(groups).to_csv(index=False)}


def _seed_count(groups: list[Group]) -> str:
    counts = sorted({len(g.runs_of(m)) for g in groups for m in g.models})
    n = str(counts[0]) if len(counts) == 1 else f"{counts[0]}–{counts[-1]}"
    return f"{n} seed" + ("" if n == "1" else "s")


def _preprocessing(dataset: dict[str, Any]) -> str:
    pre = {k: dataset.get(k) for k in ("min_rating", "dedupe", "user_core", "item_core", "min_seq_len")}
    steps = []
    if pre["min_rating"] is not None:
        steps.append(f"kept ratings ≥ {pre['min_rating']}")
    if pre["dedupe"]:
        steps.append("kept the first of repeated (user, item) interactions")
    if pre["user_core"] or pre["item_core"]:
        steps.append(f"applied {pre['user_core']}-core filtering to users and {pre['item_core']}-core to items")
    if pre["min_seq_len"]:
        steps.append(f"dropped users with fewer than {pre['min_seq_len']} interactions")
    return "; ".join(steps) or "none"


def _per_dataset(groups: list[Group], describe: Callable[[Group], str]) -> str:
    """One description when every dataset has the same, else 'ds-a: ...; ds-b: ...'."""
    texts = {g.dataset: describe(g) for g in groups}
    if len(set(texts.values())) == 1:
        return next(iter(texts.values()))
    return "; ".join(f"{name}: {text}" for name, text in texts.items())


def _values(values: list[Any]) -> str:
    distinct = sorted(set(values), key=str)
    return str(distinct[0]) if len(distinct) == 1 else "/".join(map(str, distinct))


def _span(values: list[Any]) -> str:
    """Numbers as a range ("1–2"), anything else as _values does."""
    distinct = sorted(set(values), key=str)
    if len(distinct) > 1 and all(isinstance(v, (int, float)) and not isinstance(v, bool) for v in distinct):
        return f"{min(distinct):g}–{max(distinct):g}"
    return _values(values)


def methods_paragraph(groups: list[Group], options: ReportOptions) -> str:
    runs = [r for g in groups for r in g.runs]
    preprocessing = _per_dataset(groups, lambda g: _preprocessing(g.runs[0].config.get("dataset", {})))
    history = _per_dataset(groups, lambda g: "excluding the user's history" if g.runs[0].metrics.get("mask_history", True)
                           else "including the user's history (repeats are targets)")
    ties = _per_dataset(groups, lambda g: str(g.runs[0].metrics.get("tie_policy", "ties count against the target")))
    ks = sorted({int(k.split("@")[1]) for r in runs for k in r.metrics.get("test", {}) if "@" in k and k.split("@")[1].isdigit()})
    models = sorted({r.name for r in runs})  # plain names: configurations of one model are the appendix's
    baselines = sorted({r.name for r in runs if r.baseline})
    seeds = sorted({r.seed for r in runs})
    # The settings of the models that train (Recommender.trains; others never read their trainer section).
    trainers = [r.config.get("trainer", {}) for r in runs if r.metrics.get("trains", not r.baseline) and r.metrics.get("epochs")]
    protocol = groups[0].protocol
    text = [
        f"We evaluate {len(models)} models ({', '.join(models)}; non-sequential baselines: {', '.join(baselines) or 'none'}) "
        f"on {len(groups)} dataset{'s' if len(groups) > 1 else ''} ({', '.join(g.dataset for g in groups)}).",
        f"Preprocessing: {preprocessing}.",
        f"Protocol: {protocol_text(groups)}.",
        f"Every test target is judged against all items (full ranking), {history}; ties: {ties}"
        + (" (rank = 1 + the number of other items scored at least as high as the target)." if protocol in ("loo", "temporal", "session") else "."),
        f"Metrics: {', '.join(options.metrics)} (cut-offs {', '.join(map(str, ks)) or 'n/a'} recorded).",
        f"Trained models use Adam for at most {_span([t.get('max_epochs') for t in trainers])} epochs with early "
        f"stopping on validation {_values([t.get('valid_metric', 'ndcg@10') for t in trainers])} (patience "
        f"{_span([t.get('patience') for t in trainers])}), best weights restored." if trainers else "",
        f"Each configuration is run with {_seed_count(groups)} ({', '.join(map(str, seeds))}); tables report the mean"
        " ± standard deviation over seeds.",
        f"Significance: each model is compared with the {'chosen reference ' + options.reference if options.reference else 'best non-sequential baseline of each dataset'} "
        f"by a two-sided {stats.TEST_NAMES[options.test]} on per-user metrics, users aligned by id and each user's metric "
        f"averaged over seeds; p-values are "
        + ("not corrected" if options.correction == "none" else f"{stats.CORRECTION_NAMES[options.correction]}-corrected over all comparisons of a table")
        + f" at α = {options.alpha:g}; effect sizes are Cohen's d_z"
        + (" and the rank-biserial correlation" if options.test == "wilcoxon" else "") + ".",
        "Across datasets, models are compared by the Friedman test with the Nemenyi post-hoc test (critical-difference diagram)."
        if len(groups) > 1 else "",
    ]
    return " ".join(t for t in text if t)


# ---- figures -------------------------------------------------------------------------------------

FIGURE_CONFIDENCE = 0.95


def mean_interval(values: np.ndarray) -> tuple[float, float, float]:
    """The mean of ``values`` and its FIGURE_CONFIDENCE t-interval (NaN bounds for fewer than 2 values)."""
    from scipy.stats import t as student_t

    n = len(values)
    mean = float(values.mean()) if n else math.nan
    half = float(student_t.ppf(0.5 + FIGURE_CONFIDENCE / 2, n - 1) * values.std(ddof=1) / math.sqrt(n)) if n > 1 else math.nan
    return mean, mean - half, mean + half


def slice_points(groups: list[Group], kind: str, metric: str) -> pd.DataFrame:
    """Per dataset, slice and model: the mean over the slice's users of each user's metric averaged over
    seeds (the table's value), with a t-interval over those users: the unit the paired tests use."""
    rows = []
    for g in groups:
        labels = slicing(g, kind).labels
        wide = g.per_user_mean(metric)  # rows = g.users, as the labels
        for label in labels.cat.categories:
            mask = (labels == label).to_numpy()
            n = int(mask.sum())
            if not n:
                continue
            for model in wide.columns:
                mean, low, high = mean_interval(wide[model].to_numpy()[mask])
                rows.append({"dataset": g.dataset, "slice": str(label), "n_users": n, "model": model,
                             "baseline": g.is_baseline(model), "metric": metric, "mean": mean,
                             "ci_low": low, "ci_high": high, "seeds": len(g.runs_of(model))})
    return pd.DataFrame(rows)


def efficiency_points(groups: list[Group], metric: str) -> pd.DataFrame:
    """Per dataset and model: training seconds and the metric, means over seeds (std of the metric)."""
    rows = []
    for g in groups:
        everyone = _Block(g, g.dataset, None)
        for model in g.models:
            runs = g.runs_of(model)
            seconds = [float(r.metrics["train_seconds"]) for r in runs if r.metrics.get("train_seconds") is not None]
            values = [v for r in runs if (v := _run_value(r, metric, everyone)) is not None]
            if not seconds or not values:
                continue
            rows.append({"dataset": g.dataset, "model": model, "baseline": g.is_baseline(model), "metric": metric,
                         "train_seconds": float(np.mean(seconds)), "mean": float(np.mean(values)),
                         "std": float(np.std(values, ddof=1)) if len(values) > 1 else math.nan, "seeds": len(values)})
    return pd.DataFrame(rows)


def _figures(groups: list[Group], options: ReportOptions) -> dict[str, tuple[pd.DataFrame, str]]:
    metric = options.metrics[0]
    figures = {}
    # Slices need per-user values: the first metric that has them (coverage@K is one number per run).
    per_user = [m for m in options.metrics if any(m in r.per_user.columns for g in groups for r in g.runs)]
    for kind in options.slices if per_user else ():
        points = slice_points(groups, kind, per_user[0])
        if len(points):
            figures[f"slice_{kind}"] = (points, f"{per_user[0]} by {kind} slice\nmean over users (each user's value averaged "
                                                f"over seeds), {FIGURE_CONFIDENCE:.0%} t-interval over users")
    if options.efficiency:
        points = efficiency_points(groups, metric)
        if len(points):
            figures["efficiency"] = (points, f"test {metric} against training seconds\nmeans over seeds; bars: std over seeds")
    if options.attribution:
        from benchmark.report.attribution import ATTRIBUTION_TITLE, attribution_points

        points = attribution_points(groups, options.attribution_users, options.attribution_depth, options.stat_seed)
        figures["attribution"] = (points, ATTRIBUTION_TITLE)
    return figures


# ---- the whole report ------------------------------------------------------------------------------

def build_report(run_dirs: Iterable[Path], options: ReportOptions, source: str, name: str | None = None) -> Report:
    """The report of the records ``run_dirs``; ``source`` (the folder or list they came from) names it in
    footers by its last component only; ``name`` in LaTeX labels (default: options.name, else that component)."""
    options.check()
    # A repeated metric would be tested twice and counted twice by the multiple-comparison correction.
    options = replace(options, metrics=None if options.metrics is None else list(dict.fromkeys(options.metrics)),
                      slices=list(dict.fromkeys(options.slices)))
    given = options  # as the user gave them: the footer's command repeats these, not the defaults filled in below
    runs, shuffled = set_aside_shuffled(load_runs(run_dirs, options.protocol, options.candidates))
    groups = group_runs(runs)
    available = {c for r in runs for c in (*r.per_user.columns, *r.metrics.get("test", {}))}
    if options.metrics is None:
        headline = PROTOCOL_METRICS.get(runs[0].protocol, DEFAULT_METRICS)
        options = replace(options, metrics=[m for m in (*headline, *("sampled_" + h for h in headline)) if m in available])
    missing = [m for m in options.metrics if m not in available]
    if missing:
        metric_like = sorted(c for c in available if "@" in c)
        raise ReportError(f"--metrics {', '.join(missing)} not in any run; available: {', '.join(metric_like)}")
    refs = choose_references(groups, options)
    stamp = _stamp(given, source, name, len(runs) + len(shuffled))
    tables: dict[str, Table] = {}
    pairwise = []
    plan = [("table", None)] + [(f"slice_{s}", s) for s in options.slices]
    for stem, kind in plan:
        blocks, described = [], {}
        for g in groups:
            if kind is None:
                blocks.append(_Block(g, g.dataset, None))
                continue
            sl = slicing(g, kind)
            described[g.dataset] = sl.description
            for label in sl.labels.cat.categories:
                mask = (sl.labels == label).to_numpy()
                if mask.any():
                    blocks.append(_Block(g, f"{g.dataset} {label} (n={int(mask.sum())})" if len(groups) > 1 else f"{label} (n={int(mask.sum())})", mask))
        comparisons = _comparisons(blocks, options.metrics, refs, options, kind or "all")
        table = _table(blocks, options, refs, comparisons, options.efficiency and kind is None)
        datasets = _join([g.dataset for g in groups])
        what = (f"Test results on {datasets}" if kind is None else  # tercile cuts differ between datasets
                f"Test results on {datasets} by slice: {_per_dataset(groups, lambda g: described[g.dataset])}")
        if options.efficiency and kind is None:
            what += " (with parameters, training seconds and inference milliseconds per user, means over seeds)"
        table.caption = caption(groups, blocks, options, refs, comparisons, what) + shuffled_note(shuffled, options)
        stamp.apply(table, "results" if kind is None else kind)
        table.label_groups = kind is not None
        tables[stem] = table
        pairwise.append(comparisons)
        if (warning := small_sample_warning(comparisons, options)):
            log.warning("%s: %s", stem, warning)
        if kind is None:
            families = _families(groups, refs, comparisons, options, stamp)
    friedman, friedman_text = across_datasets(groups, options)
    report = Report(tables, pd.concat([p for p in pairwise if len(p)] or pairwise[:1], ignore_index=True),
                    friedman, friedman_text)
    if options.setup:
        report.setup = setup_texts(groups, options, stamp)
    report.figures = _figures(groups, options)
    report.variants = variants_frame(groups)
    if report.figures:
        from benchmark.report.plots import model_styles

        # Every model of the report, baselines first, each alphabetically: the same style in every figure.
        baselines = {m for g in groups for m in g.models if g.is_baseline(m)}
        report.styles = model_styles(sorted({m for g in groups for m in g.models}, key=lambda m: (m not in baselines, m)),
                                     baselines)
    report.families = families
    if options.order_effect:
        report.order_effect = _order_effect(groups, shuffled, options, stamp, families)
    return report


def shuffled_note(shuffled: list[Run], options: ReportOptions) -> str:
    if not shuffled:
        return ""
    where = "order_effect.md compares them" if options.order_effect else "seqrec-report --order-effect compares them"
    return (f" Left out: {len(shuffled)} run{'s' * (len(shuffled) != 1)} trained on shuffled order "
            f"(dataset.shuffle_order=true, the order control; {where}).")


def _order_effect(groups: list[Group], shuffled: list[Run], options: ReportOptions, stamp: Stamp,
                  families: tuple[Table, pd.DataFrame] | None) -> Any:
    from benchmark.report.order import add_order_row, order_caption, order_effect

    if not shuffled:
        raise ReportError("--order-effect needs runs trained with dataset.shuffle_order=true beside the same models in "
                          "true order, e.g. seqrec -m model=gru4rec,sasrec dataset.shuffle_order=false,true")
    metric = options.metrics[0]
    effect = order_effect(groups, shuffled, metric, higher_is_better(metric), options.test, options.correction,
                          options.alpha, options.resamples, options.stat_seed)
    effect.table.caption = order_caption(effect, metric, options.test, options.correction, options.alpha)
    stamp.apply(effect.table, "order-effect")
    if families is not None:
        add_order_row(families[0], groups, effect)
    return effect


def _families(groups: list[Group], refs: dict[str, str | None], comparisons: pd.DataFrame, options: ReportOptions,
              stamp: Stamp) -> tuple[Table, pd.DataFrame] | None:
    """The families table, its caption naming how representatives are chosen and where markers come from."""
    from benchmark.report.families import families_table, family_rows, unvalidated

    metric = options.metrics[0]
    rows = family_rows(groups, refs, comparisons, metric, higher_is_better(metric))
    if not len(rows):
        return None
    table = families_table(groups, rows, refs, metric)
    users = _join([f"{len(g.users):,} on {g.dataset}" for g in groups]) if len(groups) > 1 else f"{len(groups[0].users):,}"
    parts = [f"Which sequence model family beats the reference, on which dataset: per family, the model with the best "
             f"validation {metric} (mean over seeds; chosen without test data) and its test {metric} minus the "
             f"reference's, means over seeds; the first row gives each dataset's reference "
             f"({reference_origin(options)}) and its test {metric}. "
             f"Protocol: {protocol_text(groups)}; {users} test users."]
    n = len(comparisons)
    if n:
        corr = ("no correction for multiple comparisons" if options.correction == "none" else
                f"{stats.CORRECTION_NAMES[options.correction]}-corrected over its {n} comparison{'s' * (n != 1)}")
        parts.append(f"{UP}/{DOWN}: significant in the results table ({stats.TEST_NAMES[options.test]} on per-user "
                     f"metrics averaged over seeds, {corr}, α = {options.alpha:g}).")
    else:
        parts.append("No significance markers: no comparison with a reference was made.")
    parts += reference_notes(groups, options, refs)
    unreferenced = [g.dataset for g in groups if refs.get(g.dataset) is None]
    if unreferenced:
        why = "" if any(g.is_baseline(m) for g in groups for m in g.models) else "no non-sequential baseline there; "
        parts.append(f"No reference on {_join(unreferenced)} ({why}set --reference): its cells give the test {metric} itself.")
    left_out = unvalidated(groups, metric)
    if left_out:
        parts.append(f"Left out (no validation {metric} recorded): {_join(left_out)}.")
    untested = rows[rows["reference"].notna() & rows["p_corrected"].isna()]
    if n and len(untested):
        parts.append("Untested (the difference of test means, no marker): "
                     + _join([f"{r.model} on {r.dataset}" for r in untested.itertuples(index=False)]) + ".")
    table.caption = " ".join(parts)
    return stamp.apply(table, "families"), rows


# Every name a report may write. --out may be a folder with other files (a sweep's folder holds its runs.txt
# and job folders), so a new report removes only these names, the ones it does not write again.
REPORT_FILES = frozenset({*(f"{stem}{suffix}" for stem in ("table", *(f"slice_{s}" for s in SLICES))
                            for suffix in (".md", ".tex", ".csv")),
                          *(f"{stem}{suffix}" for stem in ("efficiency", "attribution", *(f"slice_{s}" for s in SLICES))
                            for suffix in (".png", ".pdf", "_points.csv")),
                          "families.md", "families.tex", "families.csv", "pairwise.csv", "friedman.md", "nemenyi.csv", "cd_diagram.png", "cd_diagram.pdf",
                          "setup.md", "setup.tex", "hyperparameters.csv", "variants.csv",
                          "order_effect.md", "order_effect.tex", "order_effect.csv"})


def _stage_report(report: Report, staging: Path) -> list[str]:
    """Writes every file of the report into the (private, empty) staging folder; returns their names."""
    def put(name: str, data: str | bytes) -> None:
        (staging / name).write_bytes(data.encode() if isinstance(data, str) else data)

    for stem, table in report.tables.items():
        put(f"{stem}.md", render_markdown(table) + "\n")
        put(f"{stem}.tex", render_latex(table) + "\n")
        put(f"{stem}.csv", render_csv(table))
    put("pairwise.csv", report.pairwise.to_csv(index=False))
    if report.families is not None:
        table, rows = report.families
        put("families.md", render_markdown(table) + "\n")
        put("families.tex", render_latex(table) + "\n")
        put("families.csv", rows.to_csv(index=False))
    if report.order_effect is not None:
        put("order_effect.md", render_markdown(report.order_effect.table) + "\n")
        put("order_effect.tex", render_latex(report.order_effect.table) + "\n")
        put("order_effect.csv", report.order_effect.rows.to_csv(index=False))
    put("friedman.md", report.friedman_text + "\n")
    if report.variants is not None:
        put("variants.csv", report.variants.to_csv(index=False))
    if report.friedman is not None:
        from benchmark.report.cd import draw_cd_diagram

        f = report.friedman
        nemenyi = pd.DataFrame(f.nemenyi_p, index=pd.Index(f.models, name="model"), columns=f.models)
        put("nemenyi.csv", nemenyi.to_csv())
        draw_cd_diagram(f, staging / "cd_diagram")
    for name, text in report.setup.items():
        put(name, text)
    if report.figures:
        from benchmark.report.plots import attribution_figure, efficiency_figure, save_figure, slice_figure

        for stem, (points, title) in report.figures.items():
            put(f"{stem}_points.csv", points.to_csv(index=False))
            draw = {"efficiency": efficiency_figure, "attribution": None}.get(stem, slice_figure)
            save_figure(attribution_figure(points, title) if draw is None else draw(points, title, report.styles), staging / stem)
    return sorted(p.name for p in staging.iterdir())


def _os_reason(e: OSError) -> str:
    return f"{e.strerror}: {e.filename}" if e.strerror and e.filename else str(e)


def write_report(report: Report, out: Path) -> list[Path]:
    """Writes the report into the folder ``out`` so that it holds exactly this report; returns the paths.

    The files are first written into a hidden staging folder (a sibling of ``out`` when ``out`` does
    not exist yet, which is then renamed into place whole; else inside ``out``, each file then moved
    in). Report files of an earlier report that this one does not write (REPORT_FILES: e.g. slice_*
    or setup.* of another run of seqrec-report) are removed; other files in ``out`` are left alone.
    """
    if out.exists() and not out.is_dir():
        raise ReportError(f"--out {out} exists and is not a folder")
    try:
        out.parent.mkdir(parents=True, exist_ok=True)
        staging = Path(tempfile.mkdtemp(dir=out if out.is_dir() else out.parent, prefix=".report-staging.", suffix=".tmp"))
    except OSError as e:
        raise ReportError(f"--out {out}: cannot create the report folder ({_os_reason(e)})") from None
    try:
        names = _stage_report(report, staging)
        if not out.exists():
            staging.chmod(umask_mode(0o777))  # mkdtemp's 0700 would hide the report from collaborators
            os.rename(staging, out)  # the whole report appears at once
        else:
            # Stale files go first: a crash in between leaves part of the old report, never a mix of two.
            for stale in sorted(REPORT_FILES - set(names)):
                (out / stale).unlink(missing_ok=True)
            for name in names:
                os.replace(staging / name, out / name)
    except OSError as e:
        raise ReportError(f"--out {out}: cannot write the report ({_os_reason(e)})") from None
    finally:
        shutil.rmtree(staging, ignore_errors=True)
    return [out / name for name in names]
