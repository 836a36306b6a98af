"""protocol.refit: what the second fit trains for, and what the record says about it.

Model selection (early stopping) runs on the temporal protocol's first split, trained before the validation
cut. The refit then trains a fresh model on every interaction before the test cut, for the epoch count that
selection chose, and the test metrics come from it (benchmark/run.py runs both fits).
"""

from __future__ import annotations

import dataclasses
import math
from dataclasses import dataclass

from benchmark.config import TrainerConfig
from benchmark.training import EpochLog


def chosen_epochs(history: list[EpochLog]) -> int | None:
    """The epoch count model selection chose: the epoch whose weights train_loop kept, i.e. the first with the
    best validation metric (the last epoch when no metric was a number, as train_loop then keeps the last
    weights). None for a model that trains no epochs (counting and closed-form models)."""
    if not history:
        return None
    best, epoch = -math.inf, history[-1].epoch
    for h in history:
        if h.valid_metric > best:  # strictly better, as train_loop keeps the first of equal epochs
            best, epoch = h.valid_metric, h.epoch
    return epoch


def refit_trainer(trainer: TrainerConfig, epochs: int | None, spent_minutes: float) -> TrainerConfig:
    """The trainer of the second fit: ``epochs`` epochs exactly (a model without epochs keeps its settings),
    no checkpoint (a relaunch resumes the first fit, whose checkpoint says it has stopped, and refits from
    scratch), and what is left of trainer.time_limit, which bounds both fits together."""
    limit = trainer.time_limit
    if limit is not None:  # 0 would mean no limit to train_loop: an exhausted limit cuts at the first step
        limit = max(limit - spent_minutes, 1e-6)
    return dataclasses.replace(trainer, refit=True, checkpoint_path=None, time_limit=limit,
                               **({"max_epochs": epochs} if epochs else {}))


@dataclass
class RefitRecord:
    """The record's ``refit`` block (metrics.json): how the tested model was trained."""

    epochs: int | None  # chosen on validation by the first fit; None: the model trains no epochs
    epochs_trained: int  # fewer than ``epochs`` only when trainer.time_limit cut the refit
    train_interactions: int  # every interaction before the test cut that preprocessing kept
    n_users: int  # users and items of the refit's catalogue (counted before the test cut)
    n_items: int
    train_seconds: float  # the refit alone (train_seconds in metrics.json counts both fits)
    losses: list[float]  # training loss per refit epoch (history.csv holds the first fit's epochs)
    selection_split_key: str  # the first fit's split (validation metrics); split_key is the refit's (test)
    selection_n_users: int
    selection_n_items: int
    selection_train_interactions: int

    def as_dict(self) -> dict:
        return dataclasses.asdict(self)
