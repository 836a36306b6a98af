"""Side-by-side speed and accuracy against RecBole 1.2.1 on the same leave-one-out split.

    python scripts/bench_vs_recbole.py                      # all six models x seeds 0,1,2
    python scripts/bench_vs_recbole.py --models sasrec --seeds 0 --recbole-time-cap 600
    python scripts/bench_vs_recbole.py --device cuda        # the GPU section of results/perf.md
    python scripts/bench_vs_recbole.py --skip-recbole       # our side only (no install)
    python scripts/bench_vs_recbole.py --models caser --seeds 1,2 --merge   # add runs to the report

On first use RecBole is installed from PyPI into its own virtual environment (.bench/recbole-venv,
or --recbole-venv / $SEQREC_RECBOLE_VENV), because it needs its own pins (numpy 1.26, ray 2.6, ...).

What is matched: our split is exported to RecBole's atomic files with rank-transformed timestamps
(RecBole stores timestamps as float32, which reorders raw unix times less than ~2 minutes apart),
and the script checks that both frameworks evaluate the same users with the same valid and test
targets. Hyper-parameters: max length 50, hidden 64, 2 layers / 2 heads (SASRec, BERT4Rec),
dropout 0.2, full-softmax CE (cloze for BERT4Rec), Adam lr 1e-3, gradient norm clipped at 5, early
stopping on valid NDCG@10 with the same patience; evaluation batches: RecBole 1024 users, ours
256 (our default: a [256, n_items] score block stays in cache). Batch: RecBole's 256 samples
are 256 (prefix, next item) targets; ours trains on windows of up to 50 targets each (25 for
SASRec, whose preset overlaps windows: stride 25), so it takes the number of windows that hold
about 256 targets (--ours-batch to override). Both sides use their presets' initialisation. Caser uses the
window L = 50 (the max length) on both sides. History masking as RecBole does it: sequential models rank all
items (no masking) on both sides; Pop masks the user's history on both sides and is trained with
batch size 1 on RecBole's side (its Pop counts an item at most once per batch). Ties: we count them
against the target; RecBole's top-k breaks them in the model's favour (matters for Pop only).
Evaluation is timed with the metrics RecBole computes (HR@10, NDCG@10); the evaluation target
also times our default evaluation, which adds every user's top-10 list (coverage, popularity bias).
RecBole's import turns on autograd anomaly detection (recbole/model/sequential_recommender/sine.py);
the RecBole runner switches it off again (--recbole-anomaly also times one SASRec epoch with it on,
as RecBole's own runs have it).

Each (framework, model, seed) runs in its own process; peak RSS is that process's VmHWM.
Both frameworks run in the same invocation, alternating, so machine load affects both alike; the
load average is recorded. Output: a Markdown table (printed and written into results/perf.md)
and results/perf.json (key "vs_recbole"; the evaluation-speed target under "eval_target").
With --merge the new runs join the report already in perf.json (a run of the same model and seed is
replaced; the split must be the same): each added run records its commit, time, load and, with
--why, the reason it was run, and the Markdown lists them, so a report built in several invocations
says so.
"""

from __future__ import annotations

import argparse
import functools
import json
import os
import shlex
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent))
from perf_common import (REPO, RESULTS, machine, markdown_table, peak_rss_mb, python_of, run_job, update_json,  # noqa: E402
                         update_section, write_synthetic_movielens)

RECBOLE_VERSION = "1.2.1"
# RecBole 1.2.1 with torch 2.13: newer numpy/pandas/ray break it; ray 2.6 imports pkg_resources.
RECBOLE_PINS = [
    f"recbole=={RECBOLE_VERSION}", "numpy==1.26.*", "pandas==2.3.*", "scipy", "colorlog", "colorama==0.4.4",
    "texttable", "thop", "tensorboard", "plotly", "ray==2.6.*",
    "setuptools>=77.0.3,<81",  # torch 2.13 requires >= 77.0.3 (its metadata); ray 2.6 imports pkg_resources, gone in 81
]
TORCH_PIN = os.environ.get("TORCH_PIN", "torch==2.13.0")
DEFAULT_VENV = REPO / ".bench" / "recbole-venv"
EVAL_REPEATS = 3  # timed passes of the evaluation target on each side; the median is reported


@dataclass(frozen=True)
class Pair:
    """One model on both sides: our conf/model preset (+ overrides) and RecBole's model + settings."""

    ours: str
    recbole: str
    ours_overrides: dict[str, Any] = field(default_factory=dict)
    recbole_settings: dict[str, Any] = field(default_factory=dict)
    mask_history: bool = False  # RecBole masks history for general models only
    trained: bool = True


