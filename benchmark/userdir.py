"""SEQREC_USER_DIR: a researcher's own models, encoders and configs, kept in a folder of theirs.

``SEQREC_USER_DIR=/path/to/my_project`` (several folders separated by ``os.pathsep``) makes each folder
- a place Python imports from: ``_target_: my_models.toppop.TopPop`` finds ``my_models/toppop.py``;
- a source of config groups: ``conf/model/attn_gru.yaml`` in it is ``model=attn_gru``
  (hydra_plugins/seqrec_user_dir adds ``conf/`` to Hydra's search path, after the package's);
- imported: every ``.py`` file in it (sub-folders too, except ``conf/`` and hidden ones) is imported
  when a command starts, so the encoders it defines register themselves.
It is an environment variable so that every process of a sweep sees it: joblib's workers and
submitit's jobs inherit the environment and call ``load_user_dirs`` before they read their config.
"""

from __future__ import annotations

import importlib
import os
import sys
from pathlib import Path

from benchmark.errors import ConfigError

ENV = "SEQREC_USER_DIR"
CONF = "conf"


def user_dirs() -> list[Path]:
    """The folders SEQREC_USER_DIR names, absolute; ConfigError for one that is not a folder."""
    folders = [Path(p).expanduser().resolve() for p in os.environ.get(ENV, "").split(os.pathsep) if p.strip()]
    for folder in folders:
        if not folder.is_dir():
            raise ConfigError(f"{ENV}={os.environ[ENV]}: {folder} is not a folder")
    return folders


def config_dirs() -> list[Path]:
    """The ``conf/`` folders of the user folders that have one."""
    return [d / CONF for d in user_dirs() if (d / CONF).is_dir()]


def modules(folder: Path) -> list[tuple[str, Path]]:
    """(dotted name, file) of the Python files under ``folder``; ``conf/`` and folders Python cannot
    import from (hidden ones, a virtual environment's ``.venv``) are not entered."""
    found = []
    for root, dirs, files in os.walk(folder):
        package = Path(root).relative_to(folder).parts
        dirs[:] = sorted(d for d in dirs if d.isidentifier() and not (d == CONF and not package))
        for file in sorted(f for f in files if f.endswith(".py") and f[:-3].isidentifier()):
            parts = package if file == "__init__.py" else (*package, file[:-3])
            if parts:
                found.append((".".join(parts), Path(root) / file))
    return found


def load_user_dirs() -> None:
    """Puts each user folder on ``sys.path`` and imports its modules (once per process); ConfigError
    naming the file for a module that fails to import."""
    from benchmark.config import error_line

    for folder in user_dirs():
        if str(folder) not in sys.path:
            sys.path.append(str(folder))  # after the installed packages: a user file cannot shadow them
        for name, path in modules(folder):
            try:
                importlib.import_module(name)
            except Exception as e:
                raise ConfigError(f"{ENV}: {path} cannot be imported: {error_line(e)}") from None
