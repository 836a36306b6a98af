"""Semantic IDs (Rajput et al., NeurIPS 2023): every item as a short tuple of codes.

Item vectors come from the items' content (an ``item2attributes.json``: {item id: [attribute ids]},
multi-hot, reduced by a truncated SVD) or are collaborative (a truncated SVD of the training
user x item matrix). L levels of residual quantisation turn a vector into L codes: residual k-means
(each level clusters what the levels before it left over; the cheap default) or an RQ-VAE (an MLP
autoencoder whose latent is quantised by L codebooks, trained with straight-through gradients and a
commitment loss). A last collision level numbers the items that share all L codes (0, 1, ...), so
every item has a unique tuple of L + 1 codes.

Codes are cached as .npz like the split, keyed by a hash of what built them: the item vectors' source
(the content file's bytes and the split's item ids, or the training sequences), the settings and the
seed. Codebook usage (share of each level's codes in use) and the collision rate (share of items whose
L codes another item shares) are logged and returned with the codes.
"""

from __future__ import annotations

import hashlib
import json
import logging
from dataclasses import asdict, dataclass, fields
from pathlib import Path
from typing import Any

import numpy as np
import scipy.sparse as sp
import torch
import torch.nn.functional as F
from scipy.sparse.linalg import svds
from torch import nn

from benchmark.data.dataset import data_home
from benchmark.data.split import SplitData
from benchmark.errors import ConfigError, DataError
from benchmark.files import write_npz_atomically

log = logging.getLogger("seqrec")
CACHE_FORMAT = 2  # part of the cache key: bump when the codes of the same inputs change
SOURCES, METHODS = ("content", "collaborative", "both"), ("kmeans", "rqvae")


@dataclass(frozen=True)
class SemanticIdConfig:
    """``model.semantic_ids``: where the item vectors come from and how they are quantised."""

    # content (content_path) | collaborative (SVD of the training interactions) | both (the two side by side)
    source: str = "collaborative"
    content_path: str | None = None  # item2attributes.json: {item id: [attribute ids]}
    method: str = "kmeans"  # kmeans (residual k-means) | rqvae
    levels: int = 3  # L quantised levels (a collision level is added)
    codebook_size: int = 256  # codes per level
    dim: int = 64  # size of the item vectors (SVD rank)
    kmeans_iterations: int = 30
    rqvae_epochs: int = 300  # RQ-VAE only: full-batch Adam steps
    rqvae_latent: int = 32  # RQ-VAE only: size of the quantised latent
    rqvae_beta: float = 0.25  # RQ-VAE only: commitment weight
    cache_dir: str | None = None  # null: $SEQREC_DATA/semantic_ids (~/.cache/seqrec/semantic_ids)

    @classmethod
    def from_dict(cls, values: dict[str, Any] | None) -> "SemanticIdConfig":
        """Checked like any config group: unknown keys, wrong types and impossible values -> one line."""
        values = dict(values or {})
        known = {f.name: f for f in fields(cls)}
        for key, value in values.items():
            if key not in known:
                raise ConfigError(f"unknown key model.semantic_ids.{key}; it takes: {', '.join(known)}")
            expected = type(getattr(cls, key)) if getattr(cls, key) is not None else str
            if value is not None and not (isinstance(value, expected) and not isinstance(value, bool)
                                          or expected is float and isinstance(value, int)):
                raise ConfigError(f"model.semantic_ids.{key}={value!r} has the wrong type; it must be {expected.__name__}")
        config = cls(**{k: float(v) if known[k].type == "float" else v for k, v in values.items()})
        config.check()
        unread = [k for k in ("rqvae_epochs", "rqvae_latent", "rqvae_beta")
                  if config.method != "rqvae" and getattr(config, k) != getattr(cls, k)]
        unread += ["content_path"] if config.source == "collaborative" and config.content_path else []
        for key in unread:
            log.warning("model.semantic_ids.%s has no effect with method=%s, source=%s", key, config.method, config.source)
        return config

    def check(self) -> None:
        for key, allowed in (("source", SOURCES), ("method", METHODS)):
            if getattr(self, key) not in allowed:
                raise ConfigError(f"model.semantic_ids.{key}={getattr(self, key)!r} is unknown; choose one of {', '.join(allowed)}")
        for key in ("levels", "dim", "kmeans_iterations", "rqvae_epochs", "rqvae_latent"):
            if getattr(self, key) is None or getattr(self, key) < 1:
                raise ConfigError(f"model.semantic_ids.{key}={getattr(self, key)!r} must be an integer >= 1")
        if self.codebook_size is None or self.codebook_size < 2:
            raise ConfigError(f"model.semantic_ids.codebook_size={self.codebook_size!r} must be an integer >= 2")
        if self.source != "collaborative":
            if not self.content_path:
                raise ConfigError(f"model.semantic_ids.source={self.source} needs model.semantic_ids.content_path "
                                  "(an item2attributes.json)")
            if not Path(self.content_path).expanduser().is_file():
                raise ConfigError(f"model.semantic_ids.content_path={self.content_path} is not a file")


