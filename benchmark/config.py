"""Typed records of the configuration groups that code (not just Hydra) consumes."""

from __future__ import annotations

from dataclasses import dataclass, fields
from typing import Any


@dataclass(frozen=True)
class TrainerConfig:
    lr: float = 1e-3
    batch_size: int = 256  # training windows per step
    max_epochs: int = 50
    patience: int = 5  # epochs without a better validation metric before stopping
    weight_decay: float = 0.0
    device: str = "auto"  # auto | cpu | cuda | cuda:N
    eval_batch_size: int = 1024  # users per evaluation batch
    valid_metric: str = "ndcg@10"  # early stopping / model selection; never a test metric
    grad_clip: float | None = 5.0
    num_threads: int | None = None  # torch intra-op threads (None: torch's default)
    # Set from dataset.mask_history (like seed from the top level): validation ranks as the test does.
    mask_history: bool = True
    seed: int = 0

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> "TrainerConfig":
        known = {f.name for f in fields(cls)}
        return cls(**{k: v for k, v in d.items() if k in known})


def resolve_device(device: str) -> str:
    import torch

    if device == "auto":
        return "cuda" if torch.cuda.is_available() else "cpu"
    return device
