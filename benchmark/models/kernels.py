"""Faster equivalents of two PyTorch operations on CPU (figures measured on this machine).

``item_scores``: the scores of states against the item table, ``h @ items.T (+ bias)``, the
largest matrix product of full-softmax training and of full ranking. PyTorch sends float32
products on CPU to MKL, which on this AMD EPYC runs this shape (a few hundred states x 64 against
thousands of items: a wide output) at under half the speed of oneDNN's inner product [256 x 64
against 20,001 items: 11.0 vs 4.6 ms; 275 against 3,650: 1.3 vs 0.9 ms]. So the forward product
goes through oneDNN where this PyTorch build has it; the backward products, which MKL does well,
stay matmuls. Elsewhere (CUDA, autocast, torch.compile, other dtypes) it is the plain product.

``Dropout``: the mask drawn from 16 random bits per value instead of ``bernoulli_``.
"""

from __future__ import annotations

import functools

import torch
import torch.nn.functional as F
from torch import nn

USE_ONEDNN = True  # switch for benchmarks and tests; either way the same product, up to rounding


class Dropout(nn.Module):
    """``nn.Dropout`` with a cheaper mask: 16 random bits per value, four values from each 64-bit
    draw of the generator, so ``p`` is rounded to a multiple of 2^-16 (0.2 -> 0.199997; the kept
    values are scaled by the rounded 1 / (1 - p)). On CPU ``bernoulli_`` and ``torch.rand`` pay
    the generator once per value [11 x 50 x 64 values, forward + backward: bernoulli 326 us,
    rand 200-216 us, this 159-174 us]."""

    def __init__(self, p: float) -> None:
        super().__init__()
        if not 0.0 <= p < 1.0:
            raise ValueError(f"dropout probability {p} must be in [0, 1)")
        self.p = p

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if not self.training or self.p == 0.0:
            return x
        if torch.compiler.is_compiling():  # torch.compile cannot trace random_ (a graph break at every
            return F.dropout(x, self.p)  # dropout); compiled, the mask is drawn inside the fused kernel
        dropped = min(round(self.p * 2**16), 2**16 - 1)  # of the 2^16 values of a random int16
        n = x.numel()
        bits = torch.empty((n + 3) // 4, dtype=torch.int64, device=x.device).random_(-(2**63), None)
        keep = bits.view(torch.int16)[:n].view(x.shape) >= dropped - 2**15
        return x * (keep * (2**16 / (2**16 - dropped))).to(x.dtype)

    def extra_repr(self) -> str:
        return f"p={self.p}"


def item_scores(hidden: torch.Tensor, items: torch.Tensor, bias: torch.Tensor | None = None) -> torch.Tensor:
    """``hidden @ items.T + bias`` for hidden [..., H], items [M, H], bias [M] -> [..., M]."""
    if not _use_onednn(hidden, items, bias):
        scores = hidden @ items.T
        return scores if bias is None else scores + bias
    scores = _ItemScores.apply(hidden.reshape(-1, hidden.shape[-1]), items, bias)  # no graph under no_grad
    return scores.view(*hidden.shape[:-1], items.shape[0])


class _ItemScores(torch.autograd.Function):
    @staticmethod
    def forward(ctx, hidden: torch.Tensor, items: torch.Tensor, bias: torch.Tensor | None) -> torch.Tensor:
        ctx.save_for_backward(hidden, items)
        ctx.has_bias = bias is not None
        return _onednn_linear(hidden, items, bias)

    @staticmethod
    def backward(ctx, grad: torch.Tensor) -> tuple[torch.Tensor | None, ...]:
        hidden, items = ctx.saved_tensors
        grad_hidden = grad @ items if ctx.needs_input_grad[0] else None
        grad_items = grad.T @ hidden if ctx.needs_input_grad[1] else None
        grad_bias = grad.sum(0) if ctx.has_bias and ctx.needs_input_grad[2] else None
        return grad_hidden, grad_items, grad_bias


ROW_BUCKET = 32  # rows are padded to a multiple of this for oneDNN (see _onednn_linear)


def _onednn_linear(hidden: torch.Tensor, items: torch.Tensor, bias: torch.Tensor | None) -> torch.Tensor:
    # oneDNN keeps a cached primitive, with its buffers, per input shape. The number of targets
    # changes from step to step, so without padding the cache grew by ~150 MB in one Caser epoch
    # on ml-latest-small; padded, a few row counts recur (at a cost of at most 31 zero rows).
    rows = hidden.shape[0]
    if rows % ROW_BUCKET:
        hidden = torch.nn.functional.pad(hidden, (0, 0, 0, -rows % ROW_BUCKET))
    return torch.ops.mkldnn._linear_pointwise(hidden, items, bias, "none", [], "")[:rows]


def _use_onednn(hidden: torch.Tensor, items: torch.Tensor, bias: torch.Tensor | None) -> bool:
    return (
        USE_ONEDNN
        and hidden.device.type == "cpu" and items.device.type == "cpu"
        and hidden.dtype == items.dtype == torch.float32 and (bias is None or bias.dtype == torch.float32)
        and hidden.dim() >= 2 and hidden.numel() > 0 and items.shape[0] > 0 and items.is_contiguous()
        and not torch.is_autocast_enabled("cpu") and not torch.compiler.is_compiling()
        and _onednn_available()
    )


@functools.cache
def _onednn_available() -> bool:
    """Whether this build has oneDNN's linear op and it computes the product (checked once)."""
    try:
        if not torch.backends.mkldnn.is_available():
            return False
        # Its own generator: a draw from the global one would shift every later dropout mask, so a
        # resumed run (a fresh process, checking again) would not continue as the uninterrupted one.
        g = torch.Generator().manual_seed(0)
        h, w, b = torch.randn(5, 3, generator=g), torch.randn(7, 3, generator=g), torch.randn(7, generator=g)
        return bool(torch.allclose(_onednn_linear(h, w, b), h @ w.T + b, atol=1e-5))
    except (AttributeError, RuntimeError):
        return False
