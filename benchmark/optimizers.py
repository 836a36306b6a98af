"""The optimizer a neural model trains with (``trainer.optimizer``).

- ``adam``: Adam with ``trainer.betas`` (fused where the parameters allow).
- ``adagrad``: Adagrad with momentum, GRU4Rec's official optimizer (Hidasi & Czapp, 2023):
  G += g², m = momentum · m − lr · g / sqrt(G + eps), p += m. Applied densely: a row of the item
  table outside the batch keeps moving with its decaying momentum, where the official sparse update
  leaves it until it is next seen.
"""

from __future__ import annotations

import torch

from benchmark.config import TrainerConfig

OPTIMIZERS = ("adam", "adagrad")


class AdagradMomentum(torch.optim.Optimizer):
    def __init__(self, params, lr: float, momentum: float = 0.0, weight_decay: float = 0.0, eps: float = 1e-6) -> None:
        super().__init__(params, {"lr": lr, "momentum": momentum, "weight_decay": weight_decay, "eps": eps})

    @torch.no_grad()
    def step(self, closure=None):  # noqa: ANN001, ANN201 - torch.optim.Optimizer's signature
        for group in self.param_groups:
            for p in group["params"]:
                if p.grad is None:
                    continue
                grad = p.grad.add(p, alpha=group["weight_decay"]) if group["weight_decay"] else p.grad
                state = self.state[p]
                if not state:
                    state["sum"] = torch.zeros_like(p)
                    state["momentum"] = torch.zeros_like(p)
                state["sum"].addcmul_(grad, grad)
                step = grad / (state["sum"] + group["eps"]).sqrt()
                state["momentum"].mul_(group["momentum"]).add_(step, alpha=-group["lr"])
                p.add_(state["momentum"])


def build_optimizer(params: list[torch.nn.Parameter], cfg: TrainerConfig) -> torch.optim.Optimizer:
    if cfg.optimizer == "adagrad":
        return AdagradMomentum(params, cfg.lr, cfg.momentum, cfg.weight_decay)
    # Fused Adam: one kernel over all parameters instead of ~10 small ops per tensor (on CPU about
    # 1-2 ms of a 15 ms SASRec step); where it is unsupported, the default implementation.
    fused = all(p.device.type in ("cpu", "cuda") and p.is_floating_point() for p in params)
    return torch.optim.Adam(params, lr=cfg.lr, betas=tuple(cfg.betas), weight_decay=cfg.weight_decay,
                            fused=fused or None)
