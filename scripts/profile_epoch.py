"""Where a training epoch's time goes, for one model in the RecBole comparison's settings.

    python scripts/profile_epoch.py --model gru4rec                  # s/epoch, median of 3 epochs
    python scripts/profile_epoch.py --model nextitnet --ops 25       # + the 25 costliest operators of one epoch
    python scripts/profile_epoch.py --model sasrec --set dropout=0.1 # a preset key changed
    python scripts/profile_epoch.py --model nextitnet --compile      # with trainer.compile=true

The model is built as bench_vs_recbole.py builds our side (its preset, the comparison's overrides,
the windows per step that hold 256 targets) and trained with the trainer the comparison uses, so the
seconds per epoch are the comparison's measure without RecBole and without early stopping. For
trying a speed change before a full comparison; timings are never asserted anywhere.
"""

from __future__ import annotations

import argparse
import dataclasses
import statistics
import sys
import tempfile
from pathlib import Path

import yaml

sys.path.insert(0, str(Path(__file__).resolve().parent))
import bench_vs_recbole as bench  # noqa: E402
from perf_common import machine  # noqa: E402


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0], formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--model", required=True, choices=[m for m, pair in bench.MODELS.items() if pair.trained])
    p.add_argument("--dataset", default="ml-latest-small", help="a conf/dataset preset")
    p.add_argument("--data-dir", type=Path, help="directory of the dataset's native files (default: the preset's)")
    p.add_argument("--epochs", type=int, default=3, help="timed epochs (validation is not timed)")
    p.add_argument("--ops", type=int, default=0,
                   help="profile one more epoch (with its validation) and print its N costliest operators; "
                        "the profiler's summary of an ml-latest-small epoch takes 1-2 minutes")
    p.add_argument("--set", action="append", default=[], metavar="KEY=VALUE", help="a model key, YAML value (repeatable)")
    p.add_argument("--threads", type=int, help="torch threads (default: torch's)")
    p.add_argument("--compile", action="store_true",
                   help="trainer.compile=true; the first epoch (which compiles) is timed apart from the others")
    args = p.parse_args(argv)
    if args.epochs < 1:
        p.error(f"--epochs={args.epochs} must be >= 1")
    overrides = {}
    for item in args.set:
        key, eq, value = item.partition("=")
        if not eq or not key:
            p.error(f"--set {item!r}: expected KEY=VALUE")
        overrides[key] = yaml.safe_load(value)

    import torch
    from benchmark.config import TrainerConfig
    from benchmark.data.dataset import DatasetSpec, prepare_split

    if args.threads:
        torch.set_num_threads(args.threads)
    pair = bench.MODELS[args.model]
    pair = dataclasses.replace(pair, ours_overrides={**pair.ours_overrides, **overrides})
    with tempfile.TemporaryDirectory() as cache:
        split = prepare_split(DatasetSpec.from_dict(bench.dataset_config(args)), "loo", cache_dir=cache).split
    batch_size = bench.windows_per_step(pair, split)
    namespace = argparse.Namespace(lr=1e-3, ours_batch=0, max_epochs=args.epochs, patience=args.epochs + 1,
                                   device="cpu", threads=args.threads)
    trainer = TrainerConfig.from_dict(bench.ours_job(pair, 0, namespace, {}, batch_size=batch_size)["trainer"])
    trainer = dataclasses.replace(trainer, compile=args.compile, max_epochs=args.epochs + args.compile)

    model = bench.our_model(pair.ours, pair.ours_overrides)
    logs = model.fit(split, trainer)
    seconds = [log.seconds - log.valid_seconds for log in logs]
    if args.compile:
        print(f"first epoch, compiling: {seconds[0]:.1f} s")
        seconds = seconds[1:]
    steps = -(-len(model.training_examples(split)[0]) // batch_size)
    env = machine()
    print(f"{args.model} on {args.dataset} with {pair.ours_overrides}: {bench.training_targets(split)} training targets, {batch_size} windows per step, "
          f"{steps} steps per epoch; {env['cpu']}, {env['torch_threads']} threads, load average {env['loadavg'][0]:.2f}")
    print(f"s/epoch {statistics.median(seconds):.2f} (median of {[round(s, 2) for s in seconds]}), "
          f"{statistics.median(seconds) / steps * 1e3:.2f} ms per step")
    if args.ops:
        from torch.profiler import profile

        with profile() as prof:
            model.fit(split, dataclasses.replace(trainer, max_epochs=1))
        print(prof.key_averages().table(sort_by="self_cpu_time_total", row_limit=args.ops))
    return 0


if __name__ == "__main__":
    sys.exit(main())