@dataclass
class SemanticIds:
    codes: np.ndarray  # int64 [n_items + 1, L + 1]; row 0 (padding) is unused
    sizes: np.ndarray  # int64 [L + 1] codes per level (the last: the largest number of items sharing L codes)
    usage: np.ndarray  # float [L] share of each level's codebook in use
    collision_rate: float  # share of items whose L codes another item shares

    def summary(self) -> dict[str, Any]:
        return {"levels": len(self.sizes), "codebook_sizes": self.sizes.tolist(),
                "codebook_usage": [round(float(u), 4) for u in self.usage],
                "collision_rate": round(self.collision_rate, 4), "max_collisions": int(self.sizes[-1])}

    def describe(self) -> str:
        """One log line: the codebooks, their usage and the collisions."""
        usage = "/".join(f"{u:.0%}" for u in self.usage)
        return (f"{len(self.sizes) - 1} levels of {'/'.join(map(str, self.sizes[:-1]))} codes (used {usage}) + a "
                f"collision level of {self.sizes[-1]}; {self.collision_rate:.1%} of the items share their codes with another")


def build_semantic_ids(config: SemanticIdConfig, data: SplitData, seed: int) -> SemanticIds:
    """The split's items' codes: from the cache when the same inputs built them before."""
    path = cache_path(config, data, seed)
    if path.is_file():
        with np.load(path, allow_pickle=False) as z:
            ids = SemanticIds(z["codes"], z["sizes"], z["usage"], float(z["collision_rate"]))
        log.info("semantic IDs from %s: %s", path, ids.describe())
        return ids
    vectors = item_vectors(config, data, seed)
    generator = torch.Generator().manual_seed(seed)
    quantise = residual_kmeans if config.method == "kmeans" else rqvae_codes
    codes = quantise(torch.from_numpy(vectors[1:]).float(), config, generator)  # real items only
    ids = with_collision_level(codes.numpy(), config.codebook_size)
    write_npz_atomically(path, {"codes": ids.codes, "sizes": ids.sizes, "usage": ids.usage,
                                "collision_rate": np.array(ids.collision_rate)})
    log.info("semantic IDs built (%s, %s) -> %s: %s", config.source, config.method, path, ids.describe())
    return ids


def cache_path(config: SemanticIdConfig, data: SplitData, seed: int) -> Path:
    digest = hashlib.sha256()
    settings = {k: v for k, v in asdict(config).items() if k not in ("cache_dir", "content_path")}
    digest.update(json.dumps({"format": CACHE_FORMAT, "settings": settings, "seed": seed}, sort_keys=True).encode())
    digest.update("\0".join(map(str, data.item_ids)).encode())  # codes are rows of this id map
    if config.source != "collaborative":
        digest.update(Path(config.content_path).expanduser().read_bytes())
    if config.source != "content":
        digest.update(data.train.items.tobytes() + data.train.offsets.tobytes())
    folder = Path(config.cache_dir).expanduser() if config.cache_dir else data_home() / "semantic_ids"
    return folder / f"{config.source}-{config.method}-{digest.hexdigest()[:20]}.npz"


# ---- item vectors ---------------------------------------------------------------------------------
def item_vectors(config: SemanticIdConfig, data: SplitData, seed: int) -> np.ndarray:
    """[n_items + 1, <= dim] float: a truncated SVD of the items' multi-hot attributes or of the
    training interactions (rows: items; row 0 padding), each row scaled to norm 1 (an SVD leaves rare
    items near the origin, where they would all share codes); ``both``: the two side by side."""
    parts = []
    if config.source != "collaborative":
        parts.append(truncated_svd(content_matrix(Path(config.content_path).expanduser(), data.item_ids), config.dim, seed))
    if config.source != "content":
        train = data.train
        users = np.repeat(np.arange(len(train)), train.lengths)
        matrix = sp.csr_matrix((np.ones(len(train.items)), (train.items, users)), shape=(data.n_items + 1, len(train)))
        matrix.data[:] = 1.0  # repeats count once
        parts.append(truncated_svd(matrix, config.dim, seed))
    return np.hstack([p / np.maximum(np.linalg.norm(p, axis=1, keepdims=True), 1e-12) for p in parts])


