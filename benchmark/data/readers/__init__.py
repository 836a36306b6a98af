"""Readers of native dataset formats, one module per format, each registering itself.

Each reader takes a directory (or, for single-file formats, the file itself) and returns the
canonical interactions table: a DataFrame with columns ``user`` (str), ``item`` (str),
``timestamp`` (int64, unix seconds; or a 0-based position where the format has only an order)
and optionally ``rating`` (float), rows in the order of the file. File order matters: it breaks
timestamp ties (stable sort). Readers whose files are newest-first, unsorted, or finer than a
second emit their rows in chronological order of the full-precision time, so the tie-break stays
right after the cut to seconds.

The package's readers are imported below; a user's reader registers itself the same way
(``registry.register``) and is found by name or as ``module:function`` (docs/extending-readers.md).
"""

from benchmark.data.readers.common import POSITIONAL_TIMES, UNTIMED, MissingData
from benchmark.data.readers.registry import READERS, ReaderInfo, read_interactions, reader_named, register

# Importing a format's module registers its reader.
from benchmark.data.readers import (  # noqa: E402,F401  (isort: skip)
    amazon, diginetica, ebnerd, generic, globo, lastfm, mind, movielens, otto, retailrocket, yoochoose,
)

__all__ = ["POSITIONAL_TIMES", "READERS", "MissingData", "ReaderInfo", "UNTIMED", "read_interactions", "reader_named", "register"]
