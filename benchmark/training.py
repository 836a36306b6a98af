"""The training loop shared by every neural model: Adam, early stopping on a validation metric,
best weights restored before testing."""

from __future__ import annotations

import copy
import logging
import math
import os
import random
import tempfile
import time
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Callable, Iterable, Iterator

import numpy as np
import torch

from benchmark.config import TrainerConfig
from benchmark.errors import BenchmarkError, ConfigError
from benchmark.optimizers import build_optimizer
from benchmark.progress import enabled as bars_shown, epoch_line, progress


@dataclass
class EpochLog:
    epoch: int
    loss: float
    valid_metric: float  # the trainer's valid_metric (ndcg@10 by default)
    seconds: float  # training + validation
    valid_seconds: float = 0.0  # the validation part of ``seconds``


# Called with each finished epoch's log (the wandb logger registers here while a model trains).
EPOCH_HOOKS: list[Callable[[EpochLog], None]] = []
# Called once with the logs of the epochs a checkpoint restored, before training goes on (a tracker
# mirrors the whole history, not only the epochs of the attempt that finishes).
RESUME_HOOKS: list[Callable[[list[EpochLog]], None]] = []
# Called once when trainer.time_limit ends training, with the number of complete epochs (the run
# records that it was cut).
CUT_HOOKS: list[Callable[[int], None]] = []


PRECISIONS = ("fp32", "bf16", "tf32")
log = logging.getLogger("seqrec")


class TrainingDiverged(BenchmarkError):
    """The loss became NaN or infinite."""


def keep_freed_memory(keep: bool = True) -> None:
    """Lets glibc reuse freed large blocks instead of returning them to the OS (``keep=False``:
    back to thresholds like glibc's own, and the freed memory is handed back).

    Full-softmax logits are ~100 MB per step; by default glibc serves such blocks with fresh mmap
    pages and unmaps them on free, so every step pays page faults to re-zero them (about 40% of a
    SASRec step on CPU). Raising the mmap and trim thresholds keeps the pages mapped, at the price
    of a fragmented heap, so train_loop turns it on for training only. No-op where the C library
    is not glibc.
    """
    import ctypes

    try:
        libc = ctypes.CDLL("libc.so.6")  # glibc's soname; ctypes.util.find_library runs ldconfig (slow)
        m_trim_threshold, m_mmap_threshold = -1, -3
        libc.mallopt(m_mmap_threshold, 1 << 30 if keep else 32 << 20)  # 32 MB: glibc's dynamic maximum
        libc.mallopt(m_trim_threshold, 1 << 30 if keep else 64 << 20)
        if not keep:
            libc.malloc_trim(0)
    except (OSError, AttributeError):
        pass


def minibatches(n: int, batch_size: int, generator: torch.Generator) -> Iterator[torch.Tensor]:
    """Shuffled index batches over n training examples."""
    order = torch.randperm(n, generator=generator)
    for lo in range(0, n, batch_size):
        yield order[lo : lo + batch_size]


