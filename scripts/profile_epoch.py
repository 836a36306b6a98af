"""Where a training epoch's time goes, for one model in the RecBole comparison's settings.

    python scripts/profile_epoch.py --model gru4rec                  # s/epoch, median of 3 epochs
    python scripts/profile_epoch.py --model nextitnet --ops 25       # + the 25 costliest operators of one epoch
    python scripts/profile_epoch.py --model sasrec --set dropout=0.1 # a preset key changed
    python scripts/profile_epoch.py --model nextitnet --compile      # with trainer.compile=true
    python scripts/profile_epoch.py --model gru4rec --floor          # + one step with and without its encoder

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
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
import bench_vs_recbole as bench  # noqa: E402
from perf_common import key_values, machine  # noqa: E402


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
    p.add_argument("--floor", action="store_true",
                   help="also time one step of the comparison's batch in-process (median of --floor-rounds rounds of "
                        "--floor-steps steps): the whole step, the step without the encoder (item embeddings straight "
                        "into the output layer: the least any encoder's step can cost), and the output layer alone")
    p.add_argument("--floor-rounds", type=int, default=7, help="--floor's timed rounds (default 7)")
    p.add_argument("--floor-steps", type=int, default=100, help="--floor's steps per round (default 100)")
    args = p.parse_args(argv)
    for name in ("epochs", "floor_rounds", "floor_steps"):
        if getattr(args, name) < 1:
            p.error(f"--{name.replace('_', '-')}={getattr(args, name)} must be >= 1")
    overrides = key_values(args.set, "--set", p)

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
    if args.floor and (model.objective != "ce" or model.head != "next_item"):
        p.error(f"--floor times next-item models with the full-softmax loss; {args.model} has "
                f"objective={model.objective}, head={model.head}")
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
    if args.floor:
        print(step_floor(model, split, batch_size, trainer, args.floor_rounds, args.floor_steps))
    return 0


def step_floor(model, split, batch_size: int, trainer, rounds: int = 7, steps: int = 100) -> str:
    """Milliseconds of one training step of ``batch_size`` windows, with and without the encoder.

    Same targets, loss, gradient clipping and fused Adam as the trainer's step; without the encoder
    the item embeddings are scored directly, so what remains is the output layer, the embedding's
    gradient and the update: the floor under any encoder's step at this batch."""
    import torch
    from benchmark.models.objectives import full_softmax
    from benchmark.training import keep_freed_memory

    net = model.net
    net.train()
    inputs, targets = model.training_examples(split)
    generator = torch.Generator().manual_seed(0)
    idx = torch.randperm(len(inputs), generator=generator)[:batch_size]
    x, y = inputs[idx], targets[idx]
    real = y > 0
    optimizer = torch.optim.Adam(net.parameters(), lr=trainer.lr, fused=True)
    hidden = torch.randn(int(real.sum()), net.items.shape[1], requires_grad=True)

    def update(loss):
        optimizer.zero_grad(set_to_none=True)
        loss.backward()
        torch.nn.utils.clip_grad_norm_(net.parameters(), trainer.grad_clip or float("inf"))
        optimizer.step()
        loss.item()

    timed = {
        "step": lambda: update(model.next_item_loss(x, y, generator)),
        "step without encoder": lambda: update(full_softmax(net.item_embedding(x)[real], y[real], net.items)),
        "output layer forward + backward": lambda: full_softmax(hidden, y[real], net.items).backward(),
    }
    keep_freed_memory()  # as train_loop does: freed logits stay mapped
    ms = {}
    for name, fn in timed.items():
        for _ in range(10):
            fn()
        per_round = []
        for _ in range(rounds):
            start = time.perf_counter()
            for _ in range(steps):
                fn()
            per_round.append((time.perf_counter() - start) / steps * 1e3)
        ms[name] = statistics.median(per_round)
    keep_freed_memory(False)
    return (f"one step of {batch_size} windows ({int(real.sum())} targets), ms, median of {rounds} rounds of {steps}: "
            + "; ".join(f"{name} {v:.2f}" for name, v in ms.items()))


if __name__ == "__main__":
    sys.exit(main())
