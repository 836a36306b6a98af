"""The autoregressive head of the encoder-decoder (seq2seq) models: a Transformer decoder that
writes the next k items after a history, attending over the encoder's states of that history.

Training uses teacher forcing on the next-k window. Because the encoders are causal, one encoder
pass over a window gives the states of every prefix of it (the RNN and CNN encoders' are exactly those
of the prefix encoded alone; the attention encoder numbers positions back from the window's newest item,
so its state at a split also carries the split's distance from the window end, as SASRec's training
states do); the decoder then continues several randomly chosen prefixes per window at once, each seeing
only the encoder states of its own prefix (positions <= its split point). At test time the first decoder step scores all items for the next
position, and `generate` writes an ordered list without repeats (greedy or beam search).
"""

from __future__ import annotations

from typing import Callable

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from benchmark.models.kernels import Dropout
from benchmark.training import window_index


class Attention(nn.Module):
    """Multi-head attention of queries x [B, Q, H] over memory [B, K, H]; ``allowed`` (bool,
    broadcastable to [B, heads, Q, K]) says which keys each query may see."""

    def __init__(self, hidden: int, heads: int, dropout: float) -> None:
        super().__init__()
        self.heads, self.dropout = heads, dropout
        self.query, self.key_value, self.out = nn.Linear(hidden, hidden), nn.Linear(hidden, 2 * hidden), nn.Linear(hidden, hidden)

    def forward(self, x: torch.Tensor, memory: torch.Tensor, allowed: torch.Tensor) -> torch.Tensor:
        batch, n_query, hidden = x.shape
        q = self.query(x).view(batch, n_query, self.heads, -1).transpose(1, 2)
        k, v = self.key_value(memory).view(batch, memory.shape[1], 2, self.heads, -1).permute(2, 0, 3, 1, 4)
        out = F.scaled_dot_product_attention(q, k, v, attn_mask=allowed, dropout_p=self.dropout if self.training else 0.0)
        return self.out(out.transpose(1, 2).reshape(batch, n_query, hidden))


class DecoderBlock(nn.Module):
    """Pre-LayerNorm: causal self-attention over the decoded steps, cross-attention over the
    encoder states, feed-forward network."""

    def __init__(self, hidden: int, heads: int, dropout: float) -> None:
        super().__init__()
        self.norm1, self.self_attn = nn.LayerNorm(hidden), Attention(hidden, heads, dropout)
        self.norm2, self.cross_attn = nn.LayerNorm(hidden), Attention(hidden, heads, dropout)
        self.norm3 = nn.LayerNorm(hidden)
        self.ffn = nn.Sequential(nn.Linear(hidden, hidden), nn.GELU(), Dropout(dropout), nn.Linear(hidden, hidden), Dropout(dropout))

    def forward(self, x: torch.Tensor, memory: torch.Tensor, allowed: torch.Tensor, causal: torch.Tensor) -> torch.Tensor:
        """x [N, T, H] decoder steps of N prefixes; memory [N, W, H] the encoder states each may read."""
        h = self.norm1(x)
        x = x + self.self_attn(h, h, causal)
        x = x + self.cross_attn(self.norm2(x), memory, allowed)
        return x + self.ffn(self.norm3(x))


