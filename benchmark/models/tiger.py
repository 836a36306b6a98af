"""TIGER-style generative retrieval (Rajput et al., NeurIPS 2023): an encoder-decoder over semantic IDs.

Every item is a tuple of D = L + 1 codes (semantic_ids.py). A bidirectional Transformer encoder reads
the history as code tokens (each item -> its D tokens, plus a level embedding and the item's position
counted back from the newest item); an autoregressive Transformer decoder writes the next item's code
tuple, level by level, attending over the encoder's tokens. Training is teacher forcing: cross-entropy
over each level's codebook, for every next-item target of the training sequences (up to max_len items
of history each).

Ranking (``model.scoring``):
- ``likelihood`` (default): every item scores the log-probability of its code tuple, the sum over
  levels of log p(code_d | codes before it, history), computed for all items in one decoder pass per
  chunk of items; score() returns [B, n_items + 1] and the full-ranking metrics compare with every
  other model. Costs a decoder pass over n_items x D tokens per user: sized for GPUs.
- ``beam``: beam search of ``model.beam_size`` hypotheses constrained by a prefix trie of the items'
  codes (it can never write a tuple that is no item); the beam's items are ranked in its order, and
  every item outside the beam is a miss (it scores -inf, so ties place it behind all candidates).
  With history masking, history items are never completed by the beam. recommend() always writes
  its lists with the beam, at least as wide as the list.
The user token and the sentence-T5 item text embeddings of the paper are not used.
"""

from __future__ import annotations

import logging
from typing import Any, Callable

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from benchmark.config import TrainerConfig, resolve_device
from benchmark.data.split import SplitData
from benchmark.errors import ConfigError
from benchmark.models.base import Batch, Recommender
from benchmark.models.kernels import Dropout
from benchmark.models.sasrec import Block
from benchmark.models.semantic_ids import SemanticIdConfig, SemanticIds, build_semantic_ids
from benchmark.models.seq2seq import Attention
from benchmark.training import EpochLog, train_loop

log = logging.getLogger("seqrec")
SCORINGS = ("likelihood", "beam")
# Attention weights per decoder call when scoring every item: about 128 MB of float32 on CPU, 1 GB on a GPU.
SCORE_BUDGET = {"cpu": 2**25, "cuda": 2**28}


class CodeTrie:
    """The items' code tuples as a prefix tree, one dense table per level: ``children[d][node, code]`` is
    the node reached (at the last level: the item id), -1 where no item continues that prefix."""

    def __init__(self, codes: np.ndarray, sizes: np.ndarray) -> None:
        """codes [n_items + 1, D] (row 0 padding: not in the trie), sizes [D] codes per level."""
        items, codes = np.arange(1, len(codes)), codes[1:]
        self.children: list[torch.Tensor] = []
        node = np.zeros(len(codes), dtype=np.int64)  # every item's node at the current depth (root: 0)
        for d, size in enumerate(sizes):
            if d + 1 < len(sizes):
                _, child = np.unique(codes[:, : d + 1], axis=0, return_inverse=True)
                child = child.ravel()
            else:
                child = items
            table = np.full((int(node.max()) + 1, int(size)), -1, dtype=np.int64)
            table[node, codes[:, d]] = child
            self.children.append(torch.from_numpy(table))
            node = child

    def to(self, device: torch.device) -> "CodeTrie":
        self.children = [c.to(device) for c in self.children]
        return self


def constrained_beam_search(
    log_probs: Callable[[torch.Tensor], torch.Tensor], trie: CodeTrie, batch: int, beam: int,
    excluded: torch.Tensor | None = None,
) -> tuple[torch.Tensor, torch.Tensor]:
    """The ``beam`` items of highest code log-likelihood that beam search finds, best first.

    ``log_probs(prefix)`` maps code prefixes [B, K, d] to log-probabilities [B, K, size_d] of level d's
    code. Only trie edges are followed, so every returned item exists; ``excluded`` [B, n_items + 1]
    bool items are never completed. Returns (item ids [B, beam], log-likelihoods [B, beam]); 0 and
    -inf where fewer items are reachable.
    """
    device = trie.children[0].device
    prefix = torch.zeros(batch, 1, 0, dtype=torch.long, device=device)
    node = torch.zeros(batch, 1, dtype=torch.long, device=device)
    total = torch.zeros(batch, 1, device=device)
    for d, table in enumerate(trie.children):
        child = table[node]  # [B, K, size_d]
        candidates = total[..., None] + log_probs(prefix).float()
        blocked = child < 0
        if d == len(trie.children) - 1 and excluded is not None:
            blocked |= excluded.gather(1, child.clamp(min=0).flatten(1)).view_as(child)
        candidates = candidates.masked_fill(blocked | total[..., None].isinf(), -torch.inf).flatten(1)
        total, flat = candidates.topk(min(beam, candidates.shape[1]), dim=1)
        parent, code = flat // table.shape[1], flat % table.shape[1]
        node = child.flatten(1).gather(1, flat).clamp(min=0)  # a dead hypothesis (-inf) keeps a valid index
        prefix = torch.cat([prefix.gather(1, parent[..., None].expand(-1, -1, d)), code[..., None]], dim=2)
    items = node.masked_fill(total.isinf(), 0)
    if items.shape[1] < beam:
        items, total = F.pad(items, (0, beam - items.shape[1])), F.pad(total, (0, beam - total.shape[1]), value=-torch.inf)
    return items, total


