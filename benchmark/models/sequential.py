"""A neural sequential recommender = item embedding + encoder + head + objective.

- encoder (`model.encoder`): rnn (GRU/LSTM, gru4rec.py), caser (caser.py), nextitnet (nextitnet.py),
  attention (causal SASRec or bidirectional BERT4Rec, sasrec.py), hstu (pointwise attention with
  relative position and time bias, hstu.py). All map item embeddings [B, L, H] and a padding mask to
  states [B, L, H]; an encoder with ``reads_times`` also gets the items' timestamps where the data has them. An encoder registers itself: a subclass of
  ``encoders.Encoder`` with a name and a family, ``class HSTUEncoder(Encoder, name="hstu", family="attention")``,
  whose ``__init__`` parameters are the model keys it reads (see encoders.py). Importing its module
  is all it takes: this file imports the package's, SEQREC_USER_DIR a user's (docs/extending.md).
  Nothing here names an encoder: the composition rules, the unread-key warnings and the families
  table read the class's declarations (``reads``, ``family``).
- head (`model.head`): next_item (the state at t scored against the tied item embeddings) or
  autoregressive (a decoder that writes the next `model.horizon` items, seq2seq.py).
- objective (`model.objective`): ce (full softmax), bce, sampled_softmax or bpr_max
  (`model.n_negatives` negatives, uniform or by popularity, objectives.py), or cloze (BERT4Rec:
  predict randomly masked items).
- training (`model.training`): windows of every sequence, or GRU4Rec's session-parallel
  mini-batches (session_parallel.py).

The literature models (GRU4Rec, Caser, NextItNet, SASRec, BERT4Rec, seq2seq_*) are presets of this
composition in conf/model/; any part can be swapped on the command line.
"""

from __future__ import annotations

import dataclasses
import inspect
import logging

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from benchmark.config import TrainerConfig, resolve_device
from benchmark.data.split import Sequences, SplitData
from benchmark.errors import ConfigError
# Importing registers the package's encoders, in this order (the families table's: RNN, CNN, attention).
from benchmark.models import gru4rec, caser, nextitnet, sasrec, hstu  # noqa: F401, I001
from benchmark.models.base import Batch, Recommender
from benchmark.models.encoders import ENCODERS, encoders_reading
from benchmark.models.kernels import item_scores
from benchmark.models.objectives import DEFAULT_NEGATIVES, LOSSES, SAMPLERS, Negatives, full_softmax
from benchmark.models.seq2seq import AutoregressiveDecoder, generate, next_k_windows
from benchmark.models.session_parallel import SessionParallel
from benchmark.training import EpochLog, train_loop, training_windows, window_index

# head -> its architecture, the families table's second word ("RNN encoder-only").
HEADS = {"next_item": "encoder-only", "autoregressive": "encoder–decoder"}
OBJECTIVES = (*LOSSES, "cloze")
# Keys only some heads / objectives read; a value away from the default under another one has no effect.
HEAD_KEYS = {"autoregressive": ("horizon", "decoder_layers", "beam_size", "prefixes_per_window")}
SAMPLED = ("n_negatives", "sampler", "sample_alpha")
OBJECTIVE_KEYS = {"bce": SAMPLED, "sampled_softmax": (*SAMPLED, "in_batch_negatives", "logq"),
                  "bpr_max": (*SAMPLED, "in_batch_negatives", "bpreg"), "cloze": ("mask_prob",)}
TRAININGS = ("windows", "session_parallel")
log = logging.getLogger("seqrec")