def content_matrix(path: Path, item_ids: np.ndarray) -> sp.csr_matrix:
    """Multi-hot [n_items + 1, n_attributes] of the split's items from {item id: [attribute ids]}."""
    try:
        attributes = json.loads(path.read_text())
        if not isinstance(attributes, dict):
            raise ValueError("not an object of item id -> attribute list")
        rows = {str(item): [int(a) for a in values] for item, values in attributes.items()}
    except (ValueError, TypeError, UnicodeDecodeError) as e:
        raise DataError(f"{path} is not an item2attributes file ({str(e).splitlines()[0][:120]})") from None
    index = {str(item): row for row, item in enumerate(item_ids)}
    pairs = [(index[item], a) for item, values in rows.items() if item in index and index[item] > 0 for a in values]
    if not pairs:
        raise DataError(f"{path} names none of the dataset's items (ids such as {item_ids[1]!r})")
    r, c = np.array(pairs).T
    _, columns = np.unique(c, return_inverse=True)
    missing = len(item_ids) - 1 - len(np.unique(r))
    if missing:
        log.warning("%s has no attributes for %d of %d items: they share the zero vector", path, missing, len(item_ids) - 1)
    return sp.csr_matrix((np.ones(len(r)), (r, columns)), shape=(len(item_ids), columns.max() + 1))


def truncated_svd(matrix: sp.spmatrix, dim: int, seed: int) -> np.ndarray:
    """Rows of ``matrix`` projected on its top singular vectors, scaled by the singular values."""
    rank = min(dim, min(matrix.shape) - 1)
    if rank < 1:
        return matrix.toarray().astype(np.float32)
    v0 = np.random.default_rng(seed).standard_normal(min(matrix.shape))  # svds' start vector: reproducible
    u, s, _ = svds(matrix.astype(np.float64), k=rank, v0=v0)
    order = np.argsort(-s)
    return (u[:, order] * s[order]).astype(np.float32)


# ---- quantisation ---------------------------------------------------------------------------------
def kmeans(x: torch.Tensor, k: int, iterations: int, generator: torch.Generator) -> tuple[torch.Tensor, torch.Tensor]:
    """Lloyd's k-means from k distinct random points -> (centroids [k', d], assignment [n]); k' = min(k, n).
    An emptied cluster restarts at the point farthest from its centroid."""
    k = min(k, len(x))
    centroids = x[torch.randperm(len(x), generator=generator)[:k]].clone()
    for _ in range(iterations):
        distance = torch.cdist(x, centroids)
        assign = distance.argmin(1)
        counts = torch.bincount(assign, minlength=k)
        sums = torch.zeros_like(centroids).index_add_(0, assign, x)
        empty = counts == 0
        centroids = torch.where(empty[:, None], centroids, sums / counts.clamp(min=1)[:, None])
        if empty.any():
            far = distance.gather(1, assign[:, None])[:, 0].topk(int(empty.sum())).indices
            centroids[empty] = x[far]
    return centroids, torch.cdist(x, centroids).argmin(1)


def residual_kmeans(x: torch.Tensor, config: SemanticIdConfig, generator: torch.Generator) -> torch.Tensor:
    """Codes [n, L]: level l clusters the residual the levels before it left."""
    codes, residual = [], x
    for _ in range(config.levels):
        centroids, assign = kmeans(residual, config.codebook_size, config.kmeans_iterations, generator)
        codes.append(assign)
        residual = residual - centroids[assign]
    return torch.stack(codes, 1)


