"""Progress bars for training epochs and evaluation.

Shown only on an interactive terminal: cluster logs, pipes and parallel sweep workers (whose bars
would interleave) stay quiet. ``SEQREC_PROGRESS=1`` forces bars on, ``SEQREC_PROGRESS=0`` off.
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
