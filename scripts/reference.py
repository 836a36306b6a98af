"""The benchmark's reference results: every model family against tuned non-sequential baselines on one
real dataset per domain, with the order control and the attribution, in one resumable command.

    SEQREC_DATA=/data python scripts/reference.py        # tune what is untuned, run, report -> results/reference/
    python scripts/reference.py --plan                    # print the commands, run nothing
    python scripts/reference.py --datasets s3rec-lastfm --models pop,sasrec --seeds 0

Steps (each skips finished work, so a relaunch continues where a kill stopped it):
1. Tune. Each tuned model (`--tuned`, default EASE, ItemKNN, BPR-MF, GRU4Rec official) without a committed
   ``conf/experiment/reference/<model>-<dataset>-loo.yaml`` gets an optuna study on the *validation*
   metric (``hparams=<model>``, records in ``results/tuning``), whose best trial is written to that file.
2. Run. Every (dataset, model) over the seeds with ``experiment=reference`` (one trainer for every model,
   the S3-Rec setting, except where DATASET_OVERRIDES says why not), or with its tuned file where one exists;
   records in ``results/runs``.
3. Order control. Per dataset, the sequence model with the best mean validation metric is run again with
   ``dataset.shuffle_order=true`` (chosen on validation only, as the report chooses it).
4. Report. ``seqrec-report --order-effect --attribution --efficiency --setup`` over exactly the records of
   steps 2-3 (each step's sweep lists its runs in ``runs.txt``), written to ``results/reference/``.
"""

from __future__ import annotations

import argparse
import functools
import shlex
import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path

import yaml

ROOT = Path(__file__).resolve().parent.parent
DATASETS = ("ml-latest-small", "s3rec-lastfm", "globo", "s3rec-beauty")  # movie, music, news, product
TUNED = ("ease", "itemknn", "bprmf", "gru4rec_official")  # the last: its training choices rest on tuning
MODELS = ("pop", "recentpop", "rp3beta", "ease", "itemknn", "bprmf",           # non-sequential
          "markov", "sr", "vsknn", "stan",                                      # non-neural sequential
          "gru4rec", "gru4rec_official", "caser", "nextitnet", "sasrec", "bert4rec", "hstu",  # encoder-only
          "seq2seq_rnn", "seq2seq_attention")                                   # encoder-decoder
TRIALS = {"ease": 10, "itemknn": 16, "bprmf": 10}  # optuna trials per study (default 12 for others)
# Where one dataset needs another trainer than the S3-Rec one of experiment=reference. ml-latest-small (610 users):
# at lr 1e-3 GRU4Rec stopped at validation NDCG@10 .022 (test .017, below pop); the demo's trainer (trainer=small,
# at most 30 epochs, patience 5) is the one its sequence models are known to train with.
DATASET_OVERRIDES = {"ml-latest-small": ["trainer.lr=0.003", "trainer.batch_size=128", "trainer.max_epochs=30",
                                         "trainer.patience=5"]}
SEQUENCE_FREE = {"pop", "recentpop", "rp3beta", "ease", "itemknn", "bprmf"}  # no order to control
NEEDS_TIME = {"recentpop"}  # refuses a file without time (its "recent" would be the longest histories' tails)


def models_for(dataset: str, models: list[str]) -> list[str]:
    """``models`` less those that need real time, on a dataset whose preset reads an order-only format (S3-Rec's
    files: LastFM, Beauty)."""
    from benchmark.data.readers import reader_named

    preset = ROOT / "conf" / "dataset" / f"{dataset}.yaml"
    reader = yaml.safe_load(preset.read_text()).get("reader") if preset.is_file() else None
    untimed = reader is not None and reader_named(reader).order_only
    return [m for m in models if not (untimed and m in NEEDS_TIME)]


def seqrec(args: list[str], plan: bool) -> None:
    command = [str(ROOT / ".venv" / "bin" / "seqrec"), *args]
    print("$ " + " ".join(shlex.quote(a) for a in command[1:]), flush=True)
    if not plan:
        subprocess.run(["seqrec", *args] if not Path(command[0]).exists() else command, cwd=ROOT, check=True)


@dataclass(frozen=True)
class Sweep:
    """A multirun of one (dataset, model) over the seeds, its runs listed in a sweep dir of its own."""

    setup: tuple[str, ...]  # which experiment (and dataset, model) it composes
    seeds: str  # comma-separated
    directory: Path  # hydra.sweep.dir: its runs.txt lists the records
    overrides: tuple[str, ...]  # every other override (results_dir, trainer.*, the caller's)
    config_dir: Path | None = None  # a folder of tuned files outside conf/experiment

    def argv(self) -> list[str]:
        where = ["--config-dir", str(self.config_dir)] if self.config_dir else []
        return ["-m", *where, *self.setup, f"seed={self.seeds}", f"hydra.sweep.dir={self.directory}", *self.overrides]


def launch(sweep: Sweep, plan: bool) -> None:
    """``sweep``'s multirun, unless its records are all there already."""
    if not plan and finished(sweep):
        print(f"skip {sweep.directory}: every record complete and listed", flush=True)
        return
    seqrec(sweep.argv(), plan)