MODELS: dict[str, Pair] = {
    "sasrec": Pair("sasrec", "SASRec", {"max_len": 50, "hidden": 64, "layers": 2, "heads": 2, "dropout": 0.2},
                   {"n_layers": 2, "n_heads": 2, "hidden_size": 64, "inner_size": 64, "hidden_dropout_prob": 0.2,
                    "attn_dropout_prob": 0.2, "hidden_act": "gelu"}),
    "gru4rec": Pair("gru4rec", "GRU4Rec", {"max_len": 50, "hidden": 64, "layers": 1, "dropout": 0.2},
                    {"embedding_size": 64, "hidden_size": 64, "num_layers": 1, "dropout_prob": 0.2}),
    # Caser's input is its window L, which RecBole reads from MAX_ITEM_LIST_LENGTH: L = 50 on both sides.
    "caser": Pair("caser", "Caser", {"window": 50, "max_len": 50, "horizontal_filters": 16, "vertical_filters": 4, "hidden": 64,
                                     "dropout": 0.2},
                  {"embedding_size": 64, "nh": 16, "nv": 4, "dropout_prob": 0.2, "reg_weight": 0.0}),
    # Our `layers` repeats the dilation list like RecBole's block_num.
    "nextitnet": Pair("nextitnet", "NextItNet", {"max_len": 50, "hidden": 64, "kernel": 3, "dilations": [1, 4], "layers": 2},
                      {"embedding_size": 64, "kernel_size": 3, "dilations": [1, 4], "block_num": 2, "reg_weight": 0.0}),
    "bert4rec": Pair("bert4rec", "BERT4Rec", {"max_len": 50, "hidden": 64, "layers": 2, "heads": 2, "dropout": 0.2, "mask_prob": 0.2},
                     {"n_layers": 2, "n_heads": 2, "hidden_size": 64, "inner_size": 64, "hidden_dropout_prob": 0.2,
                      "attn_dropout_prob": 0.2, "mask_ratio": 0.2}),
    "pop": Pair("pop", "Pop", {}, {"train_batch_size": 1, "epochs": 1}, mask_history=True, trained=False),
}


def recbole_settings(pair: Pair, args: argparse.Namespace, work: Path) -> dict[str, Any]:
    settings = {
        "USER_ID_FIELD": "user_id", "ITEM_ID_FIELD": "item_id", "TIME_FIELD": "timestamp",
        "load_col": {"inter": ["user_id", "item_id", "timestamp"]},
        "user_inter_num_interval": "[0,inf)", "item_inter_num_interval": "[0,inf)", "rm_dup_inter": None,
        "MAX_ITEM_LIST_LENGTH": 50,
        "eval_args": {"split": {"LS": "valid_and_test"}, "order": "TO", "group_by": "user", "mode": "full"},
        "train_neg_sample_args": None, "loss_type": "CE",
        "metrics": ["Hit", "NDCG"], "topk": [10], "valid_metric": "NDCG@10",
        "train_batch_size": 256, "eval_batch_size": 1024, "learning_rate": args.lr, "weight_decay": 0.0,
        "clip_grad_norm": {"max_norm": 5.0, "norm_type": 2},
        "epochs": args.max_epochs, "stopping_step": args.patience, "eval_step": 1,
        "use_gpu": args.device.startswith("cuda"), "device": args.device,
        "show_progress": False, "state": "ERROR", "worker": 0, "reproducibility": True,
        "checkpoint_dir": str(work / "saved"), "save_dataset": False, "save_dataloaders": False, "log_wandb": False,
    }
    return {**settings, **pair.recbole_settings}


# ---------------------------------------------------------------- RecBole's environment


def ensure_recbole(venv: Path) -> Path:
    """The RecBole interpreter, installing RecBole into ``venv`` on first use."""
    python = python_of(venv)
    check = [str(python), "-c", f"import recbole, ray; assert recbole.__version__ == '{RECBOLE_VERSION}'"]
    if python.exists() and subprocess.run(check, capture_output=True).returncode == 0:
        return python
    print(f"installing RecBole {RECBOLE_VERSION} into {venv} (first use; a few minutes)", flush=True)
    subprocess.run([sys.executable, "-m", "venv", str(venv)], check=True)
    pip = [str(python), "-m", "pip", "install", "-q"]
    subprocess.run([*pip, TORCH_PIN], check=True)  # first, so pip keeps the CPU wheel
    subprocess.run([*pip, TORCH_PIN, *RECBOLE_PINS], check=True)
    subprocess.run(check, check=True)
    return python


# ---------------------------------------------------------------- data: one split, two formats


def dataset_config(args: argparse.Namespace) -> dict[str, Any]:
    from omegaconf import OmegaConf

    cfg = OmegaConf.to_container(OmegaConf.load(REPO / "conf" / "dataset" / f"{args.dataset}.yaml"))
    if args.data_dir:
        cfg["path"] = str(args.data_dir)
    return cfg


def export_atomic(split: Any, directory: Path, name: str) -> int:
    """Writes our split's full sequences as RecBole's ``<name>.inter``. Timestamps are positions
    within each user (0, 1, 2, ...), exact in float32, so RecBole orders items exactly as we do."""
    import numpy as np
    import pandas as pd

    full = split.test.histories  # everything before the test target
    lengths = full.lengths + 1
    starts = np.concatenate([[0], np.cumsum(lengths)[:-1]])
    users = np.repeat(np.arange(len(lengths)), lengths)
    pos = np.arange(int(lengths.sum())) - np.repeat(starts, lengths)
    items = np.empty(int(lengths.sum()), dtype=np.int64)
    is_target = pos == lengths[users] - 1
    items[is_target] = split.test.targets[:, 0]
    items[~is_target] = full.items
    frame = pd.DataFrame({"user_id:token": split.user_ids[users], "item_id:token": split.item_ids[items],
                          "timestamp:float": pos.astype(np.float64)})
    directory.mkdir(parents=True, exist_ok=True)
    frame.to_csv(directory / f"{name}.inter", sep="\t", index=False)
    return len(frame)


def split_pairs(split: Any, which: str) -> set[tuple[str, str]]:
    es = getattr(split, which)
    return set(zip(split.user_ids[es.users].tolist(), split.item_ids[es.targets[:, 0]].tolist()))


# ---------------------------------------------------------------- our side (a subprocess)


