"""Small grid over a baseline's hyper-parameters on one dataset: validation NDCG@10 picks the
setting, test metrics are reported beside it (never used for the choice).

    python scripts/baseline_grid.py ease l2=50,200,500,1000
    python scripts/baseline_grid.py itemknn k=50,100,200 shrink=0,10,50 --protocol horizon --k 5
"""

from __future__ import annotations

import argparse
import itertools
import time

import torch
import yaml
from hydra.utils import instantiate

from benchmark.cli import CONF_DIR
from benchmark.config import TrainerConfig
from benchmark.data.dataset import DatasetSpec, prepare_split
from benchmark.evaluation import evaluate
from perf_common import key_values  # beside this script


def parse_value(text: str) -> object:
    return yaml.safe_load(text)


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("model")
    parser.add_argument("grid", nargs="*", help="key=v1,v2,... over model keys, or trainer.<key>=...")
    parser.add_argument("--dataset", default="ml-latest-small")
    parser.add_argument("--protocol", default="loo")
    parser.add_argument("--k", type=int, default=5, help="horizon length (protocol=horizon)")
    parser.add_argument("--max-epochs", type=int, default=50)
    parser.add_argument("--threads", type=int, default=1, help="torch threads (the machine is shared)")
    parser.add_argument("--data", action="append", default=[], metavar="KEY=VALUE",
                        help="a dataset key of the preset changed, e.g. path=/data/ml (repeatable)")
    args = parser.parse_args(argv)
    torch.set_num_threads(args.threads)

    dataset = yaml.safe_load(open(f"{CONF_DIR}/dataset/{args.dataset}.yaml"))
    spec = DatasetSpec.from_dict({**dataset, **key_values(args.data, "--data", parser)})
    options = {"k": args.k} if args.protocol == "horizon" else {}
    split = prepare_split(spec, args.protocol, options).split
    base = yaml.safe_load(open(f"{CONF_DIR}/model/{args.model}.yaml"))
    trainer_base = yaml.safe_load(open(f"{CONF_DIR}/trainer/default.yaml"))
    trainer_base["max_epochs"] = args.max_epochs
    keys = [g.split("=", 1)[0] for g in args.grid]
    values = [[parse_value(v) for v in g.split("=", 1)[1].split(",")] for g in args.grid]
    hit = "recall@10" if args.protocol == "horizon" else "hr@10"
    print("| " + " | ".join([*keys, "valid ndcg@10", "test ndcg@10", f"test {hit}", "epochs", "seconds"]) + " |")
    print("|" + "---|" * (len(keys) + 5))
    for combo in itertools.product(*values):
        model_cfg, trainer_cfg = dict(base), dict(trainer_base)
        for key, value in zip(keys, combo):
            if key.startswith("trainer."):
                trainer_cfg[key.removeprefix("trainer.")] = value
            else:
                model_cfg[key] = value
        model = instantiate(model_cfg, _convert_="all")
        start = time.perf_counter()
        # The dataset's masking rule (false where repeats are legitimate targets), as a seqrec run uses it.
        logs = model.fit(split, TrainerConfig.from_dict({**trainer_cfg, "mask_history": spec.mask_history}))
        seconds = time.perf_counter() - start
        valid = evaluate(model, split, split.valid, mask_history=spec.mask_history).aggregate
        test = evaluate(model, split, split.test, mask_history=spec.mask_history).aggregate
        cells = [str(v) for v in combo] + [f"{valid['ndcg@10']:.4f}", f"{test['ndcg@10']:.4f}", f"{test[hit]:.4f}",
                                           str(len(logs)), f"{seconds:.1f}"]
        print("| " + " | ".join(cells) + " |", flush=True)


if __name__ == "__main__":
    main()
