"""Sets our runs of `experiment=reproduce_s3rec` beside the S3-Rec paper's full-ranking table.

    python scripts/reproduction_table.py results/runs                   # -> results/reproduction.md/.csv
    python scripts/reproduction_table.py RUNS --out results/reproduction  # other output stem
    python scripts/reproduction_table.py results/runs --keep results/reproduction.csv   # new cells, the rest kept

One row per dataset x model: ours (mean ± std of test HR@10 / NDCG@10 over seeds), the published values,
ours / published for NDCG@10, whether the 95% floor is met, and for SASRec the eSASRec paper's
sampled-softmax SASRec on the same files (the aim for a CE-trained SASRec). Published values: S3-Rec
(Zhou et al., CIKM 2020), "all items" table; eSASRec (RecSys 2025), Table of SASRec-SS. A (dataset,
model) without a complete record is listed as missing, so a partial sweep gives a partial table; with
``--keep results/reproduction.csv`` it keeps that earlier table's cell instead, marked (records made elsewhere).
The table is the experiment's: records of another trainer or of other model settings (e.g. a file tuned on
validation, which results/README.md reports beside it) are left out.
"""

from __future__ import annotations

import argparse
import functools
import json
import sys
from pathlib import Path

import pandas as pd
import yaml

# dataset preset -> table name; model preset -> the paper's name. HR@10, NDCG@10.
DATASETS = {"s3rec-beauty": "Beauty", "s3rec-sports": "Sports", "s3rec-toys": "Toys", "s3rec-lastfm": "LastFM"}
MODELS = {"pop": "PopRec", "gru4rec": "GRU4Rec", "caser": "Caser", "sasrec": "SASRec", "bert4rec": "BERT4Rec"}
S3REC = {
    "Beauty": {"PopRec": (.0152, .0068), "GRU4Rec": (.0283, .0137), "Caser": (.0347, .0176), "SASRec": (.0605, .0318), "BERT4Rec": (.0347, .0170)},
    "Sports": {"PopRec": (.0094, .0053), "GRU4Rec": (.0204, .0110), "Caser": (.0194, .0097), "SASRec": (.0350, .0192), "BERT4Rec": (.0191, .0099)},
    "Toys": {"PopRec": (.0113, .0061), "GRU4Rec": (.0176, .0084), "Caser": (.0270, .0141), "SASRec": (.0675, .0374), "BERT4Rec": (.0203, .0099)},
    "LastFM": {"PopRec": (.0440, .0203), "GRU4Rec": (.0367, .0187), "Caser": (.0413, .0214), "SASRec": (.0688, .0390), "BERT4Rec": (.0633, .0337)},
}
ESASREC_SASREC_SS = {"Beauty": (.0921, .0531), "Sports": (.0569, .0314), "Toys": (.0970, .0580)}
FLOOR = 0.95  # ours must reach 95% of the published NDCG@10


def read_config(record: Path) -> dict | None:
    """A record's config.yaml, read once for the checks below (None: a record without one, taken as it is)."""
    path = record / "config.yaml"
    return (yaml.safe_load(path.read_text()) or {}) if path.is_file() else None


def paper_trainer(config: dict | None) -> bool:
    """Whether a record trained with the paper's setting (Adam lr 1e-3, batch 256)."""
    if config is None:
        return True
    trainer = config.get("trainer") or {}
    return float(trainer.get("lr", 0.001)) == 0.001 and int(trainer.get("batch_size", 256)) == 256


@functools.cache
def preset_model(dataset: str, model: str) -> dict:
    """The model section ``seqrec experiment=reproduce_s3rec dataset=DATASET model=MODEL`` runs (our preset in the
    paper's setting), composed as the run would compose it."""
    from hydra import compose, initialize_config_dir
    from omegaconf import OmegaConf

    from benchmark.cli import CONF_DIR

    with initialize_config_dir(CONF_DIR, version_base="1.3"):
        cfg = compose("config", overrides=["experiment=reproduce_s3rec", f"dataset={dataset}", f"model={model}"])
    return OmegaConf.to_container(cfg.model, resolve=True)


def is_preset(config: dict | None, dataset: str, model: str) -> bool:
    """Whether a record ran the experiment's own model settings (not, e.g., a file tuned on validation, which the
    text reports beside the table)."""
    return config is None or config.get("model") == preset_model(dataset, model)


def setting(config: dict | None) -> str:
    """What a record ran, less its seed: its identity hash at seed 0 ("" for a record without its config.yaml)."""
    from benchmark.record import config_hash

    return "" if config is None else config_hash({**config, "seed": 0})[:10]


