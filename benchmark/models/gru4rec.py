"""GRU4Rec encoder (Hidasi et al., 2016): a recurrent network over the item sequence
(`cell: gru`, or `cell: lstm` for an LSTM).

Left padding is moved to the right before the RNN: the state at a real item then never saw
padding, and the padded tail (whose outputs are discarded) costs less than packing the batch, which
would rule out the fused CPU/GPU RNN kernels.
"""

from __future__ import annotations

import torch
from torch import nn

from benchmark.errors import ConfigError
from benchmark.models.kernels import Dropout

CELLS = {"gru": nn.GRU, "lstm": nn.LSTM}


class RNNEncoder(nn.Module):
    causal = True  # the state at t has read items <= t only
    left_padding_invariant = True  # padding is moved after the sequence, where the RNN has read every item

    def __init__(self, hidden: int, layers: int = 1, dropout: float = 0.0, cell: str = "gru", **_: object) -> None:
        super().__init__()
        if cell not in CELLS:
            raise ConfigError(f"model.cell={cell!r} is unknown; choose one of {', '.join(CELLS)}")
        rnn = CELLS[cell]
        self.dropout = Dropout(dropout)
        self.rnn = rnn(hidden, hidden, num_layers=layers, batch_first=True, dropout=dropout if layers > 1 else 0.0)

    def forward(self, x: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
        """x [B, L, H] left-padded embeddings, mask [B, L] True on real items -> [B, L, H]."""
        batch, width, _ = x.shape
        lengths = mask.sum(1)
        # Left-padded -> right-padded: row b is rotated left by its pad count.
        shift = (width - lengths)[:, None]
        cols = (torch.arange(width, device=x.device)[None, :] + shift) % width
        right = x.gather(1, cols[..., None].expand_as(x))
        out, _ = self.rnn(self.dropout(right))
        # Rotate back so outputs line up with the inputs; padding positions become zeros.
        back = (torch.arange(width, device=x.device)[None, :] - shift) % width
        return out.gather(1, back[..., None].expand_as(out)) * mask[..., None]
