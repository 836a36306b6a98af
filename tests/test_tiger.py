"""Semantic IDs and the TIGER-style encoder-decoder: unique codes, their cache, the trie-constrained beam
search, teacher forcing, and the model in the runner."""

from __future__ import annotations

import dataclasses
import json
from pathlib import Path

import numpy as np
import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st

from benchmark.config import TrainerConfig
from benchmark.data.split import Sequences, leave_one_out
from benchmark.errors import ConfigError
from benchmark.evaluation import evaluate, excluded_mask
from benchmark.models import Batch
from benchmark.models import semantic_ids as sid
from benchmark.models.base import top_n
from benchmark.models.tiger import CodeTrie, TigerRecommender, constrained_beam_search
from conftest import permutation_rows, write_movielens_csv
from test_models import run_in_process

GROUPS, PER_GROUP = 4, 5
TINY = dict(max_len=6, hidden=32, layers=1, decoder_layers=1, heads=2, dropout=0.0)
TRAINER = TrainerConfig(lr=0.01, batch_size=32, max_epochs=6, patience=6, device="cpu", num_threads=1, mask_history=False)


def random_codes(n_items: int, levels: int, size: int, seed: int) -> sid.SemanticIds:
    """Random codes of n_items (many share their L codes) completed by the collision level."""
    codes = np.random.default_rng(seed).integers(0, size, (n_items, levels))
    return sid.with_collision_level(codes, size)


def table_log_probs(trie: CodeTrie, seed: int, batch: int):
    """A fixed random next-code distribution per (user, level, last code): log_probs(prefix) -> [B, K, size_d]."""
    rng = torch.Generator().manual_seed(seed)
    tables = [torch.randn(batch, max(t.shape[1] for t in trie.children) + 1, t.shape[1], generator=rng).log_softmax(-1)
              for t in trie.children]

    def log_probs(prefix: torch.Tensor) -> torch.Tensor:
        d = prefix.shape[2]
        last = prefix[:, :, -1] + 1 if d else torch.zeros(prefix.shape[:2], dtype=torch.long)
        return tables[d].gather(1, last[..., None].expand(-1, -1, tables[d].shape[2]))

    return log_probs


def exhaustive(log_probs, codes: np.ndarray, batch: int) -> torch.Tensor:
    """Every item's code log-likelihood, [B, n_items + 1] (padding -inf), computed prefix by prefix."""
    items = torch.from_numpy(codes[1:])
    total = torch.zeros(batch, len(items))
    for d in range(items.shape[1]):
        total += log_probs(items[None, :, :d].expand(batch, -1, -1)).gather(2, items[None, :, d, None].expand(batch, -1, 1))[..., 0]
    return torch.cat([torch.full((batch, 1), -torch.inf), total], 1)


@settings(max_examples=40, deadline=None)
@given(n_items=st.integers(1, 40), levels=st.integers(1, 3), size=st.integers(2, 6), beam=st.integers(1, 12),
       seed=st.integers(0, 10_000))
def test_the_trie_constrained_beam_only_yields_real_items_with_their_true_likelihood(n_items, levels, size, beam, seed):
    ids = random_codes(n_items, levels, size, seed)
    trie = CodeTrie(ids.codes, ids.sizes)
    log_probs = table_log_probs(trie, seed, batch=3)
    excluded = torch.rand(3, n_items + 1, generator=torch.Generator().manual_seed(seed)) < 0.3
    items, total = constrained_beam_search(log_probs, trie, 3, beam, excluded)
    exact = exhaustive(log_probs, ids.codes, 3)
    found = items > 0
    assert items.shape == (3, beam) and ((items >= 0) & (items <= n_items)).all()
    assert not excluded.gather(1, items)[found].any()  # an excluded item is never completed
    torch.testing.assert_close(total[found], exact.gather(1, items)[found])  # a real item's code path, its likelihood
    assert (total[~found] == -torch.inf).all()
    for row in range(3):  # distinct and best first
        listed = items[row][found[row]].tolist()
        assert len(set(listed)) == len(listed) and (total[row][found[row]].diff() <= 0).all()


@pytest.mark.parametrize("seed", range(5))
def test_a_beam_as_wide_as_the_catalogue_equals_exhaustive_search(seed):
    ids = random_codes(24, 2, 4, seed)
    trie = CodeTrie(ids.codes, ids.sizes)
    log_probs = table_log_probs(trie, seed, batch=4)
    excluded = torch.zeros(4, 25, dtype=torch.bool)
    excluded[:, 0] = True
    items, total = constrained_beam_search(log_probs, trie, 4, 24, excluded)
    exact = exhaustive(log_probs, ids.codes, 4)
    assert torch.equal(items, top_n(exact, 24, excluded))
    torch.testing.assert_close(total, exact.gather(1, items))


