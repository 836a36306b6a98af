"""Progress bars for training epochs and evaluation.

Shown only on an interactive terminal. Where bars are off (cluster logs, nohup, pipes, parallel
sweep workers whose bars would interleave) the trainer logs one plain line per epoch instead
(``epoch_line``). ``SEQREC_PROGRESS=1`` forces bars on, ``SEQREC_PROGRESS=0`` off.
"""

from __future__ import annotations

import os
import sys
from typing import Iterable, TypeVar

from tqdm import tqdm

ENV = "SEQREC_PROGRESS"
T = TypeVar("T")


def enabled() -> bool:
    choice = os.environ.get(ENV, "").strip().lower()
    if choice in ("0", "false", "no", "off"):
        return False
    if choice in ("1", "true", "yes", "on"):
        return True
    return sys.stderr.isatty()


def progress(iterable: Iterable[T], total: int | None = None, desc: str = "") -> Iterable[T]:
    """``iterable`` wrapped in a transient bar (removed when done) when bars are enabled."""
    if not enabled():
        return iterable
    return tqdm(iterable, total=total, desc=desc, leave=False, dynamic_ncols=True, mininterval=0.5, file=sys.stderr)


def epoch_line(epoch: int, max_epochs: int, loss: float, metric_name: str, metric: float, best: float,
               best_epoch: int, seconds: float, refit: bool = False) -> str:
    """One epoch as a plain log line, for logs read later (a SLURM job's output, nohup.out); a refit
    (protocol.refit's second fit) validates nothing."""
    if refit:
        return f"refit epoch {epoch}/{max_epochs}: loss {loss:.4f} | {seconds:.1f}s"
    return (f"epoch {epoch}/{max_epochs}: loss {loss:.4f} | valid {metric_name} {metric:.4f} "
            f"(best {best:.4f} at epoch {best_epoch}) | {seconds:.1f}s")