def run_ours(job_path: str, out_path: str) -> None:
    """Our side of one comparison run; writes the same result schema as recbole_runner.py."""
    job = json.loads(Path(job_path).read_text())
    start = time.perf_counter()

    import torch
    from benchmark.config import TrainerConfig
    from benchmark.data.dataset import DatasetSpec, prepare_split
    from benchmark.evaluation import evaluate
    from benchmark.run import seed_everything

    if job.get("threads"):
        torch.set_num_threads(int(job["threads"]))
    with tempfile.TemporaryDirectory() as cache:  # no cache: read and preprocess the raw file, as RecBole does
        split = prepare_split(DatasetSpec.from_dict(job["dataset"]), "loo", cache_dir=cache).split
    model = our_model(job["model"], job["overrides"])
    trainer = TrainerConfig.from_dict(job["trainer"])
    seed_everything(trainer.seed)
    prep_seconds = time.perf_counter() - start
    t0 = time.perf_counter()
    logs = model.fit(split, trainer)
    fit_seconds = time.perf_counter() - t0
    # Timed with the metrics RecBole computes (HR@10, NDCG@10); our default evaluation also builds
    # every user's top-10 list for coverage and popularity bias, timed separately where asked.
    # The median of eval_repeats timed passes is the figure (transient load on a shared machine).
    evaluate_test = functools.partial(evaluate, model, split, split.test, ks=(10,), batch_size=trainer.eval_batch_size,
                                      mask_history=job["mask_history"])
    test_runs, lists_runs = [], []
    for _ in range(int(job.get("eval_repeats", 1))):
        t0 = time.perf_counter()
        test = evaluate_test(beyond_accuracy=False)
        test_runs.append(time.perf_counter() - t0)
        if job.get("time_lists"):
            t0 = time.perf_counter()
            evaluate_test()
            lists_runs.append(time.perf_counter() - t0)
    peak_rss = peak_rss_mb()  # the measured work ends here
    favourable = (favourable_ties_ndcg(model, split, job["mask_history"], trainer.eval_batch_size)
                  if job.get("favourable_ties", True) else None)
    epochs = [{"epoch": log.epoch, "train_seconds": log.seconds - log.valid_seconds, "valid_seconds": log.valid_seconds,
               "loss": log.loss, "valid_ndcg@10": log.valid_metric} for log in logs]
    result = {
        "framework": "ours", "model": job["model"], "seed": trainer.seed, "epochs": epochs,
        "best_valid_ndcg@10": max((e["valid_ndcg@10"] for e in epochs), default=None), "prep_seconds": prep_seconds,
        "fit_seconds": fit_seconds, "batch_size": trainer.batch_size, "stride": getattr(model, "stride", None), "test": {"hr@10": test.aggregate["hr@10"], "ndcg@10": test.aggregate["ndcg@10"]},
        "test_ndcg@10_favourable_ties": favourable, "test_eval_seconds": statistics.median(test_runs), "test_eval_runs": test_runs,
        "test_eval_seconds_with_lists": statistics.median(lists_runs) if lists_runs else None, "n_eval_users": len(test.users), "n_items": split.n_items,
        "threads": torch.get_num_threads(), "peak_rss_mb": peak_rss,
    }
    Path(out_path).write_text(json.dumps(result))


def favourable_ties_ndcg(model: Any, split: Any, mask_history: bool, batch_size: int) -> float:
    """Test NDCG@10 with ties broken in the model's favour (rank = 1 + items scoring strictly
    higher), for comparison only: our metrics count ties against the model. Matters for Pop."""
    import numpy as np
    import torch
    from benchmark.evaluation import excluded_mask, metrics_from_ranks
    from benchmark.models.base import Batch

    ranks = []
    with torch.no_grad():
        for lo in range(0, len(split.test), batch_size):
            rows = np.arange(lo, min(lo + batch_size, len(split.test)))
            history = split.test.histories.padded(rows)
            scores = model.score(Batch(torch.from_numpy(split.test.users[rows]), history)).float()
            target = scores.gather(1, torch.from_numpy(split.test.targets[rows][:, :1]))
            candidates = scores.masked_fill(excluded_mask(scores.shape[1], history, history[:, :0], mask_history), -torch.inf)
            ranks.append(1 + (candidates > target).sum(1))
    return float(metrics_from_ranks(torch.cat(ranks).numpy(), (10,))["ndcg@10"].mean())


# ---------------------------------------------------------------- orchestration


def our_model(preset: str, overrides: dict[str, Any]) -> Any:
    """Our model as conf/model/<preset>.yaml with the comparison's overrides (unfitted)."""
    from hydra.utils import instantiate
    from omegaconf import OmegaConf

    return instantiate(OmegaConf.merge(OmegaConf.load(REPO / "conf" / "model" / f"{preset}.yaml"), overrides), _convert_="all")


def training_targets(split: Any) -> int:
    """Next-item targets in the training sequences (all but each sequence's first item)."""
    return int((split.train.lengths - 1).clip(min=0).sum())


def windows_per_step(pair: Pair, split: Any) -> int:
    """Our training windows per step that hold RecBole's 256 targets per step.

    RecBole's batch of 256 is 256 (prefix, next item) samples = 256 targets; one of our windows
    trains up to ``stride`` targets (the preset's, or max length 50), so the same targets per update
    take fewer windows. Models without training windows (Pop) are counted with disjoint windows of 50."""
    from benchmark.training import training_windows

    model = our_model(pair.ours, pair.ours_overrides)
    if hasattr(model, "training_examples"):
        windows = len(model.training_examples(split)[0])
    else:
        windows = len(training_windows(split.train.items, split.train.offsets, 50)[0])
    return max(1, round(256 * windows / max(training_targets(split), 1)))