def test_the_collision_level_makes_every_code_tuple_unique():
    codes = np.array([[1, 2], [1, 2], [0, 0], [1, 2], [3, 1]])
    ids = sid.with_collision_level(codes, codebook_size=4)
    assert ids.codes[1:, -1].tolist() == [0, 1, 0, 2, 0]  # numbered in item order within a shared tuple
    assert ids.sizes.tolist() == [4, 4, 3] and ids.collision_rate == pytest.approx(3 / 5)
    assert ids.usage.tolist() == [3 / 4, 3 / 4]
    ids = random_codes(300, 2, 3, seed=1)  # 9 tuples for 300 items: every tuple collides
    assert len(np.unique(ids.codes[1:], axis=0)) == 300 and ids.collision_rate == 1.0


def planted_split(n_users: int = 96, length: int = 10, seed: int = 0):
    """Items in 4 groups of 5 with one content attribute per group; the next item's group is the
    current one's + 1 (mod 4), the item within it random: the content codes carry the signal."""
    rng = np.random.default_rng(seed)
    groups = (rng.integers(GROUPS, size=(n_users, 1)) + np.arange(length)) % GROUPS
    items = groups * PER_GROUP + rng.integers(PER_GROUP, size=groups.shape) + 1
    sequences = Sequences(items.ravel(), np.arange(0, items.size + 1, length), np.zeros(items.size, dtype=np.int64))
    item_ids = np.array(["<pad>"] + [f"i{i}" for i in range(GROUPS * PER_GROUP)], dtype=object)
    return leave_one_out(sequences, np.array([f"u{u}" for u in range(n_users)], dtype=object), item_ids)


