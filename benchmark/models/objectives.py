"""Training objectives: how the hidden state at a position is scored against its target item.

Each loss takes hidden states ``h`` [N, H] of the positions that have a target, the targets
``y`` [N] (item ids >= 1), the item embedding table ``items`` [n_items + 1, H] (row 0 = padding,
tied with the output layer), the trainer's generator (so runs are reproducible) and ``negatives``
(how the sampled objectives draw theirs), and returns the mean loss. A negative that coincides with
the target is masked out by the softmax objectives.

The sampled objectives follow GRU4Rec's official code (Hidasi & Czapp, 2023) where asked to:
negatives drawn ∝ popularity^alpha (``model.sampler=popularity``), the batch's other targets as
further negatives (``model.in_batch_negatives``), BPR-max (``bpr_max``, with ``model.bpreg``) and the
log-Q correction of the sampled softmax (``model.logq``).

The last objective, ``cloze`` (BERT4Rec), is a way of building inputs rather than a loss: masked
positions are predicted with the full-softmax cross-entropy below (see sequential.py).
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import torch
import torch.nn.functional as F

from benchmark.models.kernels import item_scores

SAMPLERS = ("uniform", "popularity")


@dataclass(frozen=True)
class Negatives:
    """How the sampled objectives draw negatives. ``counts`` [n_items + 1]: training occurrences of
    each item (row 0 unused), read by the popularity sampler and the log-Q correction."""

    n: int = 1  # drawn per position (bce) or shared by the batch (sampled_softmax, bpr_max)
    sampler: str = "uniform"
    alpha: float = 1.0  # popularity sampler: P(item) ∝ count^alpha
    in_batch: bool = False
    logq: float = 0.0
    bpreg: float = 0.0
    counts: torch.Tensor | None = None

    def draw(self, shape: tuple[int, ...], n_items: int, generator: torch.Generator, device: torch.device) -> torch.Tensor:
        if self.sampler == "uniform":
            return torch.randint(1, n_items + 1, shape, generator=generator).to(device)
        weights = self.counts[1 : n_items + 1].double().pow(self.alpha)  # 0^0 = 1: alpha 0 is uniform
        size = math.prod(shape)
        drawn = torch.multinomial(weights, size, replacement=True, generator=generator) if size else weights.new_empty(0)
        return (drawn.long().view(shape) + 1).to(device)

    def log_q(self, columns: torch.Tensor, exponent: float) -> torch.Tensor:
        """logq · log(count^exponent) of each column: the log-Q correction (0 without model.logq)."""
        if not self.logq:
            return torch.zeros(columns.shape, device=columns.device)
        return self.logq * exponent * self.counts.to(columns.device)[columns].clamp(min=1).log()


def full_softmax(h: torch.Tensor, y: torch.Tensor, items: torch.Tensor, **_: object) -> torch.Tensor:
    """Cross-entropy over every item (padding excluded): the default, and exact."""
    logits = item_scores(h, items[1:])  # [N, n_items]; column j scores item j + 1
    return F.cross_entropy(logits, y - 1)


def bce(h: torch.Tensor, y: torch.Tensor, items: torch.Tensor, generator: torch.Generator, negatives: Negatives) -> torch.Tensor:
    """Binary cross-entropy, target vs ``negatives.n`` random items per position (SASRec's loss)."""
    sampled = negatives.draw((len(y), negatives.n), len(items) - 1, generator, h.device)
    positive = (h * items[y]).sum(-1)  # [N]
    negative = torch.einsum("nh,nkh->nk", h, items[sampled])  # [N, k]
    # -log sigmoid(p) - sum log(1 - sigmoid(q)), written with softplus for stability.
    return (F.softplus(-positive) + F.softplus(negative).sum(-1)).mean()


def shared_columns(y: torch.Tensor, items: torch.Tensor, generator: torch.Generator,
                   negatives: Negatives) -> tuple[torch.Tensor, torch.Tensor]:
    """The negatives the batch shares: the other targets (with in_batch) and ``negatives.n`` draws
    -> (item ids [C], log-Q correction [C]). In-batch targets are drawn ∝ popularity, the samples
    ∝ popularity^alpha (uniform: no correction), as in GRU4Rec's code."""
    sampled = negatives.draw((negatives.n,), len(items) - 1, generator, y.device)
    correction = negatives.log_q(sampled, negatives.alpha if negatives.sampler == "popularity" else 0.0)
    if not negatives.in_batch:
        return sampled, correction
    return torch.cat([y, sampled]), torch.cat([negatives.log_q(y, 1.0), correction])


def sampled_softmax(h: torch.Tensor, y: torch.Tensor, items: torch.Tensor, generator: torch.Generator,
                    negatives: Negatives) -> torch.Tensor:
    """Softmax over the target and the shared negatives (Jean et al., 2015; GRU4Rec's cross-entropy),
    each logit less logq · log Q(item) (Q: how likely the item is drawn; uniform needs none)."""
    columns, correction = shared_columns(y, items, generator, negatives)
    positive = (h * items[y]).sum(-1, keepdim=True) - negatives.log_q(y, 1.0 if negatives.in_batch else 0.0)[:, None]
    negative = (h @ items[columns].T - correction).masked_fill(columns[None, :] == y[:, None], float("-inf"))
    return F.cross_entropy(torch.cat([positive, negative], dim=1), torch.zeros_like(y))


def bpr_max(h: torch.Tensor, y: torch.Tensor, items: torch.Tensor, generator: torch.Generator,
            negatives: Negatives) -> torch.Tensor:
    """BPR-max (Hidasi & Karatzoglou, 2018): -log Σ_j s_j σ(r_target - r_j) + bpreg · Σ_j s_j r_j²,
    with s = softmax of the negatives' scores r_j (the target's own column left out)."""
    columns, _ = shared_columns(y, items, generator, negatives)
    positive = (h * items[y]).sum(-1, keepdim=True)  # [N, 1]
    negative = h @ items[columns].T  # [N, C]
    weights = negative.masked_fill(columns[None, :] == y[:, None], float("-inf")).softmax(-1)
    ranked = (weights * torch.sigmoid(positive - negative)).sum(-1)
    return (-torch.log(ranked + 1e-24) + negatives.bpreg * (weights * negative.square()).sum(-1)).mean()


LOSSES = {"ce": full_softmax, "bce": bce, "sampled_softmax": sampled_softmax, "bpr_max": bpr_max}
DEFAULT_NEGATIVES = {"bce": 1, "sampled_softmax": 100, "bpr_max": 100}  # SASRec's one negative; a common softmax sample
