"""Report figures, drawn from the points that build.py computes (also written as CSV, to restyle a
figure for a paper): a slice's headline metric per model with confidence intervals, accuracy
against training time, and how far back each sequence model looks. Matplotlib's Agg canvas: no display needed."""

from __future__ import annotations

import os
import tempfile
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd
from matplotlib import colormaps
from matplotlib import colors as mcolors
from matplotlib.backends.backend_agg import FigureCanvasAgg
from matplotlib.figure import Figure
from matplotlib.lines import Line2D


# 20 colours (tab20's dark shades, then its light ones) and 10 markers: the i-th model gets colour i and
# a marker that moves on by one every 10 models, so 20 models get 20 colours and no two share both.
_COLOURS = [mcolors.to_hex(c) for c in (*colormaps["tab20"].colors[0::2], *colormaps["tab20"].colors[1::2])]
_MARKERS = ("o", "s", "^", "D", "v", "P", "X", "<", ">", "*")


@dataclass(frozen=True)
class Style:
    colour: str
    marker: str
    linestyle: str  # dashed: a non-sequential baseline


def model_styles(models: list[str], baselines: set[str]) -> dict[str, Style]:
    """One colour and marker per model, in the order given, for every figure of a report."""
    return {m: Style(_COLOURS[i % len(_COLOURS)], _MARKERS[(i + i // len(_MARKERS)) % len(_MARKERS)],
                     "--" if m in baselines else "-") for i, m in enumerate(models)}


def _panels(datasets: list[str], width: float, height: float) -> tuple[Figure, list]:
    """One panel per dataset, at most three in a row; constrained layout leaves room for one legend below."""
    cols = min(len(datasets), 3)
    rows = -(-len(datasets) // cols)
    fig = Figure(figsize=(width * cols, height * rows + 0.6), layout="constrained")
    FigureCanvasAgg(fig)
    axes = fig.subplots(rows, cols, squeeze=False).ravel()
    for ax in axes[len(datasets):]:
        ax.set_visible(False)
    for ax, dataset in zip(axes, datasets):
        ax.set_title(dataset, fontsize=10)
    return fig, list(axes[: len(datasets)])


def _legend(fig: Figure, styles: dict[str, Style], models: list[str]) -> None:
    """One legend for the whole figure, below the panels, the models in the report's order."""
    handles = [Line2D([], [], color=styles[m].colour, marker=styles[m].marker, linestyle=styles[m].linestyle,
                      markersize=5, label=m) for m in styles if m in models]
    fig.legend(handles=handles, loc="outside lower center", ncols=min(len(handles), 5), fontsize=7, frameon=False)


def slice_figure(points: pd.DataFrame, title: str, styles: dict[str, Style]) -> Figure:
    """points: one row per (dataset, slice, model) with mean, ci_low, ci_high, n_users, slices in their
    order (e.g. hist <=5, 6-20, >20); models dodged around each slice, each in its report-wide style."""
    datasets = list(dict.fromkeys(points["dataset"]))
    fig, axes = _panels(datasets, 4.2, 3.2)
    for ax, dataset in zip(axes, datasets):
        here = points[points["dataset"] == dataset]
        slices = list(dict.fromkeys(here["slice"]))
        models = [m for m in styles if m in set(here["model"])]
        offsets = np.linspace(-0.25, 0.25, len(models)) if len(models) > 1 else [0.0]
        for model, offset in zip(models, offsets):
            m = here[here["model"] == model].set_index("slice").reindex(slices)
            x = np.arange(len(slices)) + offset
            low, high = (m["mean"] - m["ci_low"]).to_numpy(), (m["ci_high"] - m["mean"]).to_numpy()
            style = styles[model]
            ax.errorbar(x, m["mean"], yerr=np.nan_to_num([low, high]), capsize=2, markersize=4, linewidth=1,
                        label=model, color=style.colour, marker=style.marker, linestyle=style.linestyle)
        n_users = here.drop_duplicates("slice").set_index("slice")["n_users"]
        ax.set_xticks(range(len(slices)), [f"{s}\n(n={n_users[s]:,})" for s in slices], fontsize=8)
        ax.set_ylabel(str(here["metric"].iloc[0]), fontsize=9)
        ax.tick_params(axis="y", labelsize=8)
        ax.grid(axis="y", alpha=0.3)
    _legend(fig, styles, list(points["model"]))
    fig.suptitle(title, fontsize=10)
    return fig


def efficiency_figure(points: pd.DataFrame, title: str, styles: dict[str, Style]) -> Figure:
    """points: one row per (dataset, model) with train_seconds, mean, std (over seeds). Models are told
    apart by their report-wide style and the legend, never by text beside the points (which overlaps)."""
    datasets = list(dict.fromkeys(points["dataset"]))
    fig, axes = _panels(datasets, 4.2, 3.4)
    for ax, dataset in zip(axes, datasets):
        here = points[points["dataset"] == dataset]
        for r in here.itertuples(index=False):
            style = styles[r.model]
            ax.errorbar([r.train_seconds], [r.mean], yerr=None if np.isnan(r.std) else [[r.std], [r.std]],
                        capsize=2, markersize=6, marker=style.marker, color=style.colour, linestyle="none", label=r.model)
        # Seconds span orders of magnitude (pop ~0); symlog keeps 0 on the axis, linear below 0.1 s.
        ax.margins(x=0.1, y=0.15)
        ax.set_xscale("symlog", linthresh=0.1)
        # The marker at 0 s whole, and room right of the slowest (symlog: a factor, not an offset).
        ax.set_xlim(left=-0.02, right=max(0.2, 1.5 * float(here["train_seconds"].max())))
        ax.set_xlabel("training seconds (mean over seeds)", fontsize=9)
        ax.set_ylabel(str(here["metric"].iloc[0]), fontsize=9)
        ax.tick_params(labelsize=8)
        ax.grid(alpha=0.3)
    _legend(fig, styles, list(points["model"]))
    fig.suptitle(title, fontsize=10)
    return fig


def attribution_figure(points: pd.DataFrame, title: str) -> Figure:
    """points: one row per (dataset, model, distance) with mean_share, share_ci_low, share_ci_high, family;
    one colour per model and one line style and marker per family, the same in every panel."""
    datasets = list(dict.fromkeys(points["dataset"]))
    families = list(dict.fromkeys(points["family"]))
    models = list(dict.fromkeys(points["model"]))
    styles = [("-", "o"), ("--", "s"), (":", "D"), ("-.", "^")]
    fig, axes = _panels(datasets, 4.6, 3.4)
    for ax, dataset in zip(axes, datasets):
        here = points[points["dataset"] == dataset]
        for (model, family), m in here.groupby(["model", "family"], sort=False):
            colour = f"C{models.index(model) % 10}"
            line, marker = styles[families.index(family) % len(styles)]
            ax.plot(m["distance"], m["mean_share"], color=colour, linestyle=line, marker=marker, markersize=3,
                    linewidth=1, label=f"{model} ({family})")
            ax.fill_between(m["distance"], m["share_ci_low"], m["share_ci_high"], color=colour, alpha=0.15, linewidth=0)
        ax.xaxis.get_major_locator().set_params(integer=True)
        ax.set_xlabel("distance of the removed history item (1 = newest)", fontsize=9)
        ax.set_ylabel("share of the score change", fontsize=9)
        ax.tick_params(labelsize=8)
        ax.grid(alpha=0.3)
    handles: dict[str, Line2D] = {}  # one legend below the panels: per-panel legends covered the curves
    for ax in axes:
        for line in ax.get_lines():
            handles.setdefault(str(line.get_label()), line)
    fig.legend(handles=list(handles.values()), loc="outside lower center", ncols=min(len(handles), 3), fontsize=7,
               frameon=False)
    fig.suptitle(title, fontsize=9)
    return fig


def save_figure(fig: Figure, stem: Path) -> list[Path]:
    """Writes ``stem``.png and ``stem``.pdf, each through a temp file renamed into place."""
    paths = []
    for ext in ("png", "pdf"):
        path = stem.with_suffix(f".{ext}")
        fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
        os.close(fd)
        try:
            fig.savefig(tmp, format=ext, dpi=150, bbox_inches="tight")
            os.replace(tmp, path)
        except BaseException:
            Path(tmp).unlink(missing_ok=True)
            raise
        paths.append(path)
    return paths
