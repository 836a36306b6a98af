"""BPR-MF (Rendle et al., 2009): matrix factorisation trained to rank a user's items above
sampled unseen items, loss = -log sigmoid(x_ui - x_uj) with x_ui = <p_u, q_i> + b_i.

Training pairs are the distinct (user, item) pairs of the training sequences; each epoch draws one
uniform negative per pair, resampled once where it hits a positive (the rare leftovers on very
dense users are harmless noise). Uses the shared trainer: trainer.lr, batch_size, max_epochs,
patience and early stopping on the validation metric.
"""

from __future__ import annotations

import math

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from baselines.interactions import interaction_matrix
from benchmark.config import TrainerConfig, resolve_device
from benchmark.data.split import SplitData
from benchmark.errors import ConfigError
from benchmark.models.base import Batch, Recommender
from benchmark.models.kernels import item_scores
from benchmark.training import EpochLog, train_loop


class MatrixFactorisation(nn.Module):
    def __init__(self, n_users: int, n_items: int, dim: int) -> None:
        super().__init__()
        self.users = nn.Embedding(n_users, dim)
        self.items = nn.Embedding(n_items + 1, dim)  # row 0 = padding, never trained as a positive
        self.item_bias = nn.Embedding(n_items + 1, 1)
        for emb in (self.users, self.items):
            nn.init.normal_(emb.weight, std=0.1)
        nn.init.zeros_(self.item_bias.weight)

    def pair_scores(self, users: torch.Tensor, items: torch.Tensor) -> torch.Tensor:
        return (self.users(users) * self.items(items)).sum(-1) + self.item_bias(items).squeeze(-1)


class BPRMF(Recommender):
    reads_order = False  # the history is a set: a non-sequential baseline

    def __init__(self, name: str = "bprmf", dim: int = 64, l2: float = 1e-4) -> None:
        super().__init__(name)
        if dim < 1 or not (math.isfinite(l2) and l2 >= 0):
            raise ConfigError(f"bprmf needs model.dim >= 1 and a finite model.l2 >= 0 (got dim={dim}, l2={l2})")
        self.dim, self.l2 = dim, l2
        self.net: MatrixFactorisation | None = None
        self._device = torch.device("cpu")

    @property
    def device(self) -> torch.device:
        return self._device

    def fit(self, data: SplitData, trainer: TrainerConfig | None = None) -> list[EpochLog]:
        from benchmark.evaluation import validation_metric

        cfg = trainer or TrainerConfig()
        torch.manual_seed(cfg.seed)
        self._device = torch.device(resolve_device(cfg.device))
        self.net = MatrixFactorisation(data.n_users, data.n_items, self.dim).to(self._device)
        x = interaction_matrix(data.train, data.n_items + 1).tocoo()
        users = torch.from_numpy(x.row.astype(np.int64)).to(self._device)
        positives = torch.from_numpy(x.col.astype(np.int64)).to(self._device)
        # Sorted keys user * n_columns + item answer "is (u, j) a positive?" with one searchsorted.
        n_columns = data.n_items + 1
        known = torch.sort(users * n_columns + positives).values

        def is_positive(u: torch.Tensor, j: torch.Tensor) -> torch.Tensor:
            keys = u * n_columns + j
            at = torch.searchsorted(known, keys).clamp(max=len(known) - 1)
            return known[at] == keys

        def step_loss(idx: torch.Tensor, generator: torch.Generator) -> torch.Tensor:
            idx = idx.to(self._device)
            u, i = users[idx], positives[idx]
            j = torch.randint(1, n_columns, (len(idx),), generator=generator).to(self._device)
            clash = is_positive(u, j)
            j[clash] = torch.randint(1, n_columns, (int(clash.sum()),), generator=generator).to(self._device)
            loss = -F.logsigmoid(self.net.pair_scores(u, i) - self.net.pair_scores(u, j)).mean()
            # L2 on the parameters this batch touched (the usual BPR regulariser).
            reg = sum(e.pow(2).sum(-1).mean() for e in (self.net.users(u), self.net.items(i), self.net.items(j)))
            return loss + self.l2 * reg

        return train_loop(self.net, step_loss, len(users), lambda: validation_metric(self, data, cfg), cfg)

    @torch.no_grad()
    def score(self, batch: Batch) -> torch.Tensor:
        assert self.net is not None, "call fit() first"
        users = self.net.users(batch.users.to(self._device))
        return item_scores(users, self.net.items.weight, self.net.item_bias.weight[:, 0])

    def n_params(self) -> int:
        return sum(p.numel() for p in self.net.parameters()) if self.net is not None else 0

    def restore(self, attributes: dict) -> None:
        weights = attributes.pop("net")
        super().restore(attributes)
        if weights is not None:
            self.net = MatrixFactorisation(len(weights["users.weight"]), len(weights["items.weight"]) - 1, self.dim)
            self.net.load_state_dict(weights)
