"""Critical-difference diagram (Demsar, 2006): average ranks on an axis, models joined by a bar
when their ranks differ by less than the Nemenyi critical difference."""

from __future__ import annotations

from pathlib import Path

import numpy as np
from matplotlib.backends.backend_agg import FigureCanvasAgg
from matplotlib.figure import Figure

from benchmark.report.plots import save_figure
from benchmark.stats import FriedmanResult


def cliques(ranks: np.ndarray, cd: float) -> list[tuple[int, int]]:
    """Maximal runs [i, j] of models (sorted by rank) whose ranks all lie within less than cd."""
    out: list[tuple[int, int]] = []
    for i in range(len(ranks)):
        j = i
        while j + 1 < len(ranks) and ranks[j + 1] - ranks[i] < cd:
            j += 1
        if j > i and not (out and out[-1][1] >= j):
            out.append((i, j))
    return out


def cd_figure(result: FriedmanResult) -> Figure:
    """The diagram as a figure (Agg canvas: no display needed)."""
    order = np.argsort(result.avg_ranks, kind="stable")
    ranks = result.avg_ranks[order]
    names = [result.models[i] for i in order]
    k = len(names)
    half = (k + 1) // 2
    fig = Figure(figsize=(7, 1.4 + 0.3 * half))
    FigureCanvasAgg(fig)
    ax = fig.add_axes((0.2, 0.05, 0.6, 0.8))
    # With few models and datasets CD can exceed k - 1: the axis runs on so the bar is drawn at full length.
    ax.set_xlim(1, max(k, 1 + result.cd))
    ax.set_ylim(-(0.8 * half + 0.4), 2.1)
    ax.axis("off")
    # Rank axis (1 = best on the left), ticks and the CD bar above it.
    ax.plot([1, k], [0, 0], color="black", lw=1)
    for t in range(1, k + 1):
        ax.plot([t, t], [0, 0.15], color="black", lw=1)
        ax.text(t, 0.25, str(t), ha="center", va="bottom", fontsize=9)
    ax.plot([1, 1 + result.cd], [1.0, 1.0], color="black", lw=1.5)
    ax.text(1 + result.cd / 2, 1.1, f"CD = {result.cd:.2f}", ha="center", va="bottom", fontsize=9)
    for i, (name, r) in enumerate(zip(names, ranks)):
        left = i < half
        y = -(i + 1 if left else k - i) * 0.8
        edge = 1 - 0.05 * k if left else k + 0.05 * k
        ax.plot([r, r, edge], [0, y, y], color="black", lw=0.8, clip_on=False)
        ax.text(edge - 0.02 * k if left else edge + 0.02 * k, y, f"{name} ({r:.2f})", ha="right" if left else "left",
                va="center", fontsize=9, clip_on=False)
    for n, (i, j) in enumerate(cliques(ranks, result.cd)):
        y = -0.3 - 0.2 * n
        ax.plot([ranks[i] - 0.03, ranks[j] + 0.03], [y, y], color="black", lw=3, solid_capstyle="round")
    ax.text((1 + k) / 2, 2.1, f"Friedman p = {result.p_value:.3g}; Nemenyi α = {result.alpha:g}", ha="center",
            va="bottom", fontsize=9)
    return fig


def draw_cd_diagram(result: FriedmanResult, stem: Path) -> list[Path]:
    """Draws the diagram to ``stem``.png and ``stem``.pdf."""
    return save_figure(cd_figure(result), stem)
