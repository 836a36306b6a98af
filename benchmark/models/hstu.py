"""HSTU encoder (Zhai et al., ICML 2024, "Actions Speak Louder than Words"): pointwise aggregated attention.

Each layer computes U, V, Q, K = split(SiLU(f1(LayerNorm(x)))) and
A = SiLU(Q K^T + rab(position, time)) / max_len, masked causally (or to real items only when
bidirectional), then Y = f2(LayerNorm(A V) * U) and x + Y. There is no softmax: the weights are not
normalised over the keys, which the paper argues keeps the strength of a user's engagement.

rab is a learned bias of the relative position (i - j) plus, where the data has times, of the time gap
bucketised by log2(1 + |t_i - t_j|) seconds (64 buckets cover every int64 gap). Dividing by the
constant max_len (as the reference implementation divides by the padded length) and counting positions
relative to each other keeps the encoder invariant to extra left padding.
"""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F
from torch import nn

from benchmark.models.encoders import Encoder
from benchmark.models.kernels import Dropout

TIME_BUCKETS = 64


def time_buckets(times: torch.Tensor) -> torch.Tensor:
    """Bucket of every pair's time gap, [B, L, L]: floor(log2(1 + |t_i - t_j|)), at most 63."""
    gap = (times[:, :, None] - times[:, None, :]).abs().double()
    return torch.log2(gap + 1).floor().long().clamp(max=TIME_BUCKETS - 1)


class RelativeBias(nn.Module):
    """rab(pos, time): one learned scalar per relative position (and per time-gap bucket), shared by the heads."""

    def __init__(self, max_len: int, time_bias: bool) -> None:
        super().__init__()
        self.max_len = max_len
        self.position = nn.Parameter(torch.zeros(2 * max_len - 1))
        self.time = nn.Parameter(torch.zeros(TIME_BUCKETS)) if time_bias else None

    def forward(self, width: int, buckets: torch.Tensor | None) -> torch.Tensor:
        """[L, L] (position only) or [B, L, L] (with the time buckets of ``time_buckets``)."""
        pos = torch.arange(width, device=self.position.device)
        offset = (pos[:, None] - pos[None, :]).clamp(-(self.max_len - 1), self.max_len - 1) + self.max_len - 1
        bias = self.position[offset]
        if self.time is not None and buckets is not None:
            bias = bias + self.time[buckets]
        return bias


class HSTULayer(nn.Module):
    def __init__(self, hidden: int, heads: int, dropout: float, max_len: int, time_bias: bool) -> None:
        super().__init__()
        self.heads, self.max_len = heads, max_len
        self.norm_in = nn.LayerNorm(hidden)
        self.f1 = nn.Linear(hidden, 4 * hidden)  # U, V, Q, K
        self.norm_attn = nn.LayerNorm(hidden)
        self.f2 = nn.Linear(hidden, hidden)
        self.bias = RelativeBias(max_len, time_bias)
        self.dropout = Dropout(dropout)

    def forward(self, x: torch.Tensor, allowed: torch.Tensor, buckets: torch.Tensor | None) -> torch.Tensor:
        """x [B, L, H]; allowed [B, L, L] (query, key) -> [B, L, H]."""
        batch, width, hidden = x.shape
        u, v, q, k = F.silu(self.f1(self.norm_in(x))).split(hidden, dim=-1)
        q, k, v = (t.unflatten(-1, (self.heads, -1)).transpose(1, 2) for t in (q, k, v))  # [B, heads, L, d]
        bias = self.bias(width, buckets)
        bias = bias[:, None] if bias.dim() == 3 else bias  # [B, 1, L, L] or [L, L]: shared by the heads
        weights = F.silu(q @ k.transpose(-2, -1) + bias) / self.max_len * allowed[:, None]
        out = (self.dropout(weights) @ v).transpose(1, 2).reshape(batch, width, hidden)
        return x + self.dropout(self.f2(self.norm_attn(out) * u))


class HSTUEncoder(Encoder, name="hstu", family="attention"):
    family = "attention"  # pointwise attention; the integrator's part registry reads this
    left_padding_invariant = True  # relative biases, padding keys masked, a constant normaliser
    reads_times = True  # forward takes the items' timestamps (the relative time bias)

    def __init__(
        self, hidden: int, max_len: int, layers: int = 2, heads: int = 2, dropout: float = 0.2, causal: bool = True,
        scale_input: bool = True, time_bias: bool = True, **_: object
    ) -> None:
        super().__init__()
        self.causal, self.time_bias = causal, time_bias
        self.input_scale = math.sqrt(hidden) if scale_input else 1.0
        self.dropout = Dropout(dropout)
        self.layers = nn.ModuleList(HSTULayer(hidden, heads, dropout, max_len, time_bias) for _ in range(layers))
        self.norm = nn.LayerNorm(hidden)

    def forward(self, x: torch.Tensor, mask: torch.Tensor, times: torch.Tensor | None = None) -> torch.Tensor:
        """x [B, L, H] left-padded embeddings, mask [B, L] True on real items, times [B, L] (unix
        seconds; None: position bias only) -> [B, L, H]."""
        width = x.shape[1]
        x = self.dropout(x * self.input_scale) * mask[..., None]
        allowed = (mask[:, None, :] & mask[:, :, None]).float()  # padding neither reads nor is read
        if self.causal:
            allowed = allowed * torch.ones(width, width, device=x.device).tril()
        buckets = time_buckets(times) if self.time_bias and times is not None else None
        for layer in self.layers:
            x = layer(x, allowed, buckets) * mask[..., None]
        return self.norm(x) * mask[..., None]
