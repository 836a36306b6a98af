"""GRU4Rec encoder (Hidasi et al., 2016): a recurrent network over the item sequence
(`cell: gru`, or `cell: lstm` for an LSTM).

Left padding is moved to the right before the RNN: the state at a real item then never saw
padding, and the padded tail (whose outputs are discarded) costs less than packing the batch, which
would rule out the fused CPU/GPU RNN kernels.

Training on CPU runs the GRU through ``gru_layer``: the recurrence and its backward written out
(below), on nn.GRU's own parameters. A training batch is a few sequences of 50 steps, so the
cost is the number of operations, not their size: nn.GRU records ~20 autograd nodes per step and
replays them one by one; ``gru_layer`` takes 6 operations per step forward and 3 backward.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from benchmark.errors import ConfigError
from benchmark.models.encoders import Encoder
from benchmark.models.kernels import Dropout

CELLS = {"gru": nn.GRU, "lstm": nn.LSTM}


class RNNEncoder(Encoder, name="rnn", family="RNN"):
    causal = True  # the state at t has read items <= t only
    left_padding_invariant = True  # padding is moved after the sequence, where the RNN has read every item

    def __init__(self, hidden: int, layers: int = 1, dropout: float = 0.0, cell: str = "gru",
                 hidden_dropout: float = 0.0, **_: object) -> None:
        super().__init__()
        if cell not in CELLS:
            raise ConfigError(f"model.cell={cell!r} is unknown; choose one of {', '.join(CELLS)}")
        rnn = CELLS[cell]
        self.dropout = Dropout(dropout)  # on the item embeddings: GRU4Rec's embedding dropout
        self.hidden_dropout = Dropout(hidden_dropout)  # on the last layer's states: GRU4Rec's hidden dropout
        self.rnn = rnn(hidden, hidden, num_layers=layers, batch_first=True, dropout=dropout if layers > 1 else 0.0)
        self.between_layers = Dropout(dropout if layers > 1 else 0.0)  # nn.GRU's inter-layer dropout, for gru_layer

    def forward(self, x: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
        """x [B, L, H] left-padded embeddings, mask [B, L] True on real items -> [B, L, H]."""
        batch, width, _ = x.shape
        lengths = mask.sum(1)
        # Left-padded -> right-padded: row b is rotated left by its pad count.
        shift = (width - lengths)[:, None]
        cols = (torch.arange(width, device=x.device)[None, :] + shift) % width
        right = self.dropout(x.gather(1, cols[..., None].expand_as(x)))
        if self.written_out(right):
            out = right
            for k in range(self.rnn.num_layers):
                out = gru_layer(self.between_layers(out) if k else out, *self.rnn.all_weights[k])
        else:
            out, _ = self.rnn(right)
        out = self.hidden_dropout(out)
        # Rotate back so outputs line up with the inputs; padding positions become zeros.
        back = (torch.arange(width, device=x.device)[None, :] - shift) % width
        return out.gather(1, back[..., None].expand_as(out)) * mask[..., None]

    def step(self, x: torch.Tensor, state: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """One item per sequence, x [B, H], from a GRU state [layers, B, H] -> (output [B, H], next state)."""
        out, state = self.rnn(self.dropout(x)[:, None], state)
        return self.hidden_dropout(out[:, 0]), state

    def written_out(self, x: torch.Tensor) -> bool:
        """gru_layer for GRU training on CPU in float32; elsewhere nn.GRU's fused kernels (cuDNN,
        or ATen's loop without autograd when ranking) are the faster ones."""
        return (isinstance(self.rnn, nn.GRU) and torch.is_grad_enabled() and x.device.type == "cpu"
                and x.dtype == torch.float32 and self.rnn.bias and not torch.is_autocast_enabled("cpu"))


def gru_layer(x: torch.Tensor, weight_ih: torch.Tensor, weight_hh: torch.Tensor, bias_ih: torch.Tensor,
              bias_hh: torch.Tensor) -> torch.Tensor:
    """One GRU layer from a zero state, nn.GRU's equations and parameters: x [B, L, In] -> [B, L, H].

    r = σ(W_ir x + b_ir + W_hr h + b_hr), z = σ(W_iz x + b_iz + W_hz h + b_hz),
    n = tanh(W_in x + b_in + r ⊙ (W_hn h + b_hn)), h' = (1 - z) ⊙ n + z ⊙ h."""
    return _GRULayer.apply(x, weight_ih, weight_hh, bias_ih, bias_hh).transpose(0, 1)