def finished(sweep: Sweep) -> bool:
    """Whether every record ``sweep`` would write is complete and listed in its runs.txt, worked out by composing
    its configs in-process: a relaunch then starts no Hydra process for a finished (dataset, model), which cost
    ~25 s each. Anything unexpected answers False: the multirun itself decides."""
    from hydra import compose, initialize_config_dir
    from benchmark.cli import CONF_DIR
    from benchmark.record import is_complete, run_dir_for
    from benchmark.run import run_config

    search = [f"hydra.searchpath=[file://{sweep.config_dir}]"] if sweep.config_dir else []
    overrides = [*search, *sweep.setup, *(o for o in sweep.overrides if not o.startswith("hydra."))]
    try:
        listed = {str((ROOT / line).resolve()) for line in (sweep.directory / "runs.txt").read_text().split()}
        with initialize_config_dir(CONF_DIR, version_base="1.3"):
            configs = [run_config(compose("config", overrides=[*overrides, f"seed={s}"])) for s in sweep.seeds.split(",")]
    except Exception:  # noqa: BLE001 - no runs.txt yet, or a composition only the real launch can report
        return False
    dirs = [run_dir_for(c["results_dir"], c) for c in configs]
    return all(is_complete(d) and str(d.resolve()) in listed for d in dirs)


def searched_keys(model: str) -> set[str]:
    """The keys a model's study searches (conf/hparams/<model>.yaml)."""
    space = yaml.safe_load((ROOT / "conf" / "hparams" / f"{model}.yaml").read_text())
    return set(space["hydra"]["sweeper"]["params"])


def tuning_overrides(dataset: str, model: str) -> list[str]:
    """DATASET_OVERRIDES less the keys the study searches: a fixed key would leave the search space (tuning's
    rule for the command line), so ml-latest-small's trainer.lr=0.003 would stop every study searching lr."""
    searched = searched_keys(model)
    return [o for o in DATASET_OVERRIDES.get(dataset, []) if o.split("=", 1)[0] not in searched]


def tuned_file(experiments: Path, model: str, dataset: str) -> Path:
    return experiments / f"{model}-{dataset}-loo.yaml"


def sweep_dir(results: Path, dataset: str, label: str) -> Path:
    return results / "sweeps" / "reference" / dataset / label


def reference_sweep(model: str, dataset: str, seeds: str, experiments: Path, results: Path, extra: list[str],
                    shuffled: bool = False) -> Sweep:
    """One (dataset, model) over the seeds: its tuned experiment file where one exists, else experiment=reference;
    the dataset's overrides less what a tuned file chose (as its study saw them), then ``extra``."""
    tuned = tuned_file(experiments, model, dataset)
    fixed = tuning_overrides(dataset, model) if tuned.is_file() else DATASET_OVERRIDES.get(dataset, [])
    group = experiments.relative_to(ROOT / "conf" / "experiment").as_posix() if experiments.is_relative_to(ROOT / "conf" / "experiment") else None
    config_dir = None
    if tuned.is_file() and group is not None:
        setup = (f"experiment={group}/{tuned.stem}",)
    elif tuned.is_file():
        setup, config_dir = (f"experiment={tuned.stem}",), experiments.parent
    else:
        setup = ("experiment=reference", f"dataset={dataset}", f"model={model}")
    return Sweep(setup, seeds, sweep_dir(results, dataset, f"{model}-shuffled" if shuffled else model),
                 (f"results_dir={results}", "trainer.resume=true", "trainer.save_model=true",
                  *(["dataset.shuffle_order=true"] if shuffled else []), *fixed, *extra), config_dir)


def listed_runs(results: Path, dataset: str) -> list[str]:
    """The records every reference sweep of ``dataset`` listed (each (model, label) sweep's latest runs.txt, so a
    launch over fewer seeds or models drops nothing an earlier one finished), relative to the repository where
    they lie in it (the committed runs.txt then names no machine path)."""
    runs = [ROOT / line for listed in sorted(sweep_dir(results, dataset, "*").parent.glob("*/runs.txt"))
            for line in listed.read_text().split() if line]  # relative lines: against the repository
    return [str(r.relative_to(ROOT)) if r.is_relative_to(ROOT) else str(r) for r in runs]


@functools.cache
def metrics_of(run: str) -> dict:
    """A listed record's metrics.json, read once per launch (choosing the control and the report flags both ask)."""
    from benchmark.record import read_metrics

    return read_metrics(ROOT / run)


def without_model(runs: list[str]) -> list[str]:
    """The records of sequence models among ``runs`` that keep no fitted model (the attribution needs one each)."""
    from benchmark.record import MODEL_FILE

    return [r for r in runs if metrics_of(r)["model"] not in SEQUENCE_FREE and not (ROOT / r / MODEL_FILE).is_file()]