def ours_job(pair: Pair, seed: int, args: argparse.Namespace, dataset: dict[str, Any], max_epochs: int | None = None,
             batch_size: int = 256) -> dict[str, Any]:
    trainer = {"lr": args.lr, "batch_size": args.ours_batch or batch_size, "max_epochs": args.max_epochs if max_epochs is None else max_epochs,
               "patience": args.patience, "device": args.device, "grad_clip": 5.0,
               "seed": seed, "mask_history": pair.mask_history}
    return {"model": pair.ours, "overrides": pair.ours_overrides, "dataset": dataset, "trainer": trainer,
            "mask_history": pair.mask_history, "threads": args.threads}


def recbole_job(pair: Pair, seed: int, args: argparse.Namespace, data_path: Path, name: str, work: Path,
                max_epochs: int | None = None, anomaly: bool = False, dump_split: bool = False,
                time_cap: float | None = None) -> dict[str, Any]:
    settings = recbole_settings(pair, args, work)
    epochs = settings["epochs"] if max_epochs is None else max_epochs
    return {"model": pair.recbole, "seed": seed, "data_path": str(data_path), "dataset": name, "settings": settings,
            "max_epochs": epochs, "patience": args.patience, "time_cap_s": time_cap, "device": args.device,
            "anomaly": anomaly, "dump_split": dump_split, "threads": args.threads}


def epoch_seconds(run: dict[str, Any]) -> float | None:
    """Mean training seconds per epoch (Pop on our side has no epochs: its fit time)."""
    if run["epochs"]:
        return statistics.fmean(e["train_seconds"] for e in run["epochs"])
    return run.get("fit_seconds")


def time_to(run: dict[str, Any], target: float | None) -> float | None:
    """Seconds of training + validation until the first epoch whose valid NDCG@10 >= target."""
    if target is None:
        return None
    elapsed = 0.0
    for e in run["epochs"]:
        elapsed += e["train_seconds"] + e["valid_seconds"]
        if e["valid_ndcg@10"] >= target - 1e-12:
            return elapsed
    return None


def mean(values: list[float | None]) -> float | None:
    vals = [v for v in values if v is not None]
    return statistics.fmean(vals) if vals and len(vals) == len(values) else None


def mean_std(values: list[float]) -> str:
    if not values:
        return "–"
    sd = statistics.stdev(values) if len(values) > 1 else 0.0
    return f"{statistics.fmean(values):.4f} ± {sd:.4f}"


def fmt(x: float | None, digits: int = 2, suffix: str = "") -> str:
    if x is None:
        return "–"
    return f"{x:.{digits}f}{suffix}" if abs(x) < 1000 else f"{x:.0f}{suffix}"


def ratio(a: float | None, b: float | None) -> float | None:
    return a / b if a is not None and b not in (None, 0) else None


def summarise(model: str, runs: list[dict[str, Any]]) -> dict[str, Any]:
    ours = [r["ours"] for r in runs]
    rb = [r["recbole"] for r in runs if r.get("recbole")]
    row: dict[str, Any] = {"model": model, "seeds": [r["seed"] for r in runs],
                           "ours_batch": ours[0].get("batch_size"), "ours_stride": ours[0].get("stride")}
    for side, side_runs in (("ours", ours), ("recbole", rb)):
        if side_runs:
            row[f"{side}_epoch_s"] = mean([epoch_seconds(r) for r in side_runs])
            row[f"{side}_eval_s"] = statistics.fmean(r["test_eval_seconds"] for r in side_runs)
            row[f"{side}_rss_mb"] = max(r["peak_rss_mb"] for r in side_runs)
            row[f"{side}_ndcg"] = [r["test"]["ndcg@10"] for r in side_runs]
            row[f"{side}_hr"] = [r["test"]["hr@10"] for r in side_runs]
            if side == "ours":
                row["ours_ndcg_favourable_ties"] = [r.get("test_ndcg@10_favourable_ties") for r in side_runs]
            row[f"{side}_epochs"] = [len(r["epochs"]) for r in side_runs]
    if rb:
        # Accuracy and time to accuracy compare the two sides seed by seed: only seeds run on both.
        paired = [r["ours"] for r in runs if r.get("recbole")]
        targets = [r["best_valid_ndcg@10"] for r in rb]
        row["recbole_best_valid"] = targets
        row["recbole_tta_s"] = mean([time_to(r, t) for r, t in zip(rb, targets)])
        row["ours_tta_s"] = mean([time_to(r, t) for r, t in zip(paired, targets)]) if all(r["epochs"] for r in paired) else None
        row["ours_reached"] = [time_to(r, t) is not None for r, t in zip(paired, targets)]
        row["epoch_speedup"] = ratio(row["recbole_epoch_s"], row["ours_epoch_s"])
        row["tta_speedup"] = ratio(row["recbole_tta_s"], row["ours_tta_s"])
        row["eval_speedup"] = ratio(row["recbole_eval_s"], row["ours_eval_s"])
        row["rss_ratio"] = ratio(row["ours_rss_mb"], row["recbole_rss_mb"])
        row["paired_ndcg"] = [r["test"]["ndcg@10"] for r in paired]
        row["ndcg_diff"] = statistics.fmean(row["paired_ndcg"]) - statistics.fmean(row["recbole_ndcg"])
    return row


def seed_noise(ours: list[float], recbole: list[float]) -> float | None:
    """Two standard errors of the difference of the two sides' means, from each side's own spread over
    seeds (pooling both sides' values would count the gap between them as noise); None with one seed."""
    if len(ours) < 2 or len(recbole) < 2:
        return None
    return 2 * (statistics.variance(ours) / len(ours) + statistics.variance(recbole) / len(recbole)) ** 0.5


