"""Caser encoder (Tang & Wang, 2018): convolutions over an "image" of the last L item embeddings.

For every position t the window of the L items ending at t (an [L, H] matrix) goes through
  - horizontal filters of heights 1..L spanning the full embedding width (union-level patterns:
    "these h items in a row"), ReLU, max-pooled over the window;
  - vertical filters of size L x 1 (point-level patterns: weighted sums of the L embeddings);
and a fully connected layer maps the concatenation back to H. The per-user embedding of the paper
is left out: the benchmark scores users by their sequence alone.

Neighbouring windows overlap in L - 1 items, so nothing is computed per window: each filter runs
once along the whole sequence, and the max over a window is a sliding max (``window_max``)
over the L - h + 1 placements of a height-h filter inside it. That is the same function as
convolving every window separately (tests/test_models.py checks it), about L / 2 times cheaper,
and one pass trains every target.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from benchmark.errors import ConfigError
from benchmark.models.encoders import Encoder
from benchmark.models.kernels import Dropout


class CaserEncoder(Encoder, name="caser", family="CNN"):
    causal = True  # position t sees the L items ending at t only
    left_padding_invariant = True  # windows are zero-filled before the sequence start anyway
    computes_newest_only = True  # ranking needs the newest state: one window per sequence

    def __init__(
        self, hidden: int, dropout: float = 0.2, window: int = 5, horizontal_filters: int = 16,
        vertical_filters: int = 4, **_: object,
    ) -> None:
        super().__init__()
        self.check_options(horizontal_filters=horizontal_filters, vertical_filters=vertical_filters)
        self.window = window
        self.receptive_field = window  # the state at t depends on the items t - L + 1 .. t only
        # A horizontal filter of height h over an [L, H] image = a 1-d convolution over time with H channels.
        self.horizontal = nn.ModuleList(
            nn.Conv1d(hidden, horizontal_filters, h) for h in range(1, window + 1) if horizontal_filters
        )
        self.vertical = nn.Parameter(torch.randn(vertical_filters, window) / window**0.5)
        self.dropout = Dropout(dropout)
        self.fc = nn.Linear(horizontal_filters * window + vertical_filters * hidden, hidden)
        # Training: heights 1..L cut at L/2 and 3L/4 (the fastest of the splits tried for L = 50).
        # Ranking the newest window, where a height-h filter has only L - h + 1 starts, padding costs
        # more: groups of 3 heights [610 windows, L = 50, one thread: three groups 1.59 s, groups of 3 0.84 s].
        cuts = sorted({round(window / 2), round(window * 3 / 4), window} - {0})
        self.height_groups = [list(range(lo + 1, hi + 1)) for lo, hi in zip([0, *cuts], cuts)]
        self.newest_height_groups = [list(range(h, min(h + 3, window + 1))) for h in range(1, window + 1, 3)]

    @staticmethod
    def check_options(horizontal_filters: int = 16, vertical_filters: int = 4, **_: object) -> None:
        """Zero of one kind is the paper's ablation (horizontal or vertical filters only); zero of both
        leaves nothing. Called when the recommender is configured, before any data is read."""
        for key, value in (("horizontal_filters", horizontal_filters), ("vertical_filters", vertical_filters)):
            if value < 0:
                raise ConfigError(f"model.{key}={value} must be >= 0")
        if horizontal_filters == vertical_filters == 0:
            raise ConfigError("model.horizontal_filters=0 and model.vertical_filters=0 leave Caser no filters; "
                              "set at least one of them >= 1")

    def forward(self, x: torch.Tensor, mask: torch.Tensor, newest_only: bool = False) -> torch.Tensor:
        """x [B, W, H] left-padded embeddings, mask [B, W] True on real items -> [B, W, H]
        (with newest_only: [B, 1, H], the newest position's states only)."""
        batch, width, hidden = x.shape
        L = self.window
        # [B, H, L - 1 + W]: the window ending at position t is columns t .. t + L - 1 (zeros before the start).
        sequence = F.pad((x * mask[..., None]).transpose(1, 2), (L - 1, 0))
        if newest_only:  # the newest window alone, a sequence of width 1 (half the convolution at W = L)
            sequence, width, mask = sequence[:, :, -L:], 1, mask[:, -1:]
        # Every filter at every start s: the L items from s (zeros past the end) against the filters.
        # Heights are convolved in a few groups, each padded to its tallest filter: one convolution
        # for all L heights multiplies ~half zeros, L small ones pay per call, most of all backward
        # [6 x 50 x 64, L = 50, forward + backward: one group 88 ms, three 49-53 ms].
        features = []
        for heights in (self.newest_height_groups if newest_only else self.height_groups) if self.horizontal else []:
            tallest, starts = heights[-1], width + L - heights[0]  # the shortest filter has the most starts
            weight = torch.cat([F.pad(self.horizontal[h - 1].weight, (0, tallest - h)) for h in heights])
            bias = torch.cat([self.horizontal[h - 1].bias for h in heights])
            columns = F.pad(sequence, (0, tallest - 1))[:, :, : starts + tallest - 1]
            responses = F.relu(F.conv1d(columns, weight, bias), inplace=True)  # [B, n_h * len(heights), starts]
            # start s covers columns s .. s + h - 1: the window ending at t holds starts t .. t + L - h.
            # [B, W, n_h * len(heights)]
            features.append(window_max(responses, [L - h + 1 for h in heights], width).transpose(1, 2))
        if len(self.vertical):
            # Vertical filter v at t: sum_l w[v, l] * (l-th embedding of the window), for all t at once as
            # one product with a banded [n_v * W, L - 1 + W] matrix (a 1-channel conv1d over B*H rows is
            # several times slower, most of all backward).
            vertical = sequence.reshape(batch * hidden, -1) @ banded(self.vertical, width).t()  # [B*H, n_v*W]
            features.append(vertical.view(batch, hidden, -1, width).permute(0, 3, 2, 1).reshape(batch, width, -1))
        z = self.dropout(torch.cat(features, dim=2))
        return F.relu(self.fc(z)) * mask[..., None]


def banded(weight: torch.Tensor, width: int) -> torch.Tensor:
    """[n, L] filters -> [n * width, L - 1 + width]: row (v, t) holds filter v in columns t .. t + L - 1.
    Built by tiling each filter with ``width`` zeros after it: row t starts t elements further along."""
    n, L = weight.shape
    span = L - 1 + width
    return F.pad(weight, (0, width)).repeat(1, width)[:, : width * span].reshape(n * width, span)


def window_max(x: torch.Tensor, spans: list[int], width: int) -> torch.Tensor:
    """out[:, c, t] = max(x[:, c, t : t + span]) for t < width, where the channels are len(spans)
    equal blocks and block i has span spans[i]: x [B, C, S] -> [B, C, width].

    A sparse table finds where each maximum is (under no_grad): runs of 2**j values for every j,
    then any window is two overlapping runs. One gather takes the values, so the gradient reaches
    the maximum alone, to the earliest of tied ones, as with max-pool. Max-pool with a k-wide kernel
    costs k comparisons per output and one call per span [Caser encoder, L = 50, 6 x 50 x 64,
    forward + backward: with 50 max-pools 60.7 ms, with this 54.2 ms]."""
    block = x.shape[1] // len(spans)
    with torch.no_grad():
        # max of x[..., i : i + 2**j] and where it is (int32: the index tables are the costly part)
        values, where = [x], [torch.arange(x.shape[-1], dtype=torch.int32, device=x.device).expand_as(x).contiguous()]
        while 2 ** len(values) <= max(spans):
            half = 2 ** (len(values) - 1)
            first = values[-1][..., :-half] >= values[-1][..., half:]  # ties go to the earlier value, as in max-pool
            values.append(torch.maximum(values[-1][..., :-half], values[-1][..., half:]))
            where.append(torch.where(first, where[-1][..., :-half], where[-1][..., half:]))
        index = []
        for i, span in enumerate(spans):
            run = span.bit_length() - 1  # 2**run <= span < 2**(run + 1): the two runs cover the window
            second = span - 2**run
            v, at = values[run][:, i * block : (i + 1) * block], where[run][:, i * block : (i + 1) * block]
            first = v[..., :width] >= v[..., second : second + width]
            index.append(torch.where(first, at[..., :width], at[..., second : second + width]))
    return x.gather(2, torch.cat(index, dim=1).long())
