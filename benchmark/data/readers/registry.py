"""The reader registry: every reader, the package's and a user's, declares itself with ``@register``.

    from benchmark.data.readers import register

    @register("mydata", files=("clicks.tsv",))
    def read_mydata(directory, min_clicks: int = 1, **_) -> pd.DataFrame: ...

A reader is a function ``(directory, **options) -> DataFrame`` of the canonical interactions table
(``user``, ``item``, ``timestamp``[, ``rating``]; see ``benchmark.data.readers.common``). Its options
are its keyword parameters: ``dataset.<option>`` keys reach it, and a key no reader parameter names
is an error (``benchmark.config.check_dataset``). ``dataset.reader`` names a registered reader
(``mydata``) or the function itself as ``module:function`` or ``module.function``; naming it imports
the module, which registers it (the module must be importable: a folder of SEQREC_USER_DIR, see
docs/extending-readers.md).
"""

from __future__ import annotations

import importlib
import inspect
from dataclasses import dataclass
from pathlib import Path
from typing import Callable

import pandas as pd

from benchmark.errors import ConfigError

Reader = Callable[..., pd.DataFrame]


@dataclass(frozen=True)
class ReaderInfo:
    """A registered reader: its name, the native files it looks for, and the function."""

    name: str
    read: Reader
    files: tuple[str, ...] = ()  # native file names (or patterns) it reads, for messages and docs
    order_only: bool = False  # the format has no time: every table it reads has positions for timestamps

    @property
    def options(self) -> tuple[str, ...]:
        """The dataset keys it reads: its keyword parameters after the directory."""
        params = list(inspect.signature(self.read).parameters.values())[1:]
        return tuple(p.name for p in params if p.kind in (p.POSITIONAL_OR_KEYWORD, p.KEYWORD_ONLY))

    @property
    def summary(self) -> str:
        return (inspect.getdoc(self.read) or "").split("\n\n")[0].replace("\n", " ")


READERS: dict[str, ReaderInfo] = {}


def register(name: str, files: tuple[str, ...] | list[str] = (), order_only: bool = False) -> Callable[[Reader], Reader]:
    """Registers the decorated function as the reader ``name`` (the function itself is unchanged). ``order_only``
    declares a format that never has times (a reader whose files may lack them marks each table it reads instead:
    ``common.order_only``)."""

    def wrap(fn: Reader) -> Reader:
        known = READERS.get(name)
        if known is not None and _origin(known.read) != _origin(fn):  # a module imported twice re-registers itself
            raise ConfigError(f"reader {name!r} is registered twice: by {_origin(known.read)} and by {_origin(fn)}; "
                              "rename one")
        READERS[name] = ReaderInfo(name, fn, tuple(files), order_only)
        return fn

    return wrap


def _origin(fn: Reader) -> str:
    return f"{fn.__module__}.{fn.__qualname__}"


def reader_named(name: object) -> ReaderInfo:
    """The reader ``dataset.reader`` names: a registered name, or ``module:function`` /
    ``module.function`` of a registered function (its module is imported, which registers it)."""
    if isinstance(name, str) and name in READERS:
        return READERS[name]
    if not isinstance(name, str) or not (":" in name or "." in name):
        raise ConfigError(f"dataset.reader={name!r} is unknown; choose one of {', '.join(sorted(READERS))}, "
                          "or name your own reader function as module:function (docs/extending-readers.md)")
    module, _, attr = name.partition(":") if ":" in name else name.rpartition(".")
    try:
        found = importlib.import_module(module)
    except Exception as e:  # the module's own failure (a syntax error, a missing dependency) is the news
        why = " ".join(f"{type(e).__name__}: {e}".split())
        raise ConfigError(f"dataset.reader={name!r}: module {module} cannot be imported ({why}); a module of your "
                          "own must lie in a folder of SEQREC_USER_DIR (docs/extending-readers.md)") from None
    fn = getattr(found, attr, None)
    if fn is None:
        raise ConfigError(f"dataset.reader={name!r}: module {module} has no function {attr}")
    info = next((r for r in READERS.values() if r.read is fn), None)
    if info is None:
        raise ConfigError(f"dataset.reader={name!r}: {attr} is not a registered reader; decorate it with "
                          "@register(NAME) from benchmark.data.readers")
    return info


def read_interactions(reader: str, directory: str | Path, **options: object) -> pd.DataFrame:
    """The canonical interactions table of ``directory`` as the named reader reads it."""
    return reader_named(reader).read(directory, **options)