def write_attributes(path: Path, n_items: int = GROUPS * PER_GROUP) -> Path:
    path.write_text(json.dumps({f"i{i}": [100 + i // PER_GROUP, 7] for i in range(n_items)}))
    return path


def content_config(tmp_path: Path, **overrides) -> dict:
    return {"source": "content", "content_path": str(write_attributes(tmp_path / "attrs.json")), "levels": 2,
            "codebook_size": 8, "dim": 8, "cache_dir": str(tmp_path / "ids"), **overrides}


@pytest.mark.parametrize("method", ["kmeans", "rqvae"])
def test_content_codes_are_unique_and_group_the_items_that_share_content(tmp_path, method):
    data = planted_split()
    config = sid.SemanticIdConfig.from_dict(content_config(tmp_path, method=method, rqvae_epochs=60))
    ids = sid.build_semantic_ids(config, data, seed=0)
    codes = ids.codes[1:]
    assert len(np.unique(codes, axis=0)) == GROUPS * PER_GROUP and ids.sizes[-1] == PER_GROUP
    by_group = codes[:, :-1].reshape(GROUPS, PER_GROUP, -1)
    assert (by_group == by_group[:, :1]).all()  # one group, one tuple of semantic codes
    assert len(np.unique(by_group[:, 0], axis=0)) == GROUPS and ids.collision_rate == 1.0
    assert 0 < ids.usage.min() <= ids.usage.max() <= 1


def test_codes_are_cached_and_rebuilt_when_what_built_them_changes(tmp_path, monkeypatch):
    data = planted_split()
    config = sid.SemanticIdConfig.from_dict(content_config(tmp_path))
    first = sid.build_semantic_ids(config, data, seed=0)
    files = list((tmp_path / "ids").glob("*.npz"))
    assert len(files) == 1

    def fail(*_):
        raise AssertionError("recomputed although cached")

    with monkeypatch.context() as patch:
        patch.setattr(sid, "residual_kmeans", fail)
        again = sid.build_semantic_ids(config, data, seed=0)
    assert np.array_equal(again.codes, first.codes) and again.collision_rate == first.collision_rate
    paths = {sid.cache_path(config, data, 0)}
    paths.add(sid.cache_path(config, data, 1))  # the seed
    paths.add(sid.cache_path(dataclasses.replace(config, levels=3), data, 0))  # a setting
    paths.add(sid.cache_path(dataclasses.replace(config, source="collaborative"), data, 0))  # the source
    (tmp_path / "attrs.json").write_text(json.dumps({f"i{i}": [1] for i in range(20)}))
    paths.add(sid.cache_path(config, data, 0))  # the content file's bytes
    assert len(paths) == 5
    assert sid.cache_path(dataclasses.replace(config, cache_dir=str(tmp_path / "other")), data, 0).name in {p.name for p in paths}


@pytest.mark.parametrize("values, needle", [
    ({"sorce": "content"}, "unknown key model.semantic_ids.sorce"),
    ({"source": "text"}, "model.semantic_ids.source='text' is unknown"),
    ({"source": "content"}, "needs model.semantic_ids.content_path"),
    ({"source": "content", "content_path": "/no/such.json"}, "content_path=/no/such.json is not a file"),
    ({"levels": 0}, "model.semantic_ids.levels=0 must be"),
    ({"codebook_size": "big"}, "codebook_size='big' has the wrong type"),
])
def test_bad_semantic_id_settings_are_one_line_config_errors(values, needle):
    with pytest.raises(ConfigError, match=needle):
        TigerRecommender("tiger", semantic_ids=values)
    with pytest.raises(ConfigError, match="model.scoring='best' is unknown"):
        TigerRecommender("tiger", scoring="best")


@pytest.fixture(scope="module")
def planted_tiger(tmp_path_factory):
    tmp = tmp_path_factory.mktemp("tiger")
    data = planted_split()
    torch.manual_seed(0)
    model = TigerRecommender("tiger", semantic_ids=content_config(tmp), beam_size=GROUPS * PER_GROUP, **TINY)
    logs = model.fit(data, TRAINER)
    return model, data, logs


def test_teacher_forced_loss_falls_and_the_next_group_is_ranked_first(planted_tiger):
    model, data, logs = planted_tiger
    losses = [log.loss for log in logs]
    assert losses[-1] < 0.7 * losses[0], losses
    # The 5 items of the next group are the top 5 by likelihood: the target is among them.
    hr = evaluate(model, data, data.test, ks=(PER_GROUP,), mask_history=False).aggregate[f"hr@{PER_GROUP}"]
    assert hr >= 0.9, hr


def test_the_models_beam_equals_exhaustive_likelihood_ranking(planted_tiger):
    model, data, _ = planted_tiger
    history = data.test.histories.padded()
    batch = Batch(torch.arange(len(history)), history)
    scores = model.score(batch)
    excluded = excluded_mask(data.n_items + 1, history, history[:, :0], True)
    model.scoring, model.mask_history = "beam", True  # a beam over the catalogue, the history excluded
    try:
        assert torch.equal(model.recommend(batch, 8, excluded), top_n(scores, 8, excluded))
        beam_scores = model.score(batch)  # the beam's items keep their likelihood; the rest are misses
    finally:
        model.scoring, model.mask_history = "likelihood", False
    in_beam = beam_scores > -torch.inf
    assert not (in_beam & excluded).any() and (in_beam.sum(1) == (~excluded).sum(1)).all()
    torch.testing.assert_close(beam_scores[in_beam], scores[in_beam])


def test_a_narrow_beam_scores_items_outside_it_as_misses(planted_tiger):
    model, data, _ = planted_tiger
    model.scoring, model.beam_size = "beam", 3
    try:
        result = evaluate(model, data, data.test, ks=(3, 10), mask_history=False)
    finally:
        model.scoring, model.beam_size = "likelihood", GROUPS * PER_GROUP
    assert result.aggregate["hr@10"] == result.aggregate["hr@3"]  # nothing beyond the beam is ever a hit
    assert (result.ranks[result.ranks > 3] >= data.n_items - 3).all()


def test_tiger_runs_through_the_runner_and_records_its_codes(tmp_path):
    write_movielens_csv(tmp_path / "tiny", permutation_rows(n_users=30, n_items=20, length=8))
    run = run_in_process(tmp_path, "model=tiger", f"dataset.path={tmp_path / 'tiny'}", "dataset.user_core=1",
                         "dataset.item_core=1", "model.hidden=16", "model.layers=1", "model.decoder_layers=1",
                         "model.semantic_ids.codebook_size=4", f"model.semantic_ids.cache_dir={tmp_path / 'ids'}")
    metrics = json.loads((run / "metrics.json").read_text())
    codes = metrics["semantic_ids"]
    assert codes["levels"] == 4 and codes["codebook_sizes"][:3] == [4, 4, 4] and 0 <= codes["collision_rate"] <= 1
    assert len(codes["codebook_usage"]) == 3 and 0.0 <= metrics["test"]["ndcg@10"] <= 1.0
    assert len(list((tmp_path / "ids").glob("collaborative-kmeans-*.npz"))) == 1