def unreached(row: dict[str, Any]) -> str:
    """"not reached in k of n seeds" where some of our seeds never reach RecBole's best, else ""."""
    reached = row.get("ours_reached") or []
    return f"not reached in {reached.count(False)} of {len(reached)} seeds" if not all(reached) else ""


def table(rows: list[dict[str, Any]]) -> str:
    header = ["model", "s/epoch ours", "s/epoch RecBole", "×", "time to RecBole's best valid (s) ours", "RecBole", "×",
              "test eval s ours", "RecBole", "×", "peak RSS MB ours", "RecBole",
              "test NDCG@10 ours", "RecBole", "test HR@10 ours", "RecBole"]
    out = []
    for r in rows:
        x = lambda k: fmt(r.get(k), 1, "×")  # noqa: E731
        tta_ours = fmt(r.get("ours_tta_s"), 1)
        if max(r["ours_epochs"]) == 0:  # not trained (Pop)
            tta_ours = "–"
        elif unreached(r):
            tta_ours = unreached(r)
        out.append([r["model"], fmt(r["ours_epoch_s"]), fmt(r.get("recbole_epoch_s")), x("epoch_speedup"),
                    tta_ours, fmt(r.get("recbole_tta_s"), 1), x("tta_speedup"),
                    fmt(r["ours_eval_s"], 3), fmt(r.get("recbole_eval_s"), 3), x("eval_speedup"),
                    fmt(r["ours_rss_mb"], 0), fmt(r.get("recbole_rss_mb"), 0),
                    mean_std(r["ours_ndcg"]), mean_std(r.get("recbole_ndcg", [])),
                    mean_std(r["ours_hr"]), mean_std(r.get("recbole_hr", []))])
    return markdown_table(header, out)