class SequenceNet(nn.Module):
    """Item ids [B, L] -> states [B, L, H]; logits are states @ item_embedding.T (tied weights).
    With ``mask_token`` the table has one extra row, id n_items + 1, for the cloze [MASK]."""

    def __init__(self, n_items: int, encoder: nn.Module, hidden: int, decoder: nn.Module | None, mask_token: bool) -> None:
        super().__init__()
        self.n_items = n_items
        self.item_embedding = nn.Embedding(n_items + 1 + int(mask_token), hidden, padding_idx=0)
        nn.init.normal_(self.item_embedding.weight, std=hidden**-0.5)
        with torch.no_grad():
            self.item_embedding.weight[0].zero_()
        self.encoder = encoder
        self.decoder = decoder

    def forward(self, items: torch.Tensor, newest_only: bool = False, times: torch.Tensor | None = None) -> torch.Tensor:
        """States [B, L, H]; with newest_only, the newest position's only, [B, 1, H]. ``times`` [B, L]
        (the items' timestamps) go to encoders that read them."""
        extra = {} if times is None else {"times": times}
        if newest_only and getattr(self.encoder, "computes_newest_only", False):
            return self.encoder(self.item_embedding(items), items > 0, newest_only=True, **extra)
        states = self.encoder(self.item_embedding(items), items > 0, **extra)
        return states[:, -1:] if newest_only else states

    @property
    def items(self) -> torch.Tensor:
        """Output embeddings of padding and the real items, [n_items + 1, H] (no [MASK] row)."""
        return self.item_embedding.weight[: self.n_items + 1]

    def logits(self, hidden: torch.Tensor) -> torch.Tensor:
        return item_scores(hidden, self.items)


