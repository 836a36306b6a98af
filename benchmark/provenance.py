"""Which code produced a run: the git commit, whether the checkout had uncommitted changes, and a
hash of the Python files that ran (the ``benchmark`` and ``baselines`` packages, plus the file of any
class a config's ``_target_`` names outside them, e.g. a user's own model).

The hash, not the commit, decides whether a record still stands for its configuration: an edit
that is not committed changes it, a commit that touches only docs or tests does not.
"""

from __future__ import annotations

import functools
import hashlib
import importlib
import importlib.util
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import Any

PACKAGES = ("benchmark", "baselines")
UNKNOWN = "unknown"  # the code hash of a record written before code hashes were recorded


@dataclass(frozen=True)
class CodeVersion:
    git_commit: str | None  # None: not run from a git checkout (an installed wheel)
    git_dirty: bool | None  # uncommitted changes to tracked files; None without a checkout
    code_hash: str


def package_dirs() -> list[Path]:
    """The packages' folders, found without importing them."""
    return [Path(importlib.util.find_spec(name).origin).resolve().parent for name in PACKAGES]


@functools.cache
def _packages_digest() -> str:
    """Hash of every .py file of the packages, by path relative to the package's parent. Computed once
    per process: the code a process runs is what it imported when it started."""
    h = hashlib.sha256()
    for package in package_dirs():
        for path in sorted(package.rglob("*.py")):
            h.update(str(path.relative_to(package.parent)).encode() + b"\0" + path.read_bytes() + b"\0")
    return h.hexdigest()


def targets(config: Any) -> list[str]:
    """Every ``_target_`` named anywhere in a config."""
    if isinstance(config, dict):
        own = [str(config["_target_"])] if "_target_" in config else []
        return own + [t for k, v in config.items() if k != "_target_" for t in targets(v)]
    if isinstance(config, list):
        return [t for v in config for t in targets(v)]
    return []


def user_files(config: dict[str, Any]) -> list[Path]:
    """Source files of the modules that the config's ``_target_``s live in, outside the packages."""
    inside = package_dirs()
    files = set()
    for target in targets(config):
        name = target.rpartition(".")[0]
        try:
            module = sys.modules.get(name) or importlib.import_module(name)
        except ImportError:  # validation names a target that cannot be imported
            continue
        path = Path(getattr(module, "__file__", None) or "")
        if path.suffix == ".py" and path.is_file() and not any(d in path.resolve().parents for d in inside):
            files.add(path.resolve())
    return sorted(files)


def code_hash(config: dict[str, Any]) -> str:
    """Hash of the code that runs ``config``: the packages and the user modules its targets name."""
    h = hashlib.sha256(_packages_digest().encode())
    for path in user_files(config):
        h.update(path.name.encode() + b"\0" + path.read_bytes() + b"\0")
    return h.hexdigest()


def _git(*args: str) -> str | None:
    root = Path(__file__).resolve().parent.parent
    try:
        out = subprocess.run(["git", "-C", str(root), *args], capture_output=True, text=True, timeout=10)
    except (OSError, subprocess.SubprocessError):
        return None
    return out.stdout if out.returncode == 0 else None


@functools.cache
def git_state() -> tuple[str | None, bool | None]:
    """(commit, dirty) of the checkout the packages run from; (None, None) when they are not its own
    files (an installed wheel, even one inside some other repository's folder)."""
    top = _git("rev-parse", "--show-toplevel")
    if top is None or Path(top.strip()).resolve() != Path(__file__).resolve().parent.parent:
        return None, None
    commit = (_git("rev-parse", "HEAD") or "").strip() or None
    status = _git("status", "--porcelain", "--untracked-files=no")
    return commit, None if status is None else bool(status.strip())


def code_version(config: dict[str, Any]) -> CodeVersion:
    commit, dirty = git_state()
    return CodeVersion(commit, dirty, code_hash(config))


def mixed_code_note(hashes: list[str | None]) -> str | None:
    """A caption sentence when the runs of a table were made by different code, else None."""
    known = sorted({h for h in hashes if h and h != UNKNOWN})
    unknown = sum(1 for h in hashes if not h or h == UNKNOWN)
    if len(known) + bool(unknown) < 2:
        return None
    versions = ", ".join(h[:8] for h in known) + (f"; {unknown} run(s) of unrecorded code" if unknown else "")
    return f"Caution: these runs were made by {len(known) + bool(unknown)} versions of the code (code hashes {versions})."