def train_loop(
    net: torch.nn.Module,
    step_loss: Callable[[torch.Tensor, torch.Generator], torch.Tensor],
    n_examples: int,
    validate: Callable[[], float],
    cfg: TrainerConfig,
    batches: Callable[[torch.Generator], Iterable[torch.Tensor]] | None = None,
) -> list[EpochLog]:
    """Runs epochs of ``step_loss`` over shuffled batches of example indices (or over the
    ``batches(generator)`` of a model that orders its own, one row per example).

    ``step_loss(batch_indices, generator)`` returns the mean loss of a batch; ``validate()`` returns
    the validation metric (higher is better). Stops after ``cfg.patience`` epochs without
    improvement, or at ``cfg.time_limit`` minutes (checked between steps; an unfinished epoch is
    dropped), and loads the best weights back into ``net``. ``cfg.refit`` (protocol.refit's second fit):
    exactly ``cfg.max_epochs`` epochs (the count chosen on validation), ``validate`` is never called (the
    data has no validation set; its log's metric is NaN) and the last weights are kept.
    """
    if cfg.precision not in PRECISIONS:
        raise ConfigError(f"trainer.precision={cfg.precision!r} is unknown; choose one of {', '.join(PRECISIONS)}")
    keep_freed_memory()
    # Set for every run, not only tf32 ones: process-wide flags would carry into the next run of a sweep.
    torch.backends.cuda.matmul.allow_tf32 = torch.backends.cudnn.allow_tf32 = cfg.precision == "tf32"
    device_type = next(net.parameters()).device.type
    if cfg.precision == "tf32" and device_type != "cuda":
        log.warning("trainer.precision='tf32' has no effect on %s (TF32 matmuls are a CUDA feature): "
                    "this run trains in fp32", device_type)
    step = torch.compile(step_loss) if cfg.compile else step_loss
    optimizer = build_optimizer(list(net.parameters()), cfg)
    generator = torch.Generator().manual_seed(cfg.seed)
    best, best_state, since_best, logs = -math.inf, None, 0, []
    checkpoint = Path(cfg.checkpoint_path) if cfg.checkpoint_path else None
    if checkpoint is not None and checkpoint.is_file():
        best, best_state, since_best, logs = load_checkpoint(checkpoint, net, optimizer, generator)
        for resume_hook in RESUME_HOOKS:
            resume_hook(list(logs))
    first = len(logs) + 1
    if logs and since_best >= cfg.patience:  # the checkpoint of a run that had already stopped early
        first = cfg.max_epochs + 1
    deadline = time.perf_counter() + 60 * cfg.time_limit if cfg.time_limit else math.inf
    cut = False
    for epoch in range(first, cfg.max_epochs + 1):
        start = time.perf_counter()
        net.train()
        total, count = 0.0, 0
        epoch_batches = batches(generator) if batches else minibatches(n_examples, cfg.batch_size, generator)
        for idx in progress(epoch_batches, -(-n_examples // cfg.batch_size), f"epoch {epoch}/{cfg.max_epochs}"):
            if time.perf_counter() > deadline:
                cut = True
                break
            with torch.autocast(device_type, dtype=torch.bfloat16, enabled=cfg.precision == "bf16"):
                loss = step(idx, generator)
            if not torch.isfinite(loss):
                raise TrainingDiverged(
                    f"loss became {loss.item()} in epoch {epoch}; lower trainer.lr (now {cfg.lr}) "
                    "or check the data"
                )
            optimizer.zero_grad(set_to_none=True)
            loss.backward()
            if cfg.grad_clip:
                torch.nn.utils.clip_grad_norm_(net.parameters(), cfg.grad_clip)
            optimizer.step()
            total += loss.item() * len(idx)
            count += len(idx)
        if cut:  # the unfinished epoch is neither validated nor logged
            break
        net.eval()
        valid_start = time.perf_counter()
        metric = math.nan if cfg.refit else validate()
        end = time.perf_counter()
        logs.append(EpochLog(epoch, total / max(count, 1), metric, end - start, end - valid_start))
        for hook in EPOCH_HOOKS:
            hook(logs[-1])
        if metric > best:
            best, since_best = metric, 0
            best_state = copy.deepcopy(net.state_dict())
        else:
            since_best += 1
        if not bars_shown():  # no bar to watch (a cluster log, a pipe): one line per epoch instead
            log.info(epoch_line(epoch, cfg.max_epochs, logs[-1].loss, cfg.valid_metric, metric, best,
                                epoch - since_best, logs[-1].seconds, refit=cfg.refit))
        if checkpoint is not None:
            save_checkpoint(checkpoint, net, optimizer, generator, best, best_state, since_best, logs)
        if since_best >= cfg.patience and not cfg.refit:  # a refit's NaN never improves: it runs every epoch
            break
        if time.perf_counter() > deadline and epoch < cfg.max_epochs:
            cut = True
            break
    if cut:
        log.warning("trainer.time_limit=%g min reached after %d complete epochs: training stops and the best "
                    "weights so far are tested", cfg.time_limit, len(logs))
        for cut_hook in CUT_HOOKS:
            cut_hook(len(logs))
    if best_state is not None:
        net.load_state_dict(best_state)
    keep_freed_memory(False)
    return logs


def save_checkpoint(path: Path, net: torch.nn.Module, optimizer: torch.optim.Optimizer, generator: torch.Generator,
                    best: float, best_state: dict | None, since_best: int, logs: list[EpochLog]) -> None:
    """Everything the loop needs to continue as if never stopped, written atomically (temp + rename).
    Only tensors and plain containers, so it loads with ``weights_only=True``."""
    np_state = np.random.get_state()
    state = {
        "net": net.state_dict(),
        "optimizer": optimizer.state_dict(),
        "generator": generator.get_state(),
        "torch_rng": torch.get_rng_state(),
        "cuda_rng": torch.cuda.get_rng_state_all() if torch.cuda.is_available() else [],
        "numpy_rng": [np_state[0], torch.from_numpy(np_state[1].astype(np.int64)), *np_state[2:]],
        "python_rng": random.getstate(),
        "best": best,
        "best_state": best_state,
        "since_best": since_best,
        "logs": [asdict(log) for log in logs],
    }
    for attempt in (1, 2):  # a duplicate of this run that published its record removes the folder once
        try:
            path.parent.mkdir(parents=True, exist_ok=True)
            # A temp name of its own: two attempts of one run (a requeued job still running) never
            # rename each other's half-written file into place.
            fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
            try:
                with os.fdopen(fd, "wb") as f:
                    torch.save(state, f)
                os.replace(tmp, path)
            except BaseException:
                Path(tmp).unlink(missing_ok=True)
                raise
            return
        except FileNotFoundError:
            if attempt == 2:
                raise
        except (OSError, RuntimeError) as e:  # torch reports a full disk as a RuntimeError
            reason = " ".join(str(e).split())[:200]
            raise BenchmarkError(f"cannot write the checkpoint {path} ({reason}); the last one written is kept") from None


def load_checkpoint(path: Path, net: torch.nn.Module, optimizer: torch.optim.Optimizer,
                    generator: torch.Generator) -> tuple[float, dict | None, int, list[EpochLog]]:
    """Restores the state saved by ``save_checkpoint``; returns (best, best_state, since_best, logs)."""
    try:
        state = torch.load(path, map_location="cpu", weights_only=True)
        net.load_state_dict(state["net"])
    except Exception as e:  # unsafe pickle content, a truncated file, another model's weights
        raise BenchmarkError(
            f"checkpoint {path} cannot be loaded ({str(e).splitlines()[0][:200]}); delete it to start over"
        ) from None
    optimizer.load_state_dict(state["optimizer"])
    generator.set_state(state["generator"])
    torch.set_rng_state(state["torch_rng"])
    if state["cuda_rng"] and torch.cuda.is_available():
        torch.cuda.set_rng_state_all(state["cuda_rng"])
    kind, keys, *rest = state["numpy_rng"]
    np.random.set_state((kind, keys.numpy().astype(np.uint32), *rest))
    version, internal, gauss = state["python_rng"]
    random.setstate((version, tuple(internal), gauss))
    logs = [EpochLog(**log) for log in state["logs"]]
    return state["best"], state["best_state"], state["since_best"], logs


def window_index(offsets: np.ndarray, max_len: int, stride: int | None = None) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """Where the next-item targets of every training window lie in the flat ``items`` array.

    A sequence of length n has n - 1 targets (all but its first item). Windows of ``max_len``
    positions end every ``stride`` targets, counted from the end (default ``max_len``: disjoint
    windows). A window's targets are its last ``stride`` positions; the positions before them are
    context only, so every target is trained once, with at least max_len - stride + 1 input items
    (fewer only near the start of its sequence).

    Returns ``idx`` [W, max_len] (flat index of each position's target, right-aligned), ``valid``
    [W, max_len] (False on left padding), ``trained`` [W, max_len] (the positions whose target
    counts) and ``seq_end`` [W] (exclusive end of the window's sequence in ``items``).
    """
    stride = min(stride or max_len, max_len)
    lengths = np.diff(offsets)
    n_targets = np.maximum(lengths - 1, 0)
    n_windows = -(-n_targets // stride)  # ceil
    user = np.repeat(np.arange(len(lengths)), n_windows)
    first = np.concatenate([[0], np.cumsum(n_windows)[:-1]])
    j = np.arange(len(user)) - np.repeat(first, n_windows)  # window index counted from the end
    end = offsets[user + 1] - j * stride  # exclusive end of the window's targets in `items`
    idx = end[:, None] - max_len + np.arange(max_len)
    valid = idx >= offsets[user][:, None] + 1
    trained = valid & (idx >= end[:, None] - stride)
    return np.where(valid, idx, 0), valid, trained, offsets[user + 1]


def training_windows(items: np.ndarray, offsets: np.ndarray, max_len: int,
                     stride: int | None = None) -> tuple[torch.Tensor, torch.Tensor]:
    """Every position of every training sequence as a next-item target, once.

    A sequence s of length n gives inputs s[:-1] and targets s[1:]; when n - 1 > max_len it is cut
    into windows of max_len, one every ``stride`` targets (see ``window_index``). Returns
    left-padded (inputs, targets) [W, max_len]; target 0 marks a position without a loss.
    """
    idx, valid, trained, _ = window_index(offsets, max_len, stride)
    targets = np.where(trained, items[idx], 0)
    inputs = np.where(valid, items[idx - 1], 0)
    return torch.from_numpy(inputs.astype(np.int64)), torch.from_numpy(targets.astype(np.int64))
