"""Caser encoder (Tang & Wang, 2018): convolutions over an "image" of the last L item embeddings.

For every position t the window of the L items ending at t (an [L, H] matrix) goes through
  - horizontal filters of heights 1..L spanning the full embedding width (union-level patterns:
    "these h items in a row"), ReLU, max-pooled over time;
  - vertical filters of size L x 1 (point-level patterns: weighted sums of the L embeddings);
and a fully connected layer maps the concatenation back to H. Windows are built for every position
at once, so one forward pass trains every target, like the other encoders. The per-user embedding
of the paper is left out: the benchmark scores users by their sequence alone.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn


class CaserEncoder(nn.Module):
    causal = True  # position t sees the L items ending at t only
    left_padding_invariant = True  # windows are zero-filled before the sequence start anyway

    def __init__(
        self, hidden: int, dropout: float = 0.2, window: int = 5, horizontal_filters: int = 16,
        vertical_filters: int = 4, **_: object,
    ) -> None:
        super().__init__()
        self.window = window
        # A horizontal filter of height h over an [L, H] image = a 1-d convolution over time with H channels.
        self.horizontal = nn.ModuleList(nn.Conv1d(hidden, horizontal_filters, h) for h in range(1, window + 1))
        self.vertical = nn.Parameter(torch.randn(vertical_filters, window) / window**0.5)
        self.dropout = nn.Dropout(dropout)
        self.fc = nn.Linear(horizontal_filters * window + vertical_filters * hidden, hidden)

    def forward(self, x: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
        """x [B, W, H] left-padded embeddings, mask [B, W] True on real items -> [B, W, H]."""
        batch, width, hidden = x.shape
        x = x * mask[..., None]
        # windows[b, t] = the L embeddings ending at position t (zeros before the sequence start).
        windows = F.pad(x, (0, 0, self.window - 1, 0)).unfold(1, self.window, 1)  # [B, W, H, L]
        images = windows.reshape(batch * width, hidden, self.window)  # [N, H, L]
        pooled = [F.relu(conv(images)).amax(dim=2) for conv in self.horizontal]  # each [N, n_h]
        vertical = torch.einsum("nhl,vl->nvh", images, self.vertical).flatten(1)  # [N, n_v * H]
        z = self.dropout(torch.cat([*pooled, vertical], dim=1))
        return F.relu(self.fc(z)).view(batch, width, hidden) * mask[..., None]
