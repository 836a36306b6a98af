"""Report figures, drawn from the points that build.py computes (also written as CSV, to restyle a
figure for a paper): a slice's headline metric per model with confidence intervals, accuracy
against training time, and how far back each sequence model looks. Matplotlib's Agg canvas: no display needed."""

from __future__ import annotations

import os
import tempfile
from pathlib import Path

import numpy as np
import pandas as pd
from matplotlib.backends.backend_agg import FigureCanvasAgg
from matplotlib.figure import Figure


def _panels(datasets: list[str], width: float, height: float) -> tuple[Figure, list]:
    """One panel per dataset, at most three in a row."""
    cols = min(len(datasets), 3)
    rows = -(-len(datasets) // cols)
    fig = Figure(figsize=(width * cols, height * rows))
    FigureCanvasAgg(fig)
    axes = fig.subplots(rows, cols, squeeze=False).ravel()
    for ax in axes[len(datasets):]:
        ax.set_visible(False)
    for ax, dataset in zip(axes, datasets):
        ax.set_title(dataset, fontsize=10)
    return fig, list(axes[: len(datasets)])


def _style(baseline: bool) -> dict:
    # Non-sequential baselines dashed with squares, sequence models solid with circles.
    return {"linestyle": "--" if baseline else "-", "marker": "s" if baseline else "o"}


def slice_figure(points: pd.DataFrame, title: str) -> Figure:
    """points: one row per (dataset, slice, model) with mean, ci_low, ci_high, n_users, baseline,
    slices in their order (e.g. hist <=5, 6-20, >20); models dodged around each slice."""
    datasets = list(dict.fromkeys(points["dataset"]))
    fig, axes = _panels(datasets, 4.2, 3.2)
    for ax, dataset in zip(axes, datasets):
        here = points[points["dataset"] == dataset]
        slices = list(dict.fromkeys(here["slice"]))
        models = list(dict.fromkeys(here["model"]))
        offsets = np.linspace(-0.25, 0.25, len(models)) if len(models) > 1 else [0.0]
        for model, offset in zip(models, offsets):
            m = here[here["model"] == model].set_index("slice").reindex(slices)
            x = np.arange(len(slices)) + offset
            low, high = (m["mean"] - m["ci_low"]).to_numpy(), (m["ci_high"] - m["mean"]).to_numpy()
            ax.errorbar(x, m["mean"], yerr=np.nan_to_num([low, high]), capsize=2, markersize=4, linewidth=1,
                        label=model, **_style(bool(m["baseline"].dropna().any())))
        n_users = here.drop_duplicates("slice").set_index("slice")["n_users"]
        ax.set_xticks(range(len(slices)), [f"{s}\n(n={n_users[s]:,})" for s in slices], fontsize=8)
        ax.set_ylabel(str(here["metric"].iloc[0]), fontsize=9)
        ax.tick_params(axis="y", labelsize=8)
        ax.grid(axis="y", alpha=0.3)
    axes[0].legend(fontsize=7, frameon=False)
    fig.suptitle(title, fontsize=10)
    fig.tight_layout()
    return fig


def efficiency_figure(points: pd.DataFrame, title: str) -> Figure:
    """points: one row per (dataset, model) with train_seconds, mean, std (over seeds), baseline."""
    datasets = list(dict.fromkeys(points["dataset"]))
    fig, axes = _panels(datasets, 4.2, 3.4)
    for ax, dataset in zip(axes, datasets):
        here = points[points["dataset"] == dataset]
        for r in here.itertuples(index=False):
            ax.errorbar([r.train_seconds], [r.mean], yerr=None if np.isnan(r.std) else [[r.std], [r.std]],
                        capsize=2, markersize=5, marker=_style(r.baseline)["marker"], color="black" if r.baseline else "C0")
            ax.annotate(r.model, (r.train_seconds, r.mean), textcoords="offset points", xytext=(4, 3), fontsize=7)
        # Seconds span orders of magnitude (pop ~0); symlog keeps 0 on the axis, linear below 0.1 s.
        ax.margins(x=0.1, y=0.15)  # room for the names
        ax.set_xscale("symlog", linthresh=0.1)
        ax.set_xlim(left=-0.02)  # the marker at 0 s whole
        ax.set_xlabel("training seconds (mean over seeds)", fontsize=9)
        ax.set_ylabel(str(here["metric"].iloc[0]), fontsize=9)
        ax.tick_params(labelsize=8)
        ax.grid(alpha=0.3)
    fig.suptitle(title, fontsize=10)
    fig.tight_layout()
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
        ax.legend(fontsize=7, frameon=False)
    fig.suptitle(title, fontsize=9)
    fig.tight_layout()
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
