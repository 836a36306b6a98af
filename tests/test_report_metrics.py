"""Per-user metrics of the evaluator against an independent implementation (ir-measures / trec_eval)."""

import ir_measures
import numpy as np
import torch

from benchmark.evaluation import metrics_from_ranks, rank_targets




def test_per_user_metrics_agree_with_trec_eval_on_random_scores():
    rng = np.random.default_rng(0)
    n_users, n_items = 40, 60
    scores = torch.from_numpy(rng.random((n_users, n_items + 1)))  # continuous: no ties
    history = torch.from_numpy(np.stack([rng.choice(np.arange(1, n_items + 1), 8, replace=False) for _ in range(n_users)]))
    targets = torch.from_numpy(np.array([[rng.choice(np.setdiff1d(np.arange(1, n_items + 1), h))] for h in history.numpy()]))
    # Boost some targets so that hits at every cut-off occur.
    scores[torch.arange(n_users)[:10], targets[:10, 0]] += 0.9
    ranks = rank_targets(scores, targets, history)[:, 0].numpy()
    ours = metrics_from_ranks(ranks, (5, 10, 20))

    qrels = {f"q{u}": {f"d{int(targets[u, 0])}": 1} for u in range(n_users)}
    run = {}  # the candidates trec_eval ranks: every real item outside the user's history
    for u in range(n_users):
        seen = set(history[u].tolist())
        run[f"q{u}"] = {f"d{i}": float(scores[u, i]) for i in range(1, n_items + 1) if i not in seen}
    measures = [ir_measures.parse_measure(m) for k in (5, 10, 20) for m in (f"nDCG@{k}", f"RR@{k}", f"Success@{k}")]
    theirs = {(m.query_id, str(m.measure)): m.value for m in ir_measures.iter_calc(measures, qrels, run)}
    for k in (5, 10, 20):
        for ours_name, their_name in ((f"ndcg@{k}", f"nDCG@{k}"), (f"mrr@{k}", f"RR@{k}"), (f"hr@{k}", f"Success@{k}")):
            expected = [theirs[(f"q{u}", their_name)] for u in range(n_users)]
            np.testing.assert_allclose(ours[ours_name], expected, atol=1e-9, err_msg=ours_name)
    assert 0 < ours["hr@5"].sum() < n_users  # both hits and misses were compared