class SequentialRecommender(Recommender):
    reads_order = True

    @classmethod
    def family(cls, config: dict) -> str | None:
        """The encoder's declared family and the head's architecture, e.g. 'RNN encoder-only'."""
        encoder, head = ENCODERS.get(config.get("encoder")), HEADS.get(config.get("head"))
        return f"{encoder.family} {head}" if encoder and head else None

    def __init__(
        self,
        name: str,
        encoder: str,
        head: str = "next_item",
        objective: str = "ce",
        max_len: int = 50,
        hidden: int = 64,
        layers: int = 2,
        heads: int = 2,
        dropout: float = 0.2,
        causal: bool = True,
        n_negatives: int | None = None,
        mask_prob: float = 0.2,
        horizon: int = 5,
        decoder_layers: int = 1,
        beam_size: int = 1,
        prefixes_per_window: int | None = None,
        stride: int | None = None,
        init_std: float | None = None,
        sampler: str = "uniform",
        sample_alpha: float = 1.0,
        in_batch_negatives: bool = False,
        bpreg: float = 0.0,
        logq: float = 0.0,
        training: str = "windows",
        **encoder_options: object,
    ) -> None:
        super().__init__(name)
        check_composition(encoder, head, objective, causal)
        for key, value, allowed in (("sampler", sampler, SAMPLERS), ("training", training, TRAININGS)):
            if value not in allowed:
                raise ConfigError(f"model.{key}={value!r} is unknown; choose one of {', '.join(allowed)}")
        if training == "session_parallel" and (encoder, head, encoder_options.get("cell", "gru")) != ("rnn", "next_item", "gru"):
            raise ConfigError("model.training=session_parallel carries a GRU's state from step to step: it needs "
                              "model.encoder=rnn, model.cell=gru and model.head=next_item")
        # The encoder's own rules on its options (e.g. Caser's filter counts), here so they fail before any data is read.
        getattr(ENCODERS[encoder], "check_options", lambda **_: None)(**encoder_options)
        if n_negatives is not None and n_negatives < 1:
            raise ConfigError(f"model.n_negatives={n_negatives} must be >= 1 (or null for the objective's default)")
        for key, value, low in (("max_len", max_len, 2), ("hidden", hidden, 1), ("horizon", horizon, 1),
                                ("beam_size", beam_size, 1), ("prefixes_per_window", prefixes_per_window, 1), ("stride", stride, 1)):
            if value is not None and value < low:
                raise ConfigError(f"model.{key}={value} must be >= {low}")
        if ("heads" in ENCODERS[encoder].reads or head == "autoregressive") and hidden % heads:
            raise ConfigError(f"model.hidden={hidden} must be a multiple of model.heads={heads}")
        if stride is not None and head != "next_item":
            raise ConfigError(f"model.stride={stride} applies to the next-item head only (head=next_item); "
                              "set model.stride=null")
        if init_std is not None and init_std <= 0:
            raise ConfigError(f"model.init_std={init_std} must be > 0 (or null for each layer's default)")
        if not 0.0 < mask_prob < 1.0:
            raise ConfigError(f"model.mask_prob={mask_prob} must be in (0, 1)")
        self.encoder_name, self.head, self.objective, self.causal = encoder, head, objective, causal
        self.max_len, self.hidden, self.layers, self.heads, self.dropout = max_len, hidden, layers, heads, dropout
        self.n_negatives = n_negatives or DEFAULT_NEGATIVES.get(objective, 0)
        self.negatives = Negatives(n=self.n_negatives, sampler=sampler, alpha=sample_alpha, in_batch=in_batch_negatives,
                                   logq=logq, bpreg=bpreg)
        self.training_mode = training
        self.mask_prob, self.horizon, self.decoder_layers, self.beam_size = mask_prob, horizon, decoder_layers, beam_size
        # Teacher forcing continues this many prefixes of each window; the default makes every item
        # a target about once per epoch (max_len / horizon prefixes x horizon steps), like next-item training.
        self.prefixes_per_window = min(prefixes_per_window or max(1, max_len // horizon), max_len)
        self.stride, self.init_std = stride, init_std
        self.encoder_options = encoder_options
        for line in unread_settings(encoder, head, objective, {
                "horizon": horizon, "decoder_layers": decoder_layers, "beam_size": beam_size,
                "prefixes_per_window": prefixes_per_window, "n_negatives": n_negatives, "mask_prob": mask_prob,
                "sampler": sampler, "sample_alpha": sample_alpha, "in_batch_negatives": in_batch_negatives,
                "bpreg": bpreg, "logq": logq, **encoder_options}):
            log.warning(line)
        self.net: SequenceNet | None = None
        self._device = torch.device("cpu")
        self.uses_times = False  # set by fit: the encoder reads times and the data has them

    def ignored_settings(self) -> dict[str, str]:
        """The shared sizes the chosen encoder and head do not read (Caser has no layers; only attention
        and the seq2seq decoder have heads). Presets keep them as placeholders, so the value alone cannot
        tell a user's setting from the preset's: the runner warns only where a run sets one."""
        takes = ENCODERS[self.encoder_name].reads
        ignored = {}
        if "layers" not in takes:
            ignored["layers"] = (f"with model.encoder={self.encoder_name} "
                                 f"(read with encoder={'/'.join(encoders_reading('layers'))} only)")
        if "heads" not in takes and self.head != "autoregressive":
            ignored["heads"] = (f"with model.encoder={self.encoder_name} and model.head={self.head} "
                                f"(read with encoder={'/'.join(encoders_reading('heads'))} or head=autoregressive only)")
        return ignored

    @staticmethod
    def keyword_targets(config: dict) -> list:
        """Where ``**encoder_options`` go, so config validation can check those keys too. Every
        encoder's, so that swapping ``model.encoder`` keeps a preset's other keys (e.g. ``cell``) valid."""
        return list(ENCODERS.values())

    @property
    def device(self) -> torch.device:
        return self._device

    @property
    def mask_token(self) -> int:
        assert self.net is not None
        return self.net.n_items + 1

    def build(self, n_items: int) -> SequenceNet:
        options = dict(self.encoder_options)
        if options.get("scale_embeddings") is None:  # unset: with model.init_std's small weights, unscaled
            options["scale_embeddings"] = self.init_std is None
        encoder = ENCODERS[self.encoder_name](
            hidden=self.hidden, max_len=self.max_len, layers=self.layers, heads=self.heads, dropout=self.dropout,
            causal=self.causal, **options,
        )
        decoder = None
        if self.head == "autoregressive":
            decoder = AutoregressiveDecoder(self.hidden, self.horizon, self.max_len, self.decoder_layers, self.heads, self.dropout)
        net = SequenceNet(n_items, encoder, self.hidden, decoder, mask_token=self.objective == "cloze")
        if self.init_std is not None:
            init_normal(net, self.init_std)
        return net

    def n_params(self) -> int:
        return sum(p.numel() for p in self.net.parameters()) if self.net is not None else 0

    not_saved = ("negatives",)  # the training sampler: rebuilt from the config, not needed to score

    def restore(self, attributes: dict) -> None:
        weights = attributes.pop("net")
        super().restore(attributes)
        if weights is not None:  # the item table has padding (and, for cloze, [MASK]) besides the items
            self.net = self.build(weights["item_embedding.weight"].shape[0] - 1 - int(self.objective == "cloze"))
            self.net.load_state_dict(weights)

    # ---- training -------------------------------------------------------------------------
    def fit(self, data: SplitData, trainer: TrainerConfig | None = None) -> list[EpochLog]:
        from benchmark.evaluation import validation_metric

        cfg = trainer or TrainerConfig()
        torch.manual_seed(cfg.seed)
        self._device = torch.device(resolve_device(cfg.device))
        self.net = self.build(data.n_items).to(self._device)
        self.uses_times = getattr(self.net.encoder, "time_bias", False) and has_times(data.train)
        if getattr(self.net.encoder, "time_bias", False) and not self.uses_times:
            log.info("%s: the data has no timestamps (only an order); the encoder uses its position bias only", self.name)
        counts = np.bincount(data.train.items, minlength=data.n_items + 1)  # for popularity negatives and log-Q
        self.negatives = dataclasses.replace(self.negatives, counts=torch.from_numpy(counts))
        if self.training_mode == "session_parallel":
            steps = SessionParallel(self, data.train.items, data.train.offsets, cfg.batch_size)
            return train_loop(self.net, steps.loss, steps.n_targets, lambda: validation_metric(self, data, cfg), cfg,
                              batches=steps.batches)
        # Whole training set as padded tensors on the device; a batch is an index slice of them.
        examples = [t.to(self._device) for t in self.training_examples(data)]
        if self.uses_times:  # the same windows over the timestamps: their inputs align with the items'
            examples.append(self.training_examples(data, of_times=True)[0].to(self._device))
        loss = {"next_item": self.next_item_loss, "autoregressive": self.autoregressive_loss}[self.head]
        if self.objective == "cloze":
            loss = self.cloze_loss

        def step_loss(idx: torch.Tensor, generator: torch.Generator) -> torch.Tensor:
            batch = [t[idx.to(self._device)] for t in examples]
            times = batch.pop() if self.uses_times else None
            return loss(*batch, times=times, generator=generator)

        return train_loop(self.net, step_loss, len(examples[0]), lambda: validation_metric(self, data, cfg), cfg)

    def training_examples(self, data: SplitData, of_times: bool = False) -> list[torch.Tensor]:
        """The training tensors (the first: the encoder's inputs). ``of_times``: the same windows cut
        from the timestamps instead of the items, whose first tensor holds the inputs' times."""
        items, offsets = data.train.times if of_times else data.train.items, data.train.offsets
        if self.objective == "cloze":
            # Whole sequences, not (input, next item) pairs: with a dummy before every sequence, the
            # windows' target positions (all but a sequence's first element) are the full sequences.
            # Overlapping windows (stride) mask every item again in each window it is part of.
            idx, valid, _, _ = window_index(offsets + np.arange(len(offsets)), self.max_len, self.stride)
            padded = np.insert(items, offsets[:-1], 0)
            return [torch.from_numpy(np.where(valid, padded[idx], 0).astype(np.int64))]
        if self.head == "autoregressive":
            return list(next_k_windows(items, offsets, self.max_len, self.horizon))
        return list(training_windows(items, offsets, self.max_len, self.stride))

    def objective_loss(self, hidden: torch.Tensor, targets: torch.Tensor, generator: torch.Generator) -> torch.Tensor:
        return LOSSES[self.objective](hidden, targets, self.net.items, generator=generator, negatives=self.negatives)

    def next_item_loss(self, inputs: torch.Tensor, targets: torch.Tensor, generator: torch.Generator,
                       times: torch.Tensor | None = None) -> torch.Tensor:
        real = targets > 0
        return self.objective_loss(self.net(inputs, times=times)[real], targets[real], generator)

    def cloze_loss(self, sequences: torch.Tensor, generator: torch.Generator, times: torch.Tensor | None = None) -> torch.Tensor:
        real = sequences > 0
        masked = (torch.rand(sequences.shape, generator=generator).to(self._device) < self.mask_prob) & real
        # A window with nothing masked gets its newest item masked: that is also the test-time task.
        masked[:, -1] |= ~masked.any(1)
        hidden = self.net(sequences.masked_fill(masked, self.mask_token), times=times)
        return full_softmax(hidden[masked], sequences[masked], self.net.items)

    def autoregressive_loss(self, inputs: torch.Tensor, future: torch.Tensor, generator: torch.Generator,
                            times: torch.Tensor | None = None) -> torch.Tensor:
        """Teacher forcing on the next-k items after `prefixes_per_window` random prefixes per window."""
        memory = self.net(inputs, times=times)  # causal: the state at t has seen the prefix ending at t only
        noise = torch.rand(inputs.shape, generator=generator).to(self._device)
        has_target = future[:, :, 0] > 0
        split = noise.masked_fill(~has_target, -1.0).topk(self.prefixes_per_window, dim=1).indices  # [B, S]
        targets = future.gather(1, split[..., None].expand(-1, -1, self.horizon))  # [B, S, k]
        states = self.net.decoder(memory, inputs > 0, split, self.net.item_embedding(targets[..., :-1]))
        real = targets > 0
        return self.objective_loss(states[real], targets[real], generator)

    # ---- inference ------------------------------------------------------------------------
    def encode(self, history: torch.Tensor, newest_only: bool = False,
               times: torch.Tensor | None = None) -> tuple[torch.Tensor, torch.Tensor]:
        """The last max_len items (plus a trailing [MASK] for cloze models), left-padded to max_len
        -> (encoder states [B, max_len, H], mask [B, max_len]); newest_only: states [B, 1, H].
        ``times`` [B, L] (aligned with ``history``) are read when the model uses times."""
        assert self.net is not None, "call fit() first"
        self.net.eval()  # no dropout when ranking, also for a model fitted with max_epochs=0
        if self.uses_times and times is None:
            raise ValueError(f"{self.name} reads timestamps: give the batch's times (Batch.times)")
        columns = torch.stack([history, times]) if self.uses_times else history[None]  # cut and padded alike
        columns = columns.to(self._device)
        keep = self.max_len - 1 if self.objective == "cloze" else self.max_len
        columns = columns[..., -keep:]
        # The decoder reads the states by distance from the newest item: as invariant as the encoder.
        if getattr(self.net.encoder, "left_padding_invariant", False):
            # Columns that are padding in every row change nothing for such encoders: drop them
            # (short histories are common, and the encoder is most of the cost of ranking).
            real = (columns[0] > 0).any(0).nonzero()
            columns = columns[..., int(real[0]) if len(real) else -1 :]
        else:
            columns = F.pad(columns, (keep - columns.shape[-1], 0))
        if self.objective == "cloze":  # the [MASK] item, at the newest item's time
            columns = torch.cat([columns, columns[..., -1:]], dim=-1)
            columns[0, :, -1] = self.mask_token
        history = columns[0]
        return self.net(history, newest_only, columns[1] if self.uses_times else None), history > 0

    def next_scores(self, memory: torch.Tensor, mask: torch.Tensor, prefix: torch.Tensor) -> torch.Tensor:
        """Decoder logits [B, K, n_items + 1] of the item after each prefix [B, K, j] of generated items."""
        split = torch.full(prefix.shape[:2], mask.shape[1] - 1, device=mask.device)
        states = self.net.decoder(memory, mask, split, self.net.item_embedding(prefix))
        return self.net.logits(states[:, :, -1])

    @torch.no_grad()
    def score(self, batch: Batch) -> torch.Tensor:
        history, times = batch.history, batch.times
        if self.head == "next_item" and self.net is not None:
            # Only the last state is scored: an encoder that sees a bounded window (Caser's
            # receptive_field) needs only that many items.
            width = getattr(self.net.encoder, "receptive_field", history.shape[1])
            history, times = history[:, -width:], None if times is None else times[:, -width:]
        memory, mask = self.encode(history, newest_only=self.head == "next_item", times=times)
        if self.head == "autoregressive":
            empty = torch.zeros(len(memory), 1, 0, dtype=torch.long, device=memory.device)
            return self.next_scores(memory, mask, empty)[:, 0]
        return self.net.logits(memory[:, -1])

    @torch.no_grad()
    def recommend(self, batch: Batch, n: int, excluded: torch.Tensor) -> torch.Tensor:
        """Seq2seq models write their list (greedy, or beam search with model.beam_size > 1) for the
        first model.horizon places; later places follow the last step's scores. No repeats."""
        if self.head != "autoregressive":
            return super().recommend(batch, n, excluded)
        memory, mask = self.encode(batch.history, times=batch.times)
        excluded = excluded.to(self._device)

        def next_scores(prefix: torch.Tensor) -> torch.Tensor:
            return self.next_scores(memory, mask, prefix)  # the K hypotheses share the user's states

        n_columns = excluded.shape[1]
        depth = min(n, self.horizon, n_columns)
        listed = generate(next_scores, excluded, depth, self.beam_size)
        if n > depth:
            last = next_scores(listed[:, None, :-1])[:, 0].float()
            last = last.masked_fill(excluded, float("-inf")).scatter(1, listed, float("-inf"))
            listed = torch.cat([listed, last.topk(min(n - depth, n_columns), dim=1).indices], dim=1)
        # With fewer than n candidates the search runs out; those places are 0 (padding), as in top_n.
        listed = F.pad(listed, (0, n - listed.shape[1]))
        repeated = (listed[:, :, None] == listed[:, None, :]).tril(-1).any(2)
        return listed.masked_fill(repeated | excluded.gather(1, listed), 0)


def has_times(sequences: Sequences) -> bool:
    """Whether the timestamps are times, not the 0, 1, 2, ... positions that order-only readers give."""
    positions = np.arange(len(sequences.items)) - np.repeat(sequences.offsets[:-1], sequences.lengths)
    return not np.array_equal(sequences.times, positions)


def init_normal(net: nn.Module, std: float) -> None:
    """BERT-style initialisation (as in BERT4Rec and RecBole's SASRec): every embedding and linear
    weight ~ N(0, std), biases 0, the padding row 0. The attention's fused query/key/value
    projection keeps PyTorch's Xavier initialisation: SASRec's validation and test NDCG@10 on
    ml-latest-small were higher with it than with N(0, 0.02) there, in both seeds tried."""
    for module in net.modules():
        if isinstance(module, (nn.Linear, nn.Embedding)):
            nn.init.normal_(module.weight, std=std)
            if getattr(module, "bias", None) is not None:
                nn.init.zeros_(module.bias)
    with torch.no_grad():
        net.item_embedding.weight[0].zero_()


def unread_settings(encoder: str, head: str, objective: str, settings: dict[str, object]) -> list[str]:
    """One line per setting the chosen parts do not read: an encoder option of another encoder (e.g.
    ``cell`` after ``model.encoder=attention``), or a head / objective key away from its default
    under a head / objective that ignores it (``beam_size`` with the next-item head). Warned, not
    refused, so that a sweep can swap one part of a preset without dropping the other part's keys."""
    defaults = {k: p.default for k, p in inspect.signature(SequentialRecommender).parameters.items()}
    takes = ENCODERS[encoder].reads
    lines = []
    for key, value in settings.items():
        if key in defaults:  # a key of the recommender: a head's or an objective's
            for part, table, chosen in (("head", HEAD_KEYS, head), ("objective", OBJECTIVE_KEYS, objective)):
                readers = [name for name, keys in table.items() if key in keys]
                if readers and chosen not in readers and value != defaults[key]:
                    lines.append(f"model.{key}={value!r} has no effect with model.{part}={chosen} "
                                 f"(read with {part}={'/'.join(readers)} only)")
        elif key not in takes:
            readers = encoders_reading(key)
            lines.append(f"model.{key}={value!r} has no effect with model.encoder={encoder} "
                         f"(read with encoder={'/'.join(readers) or 'none'} only)")
    return lines


def check_composition(encoder: str, head: str, objective: str, causal: bool) -> None:
    """Raises ConfigError for unknown parts and for combinations that cannot train correctly."""
    for key, value, allowed in (("encoder", encoder, ENCODERS), ("head", head, HEADS), ("objective", objective, OBJECTIVES)):
        if value not in allowed:
            raise ConfigError(f"model.{key}={value!r} is unknown; choose one of {', '.join(allowed)}")
    if not causal and "causal" not in ENCODERS[encoder].reads:
        raise ConfigError(f"model.causal=false needs an encoder that reads model.causal "
                          f"({'/'.join(encoders_reading('causal'))}); model.encoder={encoder} is always causal")
    if head == "autoregressive" and not causal:
        raise ConfigError(
            "model.head=autoregressive continues every prefix of a window from one encoder pass and needs a "
            "causal encoder; set model.causal=true"
        )
    if causal:
        allowed, why = tuple(LOSSES), f"a causal encoder (model.encoder={encoder}, model.head={head}): masked items need a bidirectional one"
    else:
        allowed, why = ("cloze",), "a bidirectional encoder (model.causal=false): the state at t has already seen the next item"
    if objective not in allowed:
        raise ConfigError(f"model.objective={objective} does not work with {why}; allowed here: {', '.join(allowed)}")