class CodeDecoderBlock(nn.Module):
    """Pre-LayerNorm: causal self-attention within each code prefix, cross-attention of all of a
    user's prefixes at once over that user's encoder tokens (the tokens are projected once per user),
    feed-forward network."""

    def __init__(self, hidden: int, heads: int, dropout: float) -> None:
        super().__init__()
        self.norm1, self.self_attn = nn.LayerNorm(hidden), Attention(hidden, heads, dropout)
        self.norm2, self.cross_attn = nn.LayerNorm(hidden), Attention(hidden, heads, dropout)
        self.norm3 = nn.LayerNorm(hidden)
        self.ffn = nn.Sequential(nn.Linear(hidden, 4 * hidden), nn.GELU(), Dropout(dropout), nn.Linear(4 * hidden, hidden), Dropout(dropout))

    def forward(self, x: torch.Tensor, memory: torch.Tensor, allowed: torch.Tensor) -> torch.Tensor:
        """x [B, P, T, H] P prefixes of T steps per user; memory [B, W, H]; allowed [B, 1, 1, W]."""
        batch, n_prefix, steps, hidden = x.shape
        flat = x.reshape(batch * n_prefix, steps, hidden)
        h = self.norm1(flat)
        flat = flat + self.self_attn(h, h, torch.ones(steps, steps, dtype=torch.bool, device=x.device).tril())
        x = flat.view(batch, n_prefix * steps, hidden)
        x = x + self.cross_attn(self.norm2(x), memory, allowed)
        return (x + self.ffn(self.norm3(x))).view(batch, n_prefix, steps, hidden)