def eval_target(args: argparse.Namespace, work: Path, recbole_python: Path | None) -> dict[str, Any]:
    """Full-ranking evaluation seconds of an (untrained) SASRec on a synthetic dataset of
    args.eval_users users x args.eval_items items, ours vs RecBole's full-sort evaluation."""
    data_dir = work / "eval-target" / "raw"
    rows = write_synthetic_movielens(data_dir, args.eval_users, args.eval_items, mean_len=8, seed=1)
    dataset = {"name": "synthetic-eval", "reader": "movielens", "path": str(data_dir), "mask_history": False,
               "dedupe": True, "user_core": 1, "item_core": 1, "min_seq_len": 3}
    pair = MODELS["sasrec"]
    # Timing only: no second scoring pass for favourable ties over the 50,000 users.
    ours = run_job([sys.executable, __file__, "--side", "ours"],
                   {**ours_job(pair, 0, args, dataset, max_epochs=0), "favourable_ties": False, "time_lists": True,
                    "eval_repeats": EVAL_REPEATS},
                   work, "eval-target-ours")
    out: dict[str, Any] = {"rows": rows, "users": ours["n_eval_users"], "items": ours["n_items"], "model": "sasrec (untrained)",
                           "ours_eval_s": ours["test_eval_seconds"], "ours_rss_mb": ours["peak_rss_mb"],
                           "ours_eval_with_lists_s": ours["test_eval_seconds_with_lists"], "ours_eval_runs": ours["test_eval_runs"]}
    if recbole_python:
        from benchmark.data.dataset import DatasetSpec, prepare_split

        split = prepare_split(DatasetSpec.from_dict(dataset), "loo", cache_dir=work / "cache").split
        export_atomic(split, work / "eval-target" / "atomic" / "synthetic", "synthetic")
        rb = run_job([str(recbole_python), str(REPO / "scripts" / "recbole_runner.py")],
                     {**recbole_job(pair, 0, args, work / "eval-target" / "atomic", "synthetic", work, max_epochs=0),
                      "eval_repeats": EVAL_REPEATS},
                     work, "eval-target-recbole")
        out.update(recbole_eval_s=rb["test_eval_seconds"], recbole_eval_runs=rb["test_eval_runs"], recbole_rss_mb=rb["peak_rss_mb"],
                   recbole_users=rb["n_eval_users"], eval_speedup=ratio(rb["test_eval_seconds"], ours["test_eval_seconds"]))
    return out


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0], formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--side", choices=["ours"], help=argparse.SUPPRESS)
    p.add_argument("job", nargs="*", help=argparse.SUPPRESS)
    p.add_argument("--models", default=",".join(MODELS), help=f"comma-separated, of {', '.join(MODELS)}")
    p.add_argument("--seeds", default="0,1,2")
    p.add_argument("--dataset", default="ml-latest-small", help="a conf/dataset preset")
    p.add_argument("--data-dir", type=Path, help="directory of the dataset's native files (default: the preset's)")
    p.add_argument("--lr", type=float, default=1e-3)
    p.add_argument("--ours-batch", type=int, default=0,
                   help="our training windows per step; 0 (default): as many as hold RecBole's 256 targets per step")
    p.add_argument("--single-seed", default="pop", help="models run with the first seed only (Pop is deterministic)")
    p.add_argument("--max-epochs", type=int, default=200)
    p.add_argument("--patience", type=int, default=10, help="early-stopping patience on both sides (RecBole's default stopping_step)")
    p.add_argument("--recbole-time-cap", type=float, help="stop RecBole training after this many training seconds")
    p.add_argument("--recbole-anomaly", action="store_true", help="also time one RecBole SASRec epoch with anomaly detection on")
    p.add_argument("--device", default="cpu")
    p.add_argument("--threads", type=int, default=os.cpu_count(), help="torch threads on both sides")
    p.add_argument("--skip-recbole", action="store_true", help="our side only (no RecBole install)")
    p.add_argument("--recbole-venv", type=Path, default=Path(os.environ.get("SEQREC_RECBOLE_VENV", DEFAULT_VENV)))
    p.add_argument("--eval-users", type=int, default=50_000)
    p.add_argument("--eval-items", type=int, default=20_000)
    p.add_argument("--skip-eval-target", action="store_true")
    p.add_argument("--work", type=Path, default=REPO / ".bench" / "work")
    p.add_argument("--out", type=Path, default=RESULTS, help="folder of perf.md and perf.json")
    p.add_argument("--render-only", action="store_true", help="rewrite the perf.md section from perf.json (no runs)")
    p.add_argument("--merge", action="store_true",
                   help="add these runs to the report in --out/perf.json (same model and seed: replaced) instead of a new report")
    p.add_argument("--why", help="with --merge: why these runs are added (e.g. the change they measure), listed with them")
    args = p.parse_args(argv)
    if args.why is not None and not args.merge:
        p.error("--why goes with --merge (it is recorded with the added runs)")
    if args.side == "ours":
        run_ours(*args.job)
        return 0
    key = "vs_recbole" if args.device == "cpu" else f"vs_recbole_{args.device.replace(':', '')}"
    if args.render_only:
        report = json.loads((args.out / "perf.json").read_text())[key]
        report["summary"] = [summarise(m, runs) for m, runs in report["runs"].items()]
        update_section(args.out / "perf.md", key, render(report))
        return 0

    if args.merge:
        previous = json.loads((args.out / "perf.json").read_text()).get(key) if (args.out / "perf.json").is_file() else None
        if not previous:
            p.error(f"--merge: {args.out / 'perf.json'} has no {key!r} report to add runs to")
        if args.skip_recbole and previous["split_check"].get("same_split_checked"):
            p.error("--merge: the report compares with RecBole, so runs added to it need RecBole too (drop --skip-recbole)")
        if not args.skip_recbole and not previous["split_check"].get("same_split_checked"):
            p.error("--merge: the report has no RecBole side, so runs added to it cannot have one (add --skip-recbole, "
                    "or write a new report without --merge)")
    models = [m.strip() for m in args.models.split(",") if m.strip()]
    unknown = [m for m in models if m not in MODELS]
    if unknown:
        p.error(f"unknown model {unknown[0]!r}; choose from {', '.join(MODELS)}")
    seeds = [int(s) for s in args.seeds.split(",")]
    recbole_python = None if args.skip_recbole else ensure_recbole(args.recbole_venv)
    work = args.work
    shutil.rmtree(work, ignore_errors=True)
    work.mkdir(parents=True)
    env_start = machine()

    from benchmark.data.dataset import DatasetSpec, prepare_split

    dataset = dataset_config(args)
    prepared = prepare_split(DatasetSpec.from_dict(dataset), "loo", cache_dir=work / "cache")
    split = prepared.split
    atomic_root, atomic_name = work / "atomic", "bench"
    export_atomic(split, atomic_root / atomic_name, atomic_name)
    check: dict[str, Any] = {"users": int(split.n_users), "items": int(split.n_items), "split_key": prepared.split_key}
    single = {m.strip() for m in args.single_seed.split(",")}
    check["train_targets_ours"] = training_targets(split)
    if args.merge:
        check_same_split(previous, check)
        check_same_settings(previous, args)

    results: dict[str, list[dict[str, Any]]] = {}
    for model in models:
        pair = MODELS[model]
        batch_size = windows_per_step(pair, split)
        for seed in seeds[:1] if model in single else seeds:
            run: dict[str, Any] = {"seed": seed}
            if recbole_python:
                first = not check.get("same_split_checked")
                run["recbole"] = rb = run_job(
                    [str(recbole_python), str(REPO / "scripts" / "recbole_runner.py")],
                    recbole_job(pair, seed, args, atomic_root, atomic_name, work, dump_split=first, time_cap=args.recbole_time_cap),
                    work, f"{model}-{seed}-recbole")
                if first:
                    for which in ("valid", "test"):
                        ours_pairs, rb_pairs = split_pairs(split, which), {tuple(x) for x in rb.pop(f"{which}_pairs")}
                        check[f"same_{which}_users_and_targets"] = ours_pairs == rb_pairs
                        check[f"{which}_pairs_compared"] = len(ours_pairs)
                        if ours_pairs != rb_pairs:
                            raise SystemExit(f"RecBole evaluates different {which} users/targets than we do "
                                             f"({len(ours_pairs ^ rb_pairs)} pairs differ); comparison aborted")
                    check["same_split_checked"] = True
                    check["train_samples_recbole"] = rb["n_train_samples"]
            run["ours"] = run_job([sys.executable, __file__, "--side", "ours"],
                                  ours_job(pair, seed, args, dataset, batch_size=batch_size),
                                  work, f"{model}-{seed}-ours")
            results.setdefault(model, []).append(run)
            print(f"{model} seed {seed}: " + ", ".join(
                f"{side} ndcg@10={r['test']['ndcg@10']:.4f} epochs={len(r['epochs'])} s/epoch={fmt(epoch_seconds(r))}"
                for side, r in run.items() if side != "seed"), flush=True)

    anomaly = None
    if recbole_python and args.recbole_anomaly:
        rb = run_job([str(recbole_python), str(REPO / "scripts" / "recbole_runner.py")],
                     recbole_job(MODELS["sasrec"], 0, args, atomic_root, atomic_name, work, max_epochs=1, anomaly=True),
                     work, "sasrec-anomaly-recbole")
        anomaly = {"model": "sasrec", "seconds_per_epoch_with_anomaly_detection": epoch_seconds(rb)}

    target = None if args.skip_eval_target else eval_target(args, work, recbole_python)
    env_end = machine()
    if args.merge:
        report = merge_runs(previous, results, env_start, env_end, argv if argv is not None else sys.argv[1:], args.why)
        report["eval_target"] = target or report.get("eval_target")
        report["recbole_anomaly"] = anomaly or report.get("recbole_anomaly")
    else:
        report = {"machine_at_start": env_start, "machine_at_end": env_end, "device": args.device,
                  "dataset": args.dataset, "split_check": check, "settings": vars(args) | {"work": str(work), "out": str(args.out),
                  "data_dir": str(args.data_dir) if args.data_dir else None, "recbole_venv": str(args.recbole_venv)},
                  "runs": results, "recbole_anomaly": anomaly, "eval_target": target}
    report["summary"] = [summarise(m, runs) for m, runs in report["runs"].items()]
    text = render(report)
    print(text)
    update_json(args.out / "perf.json", key, report)
    update_section(args.out / "perf.md", key, text)
    return 0


