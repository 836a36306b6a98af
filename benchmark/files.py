"""File modes for what is published by renaming a private temporary (mkstemp 0600, mkdtemp 0700)."""

from __future__ import annotations

import os


def umask_mode(mode: int) -> int:
    """``mode`` as the process's umask lets new files have it (0o777 -> 0o755 under umask 022), so a
    result or cache renamed into place is as readable to collaborators as any file created there."""
    mask = os.umask(0)  # reading the umask means setting it; put it straight back
    os.umask(mask)
    return mode & ~mask