class _GRULayer(torch.autograd.Function):
    @staticmethod
    def forward(ctx, x: torch.Tensor, weight_ih: torch.Tensor, weight_hh: torch.Tensor, bias_ih: torch.Tensor,
                bias_hh: torch.Tensor) -> torch.Tensor:
        x = x.transpose(0, 1).contiguous()  # time-major [L, B, In]: a step is one contiguous slice
        width, batch, _ = x.shape
        hidden = weight_hh.shape[1]
        gi = F.linear(x, weight_ih, bias_ih)  # input projections of all steps at once, [L, B, 3H]
        gh = x.new_empty(width, batch, 3 * hidden)  # W_h h + b_h of each step
        rz = x.new_empty(width, batch, 2 * hidden)  # reset and update gates
        n = x.new_empty(width, batch, hidden)  # candidate states
        h = x.new_empty(width + 1, batch, hidden)  # h[t + 1] is the state after step t
        h[0] = 0.0  # the zero initial state; every later row is written by the loop
        weight_hh_t = weight_hh.t()
        # Per-step views made once (unbind): indexing inside the loop would cost more than the math.
        steps = zip(gi[..., : 2 * hidden].unbind(0), gi[..., 2 * hidden :].unbind(0), gh.unbind(0),
                    gh[..., : 2 * hidden].unbind(0), gh[..., 2 * hidden :].unbind(0), rz.unbind(0),
                    rz[..., :hidden].unbind(0), rz[..., hidden:].unbind(0), n.unbind(0), h[:-1].unbind(0), h[1:].unbind(0))
        for gi_rz, gi_n, gh_t, gh_rz, gh_n, rz_t, r_t, z_t, n_t, h_t, h_next in steps:
            torch.addmm(bias_hh, h_t, weight_hh_t, out=gh_t)
            torch.add(gi_rz, gh_rz, out=rz_t).sigmoid_()
            torch.addcmul(gi_n, r_t, gh_n, out=n_t).tanh_()
            torch.lerp(n_t, h_t, z_t, out=h_next)  # n + z (h - n)
        ctx.save_for_backward(x, weight_ih, weight_hh, gh, rz, n, h)
        return h[1:]

    @staticmethod
    def backward(ctx, grad: torch.Tensor) -> tuple[torch.Tensor, ...]:
        x, weight_ih, weight_hh, gh, rz, n, h = ctx.saved_tensors
        width, batch, hidden = n.shape
        r, z = rz.split(hidden, dim=-1)
        # d(pre-activation)/dh' of each gate, for all steps at once; in the loop only dh' is recurrent.
        dn = (1 - z) * (1 - n * n)  # candidate: h' = (1 - z) n + z h, n = tanh(.)
        dz = (h[:-1] - n) * z * (1 - z)
        dr = dn * gh[..., 2 * hidden :] * r * (1 - r)
        to_gh = torch.cat([dr, dz, dn * r], dim=-1).view(width, batch, 3, hidden)  # W_hn h enters as r ⊙ (.)
        grad = grad.contiguous()
        dh = torch.empty_like(n)  # dh[t]: gradient of the state after step t, the recurrence included
        d_gh = torch.empty_like(gh)
        dh[-1] = grad[-1]
        steps = zip(to_gh.unbind(0), d_gh.view(width, batch, 3, hidden).unbind(0), dh.unbind(0), z.unbind(0),
                    d_gh.unbind(0), (None, *dh[:-1].unbind(0)), (None, *grad[:-1].unbind(0)))
        for to_gh_t, d_gh_gates, dh_t, z_t, d_gh_t, dh_prev, grad_prev in reversed(list(steps)):
            torch.mul(to_gh_t, dh_t[:, None, :], out=d_gh_gates)
            if dh_prev is not None:
                torch.addmm(torch.addcmul(grad_prev, dh_t, z_t), d_gh_t, weight_hh, out=dh_prev)
        d_gi = (torch.cat([dr, dz, dn], dim=-1).view(width, batch, 3, hidden) * dh[:, :, None, :]).view(width, batch, -1)
        d_gi_rows, d_gh_rows = d_gi.view(-1, 3 * hidden), d_gh.view(-1, 3 * hidden)
        grad_x = (d_gi @ weight_ih).transpose(0, 1)
        return (grad_x, d_gi_rows.T @ x.view(-1, x.shape[-1]), d_gh_rows.T @ h[:-1].reshape(-1, hidden),
                d_gi_rows.sum(0), d_gh_rows.sum(0))