# What must agree for runs to share one report: the split's content hash (equal counts are not the same
# data), and its counts for reports written before the hash was recorded.
SPLIT_KEYS = ("users", "items", "train_targets_ours", "split_key")
# Settings every run of one report must share (the Markdown states them once for all runs).
MERGE_SETTINGS = ("lr", "max_epochs", "patience", "threads", "recbole_time_cap", "ours_batch", "device", "dataset")


def check_same_split(report: dict[str, Any], check: dict[str, Any]) -> None:
    """Refuses (before any run) to add runs on other data to a report."""
    keys = [k for k in SPLIT_KEYS if k in report["split_check"]]
    old = {k: report["split_check"].get(k) for k in keys}
    new = {k: check.get(k) for k in keys}
    if old != new:
        raise SystemExit(f"--merge: this split {new} is not the report's {old}; runs on different data cannot share a table")


def check_same_settings(report: dict[str, Any], args: argparse.Namespace) -> None:
    """Refuses (before any run) to add runs trained under other settings than the report states."""
    differ = [f"--{k.replace('_', '-')} {getattr(args, k)!r} (the report's: {report['settings'].get(k)!r})"
              for k in MERGE_SETTINGS if k in report["settings"] and report["settings"][k] != getattr(args, k)]
    if differ:
        raise SystemExit(f"--merge: {', '.join(differ)}; runs under other settings cannot share a table")


def merge_runs(report: dict[str, Any], results: dict[str, list[dict[str, Any]]],
               start: dict[str, Any], end: dict[str, Any], argv: list[str], why: str | None = None) -> dict[str, Any]:
    """``report`` with ``results`` added: a run of the same model and seed is replaced, new seeds are
    appended in seed order; every added run records when, on which commit, under which load and why."""
    added = {"git_commit": start["git_commit"], "date": start["date"], "end": end["date"],
             "loadavg_at_start": start["loadavg"], "command": shlex.join(["scripts/bench_vs_recbole.py", *argv]),
             **({"why": why} if why else {})}
    runs = {m: list(rs) for m, rs in report["runs"].items()}
    for model, model_runs in results.items():
        new_seeds = {r["seed"] for r in model_runs}
        kept = [r for r in runs.get(model, []) if r["seed"] not in new_seeds]
        runs[model] = sorted(kept + [{**r, "added": added} for r in model_runs], key=lambda r: r["seed"])
    return {**report, "runs": runs}


def added_runs(report: dict[str, Any]) -> list[str]:
    """One line per invocation that added runs to the report after it was first written."""
    by_invocation: dict[str, list[str]] = {}
    for model, runs in report["runs"].items():
        for r in runs:
            if r.get("added"):
                a = r["added"]
                what = (f"commit {a['git_commit']}, {a['date']} – {a['end'][11:]}, load average at start "
                        f"{a['loadavg_at_start'][0]:.2f}: `{a['command']}`" + (f" ({a['why']})" if a.get("why") else ""))
                by_invocation.setdefault(what, []).append(f"{model} seed {r['seed']}")
    return [f"- {', '.join(runs)}: {what}" for what, runs in by_invocation.items()]


def targets(report: dict[str, Any]) -> list[str]:
    """The issue's targets, one line each, met (✓) or missed (✗) as measured."""
    def mark(ok: bool | None) -> str:
        return "–" if ok is None else ("✓" if ok else "✗")

    out = []
    for r in report["summary"]:
        if "recbole_epoch_s" not in r:
            continue
        noise = seed_noise(r.get("paired_ndcg", r["ours_ndcg"]), r["recbole_ndcg"])
        ndcg_ok = r["ndcg_diff"] >= -(noise or 0.0)
        speedup = r["epoch_speedup"]
        # The measured ratio beside the mark: the table rounds it (9.96 shows as 10.0×).
        parts = ["epoch ≥ 10× faster" + (f" ({speedup:.2f}×)" if speedup is not None else "")
                 + f" {mark(None if speedup is None else speedup >= 10)}"]
        if r["model"] != "pop":
            # A seed that never gets there has no time to accuracy: a miss, not "not applicable".
            t = r["tta_speedup"]
            tta = f"✗ ({unreached(r)})" if unreached(r) else (f"({t:.2f}×) " if t is not None else "") + mark(None if t is None else t >= 5)
            parts.append(f"time to RecBole's best valid NDCG@10 ≥ 5× shorter {tta}")
        parts.append(f"peak memory no higher {mark(r['rss_ratio'] <= 1)}")
        parts.append(f"test NDCG@10 not worse ({r['ndcg_diff']:+.4f}" + (f", noise ±{noise:.4f}" if noise is not None else ", one seed")
                     + f") {mark(ndcg_ok)}")
        out.append(f"- {r['model']}: " + "; ".join(parts))
    t = report.get("eval_target")
    if t and t.get("eval_speedup") is not None:
        out.append(f"- full-ranking evaluation ≥ 5× faster at {t['users']:,} users × {t['items']:,} items: "
                   f"{t['eval_speedup']:.1f}× {mark(t['eval_speedup'] >= 5)}")
    return out


