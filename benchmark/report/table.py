"""Result tables: a small data model and its Markdown, LaTeX (booktabs) and CSV renderings."""

from __future__ import annotations

import io
import math
import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Iterable

import pandas as pd

from benchmark.record import read_record

UP, DOWN = "↑", "↓"  # significantly higher / lower than the reference
_TEX_MARKERS = {UP: r"$^{\uparrow}$", DOWN: r"$^{\downarrow}$"}


@dataclass
class Cell:
    mean: float
    std: float | None = None  # None when the row has a single seed: shown without ±
    marker: str = ""  # UP / DOWN versus the reference, "" when not significant or not tested
    style: str = ""  # "best", "second" or ""
    text: str | None = None  # preformatted value (efficiency columns)


@dataclass
class Column:
    group: str  # the column group: dataset, or dataset and slice
    name: str  # metric or efficiency measure
    digits: int = 4


@dataclass
class Table:
    rows: list[str]
    columns: list[Column]
    cells: dict[tuple[str, int], Cell]  # (row, column index) -> cell; missing = not measured
    caption: str
    footer: str = ""
    label: str = "tab:results"
    row_header: str = "Model"
    extra: dict = field(default_factory=dict)
    label_groups: bool = False  # label the column groups even when there is one (a slice table: the slice is its point)
    wide: bool = False  # LaTeX: table* across both columns, the tabular scaled to \textwidth (needs graphicx)

    @property
    def groups(self) -> list[str]:
        return list(dict.fromkeys(c.group for c in self.columns))

    @property
    def grouped(self) -> bool:
        """Whether headers name the column group (otherwise the caption says what the one group is)."""
        return self.label_groups or len(self.groups) > 1


def _value(cell: Cell, digits: int, pm: str) -> str:
    if cell.text is not None:
        return cell.text
    if cell.mean is None or math.isnan(cell.mean):
        return "n/a"
    return f"{cell.mean:.{digits}f}" + ("" if cell.std is None else f"{pm}{cell.std:.{digits}f}")


def _headers(table: Table) -> list[str]:
    return [f"{c.group} {c.name}" if table.grouped else c.name for c in table.columns]


def render_markdown(table: Table) -> str:
    def fmt(row: str, j: int) -> str:
        cell = table.cells.get((row, j))
        if cell is None:
            return "–"
        text = _value(cell, table.columns[j].digits, " ± ")
        text = f"**{text}**" if cell.style == "best" else f"<u>{text}</u>" if cell.style == "second" else text
        return text + cell.marker

    lines = [f"**Table.** {table.caption}", ""]
    lines.append("| " + " | ".join([table.row_header, *_headers(table)]) + " |")
    lines.append("|" + "|".join([":--", *("--:" for _ in table.columns)]) + "|")
    for row in table.rows:
        lines.append("| " + " | ".join([row, *(fmt(row, j) for j in range(len(table.columns)))]) + " |")
    if table.footer:
        lines += ["", f"_{table.footer}_"]
    return "\n".join(lines)


_TEX_ESCAPES = {"\\": r"\textbackslash{}", "&": r"\&", "%": r"\%", "$": r"\$", "#": r"\#", "_": r"\_",
                "{": r"\{", "}": r"\}", "~": r"\textasciitilde{}", "^": r"\textasciicircum{}",
                "±": r"$\pm$", "≤": r"$\leq$", "≥": r"$\geq$", "α": r"$\alpha$", "–": "--", "·": r"$\cdot$",
                UP: r"$\uparrow$", DOWN: r"$\downarrow$", "×": r"$\times$",
                # LaTeX's default OT1 font prints < > | as ¡ ¿ — (slice headers such as "hist >20").
                "<": r"\textless{}", ">": r"\textgreater{}", "|": r"\textbar{}"}


def tex_escape(text: str) -> str:
    return "".join(_TEX_ESCAPES.get(ch, ch) for ch in str(text))


def render_latex(table: Table) -> str:
    """A booktabs table (needs \\usepackage{booktabs}; a wide one graphicx too); column groups get a spanning header."""
    n = len(table.columns)
    env = "table*" if table.wide else "table"
    lines = [rf"\begin{{{env}}}[t]", r"\centering", r"\small",
             rf"\caption{{{tex_escape(table.caption)}}}", rf"\label{{{table.label}}}",
             *([r"\resizebox{\textwidth}{!}{%"] if table.wide else []),
             r"\begin{tabular}{l" + "r" * n + "}", r"\toprule"]
    if table.grouped:
        spans, rules, start = [""], [], 2
        for g in table.groups:
            width = sum(1 for c in table.columns if c.group == g)
            spans.append(rf"\multicolumn{{{width}}}{{c}}{{{tex_escape(g)}}}")
            rules.append(rf"\cmidrule(lr){{{start}-{start + width - 1}}}")
            start += width
        lines += [" & ".join(spans) + r" \\", " ".join(rules)]
    lines.append(" & ".join([tex_escape(table.row_header), *(tex_escape(c.name) for c in table.columns)]) + r" \\")
    lines.append(r"\midrule")
    for row in table.rows:
        cells = [tex_escape(row)]
        for j, col in enumerate(table.columns):
            cell = table.cells.get((row, j))
            if cell is None:
                cells.append("--")
                continue
            text = tex_escape(_value(cell, col.digits, " ± "))
            text = rf"\textbf{{{text}}}" if cell.style == "best" else rf"\underline{{{text}}}" if cell.style == "second" else text
            cells.append(text + _TEX_MARKERS.get(cell.marker, ""))
        lines.append(" & ".join(cells) + r" \\")
    lines += [r"\bottomrule", r"\end{tabular}" + ("}" if table.wide else "")]
    if table.footer:
        footer = re.sub(r"`([^`]*)`", r"\\texttt{\1}", tex_escape(table.footer))
        lines.append(rf"\par\smallskip{{\footnotesize {footer}}}")
    lines.append(rf"\end{{{env}}}")
    return "\n".join(lines)


def render_csv(table: Table) -> str:
    """Wide CSV, one row per model: for every column its mean, std (empty for one seed) and marker."""
    out = pd.DataFrame({table.row_header.lower(): table.rows})
    for j, col in enumerate(table.columns):
        key = f"{col.group}/{col.name}"
        cells = [table.cells.get((row, j)) for row in table.rows]
        out[key] = [None if c is None else c.mean for c in cells]
        if any(c is not None and c.text is None for c in cells):
            out[f"{key}/std"] = [None if c is None else c.std for c in cells]
            out[f"{key}/sig"] = ["" if c is None else c.marker for c in cells]
    buf = io.StringIO()
    out.to_csv(buf, index=False)
    return buf.getvalue()


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


def to_markdown(table: pd.DataFrame) -> str:
    """A plain DataFrame as a Markdown table."""
    header = "| " + " | ".join(map(str, table.columns)) + " |"
    sep = "|" + "|".join("---" for _ in table.columns) + "|"
    body = ["| " + " | ".join(map(str, row)) + " |" for row in table.itertuples(index=False)]
    return "\n".join([header, sep, *body])