class RQVAE(nn.Module):
    """MLP autoencoder whose latent is quantised residually by L codebooks."""

    def __init__(self, dim: int, latent: int, levels: int, codebook_size: int, beta: float) -> None:
        super().__init__()
        self.beta = beta
        hidden = max(2 * latent, 64)
        self.encoder = nn.Sequential(nn.Linear(dim, hidden), nn.ReLU(), nn.Linear(hidden, latent))
        self.decoder = nn.Sequential(nn.Linear(latent, hidden), nn.ReLU(), nn.Linear(hidden, dim))
        self.codebooks = nn.Parameter(torch.zeros(levels, codebook_size, latent))

    def quantise(self, z: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor, list[torch.Tensor]]:
        """(codes [n, L], the sum of the chosen code vectors [n, latent], commitment + codebook loss,
        each level's residual input)."""
        residual, total, loss, codes, residuals = z, torch.zeros_like(z), z.new_zeros(()), [], []
        for book in self.codebooks:
            code = torch.cdist(residual.detach(), book).argmin(1)
            chosen = book[code]
            # Codebook term pulls the codes to the residuals; the commitment term (beta) the encoder to the codes.
            loss = loss + F.mse_loss(chosen, residual.detach()) + self.beta * F.mse_loss(residual, chosen.detach())
            residuals.append(residual.detach())
            total, residual = total + chosen, residual - chosen.detach()
            codes.append(code)
        return torch.stack(codes, 1), total, loss, residuals

    def forward(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor, list[torch.Tensor]]:
        """(loss, codes, each level's residuals)."""
        z = self.encoder(x)
        codes, quantised, quantisation_loss, residuals = self.quantise(z)
        z_q = z + (quantised - z).detach()  # straight-through: the decoder's gradient flows to the encoder
        return F.mse_loss(self.decoder(z_q), x) + quantisation_loss, codes, residuals

    @torch.no_grad()
    def restart_unused(self, codes: torch.Tensor, residuals: list[torch.Tensor], generator: torch.Generator) -> None:
        """Codes no item chose move to random residuals of their level: unused codes get no gradient
        and would stay dead (codebook collapse)."""
        for level, (book, residual) in enumerate(zip(self.codebooks, residuals)):
            unused = torch.bincount(codes[:, level], minlength=len(book)) == 0
            if unused.any():
                book[unused] = residual[torch.randint(len(residual), (int(unused.sum()),), generator=generator)]


def rqvae_codes(x: torch.Tensor, config: SemanticIdConfig, generator: torch.Generator) -> torch.Tensor:
    """Trains an RQ-VAE on the item vectors (full batch) and returns their codes [n, L]. The codebooks
    start as residual k-means of the untrained latents, which keeps codes from going unused."""
    torch.manual_seed(int(torch.randint(2**31, (1,), generator=generator)))
    x = x / x.std().clamp(min=1e-8)  # SVD vectors scale with the data size
    model = RQVAE(x.shape[1], config.rqvae_latent, config.levels, config.codebook_size, config.rqvae_beta)
    with torch.no_grad():
        residual = model.encoder(x)
        for level in range(config.levels):
            centroids, assign = kmeans(residual, config.codebook_size, config.kmeans_iterations, generator)
            model.codebooks[level, : len(centroids)] = centroids
            residual = residual - centroids[assign]
    optimizer = torch.optim.Adam(model.parameters(), lr=1e-3)
    for step in range(config.rqvae_epochs):
        optimizer.zero_grad()
        loss, codes, residuals = model(x)
        loss.backward()
        optimizer.step()
        if step % 10 == 0 and step < 0.8 * config.rqvae_epochs:  # the last steps settle the restarted codes
            model.restart_unused(codes, residuals, generator)
    with torch.no_grad():
        return model.quantise(model.encoder(x))[0]


def with_collision_level(codes: np.ndarray, codebook_size: int) -> SemanticIds:
    """Codes [n, L] of items 1..n -> every item's unique [L + 1] codes (row 0: padding), with usage stats."""
    _, group, counts = np.unique(codes, axis=0, return_inverse=True, return_counts=True)
    group = group.ravel()
    order = np.argsort(group, kind="stable")  # items of one tuple in id order
    first = np.concatenate([[0], np.cumsum(counts)[:-1]])
    collision = np.empty(len(codes), dtype=np.int64)
    collision[order] = np.arange(len(codes)) - np.repeat(first, counts)
    full = np.vstack([np.zeros((1, codes.shape[1] + 1), dtype=np.int64), np.column_stack([codes, collision])])
    sizes = np.array([codebook_size] * codes.shape[1] + [int(counts.max())], dtype=np.int64)
    usage = np.array([len(np.unique(codes[:, level])) / codebook_size for level in range(codes.shape[1])])
    return SemanticIds(full, sizes, usage, float((counts[group] > 1).mean()))