def tie_note(row: dict[str, Any]) -> str:
    """Our test NDCG@10 with ties in the model's favour, where that differs from ours (Pop)."""
    favourable = [v for v in row.get("ours_ndcg_favourable_ties", []) if v is not None]
    if not favourable or abs(statistics.fmean(favourable) - statistics.fmean(row["ours_ndcg"])) < 5e-5:
        return ""
    return (f"; ours with ties broken in the model's favour instead of against it: test NDCG@10 "
            f"{statistics.fmean(favourable):.4f}")


def render(report: dict[str, Any]) -> str:
    m0, m1 = report["machine_at_start"], report["machine_at_end"]
    s, check = report["settings"], report["split_check"]
    cap = (f"RecBole training capped at {s['recbole_time_cap']:.0f} s per run (checked before each epoch, so the epoch "
           "running at the cap completes): its test accuracy below is that of a model stopped early, not its converged "
           "accuracy, and time to accuracy is measured against its best within the cap; " if s.get("recbole_time_cap") else "")
    lines = [
        f"## Side by side with RecBole {RECBOLE_VERSION} ({report['device']})", "",
        f"`python scripts/bench_vs_recbole.py --models {s['models']} --seeds {s['seeds']} --single-seed {s['single_seed']} "
        f"--max-epochs {s['max_epochs']} --patience {s['patience']} --device {report['device']}"
        + (f" --recbole-time-cap {s['recbole_time_cap']:.0f}" if s.get("recbole_time_cap") else "") + "`",
        "", f"Measured {m0['date']} on {m0['cpu']} ({m0['cores']} cores, torch {m0['torch']}, {m0['torch_threads']} threads "
        f"on both sides); load average at start {m0['loadavg'][0]:.2f}, at end {m1['loadavg'][0]:.2f} "
        "(the machine is shared, so absolute seconds are noisy; both frameworks ran alternately in the same invocation).",
        "", f"Dataset {report['dataset']}: {check['users']} users, {check['items']} items, leave-one-out. "
        + (f"Same split on both sides: valid and test users and targets identical ({check.get('test_pairs_compared')} users checked); "
           f"training targets ours {check.get('train_targets_ours')}, RecBole training samples {check.get('train_samples_recbole')}."
           if check.get("same_split_checked") else "RecBole side not run."),
        f"Training: up to {s['max_epochs']} epochs, early stopping patience {s['patience']} on valid NDCG@10, lr {s['lr']}; "
        "RecBole batch 256 samples (= 256 targets), ours as many windows per step as hold about 256 targets (below); "
        + cap + "time to accuracy = training + validation seconds until valid NDCG@10 reaches RecBole's best valid NDCG@10 of the same seed. "
        "Test metrics mean ± std over seeds.", "", table(report["summary"]), "",
    ]
    for r in report["summary"]:
        if "recbole_epochs" in r:
            lines.append(f"- {r['model']}: epochs run ours {r['ours_epochs']}, RecBole {r['recbole_epochs']}; "
                         f"our windows per step {r.get('ours_batch', '?')} (stride {r.get('ours_stride') or 50}); "
                         f"RecBole best valid NDCG@10 {[round(v, 4) if v is not None else None for v in r['recbole_best_valid']]}"
                         + tie_note(r) + ".")
    added = added_runs(report)
    if added:
        side_by_side = ", each again side by side with RecBole" if check.get("same_split_checked") else ""
        lines += ["", f"Runs added to this report later{side_by_side} (--merge):"] + added
    lines += ["", "Targets (a ✗ marks a miss):"] + targets(report)
    if report.get("recbole_anomaly"):
        lines.append(f"- RecBole SASRec with its import-time autograd anomaly detection left on: "
                     f"{report['recbole_anomaly']['seconds_per_epoch_with_anomaly_detection']:.1f} s/epoch.")
    t = report.get("eval_target")
    if t:
        lines += ["", f"Full-ranking evaluation target: synthetic dataset, {t['users']} users × {t['items']} items "
                  f"({t['rows']} rows), SASRec (untrained; timing does not depend on the weights), test set, no history masking, "
                  f"HR@10 and NDCG@10 on both sides, median of {len(t.get('ours_eval_runs', [0]))} timed passes each: "
                  f"ours {t['ours_eval_s']:.2f} s (peak RSS {t['ours_rss_mb']:.0f} MB)"
                  + (f", RecBole {t['recbole_eval_s']:.2f} s (peak RSS {t['recbole_rss_mb']:.0f} MB): {t['eval_speedup']:.1f}× faster."
                     if "recbole_eval_s" in t else ".")]
        if t.get("ours_eval_with_lists_s") is not None:
            lines.append(f"Our default evaluation also builds every user's top-10 list for coverage@10 and popularity bias "
                         f"(arp@10), which RecBole's run does not compute: {t['ours_eval_with_lists_s']:.2f} s with them"
                         + (f", {t['recbole_eval_s'] / t['ours_eval_with_lists_s']:.1f}× faster than RecBole's run." if "recbole_eval_s" in t else "."))
    return "\n".join(lines)


if __name__ == "__main__":
    sys.exit(main())
