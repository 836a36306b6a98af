"""Scaling figures: how data preparation, SASRec training and full-ranking evaluation grow with
the size of the interaction file.

    python scripts/bench_scale.py                          # 1M, 5M, 20M rows
    python scripts/bench_scale.py --rows 1e6,5e6 --train-steps 4

For each size a synthetic ``ratings.csv`` in MovieLens format is written once (Zipf item
popularity, log-normal sequence lengths with MovieLens-like mean 144 per user and about one item per
750 rows, same-second ties) and cached under .bench/scale/. Then, each in its own process so that
peak RSS (VmHWM, which starts afresh in each process) is that stage's alone:

- prepare: read + preprocess (dedupe, 5-core) + leave-one-out split, from the raw file, no cache;
- train: SASRec (max length 50, hidden 64, 2 layers) trained for one epoch on a random subset of
  users that fills --train-steps batches of 256 windows; seconds per full epoch are extrapolated
  by the number of training windows (a full epoch at 20M rows would take hours on 2 cores);
- evaluate: full-ranking test evaluation of that model over every user (or the first --eval-users).

Output: a table in results/perf.md (section "scaling"), results/perf.json (key "scaling") and the
log-log plot results/scaling.png.
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent))
from perf_common import (REPO, RESULTS, machine, markdown_table, peak_rss_mb, run_job, update_json,  # noqa: E402
                         update_section, write_synthetic_movielens)

MEAN_LEN = 144  # ml-20m: 20.0M ratings / 138.5k users
ROWS_PER_ITEM = 750  # ml-20m: 20.0M ratings / 26.7k movies
DATASET = {"name": "synthetic", "reader": "movielens", "mask_history": True, "dedupe": True,
           "user_core": 5, "item_core": 5, "min_seq_len": 3}


def dataset_dir(work: Path, rows: int) -> Path:
    """Writes the synthetic file for ``rows`` rows once; reruns reuse it."""
    directory = work / f"ml-synthetic-{rows}"
    done = directory / ".rows"
    if not done.is_file():
        n_users = max(rows // MEAN_LEN, 10)
        written = write_synthetic_movielens(directory, n_users, max(rows // ROWS_PER_ITEM, 100), MEAN_LEN, seed=rows % 9973)
        done.write_text(str(written))
    return directory


# ---------------------------------------------------------------- stages (subprocesses)


def stage_prepare(job: dict[str, Any]) -> dict[str, Any]:
    from benchmark.data.dataset import DatasetSpec, save_split
    from benchmark.data.preprocess import preprocess
    from benchmark.data.readers import read_interactions
    from benchmark.data.split import leave_one_out

    spec = DatasetSpec.from_dict({**DATASET, "path": job["path"]})
    t0 = time.perf_counter()
    interactions = read_interactions(spec.reader, job["path"], **spec.options)
    t1 = time.perf_counter()
    prepared = preprocess(interactions, spec.preprocess)
    del interactions
    split = leave_one_out(prepared.sequences, prepared.user_ids, prepared.item_ids)
    t2 = time.perf_counter()
    save_split(Path(job["split_path"]), split, [list(s) for s in prepared.steps])
    return {"read_s": t1 - t0, "preprocess_s": t2 - t1, "prepare_s": t2 - t0, "prepare_rss_mb": peak_rss_mb(),
            "users": split.n_users, "items": split.n_items, "kept_rows": int(len(prepared.sequences.items))}


def subset(split: Any, rows: Any) -> Any:
    """The split restricted to some users (renumbered 0..n-1), with the full item catalogue."""
    import numpy as np

    from benchmark.data.split import EvalSet, SplitData

    users = np.arange(len(rows), dtype=np.int64)
    evals = [EvalSet(users, es.histories.take(rows), es.targets[rows], es.target_times[rows]) for es in (split.valid, split.test)]
    return SplitData(split.train.take(rows), *evals, split.user_ids[rows], split.item_ids, split.protocol)


def stage_train_eval(job: dict[str, Any]) -> dict[str, Any]:
    import numpy as np
    import torch

    from benchmark.config import TrainerConfig
    from benchmark.data.dataset import load_split
    from benchmark.evaluation import evaluate
    from benchmark.models import SequentialRecommender
    from benchmark.training import training_windows

    split, _, _ = load_split(Path(job["split_path"]))
    max_len, batch = 50, 256
    windows = int(np.ceil(np.maximum(split.train.lengths - 1, 0) / max_len).sum())
    # Users in random order until their windows fill the requested number of steps.
    order = np.random.default_rng(0).permutation(split.n_users)
    per_user = np.ceil(np.maximum(split.train.lengths[order] - 1, 0) / max_len)
    rows = np.sort(order[: int(np.searchsorted(np.cumsum(per_user), job["train_steps"] * batch)) + 1])
    small = subset(split, rows)
    sub_windows = len(training_windows(small.train.items, small.train.offsets, max_len)[0])
    model = SequentialRecommender("sasrec", "attention", max_len=max_len, hidden=64, layers=2, heads=2, dropout=0.2)
    trainer = TrainerConfig(max_epochs=1, batch_size=batch, device=job["device"], seed=0)
    log = model.fit(small, trainer)[0]
    train_s = log.seconds - log.valid_seconds
    eval_rows = np.arange(min(split.n_users, job["eval_users"] or split.n_users))
    evaluated = subset(split, eval_rows) if len(eval_rows) < split.n_users else split
    warm = subset(split, eval_rows[:64])
    evaluate(model, warm, warm.test, batch_size=64)  # one-time start-up costs out of the timing
    t0 = time.perf_counter()
    evaluate(model, evaluated, evaluated.test, batch_size=trainer.eval_batch_size)
    eval_s = time.perf_counter() - t0
    return {"train_windows": windows, "timed_windows": sub_windows, "timed_steps": -(-sub_windows // batch),
            "timed_train_s": train_s, "epoch_s": train_s * windows / sub_windows,
            "users_total": split.n_users, "eval_users": len(eval_rows), "eval_s": eval_s, "eval_s_all_users": eval_s * split.n_users / len(eval_rows),
            "train_rss_mb": peak_rss_mb(), "threads": torch.get_num_threads()}


def run_stage(job_path: str, out_path: str) -> None:
    job = json.loads(Path(job_path).read_text())
    result = {"prepare": stage_prepare, "train_eval": stage_train_eval}[job["stage"]](job)
    Path(out_path).write_text(json.dumps(result))


def stage(jobs: Path, name: str, job: dict[str, Any], reuse: bool) -> dict[str, Any]:
    """Runs one stage in its own process, or with --reuse takes the result of an identical earlier job."""
    job_path, out_path = jobs / f"{name}.job.json", jobs / f"{name}.result.json"
    if reuse and out_path.is_file() and job_path.is_file():
        old, result = json.loads(job_path.read_text()), json.loads(out_path.read_text())
        cap = job.get("eval_users") or float("inf")
        # An earlier run that evaluated at least as many users as now asked for answers this job too.
        covered = "eval_users" not in job or result["eval_users"] >= min(result["users_total"], cap)
        if {**old, "eval_users": None} == {**job, "eval_users": None} and covered:
            print(f"{name}: reusing {out_path}", flush=True)
            return result
    return run_job([sys.executable, __file__, "--stage", "run"], job, jobs, name)


# ---------------------------------------------------------------- report


def plot(rows: list[dict[str, Any]], path: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    import numpy as np

    fig, (left, right) = plt.subplots(1, 2, figsize=(11, 4.2))
    x = np.array([r["rows"] for r in rows], dtype=float)
    for key, label, marker in (("prepare_s", "read + preprocess + split", "o"), ("epoch_s", "SASRec training epoch", "s"),
                               ("eval_s_all_users", "full-ranking evaluation (test)", "^")):
        left.loglog(x, [r[key] for r in rows], marker=marker, label=label)
    left.set_xlabel("interactions in the file")
    left.set_ylabel("seconds")
    left.set_title("Time vs file size")
    left.grid(True, which="both", alpha=0.3)
    left.legend()
    work = np.array([r["users"] * r["items"] for r in rows], dtype=float)
    secs = np.array([r["eval_s_all_users"] for r in rows])
    right.loglog(work, secs, "^-", color="C2", label="measured")
    ref = secs[0] * work / work[0]
    right.loglog(work, ref, "--", color="gray", label="linear (slope 1) from the smallest size")
    right.set_xlabel("users × items")
    right.set_ylabel("evaluation seconds")
    right.set_title("Full-ranking evaluation vs users × items")
    right.grid(True, which="both", alpha=0.3)
    right.legend()
    fig.tight_layout()
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, dpi=110)
    plt.close(fig)


def scale_targets(rows: list[dict[str, Any]], slope: float | None) -> list[str]:
    out = []
    big = max(rows, key=lambda r: r["rows"])
    if big["rows"] >= 19_000_000:
        out.append(f"{big['rows'] / 1e6:.0f}M rows prepared in {big['prepare_s']:.0f} s (< 60 s {'✓' if big['prepare_s'] < 60 else '✗'}) "
                   f"with peak RSS {big['prepare_rss_mb'] / 1024:.1f} GB (< 6 GB {'✓' if big['prepare_rss_mb'] < 6 * 1024 else '✗'})")
    if slope is not None:
        out.append(f"evaluation at most linear in users × items: log–log slope {slope:.2f} {'✓' if slope <= 1.2 else '✗'}"
                   + (" (below 1: per-user costs that do not grow with the catalogue dominate the smaller sizes)" if slope < 0.9 else ""))
    return out


def render(report: dict[str, Any]) -> str:
    m = report["machine"]
    rows = report["sizes"]
    header = ["rows in file", "users", "items", "rows kept", "prepare s", "prepare peak RSS MB", "read s", "preprocess + split s",
              "SASRec s/epoch (extrapolated)", "timed steps", "eval s (all users)", "eval µs per user×item"]
    body = [[f"{r['rows']:,}", f"{r['users']:,}", f"{r['items']:,}", f"{r['kept_rows']:,}", f"{r['prepare_s']:.1f}",
             f"{r['prepare_rss_mb']:.0f}", f"{r['read_s']:.1f}", f"{r['preprocess_s']:.1f}", f"{r['epoch_s']:.0f}",
             r["timed_steps"], f"{r['eval_s_all_users']:.1f}" + ("" if r["eval_users"] == r["users"] else f" ({r['eval_users']:,} timed)"),
             f"{1e6 * r['eval_s_all_users'] / (r['users'] * r['items']):.4f}"] for r in rows]
    slope = report.get("eval_loglog_slope")
    return "\n".join([
        "## Scaling with the size of the interaction file", "",
        f"`python scripts/bench_scale.py --rows {report['settings']['rows']}`", "",
        f"Measured {m['date']} on {m['cpu']} ({m['cores']} cores, torch {m['torch']}); load average {m['loadavg'][0]:.2f} at start "
        f"(shared machine: seconds are noisy). Synthetic MovieLens-format files (Zipf item popularity, log-normal lengths, "
        f"mean {MEAN_LEN} rows per user, one item per {ROWS_PER_ITEM} rows), 5-core filtering, leave-one-out. "
        "Training seconds per epoch are extrapolated from the timed steps by the number of training windows; "
        "evaluation ranks every user's test item against all items (history masked).", "",
        markdown_table(header, body), "",
        (f"Evaluation time vs users × items: log–log slope {slope:.2f} (1 = linear)." if slope is not None else ""),
        (f"Where a size has more than {report['settings']['eval_users']:,} users, evaluation was timed on that many and "
         "scaled linearly in users (marked 'timed')." if report["settings"].get("eval_users") else ""),
        "", "Targets (measured under the load above): " + "; ".join(scale_targets(rows, slope)) + ".",
        "", "![scaling](scaling.png)",
    ])


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--stage", help=argparse.SUPPRESS)
    p.add_argument("job", nargs="*", help=argparse.SUPPRESS)
    p.add_argument("--rows", default="1e6,5e6,2e7", help="comma-separated file sizes (rows)")
    p.add_argument("--train-steps", type=int, default=8, help="training steps timed per size")
    p.add_argument("--eval-users", type=int, default=0,
                   help="evaluate at most this many users (0: all) and extrapolate linearly in users")
    p.add_argument("--reuse", action="store_true", help="reuse stage results of identical earlier jobs (same work folder)")
    p.add_argument("--device", default="cpu")
    p.add_argument("--work", type=Path, default=REPO / ".bench" / "scale")
    p.add_argument("--out", type=Path, default=RESULTS)
    args = p.parse_args(argv)
    if args.stage:
        run_stage(*args.job)
        return 0
    sizes = [int(float(s)) for s in args.rows.split(",")]
    report: dict[str, Any] = {"machine": machine(), "settings": {"rows": args.rows, "train_steps": args.train_steps,
                                                                 "eval_users": args.eval_users, "device": args.device}}
    rows = []
    for n in sizes:
        directory = dataset_dir(args.work, n)
        split_path = args.work / f"split-{n}.npz"
        base = {"path": str(directory), "split_path": str(split_path)}
        prep = stage(args.work / "jobs", f"prepare-{n}", {**base, "stage": "prepare"}, args.reuse)
        train = stage(args.work / "jobs", f"train-eval-{n}", {**base, "stage": "train_eval", "train_steps": args.train_steps,
                                                             "eval_users": args.eval_users, "device": args.device}, args.reuse)
        row = {"rows": int((directory / ".rows").read_text()), **prep, **train}
        rows.append(row)
        print(f"{n:>12,} rows: prepare {row['prepare_s']:.1f} s, {row['prepare_rss_mb']:.0f} MB; "
              f"epoch ~{row['epoch_s']:.0f} s; eval {row['eval_s_all_users']:.1f} s", flush=True)
    report["sizes"] = rows
    if len(rows) > 1:
        import numpy as np

        work = np.log([r["users"] * r["items"] for r in rows])
        report["eval_loglog_slope"] = float(np.polyfit(work, np.log([r["eval_s_all_users"] for r in rows]), 1)[0])
    plot(rows, args.out / "scaling.png")
    text = render(report)
    print(text)
    update_json(args.out / "perf.json", "scaling", report)
    update_section(args.out / "perf.md", "scaling", text)
    return 0


if __name__ == "__main__":
    sys.exit(main())
