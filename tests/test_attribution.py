"""How far back each model looks (benchmark/report/attribution.py): occlusion on planted scorers where only
the newest or only the oldest history item matters, saved models in records (trainer.save_model), the report's
--attribution figure and `seqrec explain`."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
import torch

from benchmark.models.base import Batch, Recommender
from benchmark.record import MODEL_FILE, find_records
from benchmark.report.attribution import explain_main, occlusion, without_each_of_the_newest
from benchmark.report.build import ReportOptions, build_report, write_report
from benchmark.report.runs import ReportError
from conftest import REPO, permutation_rows, write_movielens_csv

N_ITEMS, LENGTH = 30, 10


class PlantedScorer(Recommender):
    """Scores 1 for one item that the history item at a fixed end decides (the newest or the oldest), else 0."""

    trains = False
    reads_order = True

    def __init__(self, name: str = "newest", oldest: bool = False) -> None:
        super().__init__(name)
        self.oldest = oldest

    def fit(self, data, trainer=None) -> list:
        self.n_items = data.n_items
        return []

    def score(self, batch: Batch) -> torch.Tensor:
        h = batch.history
        if self.oldest:  # left-padded: the first non-zero column
            decider = h.gather(1, (h > 0).long().argmax(1, keepdim=True))[:, 0]
        else:
            decider = h[:, -1]
        scores = torch.zeros(len(h), self.n_items + 1)
        scores[torch.arange(len(h)), decider % self.n_items + 1] = 1.0
        return scores


def planted_histories(n_users: int = 40, seed: int = 0) -> tuple[torch.Tensor, torch.Tensor]:
    rng = np.random.default_rng(seed)
    history = np.stack([rng.choice(np.arange(1, N_ITEMS + 1), LENGTH, replace=False) for _ in range(n_users)])
    return torch.arange(n_users), torch.from_numpy(history)


def fitted(model: PlantedScorer) -> PlantedScorer:
    model.n_items = N_ITEMS
    return model


def test_removing_the_item_at_each_distance_keeps_the_rest_in_order():
    out = without_each_of_the_newest(torch.tensor([[0, 5, 6, 7]]), depth=3)
    assert out[0].tolist() == [[0, 0, 5, 6], [0, 0, 5, 7], [0, 0, 6, 7]]


@pytest.mark.parametrize("oldest", [False, True])
def test_occlusion_finds_the_one_item_that_matters(oldest):
    users, history = planted_histories()
    result = occlusion(fitted(PlantedScorer(oldest=oldest)), users, history, depth=LENGTH + 2, mask_history=False)
    decisive = LENGTH if oldest else 1  # the distance of the deciding item
    shares = result.shares()
    np.testing.assert_allclose(shares[:, decisive - 1], 1.0)
    others = np.delete(shares[:, :LENGTH], decisive - 1, axis=1)
    assert (others == 0).all()
    assert np.isnan(result.change[:, LENGTH:]).all()  # no history item that far back
    assert (result.items[:, 0] == history[:, -1].numpy()).all()


class TimedScorer(Recommender):
    """Reads timestamps (as HSTU does): every item scores the time of its newest occurrence in the history."""

    trains = False
    reads_order = True

    def fit(self, data, trainer=None) -> list:
        return []

    def score(self, batch: Batch) -> torch.Tensor:
        if batch.times is None:
            raise ValueError("TimedScorer reads timestamps: give the batch's times")
        scores = torch.zeros(len(batch.history), N_ITEMS + 1)
        return scores.scatter_reduce(1, batch.history, batch.times.float(), reduce="amax")


def test_occlusion_gives_a_model_that_reads_times_the_times_of_the_items_it_keeps():
    users, history = planted_histories()
    times = torch.arange(1, LENGTH + 1).repeat(len(users), 1) * 100  # the newest item is the latest, at 1000
    result = occlusion(TimedScorer("timed"), users, history, depth=LENGTH, mask_history=False, times=times)
    assert (result.top == history[:, -1].numpy()).all()  # the newest item, which has the latest time
    np.testing.assert_allclose(result.change[:, 0], 100 * LENGTH)  # removed: its score falls to 0 (no time left)
    np.testing.assert_allclose(result.change[:, 1:], 0.0)  # any other removal leaves its time untouched
    with pytest.raises(ValueError, match="reads timestamps"):
        occlusion(TimedScorer("timed"), users, history, depth=LENGTH, mask_history=False)


def run_model(tmp_path: Path, model: dict, save: bool = True, trainer: dict | None = None) -> Path:
    from hydra import compose, initialize_config_dir
    from omegaconf import OmegaConf

    from benchmark.run import run_experiment

    with initialize_config_dir(config_dir=str(REPO / "conf"), version_base="1.3"):
        cfg = compose("config", ["model=pop", f"dataset.path={tmp_path / 'tiny'}", "dataset.user_core=1",
                                 "dataset.item_core=1", f"trainer.save_model={str(save).lower()}",
                                 f"results_dir={tmp_path / 'results'}", f"cache_dir={tmp_path / 'cache'}"])
    config = OmegaConf.to_container(cfg, resolve=True)
    config["model"] = model
    config["trainer"].update(trainer or {})
    return run_experiment(config)


@pytest.fixture(scope="module")
def records(tmp_path_factory) -> Path:
    """pop (the reference), the Markov chain and both planted scorers, trained on data with an order signal."""
    tmp = tmp_path_factory.mktemp("attribution")
    write_movielens_csv(tmp / "tiny", permutation_rows(n_users=30, n_items=20, length=LENGTH))
    run_model(tmp, {"_target_": "baselines.pop.MostPop", "name": "pop"}, save=False)
    run_model(tmp, {"_target_": "baselines.rules.SequentialRules", "name": "markov", "steps": 1, "weighting": "same"})
    run_model(tmp, {"_target_": f"{__name__}.PlantedScorer", "name": "newest"})
    run_model(tmp, {"_target_": f"{__name__}.PlantedScorer", "name": "oldest", "oldest": True})
    gru = {"_target_": "benchmark.models.SequentialRecommender", "name": "gru", "encoder": "rnn", "head": "next_item", "hidden": 32,
           "layers": 1, "dropout": 0.0, "max_len": LENGTH}
    run_model(tmp, gru, trainer={"max_epochs": 20, "patience": 20, "lr": 0.01, "batch_size": 64, "num_threads": 1})
    return tmp


def test_records_keep_the_fitted_model_only_when_asked(records):
    dirs = {d.parent.name: d for d in find_records(records / "results")}
    assert not (dirs["pop"] / MODEL_FILE).exists()
    assert (dirs["markov"] / MODEL_FILE).is_file() and (dirs["newest"] / MODEL_FILE).is_file()
    assert not list((records / "results").rglob("*.tmp"))  # written inside the record's atomic rename


def test_report_draws_how_far_back_each_sequence_model_looks(records, tmp_path):
    options = ReportOptions(attribution=True, attribution_users=20, attribution_depth=LENGTH)
    report = build_report(find_records(records / "results"), options, "seqrec-report R --attribution", "R")
    points = report.figures["attribution"][0]
    assert set(points["model"]) == {"gru", "markov", "newest", "oldest"}  # pop reads no order
    share = points.set_index(["model", "distance"])["mean_share"]
    assert share["markov", 1] == pytest.approx(1.0) and share["newest", 1] == pytest.approx(1.0)
    assert share["markov"].loc[2:].max() == 0.0
    # LOO test histories hold LENGTH - 1 items: the oldest is at distance LENGTH - 1.
    assert share["oldest", LENGTH - 1] == pytest.approx(1.0) and share["oldest", 1] == 0.0
    assert (points["n_users"] <= 20).all() and points.loc[points["distance"] == 1, "n_users"].eq(20).all()
    assert set(points.loc[points["model"] == "markov", "family"]) == {"non-neural sequential"}
    # A GRU trained on data where the next item is a function of the newest one learns to look at that one.
    assert share["gru", 1] > 0.4 and share["gru", 1] > 2 * share["gru"].loc[2:].max()
    assert set(points.loc[points["model"] == "gru", "family"]) == {"RNN encoder-only"}
    written = {p.name for p in write_report(report, tmp_path / "out")}
    assert {"attribution.png", "attribution.pdf", "attribution_points.csv"} <= written
    assert "--attribution --attribution-users 20" in report.tables["table"].footer  # the footer rebuilds the report


def test_attribution_refuses_a_record_without_its_model_in_one_line(records, tmp_path):
    from benchmark.report.cli import run

    without = run_model(records, {"_target_": f"{__name__}.PlantedScorer", "name": "unsaved"}, save=False)
    with pytest.raises(ReportError, match="re-run it with trainer.save_model=true") as error:
        run([str(records / "results"), "--attribution", "--out", str(tmp_path / "out")])
    assert str(without) in str(error.value) and "\n" not in str(error.value)
    assert not (tmp_path / "out").exists()  # nothing half-written
    import shutil

    shutil.rmtree(without)


def test_explain_prints_the_history_items_that_move_the_top_item_most(records, capsys):
    markov = next(d for d in find_records(records / "results") if d.parent.name == "markov")
    assert explain_main([str(markov), "user=105", "top=3"]) == 0
    lines = capsys.readouterr().out.splitlines()
    assert lines[0].startswith("user 105: top recommendation ")
    assert lines[1].split() == ["distance", "item", "change", "share"]
    assert lines[2].split()[0] == "1" and float(lines[2].split()[3]) == 1.0  # the newest item moves it all
    assert len(lines) == 2 + 3


@pytest.mark.parametrize("args, message", [(["user=nobody"], "user=nobody is not a test user"),
                                           (["top=0", "user=105"], "top=0 must be an integer >= 1"),
                                           (["who=105"], "'who=105' is not an option")])
def test_explain_refuses_bad_input_in_one_line(records, capsys, args, message):
    markov = next(d for d in find_records(records / "results") if d.parent.name == "markov")
    assert explain_main([str(markov), *args]) == 2
    err = capsys.readouterr().err
    assert message in err and err.count("\n") == 1 and err.startswith("seqrec explain: error: ")


def test_explain_without_a_saved_model_names_the_option(records, capsys):
    pop = next(d for d in find_records(records / "results") if d.parent.name == "pop")
    assert explain_main([str(pop), "user=105"]) == 2
    assert "trainer.save_model=true" in capsys.readouterr().err
    assert json.loads((pop / "metrics.json").read_text())["model"] == "pop"


@pytest.mark.parametrize("args, message", [(["--attribution-users", "5"], "apply to --attribution only"),
                                           (["--attribution", "--attribution-depth", "0"], "--attribution-depth 0 must be >= 1")])
def test_report_refuses_attribution_settings_it_would_not_use(records, tmp_path, args, message):
    from benchmark.report.cli import run

    with pytest.raises(ReportError, match=message):
        run([str(records / "results"), *args, "--out", str(tmp_path / "out")])
    assert not (tmp_path / "out").exists()


def test_seqrec_explain_is_a_subcommand_of_seqrec(records, capsys, monkeypatch):
    from benchmark import cli

    markov = next(d for d in find_records(records / "results") if d.parent.name == "markov")
    monkeypatch.setattr("sys.argv", ["seqrec", "explain", str(markov), "user=105", "top=1"])
    with pytest.raises(SystemExit) as done:
        cli.main()
    assert done.value.code == 0 and capsys.readouterr().out.startswith("user 105: top recommendation ")


def test_saved_models_reload_from_a_weights_only_file_and_rank_as_recorded(records):
    """model.pt holds tensors and plain values only; the rebuilt model ranks every test user as the run did."""
    import pandas as pd

    from benchmark.evaluation import evaluate
    from benchmark.record import read_record
    from benchmark.report.attribution import fitted_model, record_split

    checked = []
    for d in find_records(records / "results"):
        if not (d / MODEL_FILE).is_file():
            continue
        torch.load(d / MODEL_FILE, weights_only=True)  # no pickled code
        config = read_record(d)["config"]
        split = record_split(config, d)
        result = evaluate(fitted_model(d, config), split, split.test, ks=(10,), batch_size=64, mask_history=True)
        recorded = pd.read_parquet(d / "per_user.parquet")
        np.testing.assert_array_equal(result.ranks[:, 0], recorded["rank"].to_numpy())
        checked.append(d.parent.name)
    assert {"gru", "markov", "newest"} <= set(checked)


@pytest.mark.parametrize("model_config", [
    {"_target_": "baselines.sknn.SessionKNN", "name": "stan", "k": 3, "lambda_session": 2.0, "lambda_position": 2.0},
    {"_target_": "baselines.rp3beta.RP3Beta", "name": "rp3beta"},
    {"_target_": "baselines.bprmf.BPRMF", "name": "bprmf", "dim": 8},
])
def test_models_of_every_kind_of_state_survive_saving(tmp_path, model_config):
    from benchmark.config import TrainerConfig
    from benchmark.models.persist import load_model, save_model
    from benchmark.run import build_model
    from test_baselines import random_split

    split = random_split()
    model = build_model(model_config)
    model.fit(split, TrainerConfig(max_epochs=2, device="cpu"))
    save_model(model, tmp_path / MODEL_FILE)
    batch = Batch(torch.from_numpy(split.test.users), split.test.histories.padded())
    again = load_model(tmp_path / MODEL_FILE, model_config)
    torch.testing.assert_close(again.score(batch), model.score(batch))


def test_an_unreadable_model_file_is_one_line(records, tmp_path, capsys):
    import shutil

    markov = next(d for d in find_records(records / "results") if d.parent.name == "markov")
    copy = shutil.copytree(markov, tmp_path / "record")
    (copy / MODEL_FILE).write_bytes(b"not a torch file")
    assert explain_main([str(copy), "user=105"]) == 2
    err = capsys.readouterr().err
    assert "cannot be read as a saved model" in err and err.count("\n") == 1
