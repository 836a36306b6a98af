"""Caser encoder (Tang & Wang, 2018): convolutions over an "image" of the last L item embeddings.

For every position t the window of the L items ending at t (an [L, H] matrix) goes through
  - horizontal filters of heights 1..L spanning the full embedding width (union-level patterns:
    "these h items in a row"), ReLU, max-pooled over the window;
  - vertical filters of size L x 1 (point-level patterns: weighted sums of the L embeddings);
and a fully connected layer maps the concatenation back to H. The per-user embedding of the paper
is left out: the benchmark scores users by their sequence alone.

Neighbouring windows overlap in L - 1 items, so nothing is computed per window: each filter runs
once along the whole sequence, and the max over a window is a sliding max (max-pool, stride 1)
over the L - h + 1 placements of a height-h filter inside it. That is the same function as
convolving every window separately (tests/test_models.py checks it), about L / 2 times cheaper,
and one pass trains every target.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from benchmark.models.kernels import Dropout


class CaserEncoder(nn.Module):
    causal = True  # position t sees the L items ending at t only
    left_padding_invariant = True  # windows are zero-filled before the sequence start anyway
    computes_newest_only = True  # ranking needs the newest state: one window per sequence

    def __init__(
        self, hidden: int, dropout: float = 0.2, window: int = 5, horizontal_filters: int = 16,
        vertical_filters: int = 4, **_: object,
    ) -> None:
        super().__init__()
        self.window = window
        self.receptive_field = window  # the state at t depends on the items t - L + 1 .. t only
        # A horizontal filter of height h over an [L, H] image = a 1-d convolution over time with H channels.
        self.horizontal = nn.ModuleList(nn.Conv1d(hidden, horizontal_filters, h) for h in range(1, window + 1))
        self.vertical = nn.Parameter(torch.randn(vertical_filters, window) / window**0.5)
        self.dropout = Dropout(dropout)
        self.fc = nn.Linear(horizontal_filters * window + vertical_filters * hidden, hidden)

    def forward(self, x: torch.Tensor, mask: torch.Tensor, newest_only: bool = False) -> torch.Tensor:
        """x [B, W, H] left-padded embeddings, mask [B, W] True on real items -> [B, W, H]
        (with newest_only: [B, 1, H], the newest position's states only)."""
        batch, width, hidden = x.shape
        L = self.window
        # [B, H, L - 1 + W]: the window ending at position t is columns t .. t + L - 1 (zeros before the start).
        sequence = F.pad((x * mask[..., None]).transpose(1, 2), (L - 1, 0))
        if newest_only:  # the newest window alone, a sequence of width 1 (half the convolution at W = L)
            sequence, width, mask = sequence[:, :, -L:], 1, mask[:, -1:]
        # Every filter at every start s in one convolution: the L items from s (zeros past the end)
        # against all filters, height-h ones zero-padded to L. One large convolution beats L small
        # ones, most of all in the backward pass.
        weight = torch.cat([F.pad(conv.weight, (0, L - h)) for h, conv in enumerate(self.horizontal, start=1)])  # [n_h*L, H, L]
        bias = torch.cat([conv.bias for conv in self.horizontal])
        responses = F.relu(F.conv1d(F.pad(sequence, (0, L - 1)), weight, bias), inplace=True)  # [B, n_h*L, T]
        by_height = responses.split(len(bias) // L, dim=1)
        horizontal = [
            # start s covers columns s .. s + h - 1; the window ending at t holds starts t .. t + L - h.
            F.max_pool1d(at[:, :, : width + L - h], kernel_size=L - h + 1, stride=1)  # [B, n_h, W]
            for h, at in enumerate(by_height, start=1)
        ]
        # Vertical filter v at t: sum_l w[v, l] * (l-th embedding of the window) = a depthwise convolution.
        vertical = F.conv1d(sequence.reshape(batch * hidden, 1, -1), self.vertical[:, None, :])  # [B*H, n_v, W]
        vertical = vertical.view(batch, hidden, -1, width).permute(0, 3, 2, 1).reshape(batch, width, -1)  # [B, W, n_v*H]
        z = self.dropout(torch.cat([torch.cat(horizontal, dim=1).transpose(1, 2), vertical], dim=2))
        return F.relu(self.fc(z)) * mask[..., None]
