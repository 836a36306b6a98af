"""A neural sequential recommender = item embedding + encoder + tied next-item head + objective.

The literature models (GRU4Rec, SASRec, ...) are presets of this composition in conf/model/.
"""

from __future__ import annotations

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from benchmark.config import TrainerConfig, resolve_device
from benchmark.data.split import SplitData
from benchmark.errors import ConfigError
from benchmark.models.base import Batch, Recommender
from benchmark.models.gru4rec import RNNEncoder
from benchmark.models.sasrec import AttentionEncoder
from benchmark.training import EpochLog, train_loop, training_windows

ENCODERS: dict[str, type[nn.Module]] = {"rnn": RNNEncoder, "attention": AttentionEncoder}
OBJECTIVES = ("ce",)


class SequenceNet(nn.Module):
    """Item ids [B, L] -> hidden states [B, L, H]; logits are hidden @ item_embedding.T (tied)."""

    def __init__(self, n_items: int, encoder: nn.Module, hidden: int) -> None:
        super().__init__()
        self.item_embedding = nn.Embedding(n_items + 1, hidden, padding_idx=0)
        nn.init.normal_(self.item_embedding.weight, std=hidden**-0.5)
        with torch.no_grad():
            self.item_embedding.weight[0].zero_()
        self.encoder = encoder

    def forward(self, items: torch.Tensor) -> torch.Tensor:
        mask = items > 0
        return self.encoder(self.item_embedding(items), mask)

    def logits(self, hidden: torch.Tensor) -> torch.Tensor:
        return hidden @ self.item_embedding.weight.T


class SequentialRecommender(Recommender):
    def __init__(
        self,
        name: str,
        encoder: str,
        max_len: int = 50,
        hidden: int = 64,
        layers: int = 2,
        heads: int = 2,
        dropout: float = 0.2,
        objective: str = "ce",
        **encoder_options: object,
    ) -> None:
        super().__init__(name)
        if encoder not in ENCODERS:
            raise ConfigError(f"model.encoder={encoder!r} is unknown; choose one of {', '.join(ENCODERS)}")
        if objective not in OBJECTIVES:
            raise ConfigError(f"model.objective={objective!r} is unknown; choose one of {', '.join(OBJECTIVES)}")
        self.encoder_name, self.objective = encoder, objective
        self.max_len, self.hidden, self.layers, self.heads, self.dropout = max_len, hidden, layers, heads, dropout
        self.encoder_options = encoder_options
        self.net: SequenceNet | None = None
        self._device = torch.device("cpu")

    @property
    def device(self) -> torch.device:
        return self._device

    def build(self, n_items: int) -> SequenceNet:
        encoder = ENCODERS[self.encoder_name](
            hidden=self.hidden, max_len=self.max_len, layers=self.layers, heads=self.heads, dropout=self.dropout,
            **self.encoder_options,
        )
        return SequenceNet(n_items, encoder, self.hidden)

    def n_params(self) -> int:
        return sum(p.numel() for p in self.net.parameters()) if self.net is not None else 0

    def fit(self, data: SplitData, trainer: TrainerConfig | None = None) -> list[EpochLog]:
        from benchmark.evaluation import evaluate

        cfg = trainer or TrainerConfig()
        torch.manual_seed(cfg.seed)
        self._device = torch.device(resolve_device(cfg.device))
        self.net = self.build(data.n_items).to(self._device)
        inputs, targets = training_windows(data.train.items, data.train.offsets, self.max_len)
        inputs, targets = inputs.to(self._device), targets.to(self._device)

        def step_loss(idx: torch.Tensor, generator: torch.Generator) -> torch.Tensor:
            x, y = inputs[idx.to(self._device)], targets[idx.to(self._device)]
            hidden = self.net(x)
            real = y > 0
            logits = self.net.logits(hidden[real])  # only positions with a target
            return F.cross_entropy(logits, y[real])

        metric = cfg.valid_metric

        def validate() -> float:
            return evaluate(self, data, data.valid, batch_size=cfg.eval_batch_size).aggregate[metric]

        return train_loop(self.net, step_loss, len(inputs), validate, cfg)

    @torch.no_grad()
    def score(self, batch: Batch) -> torch.Tensor:
        assert self.net is not None, "call fit() first"
        history = batch.history[:, -self.max_len :]
        if history.shape[1] < self.max_len:
            history = F.pad(history, (self.max_len - history.shape[1], 0))
        hidden = self.net(history.to(self._device))[:, -1]
        return self.net.logits(hidden)
