"""Appendix tables of ``--setup``: each model's resolved hyperparameters (its model section, and the
trainer's for a model that trains) and the hardware and software the runs used (from env.json)."""

from __future__ import annotations

import json

import pandas as pd

from benchmark.report.runs import Group
from benchmark.report.table import tex_escape

# Model keys that name the class rather than set it.
_NOT_HYPERPARAMETERS = ("_target_", "name")
ENVIRONMENT_COLUMNS = ("CPU", "GPU", "device", "torch", "CUDA", "Python", "torch threads", "runs")


def _flat(section: dict, prefix: str = "") -> dict[str, str]:
    out: dict[str, str] = {}
    for key, value in section.items():
        if isinstance(value, dict) and value:
            out |= _flat(value, f"{prefix}{key}.")
        else:
            out[f"{prefix}{key}"] = json.dumps(value) if isinstance(value, (list, dict)) else str(value)
    return out


def hyperparameters(groups: list[Group]) -> pd.DataFrame:
    """One row per (model row, section, setting): the resolved values of each configuration of a model
    (its table row), the trainer section only where the model trains."""
    rows, seen = [], set()
    for g in groups:
        for model in g.models:
            if model in seen:
                continue
            seen.add(model)
            run = g.runs_of(model)[0]
            model_section = {k: v for k, v in (run.config.get("model") or {}).items() if k not in _NOT_HYPERPARAMETERS}
            sections = [("model", model_section)]
            if run.metrics.get("trains", not run.baseline):
                sections.append(("trainer", run.config.get("trainer") or {}))
            for section, values in sections:
                rows += [{"model": model, "section": section, "setting": k, "value": v} for k, v in _flat(values).items()]
    return pd.DataFrame(rows, columns=["model", "section", "setting", "value"])


def environments(groups: list[Group]) -> pd.DataFrame:
    """The distinct hardware and software of the runs (env.json), with how many runs used each."""
    def describe(env: dict) -> tuple:
        versions = env.get("versions") or {}
        return (env.get("cpu") or "unrecorded", env.get("gpu") or "none", env.get("device") or "unrecorded",
                versions.get("torch", "unrecorded"), env.get("cuda") or "none", versions.get("python", "unrecorded"),
                str(env.get("torch_threads", "unrecorded")))

    counts = pd.Series([describe(r.env) for g in groups for r in g.runs]).value_counts(sort=False)
    return pd.DataFrame([(*key, int(n)) for key, n in counts.items()], columns=list(ENVIRONMENT_COLUMNS))


def _markdown(frame: pd.DataFrame, caption: str, blank_repeats: str | None = None) -> str:
    lines = [f"**Table.** {caption}", "", "| " + " | ".join(frame.columns) + " |", "|" + "|".join("--" for _ in frame.columns) + "|"]
    previous = None
    for row in frame.itertuples(index=False):
        cells = [str(c) for c in row]
        if blank_repeats is not None:  # the model named on its first line only
            j = list(frame.columns).index(blank_repeats)
            cells[j], previous = ("" if cells[j] == previous else cells[j]), cells[j]
        lines.append("| " + " | ".join(cells) + " |")
    return "\n".join(lines)


def _latex(frame: pd.DataFrame, caption: str, label: str, blank_repeats: str | None = None) -> str:
    lines = [r"\begin{table}[t]", r"\centering", r"\small", rf"\caption{{{tex_escape(caption)}}}", rf"\label{{{label}}}",
             r"\begin{tabular}{" + "l" * len(frame.columns) + "}", r"\toprule",
             " & ".join(tex_escape(c) for c in frame.columns) + r" \\", r"\midrule"]
    previous = None
    for row in frame.itertuples(index=False):
        cells = [str(c) for c in row]
        if blank_repeats is not None:
            j = list(frame.columns).index(blank_repeats)
            if previous is not None and cells[j] != previous:
                lines.append(r"\midrule")
            cells[j], previous = ("" if cells[j] == previous else cells[j]), cells[j]
        lines.append(" & ".join(tex_escape(c) for c in cells) + r" \\")
    return "\n".join([*lines, r"\bottomrule", r"\end{tabular}", r"\end{table}"])


HYPERPARAMETERS_CAPTION = ("Resolved hyperparameters of each model: its model section and, for a model that trains, "
                           "the trainer section.")
ENVIRONMENT_CAPTION = "Hardware and software of the runs (from each run record's env.json), with the number of runs on each."


def appendix_texts(groups: list[Group], label_prefix: str) -> tuple[str, str]:
    """(Markdown, LaTeX) of the two appendix tables; labels tab:<prefix>-hyperparameters and -environment."""
    params, envs = hyperparameters(groups), environments(groups)
    md = "\n\n".join([_markdown(params, HYPERPARAMETERS_CAPTION, "model"), _markdown(envs, ENVIRONMENT_CAPTION)])
    tex = "\n\n".join([_latex(params, HYPERPARAMETERS_CAPTION, f"{label_prefix}-hyperparameters", "model"),
                       _latex(envs, ENVIRONMENT_CAPTION, f"{label_prefix}-environment")])
    return md, tex