def best_sequence_model(runs: list[str], metric: str) -> str | None:
    """The sequence model (reads order) with the best mean validation ``metric`` among ``runs`` on true order."""
    from benchmark.report.build import higher_is_better

    values: dict[str, list[float]] = {}
    for run in runs:
        m = metrics_of(run)
        if m["model"] not in SEQUENCE_FREE and not m.get("shuffle_order") and metric in (m.get("valid") or {}):
            values.setdefault(m["model"], []).append(float(m["valid"][metric]))
    if not values:
        return None
    sign = 1.0 if higher_is_better(metric) else -1.0
    return max(values, key=lambda k: sign * sum(values[k]) / len(values[k]))


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(prog="reference", description=__doc__.split("\n\n")[0])
    p.add_argument("--datasets", default=",".join(DATASETS), help="dataset presets (comma-separated)")
    p.add_argument("--models", default=",".join(MODELS), help="model presets (comma-separated)")
    p.add_argument("--tuned", default=",".join(TUNED), help="models tuned per dataset before they run")
    p.add_argument("--seeds", default="0,1,2")
    p.add_argument("--trials", type=int, default=None, help="optuna trials per study (default: per model)")
    p.add_argument("--results", type=Path, default=ROOT / "results" / "runs", help="where the records go")
    p.add_argument("--tuning", type=Path, default=ROOT / "results" / "tuning", help="where tuning trials go")
    p.add_argument("--experiments", type=Path, default=ROOT / "conf" / "experiment" / "reference",
                   help="where the tuned experiment files are read from and written to")
    p.add_argument("--out", type=Path, default=ROOT / "results" / "reference", help="the report's folder")
    p.add_argument("--metric", default="ndcg@10", help="the validation metric that chooses (trainer.valid_metric)")
    p.add_argument("--plan", action="store_true", help="print the commands, run nothing")
    p.add_argument("--no-order-control", action="store_true",
                   help="skip step 3 (e.g. in a second launch beside the first, over other --models)")
    p.add_argument("--report-only", action="store_true",
                   help="tune and run nothing: report over the records the reference sweeps listed so far")
    p.add_argument("overrides", nargs="*", help="extra overrides for every run (e.g. trainer.max_epochs=1)")
    a = p.parse_args(argv)
    datasets, models = a.datasets.split(","), a.models.split(",")
    tuned = [m for m in a.tuned.split(",") if m and m in models]
    results, experiments = a.results.resolve(), a.experiments.resolve()
    started = time.monotonic()

    for dataset in datasets:  # 1. tune (validation metric only: benchmark/tuning.py)
        for model in tuned if not a.report_only else ():
            target = tuned_file(experiments, model, dataset)
            if target.is_file():
                continue
            trials = a.trials or TRIALS.get(model, 12)
            seqrec(["-m", f"hparams={model}", "experiment=reference", f"dataset={dataset}", f"model={model}",
                    f"results_dir={a.tuning.resolve()}", f"hydra.sweeper.n_trials={trials}",
                    f"hydra.sweeper.rerun_seeds=[{a.seeds}]", f"hydra.sweeper.best_config={target}",
                    "trainer.resume=true", "trainer.save_model=false",  # trials keep no weights
                    f"hydra.sweep.dir={sweep_dir(a.tuning.resolve(), dataset, model)}",
                    *tuning_overrides(dataset, model), *a.overrides], a.plan)

    listed: list[str] = []
    for dataset in datasets:  # 2. run, 3. the order control
        for model in models_for(dataset, models) if not a.report_only else ():
            launch(reference_sweep(model, dataset, a.seeds, experiments, results, a.overrides), a.plan)
        best = None if a.plan or a.report_only or a.no_order_control else best_sequence_model(
            listed_runs(results, dataset), a.metric)
        if best is not None:
            launch(reference_sweep(best, dataset, a.seeds, experiments, results, a.overrides, shuffled=True), a.plan)
        listed += [] if a.plan else listed_runs(results, dataset)
    if a.plan:
        return 0

    a.out.mkdir(parents=True, exist_ok=True)  # 4. the report over exactly these records
    runs_file = a.out / "runs.txt"
    runs_file.write_text("".join(f"{r}\n" for r in dict.fromkeys(listed)))
    shuffled = any(metrics_of(r).get("shuffle_order") for r in listed)
    unfitted = without_model(listed)
    if unfitted:  # restored from the archive (scripts/archive_records.py): the fitted models stayed behind
        print(f"reference: --attribution left out: {len(unfitted)} sequence records have no fitted model (e.g. "
              f"{unfitted[0]}); the attribution_* files in {a.out} stay from the launch that had them", flush=True)
    report = [str(ROOT / ".venv" / "bin" / "seqrec-report"), str(runs_file), "--out", str(a.out), "--name", "reference",
              "--efficiency", "--setup", *(["--order-effect"] if shuffled else []),
              *([] if unfitted else ["--attribution"])]
    print("$ " + " ".join(report[1:]), flush=True)
    subprocess.run(report if Path(report[0]).exists() else ["seqrec-report", *report[1:]], cwd=ROOT, check=True)
    print(f"reference: {len(set(listed))} records, {(time.monotonic() - started) / 3600:.2f} h this launch", flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