class TigerNet(nn.Module):
    def __init__(self, sizes: list[int], max_len: int, hidden: int, layers: int, decoder_layers: int, heads: int, dropout: float) -> None:
        super().__init__()
        self.register_buffer("offsets", torch.tensor(np.concatenate([[1], 1 + np.cumsum(sizes[:-1])]), dtype=torch.long))
        self.register_buffer("sizes", torch.tensor(sizes, dtype=torch.long))
        levels, widest = len(sizes), max(sizes)
        self.token = nn.Embedding(1 + sum(sizes), hidden, padding_idx=0)  # level d's code c: offsets[d] + c
        self.level = nn.Embedding(levels, hidden)
        self.position = nn.Embedding(max_len, hidden)
        self.dropout = Dropout(dropout)
        self.encoder = nn.ModuleList(Block(hidden, heads, dropout) for _ in range(layers))
        self.encoder_norm = nn.LayerNorm(hidden)
        self.start = nn.Parameter(torch.randn(hidden) * hidden**-0.5)
        self.decoder = nn.ModuleList(CodeDecoderBlock(hidden, heads, dropout) for _ in range(decoder_layers))
        self.decoder_norm = nn.LayerNorm(hidden)
        self.output = nn.Parameter(torch.randn(levels, widest, hidden) * hidden**-0.5)  # level d's code logits
        self.register_buffer("invalid", torch.arange(widest)[None, :] >= self.sizes[:, None])  # [D, widest]

    def encode(self, codes: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """codes [B, L, D] of the history's items (-1 on padding items) -> (tokens' states [B, L * D, H], mask)."""
        batch, width, levels = codes.shape
        real = (codes[..., 0] >= 0)[..., None].expand(-1, -1, levels)
        tokens = torch.where(real, codes + self.offsets, 0)
        back = torch.arange(width - 1, -1, -1, device=codes.device).clamp(max=self.position.num_embeddings - 1)
        x = self.token(tokens) + self.level.weight + self.position(back)[:, None, :]
        mask = real.reshape(batch, width * levels)
        x = self.dropout(x.reshape(batch, width * levels, -1)) * mask[..., None]
        blocked = ~(mask[:, None, None, :] | torch.eye(width * levels, dtype=torch.bool, device=x.device))  # bidirectional
        for block in self.encoder:
            x = block(x, blocked) * mask[..., None]
        return self.encoder_norm(x) * mask[..., None], mask

    def decode(self, memory: torch.Tensor, mask: torch.Tensor, prefix: torch.Tensor) -> torch.Tensor:
        """Log-probabilities [B, P, T + 1, widest] of each level's code after prefixes [B, P, T] of codes
        (step t predicts level t; codes beyond a level's codebook get -inf)."""
        batch, n_prefix, done = prefix.shape
        x = self.start.expand(batch, n_prefix, 1, -1)
        if done:  # step t > 0 reads the code of level t - 1
            x = torch.cat([x, self.token(prefix + self.offsets[:done])], dim=2)
        x = self.dropout(x + self.level.weight[: done + 1])
        allowed = mask[:, None, None, :]
        for block in self.decoder:
            x = block(x, memory, allowed)
        logits = torch.einsum("bpth,twh->bptw", self.decoder_norm(x), self.output[: done + 1])
        return logits.masked_fill(self.invalid[: done + 1], -torch.inf).log_softmax(-1)


class TigerRecommender(Recommender):
    reads_order = True  # the history's codes in order
    declared_family = "semantic-ID encoder–decoder"  # its own row of the families table

    def __init__(
        self,
        name: str,
        semantic_ids: dict[str, Any] | None = None,
        scoring: str = "likelihood",
        beam_size: int = 20,
        max_len: int = 20,
        hidden: int = 128,
        layers: int = 4,
        decoder_layers: int = 4,
        heads: int = 4,
        dropout: float = 0.1,
    ) -> None:
        super().__init__(name)
        self.id_config = SemanticIdConfig.from_dict(semantic_ids)
        if scoring not in SCORINGS:
            raise ConfigError(f"model.scoring={scoring!r} is unknown; choose one of {', '.join(SCORINGS)}")
        for key, value, low in (("beam_size", beam_size, 1), ("max_len", max_len, 1), ("hidden", hidden, 1),
                                ("layers", layers, 1), ("decoder_layers", decoder_layers, 1), ("heads", heads, 1)):
            if value < low:
                raise ConfigError(f"model.{key}={value} must be >= {low}")
        if hidden % heads:
            raise ConfigError(f"model.hidden={hidden} must be a multiple of model.heads={heads}")
        self.scoring, self.beam_size, self.max_len = scoring, beam_size, max_len
        self.sizes = dict(hidden=hidden, layers=layers, decoder_layers=decoder_layers, heads=heads, dropout=dropout)
        self.net: TigerNet | None = None
        self.ids: SemanticIds | None = None  # set by fit, with the codes as a tensor and their trie
        self.codes: torch.Tensor | None = None  # [n_items + 1, D]; row 0 (padding) is -1: no tokens
        self.trie: CodeTrie | None = None
        self.mask_history = True
        self._device = torch.device("cpu")

    def ignored_settings(self) -> dict[str, str]:
        return {} if self.scoring == "beam" else {"beam_size": "with model.scoring=likelihood "
                                                               "(read with scoring=beam and for list protocols)"}

    @property
    def device(self) -> torch.device:
        return self._device

    def n_params(self) -> int:
        return sum(p.numel() for p in self.net.parameters()) if self.net is not None else 0

    def extra_metrics(self) -> dict[str, Any]:
        return {"semantic_ids": self.ids.summary()} if self.ids is not None else {}

    # ---- training -------------------------------------------------------------------------
    def fit(self, data: SplitData, trainer: TrainerConfig | None = None) -> list[EpochLog]:
        from benchmark.evaluation import validation_metric

        cfg = trainer or TrainerConfig()
        self.ids = build_semantic_ids(self.id_config, data, cfg.seed)
        torch.manual_seed(cfg.seed)
        self._device = torch.device(resolve_device(cfg.device))
        self.mask_history = cfg.mask_history
        self.net = TigerNet(self.ids.sizes.tolist(), self.max_len, **self.sizes).to(self._device)
        self.codes = torch.from_numpy(self.ids.codes).to(self._device)
        self.codes[0] = -1  # padding items have no tokens
        self.trie = CodeTrie(self.ids.codes, self.ids.sizes).to(self._device)
        # Every next-item target: its place in the flat training items and its sequence's start.
        train = data.train
        items = torch.from_numpy(train.items).to(self._device)
        starts = np.repeat(train.offsets[:-1], train.lengths)
        targets = np.flatnonzero(np.arange(len(train.items)) > starts)  # all but each sequence's first item
        targets, starts = torch.from_numpy(targets).to(self._device), torch.from_numpy(starts[targets]).to(self._device)
        back = torch.arange(self.max_len, 0, -1, device=self._device)

        def step_loss(idx: torch.Tensor, generator: torch.Generator) -> torch.Tensor:
            idx = idx.to(self._device)
            at = targets[idx, None] - back  # the max_len items before the target, oldest first
            history = torch.where(at >= starts[idx, None], items[at.clamp(min=0)], 0)
            return self.loss(history, items[targets[idx]])

        return train_loop(self.net, step_loss, len(targets), lambda: validation_metric(self, data, cfg), cfg)

    def loss(self, history: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
        """Teacher forcing: cross-entropy of each level's code of ``target`` [B] after ``history`` [B, L]."""
        memory, mask = self.net.encode(self.codes[history])
        code = self.codes[target]  # [B, D]
        log_probs = self.net.decode(memory, mask, code[:, None, :-1])[:, 0]  # [B, D, widest]
        return F.nll_loss(log_probs.flatten(0, 1), code.flatten())

    # ---- inference ------------------------------------------------------------------------
    def encode(self, history: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        assert self.net is not None, "call fit() first"
        self.net.eval()
        history = history.to(self._device)[:, -self.max_len :]
        real = (history > 0).any(0).nonzero()  # all-padding columns add nothing (positions count back)
        return self.net.encode(self.codes[history[:, int(real[0]) if len(real) else -1 :]])

    @torch.no_grad()
    def score(self, batch: Batch) -> torch.Tensor:
        memory, mask = self.encode(batch.history)
        if self.scoring == "beam":
            excluded = None
            if self.mask_history:
                excluded = torch.zeros(len(memory), len(self.codes), dtype=torch.bool, device=self._device)
                excluded.scatter_(1, batch.history.to(self._device), True)
            items, total = self.beam(memory, mask, self.beam_size, excluded)
            scores = torch.full((len(memory), len(self.codes)), -torch.inf, device=self._device)
            return scores.scatter_(1, items, total)  # places the beam left empty hold item 0 at -inf
        return self.likelihoods(memory, mask)

    def likelihoods(self, memory: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
        """Log-probability of every item's code tuple, [B, n_items + 1] (padding: -inf); items in
        chunks sized so that one decoder call's attention weights stay within SCORE_BUDGET."""
        codes = self.codes[1:]
        levels = codes.shape[1]
        heads = self.sizes["heads"]
        budget = SCORE_BUDGET.get(self._device.type, SCORE_BUDGET["cpu"])
        chunk = max(1, budget // (len(memory) * heads * levels * max(memory.shape[1], levels)))
        parts = [torch.full((len(memory), 1), -torch.inf, device=self._device)]
        for lo in range(0, len(codes), chunk):
            part = codes[lo : lo + chunk]  # [P, D]
            log_probs = self.net.decode(memory, mask, part[None, :, :-1].expand(len(memory), -1, -1))  # [B, P, D, widest]
            parts.append(log_probs.gather(3, part[None, :, :, None].expand(len(memory), -1, -1, 1))[..., 0].sum(2))
        return torch.cat(parts, dim=1)

    def beam(self, memory: torch.Tensor, mask: torch.Tensor, width: int, excluded: torch.Tensor | None) -> tuple[torch.Tensor, torch.Tensor]:
        def log_probs(prefix: torch.Tensor) -> torch.Tensor:
            return self.net.decode(memory, mask, prefix)[:, :, -1, : self.trie.children[prefix.shape[2]].shape[1]]

        return constrained_beam_search(log_probs, self.trie, len(memory), width, excluded)

    @torch.no_grad()
    def recommend(self, batch: Batch, n: int, excluded: torch.Tensor) -> torch.Tensor:
        """The beam's list (width max(beam_size, n)) with scoring=beam; the top n of the likelihoods otherwise."""
        if self.scoring != "beam":
            return super().recommend(batch, n, excluded)
        memory, mask = self.encode(batch.history)
        excluded = excluded.to(self._device).clone()
        excluded[:, 0] = True
        return self.beam(memory, mask, max(self.beam_size, n), excluded)[0][:, :n]
