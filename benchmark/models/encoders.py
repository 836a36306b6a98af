"""The encoder registry: an encoder registers itself by subclassing ``Encoder`` with a name and a family.

    class AttnGRUEncoder(Encoder, name="attn_gru", family="RNN"):
        def __init__(self, hidden: int, dropout: float = 0.2, **_: object) -> None: ...
        def forward(self, x, mask): ...   # [B, L, H] embeddings, [B, L] True on real items -> [B, L, H]

Defining the class (importing its module) is the registration: ``model.encoder=attn_gru`` then composes it
with every head and objective, the unread-key warnings know its keys, and the families table shows it
under its family. The package's encoders (gru4rec.py, caser.py, nextitnet.py, sasrec.py) and a user's
(a module in SEQREC_USER_DIR, see docs/extending.md) take this same path.
"""

from __future__ import annotations

import inspect
from typing import ClassVar

from torch import nn

from benchmark.errors import ConfigError

ENCODERS: dict[str, type[Encoder]] = {}  # model.encoder value -> class, in registration order


class Encoder(nn.Module):
    """Item embeddings [B, L, H] (left-padded) and a mask [B, L] (True on real items) -> states [B, L, H].

    Declared on the class:
    - ``name`` (the ``model.encoder`` value) and ``family`` (its row in the families table: RNN, CNN,
      attention or a new name), given as class keywords;
    - ``reads``: the model keys it reads, set at registration to the parameters of ``__init__``. The
      recommender passes hidden, max_len, layers, heads, dropout, causal and scale_input plus the model's
      other keys: name the ones you read and end with ``**_``. An encoder that takes ``causal`` can run
      bidirectionally (``model.causal=false``, the cloze objective); one that does not is always causal,
      and the autoregressive head needs a causal encoder;
    - optional speed-ups: ``left_padding_invariant`` (extra left padding changes no state, so ranking
      drops all-padding columns), ``computes_newest_only`` (``forward`` takes ``newest_only`` and then
      returns [B, 1, H]) and ``check_options(**model_keys)``, a static method that refuses bad values
      before any data is read.
    """

    name: ClassVar[str]
    family: ClassVar[str]
    reads: ClassVar[tuple[str, ...]]
    left_padding_invariant: ClassVar[bool] = False
    computes_newest_only: ClassVar[bool] = False

    def __init_subclass__(cls, name: str | None = None, family: str | None = None, **kwargs: object) -> None:
        super().__init_subclass__(**kwargs)
        if name is None:  # a helper base class, not an encoder of its own
            return
        if not isinstance(family, str) or not family.strip():
            raise ConfigError(f"encoder {name!r} ({cls.__module__}.{cls.__qualname__}) declares no family; "
                              f"write class {cls.__name__}(Encoder, name={name!r}, family=\"RNN\") or another family name")
        taken = ENCODERS.get(name)
        if taken is not None and (taken.__module__, taken.__qualname__) != (cls.__module__, cls.__qualname__):
            raise ConfigError(f"encoder name {name!r} of {cls.__module__}.{cls.__qualname__} is taken by "
                              f"{taken.__module__}.{taken.__qualname__}; choose another name")
        cls.name, cls.family = name, family
        cls.reads = tuple(p.name for p in inspect.signature(cls).parameters.values()
                          if p.kind not in (p.VAR_KEYWORD, p.VAR_POSITIONAL))
        ENCODERS[name] = cls


def encoder_families() -> list[str]:
    """The families of the registered encoders, in the order they were first registered."""
    return list(dict.fromkeys(cls.family for cls in ENCODERS.values()))


def encoders_reading(key: str) -> list[str]:
    """The registered encoders that read ``key``."""
    return [name for name, cls in ENCODERS.items() if key in cls.reads]
