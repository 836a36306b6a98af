"""SASRec encoder (Kang & McAuley, 2018): a causal Transformer over the item sequence.

Pre-LayerNorm blocks of masked self-attention and a point-wise feed-forward network. Position t
attends to real items at positions <= t only; padding is never attended to.
"""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F
from torch import nn

from benchmark.models.kernels import Dropout


class SelfAttention(nn.Module):
    """Multi-head scaled dot-product attention, written out (the math of nn.MultiheadAttention,
    with its parameter names and initialisation). Written out because on CPU nn.MultiheadAttention
    draws its dropout mask with ``bernoulli_`` and checks its masks on every call: together about
    a tenth of a SASRec training step of 11 x 50 positions."""

    def __init__(self, hidden: int, heads: int, dropout: float) -> None:
        super().__init__()
        self.heads = heads  # divides hidden: checked with the config (model.heads, model.hidden)
        self.in_proj_weight = nn.Parameter(torch.empty(3 * hidden, hidden))  # query, key, value rows
        self.in_proj_bias = nn.Parameter(torch.zeros(3 * hidden))
        self.out_proj = nn.Linear(hidden, hidden)
        nn.init.xavier_uniform_(self.in_proj_weight)
        nn.init.zeros_(self.out_proj.bias)
        self.dropout = Dropout(dropout)

    def forward(self, x: torch.Tensor, blocked: torch.Tensor, n_queries: int) -> torch.Tensor:
        """x [B, L, H]; the newest ``n_queries`` positions attend to all L, except where ``blocked``
        [B, 1, n_queries, L] is True -> [B, n_queries, H]."""
        batch, width, hidden = x.shape
        q, k, v = F.linear(x, self.in_proj_weight, self.in_proj_bias).split(hidden, dim=-1)
        q, k, v = self._split_heads(q[:, width - n_queries :]), self._split_heads(k), self._split_heads(v)
        weights = (q @ k.transpose(-2, -1) * q.shape[-1] ** -0.5).masked_fill(blocked, -math.inf).softmax(-1)
        out = (self.dropout(weights) @ v).transpose(1, 2).reshape(batch, n_queries, hidden)
        return self.out_proj(out)

    def _split_heads(self, x: torch.Tensor) -> torch.Tensor:
        return x.unflatten(-1, (self.heads, -1)).transpose(1, 2)  # [B, len, H] -> [B, heads, len, H / heads]


class Block(nn.Module):
    def __init__(self, hidden: int, heads: int, dropout: float) -> None:
        super().__init__()
        self.norm1 = nn.LayerNorm(hidden)
        self.attn = SelfAttention(hidden, heads, dropout)
        self.norm2 = nn.LayerNorm(hidden)
        self.ffn = nn.Sequential(
            nn.Linear(hidden, hidden), nn.GELU(), Dropout(dropout), nn.Linear(hidden, hidden), Dropout(dropout)
        )

    def forward(self, x: torch.Tensor, blocked: torch.Tensor, newest_only: bool = False) -> torch.Tensor:
        """newest_only: the newest position's query only (it attends to every key as usual) -> [B, 1, H]."""
        h = self.norm1(x)
        if newest_only:
            x, blocked = x[:, -1:], blocked[:, :, -1:]  # the residual stream and mask of the newest query
        x = x + self.attn(h, blocked, n_queries=x.shape[1])
        return x + self.ffn(self.norm2(x))


class AttentionEncoder(nn.Module):
    bidirectional = True  # model.causal=false (BERT4Rec) is allowed
    # Padding is never attended to and positions count back from the newest item, so extra
    # left padding changes nothing: score() may drop all-padding columns.
    left_padding_invariant = True
    # Ranking needs the newest state only: the last block then computes one query per sequence.
    computes_newest_only = True

    def __init__(
        self, hidden: int, max_len: int, layers: int = 2, heads: int = 2, dropout: float = 0.2, causal: bool = True,
        scale_input: bool = True, **_: object
    ) -> None:
        super().__init__()
        self.causal = causal
        # The Transformer's sqrt(H) brings embeddings initialised at std H^-1/2 to unit scale; with
        # BERT-style small weights (model.init_std) the embeddings enter as they are, as in BERT4Rec.
        self.input_scale = math.sqrt(hidden) if scale_input else 1.0
        self.position = nn.Embedding(max_len, hidden)
        self.dropout = Dropout(dropout)
        self.blocks = nn.ModuleList(Block(hidden, heads, dropout) for _ in range(layers))
        self.norm = nn.LayerNorm(hidden)

    def forward(self, x: torch.Tensor, mask: torch.Tensor, newest_only: bool = False) -> torch.Tensor:
        """x [B, L, H] left-padded embeddings, mask [B, L] True on real items -> [B, L, H]
        (with newest_only: [B, 1, H], the newest position's states only)."""
        batch, width, hidden = x.shape
        # Positions count back from the newest item, so extra left padding changes nothing.
        pos = torch.arange(width - 1, -1, -1, device=x.device).clamp(max=self.position.num_embeddings - 1)
        x = self.dropout(x * self.input_scale + self.position(pos)) * mask[..., None]
        allowed = mask[:, None, :].expand(batch, width, width)  # keys must be real items
        if self.causal:
            allowed = allowed & torch.ones(width, width, dtype=torch.bool, device=x.device).tril()
        # A padding query has no allowed key; let it see itself so softmax stays finite.
        allowed = allowed | torch.eye(width, dtype=torch.bool, device=x.device)
        blocked = ~allowed[:, None]  # [B, 1 (every head), L, L]
        for i, block in enumerate(self.blocks):
            x = block(x, blocked, newest_only and i == len(self.blocks) - 1)
            x = x * mask[:, -x.shape[1] :, None]
        return self.norm(x) * mask[:, -x.shape[1] :, None]