def load(runs: Path) -> pd.DataFrame:
    """One row per complete full-ranking leave-one-out record of the reproduction's datasets and models."""
    rows = []
    for path in sorted(runs.glob("*/loo/*/seed*/metrics.json")):
        m = json.loads(path.read_text())
        if m.get("dataset") not in DATASETS or m.get("model") not in MODELS or m.get("candidates", "full") != "full":
            continue
        config = read_config(path.parent)
        if m.get("shuffle_order") or not paper_trainer(config):
            continue  # the order control, or another trainer (the records share results/runs with the reference)
        if not is_preset(config, m["dataset"], m["model"]):
            continue  # other model settings (e.g. a file tuned on validation): the text reports those, not the table
        test = m.get("test") or {}
        env = json.loads((path.parent / "env.json").read_text()) if (path.parent / "env.json").is_file() else {}
        rows.append({"dataset": DATASETS[m["dataset"]], "model": MODELS[m["model"]], "seed": int(m["seed"]),
                     "hr@10": test.get("hr@10"), "ndcg@10": test.get("ndcg@10"),
                     "valid_ndcg@10": (m.get("valid") or {}).get("ndcg@10"), "setting": setting(config),
                     "train_s": float(m.get("train_seconds") or 0.0), "epochs": m.get("epochs"),
                     "threads": env.get("torch_threads"), "run": str(path.parent.relative_to(runs))})
    return pd.DataFrame(rows, columns=["dataset", "model", "seed", "hr@10", "ndcg@10", "valid_ndcg@10", "setting",
                                       "train_s", "epochs", "threads", "run"])


def chosen(mine: pd.DataFrame) -> pd.DataFrame:
    """The records of one setting: where a cell's records ran several (e.g. the preset at another weight decay), the
    one with the best mean validation NDCG@10; seeds of different settings are never averaged."""
    if mine["setting"].nunique() < 2:
        return mine
    best = mine.groupby("setting")["valid_ndcg@10"].mean().fillna(float("-inf")).idxmax()
    return mine[mine["setting"] == best]


def _mean_std(values: pd.Series) -> tuple[float, float]:
    return float(values.mean()), float(values.std(ddof=1)) if len(values) > 1 else 0.0


def table(records: pd.DataFrame) -> pd.DataFrame:
    out = []
    for dataset, published in S3REC.items():
        for model, (p_hr, p_ndcg) in published.items():
            every = records[(records["dataset"] == dataset) & (records["model"] == model)]
            mine = chosen(every)
            row = {"dataset": dataset, "model": model, "seeds": len(mine), "published_hr@10": p_hr,
                   "published_ndcg@10": p_ndcg, "settings": every["setting"].nunique()}
            if len(mine):
                row["hr@10"], row["hr@10_std"] = _mean_std(mine["hr@10"])
                row["ndcg@10"], row["ndcg@10_std"] = _mean_std(mine["ndcg@10"])
                row["ratio_ndcg@10"] = row["ndcg@10"] / p_ndcg
                row["floor_met"] = row["ratio_ndcg@10"] >= FLOOR
                row["train_s"] = float(mine["train_s"].sum())
            if model == "SASRec" and dataset in ESASREC_SASREC_SS:
                row["esasrec_sasrec_ss_ndcg@10"] = ESASREC_SASREC_SS[dataset][1]
                if len(mine):
                    row["aim_met"] = row["ndcg@10"] >= ESASREC_SASREC_SS[dataset][1]
            out.append(row)
    return pd.DataFrame(out)


def carry(rows: pd.DataFrame, earlier: pd.DataFrame) -> pd.DataFrame:
    """``rows`` with each cell that has no record here taken from an ``earlier`` table (its CSV) where that one had
    records: a table made on a machine whose records were not archived keeps its cells. A cell with records here
    is computed from them alone. Carried rows say so in ``carried``."""
    missing = {c for c in ("dataset", "model", "seeds") if c not in earlier.columns}
    if missing:
        raise ValueError(f"it has no column {sorted(missing)[0]!r}: not a reproduction table")
    out = rows.assign(carried=False)
    for i, row in out.iterrows():
        before = earlier[(earlier["dataset"] == row["dataset"]) & (earlier["model"] == row["model"])]
        if row["seeds"] == 0 and len(before) and before["seeds"].iloc[0] > 0:
            old = before.iloc[0]
            for column in old.index.drop(["dataset", "model", "carried"], errors="ignore"):
                if pd.notna(old[column]):
                    out.loc[i, column] = old[column]
            out.at[i, "carried"] = True
    order = [c for c in dict.fromkeys([*earlier.columns, *rows.columns, "carried"]) if c in out.columns]
    return out[order]


