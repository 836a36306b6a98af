"""GRU4Rec's session-parallel mini-batches (Hidasi et al., 2016; the official code, Hidasi & Czapp, 2023).

``model.training=session_parallel``: each of ``trainer.batch_size`` slots reads one sequence, one
item per step; the GRU's state is carried from step to step (detached: no backpropagation through
time) and reset to zero where a slot starts its next sequence. A step's loss is the next-item
objective of every busy slot, so each training target is predicted once per epoch, from the whole
sequence before it (not a window of ``model.max_len``). Sequences are dealt to the slots in an order
shuffled every epoch (the official code deals them by start time); slots with no sequence left idle,
so the last steps of an epoch are smaller, as in the official code.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Iterator

import numpy as np
import torch

if TYPE_CHECKING:
    from benchmark.models.sequential import SequentialRecommender


def session_parallel_steps(offsets: np.ndarray, batch_size: int, order: np.ndarray) -> Iterator[np.ndarray]:
    """Steps over the sequences ``offsets`` delimits (in the flat item array), dealt in ``order``:
    each step is [n_busy, 2] rows of (slot, position of the slot's input item); the target is the
    item after it. Sequences with fewer than two items have no target and are skipped."""
    order = order[np.diff(offsets)[order] >= 2]
    slots = min(batch_size, len(order))
    position = offsets[order[:slots]].astype(np.int64)  # the input item each slot reads next
    last = offsets[order[:slots] + 1].astype(np.int64) - 1  # the slot's sequence's last item: the final target
    busy = np.ones(slots, dtype=bool)
    dealt = slots
    while busy.any():
        rows = np.flatnonzero(busy)
        yield np.stack([rows, position[rows]], axis=1)
        position[rows] += 1
        done = rows[position[rows] == last[rows]]
        for slot in done:  # a slot whose last target was just predicted takes the next sequence, or idles
            if dealt < len(order):
                position[slot], last[slot] = offsets[order[dealt]], offsets[order[dealt] + 1] - 1
                dealt += 1
            else:
                busy[slot] = False


class SessionParallel:
    """The batches and the step loss of session-parallel training of ``model`` (its net built)."""

    def __init__(self, model: SequentialRecommender, items: np.ndarray, offsets: np.ndarray, batch_size: int) -> None:
        self.model, self.offsets, self.batch_size = model, offsets, batch_size
        device = model.device
        self.items = torch.from_numpy(items.astype(np.int64)).to(device)
        first = np.zeros(len(items), dtype=bool)
        first[offsets[:-1][offsets[:-1] < len(items)]] = True
        self.first = torch.from_numpy(first).to(device)  # True where a sequence starts: the slot's state is reset
        self.n_targets = int(np.maximum(np.diff(offsets) - 1, 0).sum())
        encoder = model.net.encoder
        self.state = torch.zeros(encoder.rnn.num_layers, batch_size, model.hidden, device=device)

    def batches(self, generator: torch.Generator) -> Iterator[torch.Tensor]:
        order = torch.randperm(len(self.offsets) - 1, generator=generator).numpy()
        for step in session_parallel_steps(self.offsets, self.batch_size, order):
            yield torch.from_numpy(step)

    def loss(self, step: torch.Tensor, generator: torch.Generator) -> torch.Tensor:
        step = step.to(self.items.device)
        slots, position = step[:, 0], step[:, 1]
        state = self.state[:, slots].masked_fill(self.first[position][None, :, None], 0.0)
        net = self.model.net
        out, state = net.encoder.step(net.item_embedding(self.items[position]), state)
        self.state[:, slots] = state.detach()
        return self.model.objective_loss(out, self.items[position + 1], generator)
