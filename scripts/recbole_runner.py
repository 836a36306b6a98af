"""RecBole side of scripts/bench_vs_recbole.py. Runs inside RecBole's own virtual environment
(it needs its own pins), one model and seed per process so that peak RSS is this run's alone.

    <recbole-venv>/bin/python scripts/recbole_runner.py job.json result.json

job.json: {"model", "seed", "data_path", "dataset", "settings": {RecBole config keys},
"max_epochs", "patience", "time_cap_s", "device", "anomaly", "dump_split"}. Writes result.json with
per-epoch train/valid seconds and valid NDCG@10, the best epoch, test HR@10/NDCG@10, full-ranking
test evaluation seconds and peak RSS. Only the standard library, numpy (through perf_common, beside this
file), torch and RecBole are used here.
"""

from __future__ import annotations

import copy
import json
import statistics
import sys
import time

from perf_common import peak_rss_mb  # beside this file: sys.path[0] when run as a script


def main(job_path: str, out_path: str) -> None:
    job = json.loads(open(job_path).read())
    start = time.perf_counter()
    import torch
    from recbole.config import Config
    from recbole.data import create_dataset, data_preparation
    from recbole.utils import get_model, get_trainer, init_logger, init_seed

    get_model(job["model"])  # imports recbole.model.sequential_recommender, whose sine.py enables anomaly mode
    anomaly_on_import = torch.is_anomaly_enabled()
    # RecBole's own runs pay for anomaly detection; a fair speed comparison switches it off.
    torch.autograd.set_detect_anomaly(bool(job.get("anomaly", False)))
    if job.get("threads"):
        torch.set_num_threads(int(job["threads"]))

    config = Config(model=job["model"], dataset=job["dataset"], config_dict={**job["settings"], "data_path": job["data_path"], "seed": job["seed"]})
    init_seed(config["seed"], config["reproducibility"])
    init_logger(config)
    dataset = create_dataset(config)
    train_data, valid_data, test_data = data_preparation(config, dataset)
    init_seed(config["seed"] + config["local_rank"], config["reproducibility"])
    model = get_model(config["model"])(config, train_data._dataset).to(config["device"])
    trainer = get_trainer(config["MODEL_TYPE"], config["model"])(config, model)
    prep_seconds = time.perf_counter() - start

    epochs, best, best_state, since_best, trained = [], -1.0, None, 0, 0.0
    for epoch in range(int(job["max_epochs"])):
        if job.get("time_cap_s") and trained >= job["time_cap_s"]:
            break
        t0 = time.perf_counter()
        loss = trainer._train_epoch(train_data, epoch, show_progress=False)
        t1 = time.perf_counter()
        valid_score, valid_result = trainer._valid_epoch(valid_data, show_progress=False)
        t2 = time.perf_counter()
        trained += t1 - t0
        loss = float(sum(loss) if isinstance(loss, tuple) else loss)
        epochs.append({"epoch": epoch + 1, "train_seconds": t1 - t0, "valid_seconds": t2 - t1, "loss": loss,
                       "valid_ndcg@10": float(valid_result["ndcg@10"]), "valid_hr@10": float(valid_result["hit@10"])})
        if valid_result["ndcg@10"] > best:
            best, since_best = float(valid_result["ndcg@10"]), 0
            best_state = copy.deepcopy(model.state_dict())
        else:
            since_best += 1
            if since_best >= int(job["patience"]):
                break
    if best_state is not None:
        model.load_state_dict(best_state)
    test_runs = []  # the median of eval_repeats timed passes is the figure (transient load on a shared machine)
    for _ in range(int(job.get("eval_repeats", 1))):
        t0 = time.perf_counter()
        test_result = trainer.evaluate(test_data, load_best_model=False, show_progress=False)
        test_runs.append(time.perf_counter() - t0)

    result = {
        "framework": "recbole", "model": job["model"], "seed": job["seed"], "epochs": epochs,
        "best_valid_ndcg@10": best if epochs else None, "prep_seconds": prep_seconds,
        "test": {"hr@10": float(test_result["hit@10"]), "ndcg@10": float(test_result["ndcg@10"])},
        "test_eval_seconds": statistics.median(test_runs), "test_eval_runs": test_runs, "n_eval_users": len(test_data._dataset),
        "n_items": int(dataset.item_num - 1), "n_train_samples": len(train_data._dataset),
        "anomaly_on_import": anomaly_on_import, "anomaly": torch.is_anomaly_enabled(),
        "time_cap_s": job.get("time_cap_s"), "threads": torch.get_num_threads(),
    }
    if job.get("dump_split"):
        # Which users and target items RecBole evaluates, as original tokens, for the split check.
        for name, loader in (("valid", valid_data), ("test", test_data)):
            feat = loader._dataset.inter_feat
            users = dataset.id2token(config["USER_ID_FIELD"], feat[config["USER_ID_FIELD"]].numpy())
            items = dataset.id2token(config["ITEM_ID_FIELD"], feat[config["ITEM_ID_FIELD"]].numpy())
            result[f"{name}_pairs"] = [[str(u), str(i)] for u, i in zip(users, items)]
    result["peak_rss_mb"] = peak_rss_mb()
    with open(out_path, "w") as f:
        json.dump(result, f)


if __name__ == "__main__":
    main(sys.argv[1], sys.argv[2])