def _cell(row: pd.Series, metric: str) -> str:
    if not row["seeds"]:
        return "not run yet"
    spread = f" ± {row[metric + '_std']:.4f}" if row["seeds"] > 1 else " (1 seed)"
    return f"{row[metric]:.4f}{spread}"


def markdown(rows: pd.DataFrame) -> str:
    done = rows[rows["seeds"] > 0]
    lines = ["# S3-Rec's full-ranking table, reproduced", "",
             "Written by `python scripts/reproduction_table.py RESULTS_DIR` from the records of "
             "`seqrec experiment=reproduce_s3rec` (docs/reproduction.md); what it says: results/README.md. "
             f"{len(done)} of {len(rows)} cells run so far; training time of those runs "
             f"{done['train_s'].sum() / 3600:.1f} h on this project's 2-core CPU machine (one thread per run).", "",
             "| dataset | model | ours HR@10 | paper HR@10 | ours NDCG@10 | paper NDCG@10 | ours / paper | ≥ 95% | seeds | train s |",
             "|:--|:--|--:|--:|--:|--:|--:|:-:|--:|--:|"]
    for _, r in rows.iterrows():
        done = bool(r["seeds"])
        ratio = f"{r['ratio_ndcg@10']:.2f}" if done else "–"
        met = ("✓" if r["floor_met"] else "✗") if done else "–"
        secs = f"{r['train_s']:.0f}" if done else "–"
        several = r.get("settings", 0) > 1
        seeds = f"{r['seeds']}{'†' if bool(r.get('carried', False)) else ''}{'‡' if several else ''}"
        lines.append(f"| {r['dataset']} | {r['model']} | {_cell(r, 'hr@10')} | {r['published_hr@10']:.4f} | "
                     f"{_cell(r, 'ndcg@10')} | {r['published_ndcg@10']:.4f} | {ratio} | {met} | {seeds} | {secs} |")
    if "settings" in rows.columns and (rows["settings"] > 1).any():
        lines += ["", "‡ its records ran several settings of the experiment: the row is the one with "
                  "the best mean validation NDCG@10, its seeds alone."]
    if "carried" in rows.columns and rows["carried"].any():
        lines += ["", "† carried from the earlier table (`--keep`): its records were made on another machine and not "
                  "archived, so the cell stands as that table gave it."]
    aims = rows[rows["model"].eq("SASRec") & rows.get("esasrec_sasrec_ss_ndcg@10", pd.Series(dtype=float)).notna()]
    if len(aims):
        lines += ["", "SASRec (ours: full cross-entropy) against the eSASRec paper's SASRec with sampled softmax, NDCG@10:", ""]
        for _, r in aims.iterrows():
            ours = _cell(r, "ndcg@10")
            verdict = "" if not r["seeds"] else (" — at or above ✓" if r.get("aim_met") else " — below ✗")
            lines.append(f"- {r['dataset']}: ours {ours}, eSASRec's SASRec-SS {r['esasrec_sasrec_ss_ndcg@10']:.4f}{verdict}")
    return "\n".join(lines) + "\n"


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(prog="reproduction_table", description=__doc__.split("\n\n")[0])
    p.add_argument("runs", type=Path, help="the reproduction sweep's results_dir (records below it)")
    p.add_argument("--out", type=Path, default=Path("results/reproduction"), help="output stem (.md and .csv are added)")
    p.add_argument("--keep", type=Path, help="an earlier table's CSV: its cells that have no record here are kept")
    args = p.parse_args(argv)
    if not args.runs.is_dir():
        print(f"reproduction_table: error: {args.runs} is not a folder", file=sys.stderr)
        return 2
    rows = table(load(args.runs))
    if args.keep is not None:
        try:
            earlier = pd.read_csv(args.keep)
            rows = carry(rows, earlier)
        except (OSError, ValueError) as e:
            print(f"reproduction_table: error: --keep {args.keep}: {' '.join(str(e).split())}", file=sys.stderr)
            return 2
    args.out.parent.mkdir(parents=True, exist_ok=True)
    rows.to_csv(args.out.with_suffix(".csv"), index=False)
    args.out.with_suffix(".md").write_text(markdown(rows))
    print(markdown(rows))
    done = int((rows["seeds"] > 0).sum())
    print(f"{done} of {len(rows)} (dataset, model) cells have records" + ("" if done == len(rows) else "; the rest: not run yet"))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
