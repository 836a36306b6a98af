"""Files on disk: the mode of what is published by renaming a private temporary (mkstemp 0600,
mkdtemp 0700), and walking folders through symlinks."""

from __future__ import annotations

import os
import tempfile
from pathlib import Path
from typing import Iterator

import numpy as np


def umask_mode(mode: int) -> int:
    """``mode`` as the process's umask lets new files have it (0o777 -> 0o755 under umask 022), so a
    result or cache renamed into place is as readable to collaborators as any file created there."""
    mask = os.umask(0)  # reading the umask means setting it; put it straight back
    os.umask(mask)
    return mode & ~mask


def write_npz_atomically(path: Path, arrays: dict[str, np.ndarray]) -> None:
    """``np.savez`` to a private temporary renamed into place: a killed run leaves no partial file,
    and a reader never sees one half-written."""
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    try:
        os.fchmod(fd, umask_mode(0o666))  # mkstemp's 0600 would shut other users of a shared cache out
        with os.fdopen(fd, "wb") as f:
            np.savez(f, **arrays)
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


def walk_once(root: str | Path) -> Iterator[tuple[Path, list[str], list[str]]]:
    """``os.walk`` top-down through symlinked folders too (data or results kept on another disk and
    linked in), each real folder once: a link back up the tree does not loop, two links to one folder
    yield it once. The caller may prune the yielded subfolder list in place."""
    seen: set[str] = set()
    for folder, subfolders, files in os.walk(root, followlinks=True):
        real = os.path.realpath(folder)
        if real in seen:
            subfolders.clear()
            continue
        seen.add(real)
        yield Path(folder), subfolders, files
