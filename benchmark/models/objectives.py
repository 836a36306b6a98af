"""Training objectives: how the hidden state at a position is scored against its target item.

Each loss takes hidden states ``h`` [N, H] of the positions that have a target, the targets
``y`` [N] (item ids >= 1) and the item embedding table ``items`` [n_items + 1, H] (row 0 = padding,
tied with the output layer), and returns the mean loss. Negatives are drawn uniformly from the real
items with the trainer's generator, so runs are reproducible; a negative may coincide with the
target (probability 1 / n_items), which the sampled softmax masks out.

The fourth objective, ``cloze`` (BERT4Rec), is a way of building inputs rather than a loss: masked
positions are predicted with the full-softmax cross-entropy below (see sequential.py).
"""

from __future__ import annotations

import torch
import torch.nn.functional as F

from benchmark.models.kernels import item_scores


def uniform_negatives(shape: tuple[int, ...], n_items: int, generator: torch.Generator, device: torch.device) -> torch.Tensor:
    return torch.randint(1, n_items + 1, shape, generator=generator).to(device)


def full_softmax(h: torch.Tensor, y: torch.Tensor, items: torch.Tensor, **_: object) -> torch.Tensor:
    """Cross-entropy over every item (padding excluded): the default, and exact."""
    logits = item_scores(h, items[1:])  # [N, n_items]; column j scores item j + 1
    return F.cross_entropy(logits, y - 1)


def bce(h: torch.Tensor, y: torch.Tensor, items: torch.Tensor, generator: torch.Generator, n_negatives: int) -> torch.Tensor:
    """Binary cross-entropy, target vs ``n_negatives`` random items per position (SASRec's loss)."""
    negatives = uniform_negatives((len(y), n_negatives), len(items) - 1, generator, h.device)
    positive = (h * items[y]).sum(-1)  # [N]
    negative = torch.einsum("nh,nkh->nk", h, items[negatives])  # [N, k]
    # -log sigmoid(p) - sum log(1 - sigmoid(q)), written with softplus for stability.
    return (F.softplus(-positive) + F.softplus(negative).sum(-1)).mean()


def sampled_softmax(h: torch.Tensor, y: torch.Tensor, items: torch.Tensor, generator: torch.Generator, n_negatives: int) -> torch.Tensor:
    """Softmax over the target and ``n_negatives`` uniform negatives shared by the batch (Jean et al.,
    2015). Uniform proposals need no log-Q correction: it is the same constant for every item."""
    negatives = uniform_negatives((n_negatives,), len(items) - 1, generator, h.device)
    positive = (h * items[y]).sum(-1, keepdim=True)  # [N, 1]
    negative = (h @ items[negatives].T).masked_fill(negatives[None, :] == y[:, None], float("-inf"))
    logits = torch.cat([positive, negative], dim=1)
    return F.cross_entropy(logits, torch.zeros_like(y))


LOSSES = {"ce": full_softmax, "bce": bce, "sampled_softmax": sampled_softmax}
DEFAULT_NEGATIVES = {"bce": 1, "sampled_softmax": 100}  # SASRec's one negative; a common softmax sample