class AutoregressiveDecoder(nn.Module):
    def __init__(self, hidden: int, horizon: int, max_len: int, layers: int = 1, heads: int = 2, dropout: float = 0.2) -> None:
        super().__init__()
        self.start = nn.Parameter(torch.randn(hidden) * hidden**-0.5)  # input of the first step
        self.step = nn.Embedding(horizon, hidden)
        # How far back from the split an encoder state lies: RNN and CNN states carry no position,
        # and without it attention cannot tell the newest items from old ones.
        self.distance = nn.Embedding(max_len, hidden)
        self.memory_norm = nn.LayerNorm(hidden)  # encoders differ in scale (GRU in [-1, 1], CNN residual streams)
        self.dropout = Dropout(dropout)
        self.blocks = nn.ModuleList(DecoderBlock(hidden, heads, dropout) for _ in range(layers))
        self.norm = nn.LayerNorm(hidden)

    def forward(self, memory: torch.Tensor, memory_mask: torch.Tensor, split: torch.Tensor, previous: torch.Tensor) -> torch.Tensor:
        """Decoder states that predict the item after each prefix of decoded items.

        memory [B, W, H] encoder states, memory_mask [B, W] True on real items; split [B, S] the
        position of the last history item of each of S prefixes; previous [B, S, j, H] embeddings of
        the j items already decoded after it (the true items under teacher forcing).
        Returns [B, S, j + 1, H]: step i predicts the (i + 1)-th item after the split.
        """
        batch, n_prefix, done, hidden = previous.shape
        steps, width = done + 1, memory.shape[1]
        memory = self.memory_norm(memory)
        x = torch.cat([self.start.expand(batch, n_prefix, 1, hidden), previous], dim=2)
        # Every step also starts from the encoder's summary of the prefix, its state at the split
        # (as the decoder's initial state in Sutskever et al., 2014); attention reads the rest.
        summary = memory.gather(1, split[..., None].expand(-1, -1, hidden))  # [B, S, H]
        x = self.dropout(x + summary[:, :, None, :] + self.step(torch.arange(steps, device=x.device)))
        position = torch.arange(width, device=x.device)
        back = split[..., None] - position  # [B, S, W] distance of each state from the split
        keys = memory[:, None] + self.distance(back.clamp(0, self.distance.num_embeddings - 1))  # [B, S, W, H]
        # Prefix s reads the real states at positions <= its split; a split on padding (no target,
        # output unused) still gets one key, so the softmax stays finite.
        allowed = ((back >= 0) & memory_mask[:, None, :]) | (back == 0)
        x, keys = x.view(batch * n_prefix, steps, hidden), keys.view(batch * n_prefix, width, hidden)
        allowed = allowed.view(batch * n_prefix, 1, 1, width)
        causal = torch.ones(steps, steps, dtype=torch.bool, device=x.device).tril()
        for block in self.blocks:
            x = block(x, keys, allowed, causal)
        return self.norm(x).view(batch, n_prefix, steps, hidden)


def next_k_windows(items: np.ndarray, offsets: np.ndarray, max_len: int, k: int) -> tuple[torch.Tensor, torch.Tensor]:
    """The training windows of `training_windows` with the next k items after every position:
    inputs [W, max_len] and future [W, max_len, k] (0 past the end of the sequence)."""
    idx, valid, _, seq_end = window_index(offsets, max_len)
    inputs = np.where(valid, items[idx - 1], 0)
    ahead = idx[..., None] + np.arange(k)
    known = valid[..., None] & (ahead < seq_end[:, None, None])
    future = np.where(known, items[np.where(known, ahead, 0)], 0)
    return torch.from_numpy(inputs.astype(np.int64)), torch.from_numpy(future.astype(np.int64))


def generate(
    next_scores: Callable[[torch.Tensor], torch.Tensor], excluded: torch.Tensor, n: int, beam_size: int = 1
) -> torch.Tensor:
    """Beam search (greedy when ``beam_size`` is 1) for an ordered list of ``n`` distinct items.

    ``next_scores(prefix)`` maps prefixes [B, K, j] of item ids to logits [B, K, n_items + 1] of the
    item that follows each; ``excluded`` [B, n_items + 1] bool marks items never to list.
    Hypotheses are ranked by their summed log-probability. Returns item ids [B, n], best list, ending
    in 0 where fewer than n items are allowed.
    """
    batch, n_columns = excluded.shape
    excluded = excluded.clone()
    excluded[:, 0] = True  # padding
    prefix = torch.zeros(batch, 1, 0, dtype=torch.long, device=excluded.device)
    total = torch.zeros(batch, 1, device=excluded.device)  # log-probability of each hypothesis
    for _ in range(n):
        scores = next_scores(prefix).float()
        scores[..., 0] = float("-inf")  # padding is not an item (training's softmax leaves it out)
        logp = torch.log_softmax(scores, dim=-1)  # [B, K, V]
        banned = excluded[:, None, :].expand_as(logp).scatter(2, prefix, True)  # no repeats
        candidates = (total[..., None] + logp).masked_fill(banned, float("-inf")).flatten(1)
        total, flat = candidates.topk(min(beam_size, candidates.shape[1]), dim=1)  # best extensions of all hypotheses
        parent, item = flat // n_columns, flat % n_columns
        # No allowed item left for a hypothesis: its topk pick is arbitrary among -inf ties, so the
        # best list (hypothesis 0, totals are sorted) goes on, padded with 0.
        dead = total == float("-inf")
        parent, item = parent.masked_fill(dead, 0), item.masked_fill(dead, 0)
        kept = prefix.gather(1, parent[..., None].expand(-1, -1, prefix.shape[2]))
        prefix = torch.cat([kept, item[..., None]], dim=2)
    return prefix[:, 0]
