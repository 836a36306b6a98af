"""SASRec encoder (Kang & McAuley, 2018): a causal Transformer over the item sequence.

Pre-LayerNorm blocks of masked self-attention and a point-wise feed-forward network. Position t
attends to real items at positions <= t only; padding is never attended to.
"""

from __future__ import annotations

import math

import torch
from torch import nn

from benchmark.models.kernels import Dropout


class Block(nn.Module):
    def __init__(self, hidden: int, heads: int, dropout: float) -> None:
        super().__init__()
        self.norm1 = nn.LayerNorm(hidden)
        self.attn = nn.MultiheadAttention(hidden, heads, dropout=dropout, batch_first=True)
        self.norm2 = nn.LayerNorm(hidden)
        self.ffn = nn.Sequential(
            nn.Linear(hidden, hidden), nn.GELU(), Dropout(dropout), nn.Linear(hidden, hidden), Dropout(dropout)
        )

    def forward(self, x: torch.Tensor, blocked: torch.Tensor, newest_only: bool = False) -> torch.Tensor:
        """newest_only: the newest position's query only (it attends to every key as usual) -> [B, 1, H]."""
        h = self.norm1(x)
        if newest_only:
            x, blocked = x[:, -1:], blocked[:, -1:]
        x = x + self.attn(h[:, -x.shape[1] :], h, h, attn_mask=blocked, need_weights=False)[0]
        return x + self.ffn(self.norm2(x))


class AttentionEncoder(nn.Module):
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
        self.heads, self.causal = heads, causal
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
        blocked = (~allowed).repeat_interleave(self.heads, dim=0)  # [B * heads, L, L]
        for i, block in enumerate(self.blocks):
            x = block(x, blocked, newest_only and i == len(self.blocks) - 1)
            x = x * mask[:, -x.shape[1] :, None]
        return self.norm(x) * mask[:, -x.shape[1] :, None]
