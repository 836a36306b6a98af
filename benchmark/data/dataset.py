"""From a dataset config to a cached protocol split.

The split is cached as .npz (no pickle) under a key hashing the dataset files' contents, the
reader options, the preprocessing and the protocol, so a second run reuses it.
"""

from __future__ import annotations

import dataclasses
import hashlib
import inspect
import json
import logging
import os
import zipfile
from dataclasses import asdict, dataclass, field, replace
from pathlib import Path
from typing import Any, Callable

import numpy as np

from benchmark.data.catalog import cache_subdir, fetch_hint
from benchmark.data.preprocess import PreprocessConfig, Prepared, preprocess
from benchmark.data.readers import POSITIONAL_TIMES, UNTIMED, MissingData, read_interactions
from benchmark.data.sessions import SessionInfo, session_split
from benchmark.data.split import (EvalSet, Sequences, SplitData, TemporalInfo, horizon, leave_one_out, refit_at,
                                  shuffle_order, split_at, temporal, time_cuts)
from benchmark.errors import ConfigError, DataError
from benchmark.files import walk_once, write_npz_atomically

log = logging.getLogger("seqrec")
EMBEDDED = Path(__file__).parent / "embedded"
# Part of the cache key: bump when the cached arrays change meaning or when reading, preprocessing or
# splitting changes what they hold (2: whitespace-separated files and empty ids read anew; 3: users on
# several lines of a sequences file, RecBole float times, UTF-8 byte order marks read anew).
CACHE_FORMAT = 4  # 4: splits say whether their times are positions (order-only formats)

TIMED_PROTOCOLS = ("temporal", "session")  # they cut by time: refused on order-only formats
PROTOCOLS: dict[str, Callable[..., SplitData]] = {"loo": leave_one_out, "horizon": horizon, "temporal": temporal,
                                                  "session": session_split}


@dataclass(frozen=True)
class DatasetSpec:
    """What to read and how to preprocess it (the `dataset` config group)."""

    name: str
    reader: str
    path: str | None = None  # directory of the native files; None: embedded copy or $SEQREC_DATA/<name>
    domain: str = ""
    source: str | None = None  # the catalog dataset whose files it reads (None: its name): presets of one dataset share them
    mask_history: bool = True  # False where repeats are legitimate targets (music re-listening)
    # False: evaluate only users whose targets have a real time (not MIND's untimed history items);
    # every user's sequence still trains and serves as input
    history_targets: bool = True
    shuffle_order: bool = False  # the order control: training sequences and histories shuffled per run seed
    options: dict[str, Any] = field(default_factory=dict)  # reader-specific options
    preprocess: PreprocessConfig = PreprocessConfig()

    @property
    def files_of(self) -> str:
        """The catalog name of the files read: where they live and how to fetch them."""
        return self.source or self.name

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> "DatasetSpec":
        d = dict(d)
        pre = {k: d.pop(k) for k in list(d) if k in PreprocessConfig.__dataclass_fields__}
        known = {k: d.pop(k) for k in list(d) if k in cls.__dataclass_fields__}
        known.setdefault("options", {})
        known["options"] = {**known["options"], **d}  # leftover keys are reader options
        return cls(**known, preprocess=PreprocessConfig(**pre))


COMPRESSED = (".gz", ".bz2", ".zip")


def named_by_file(dataset: dict[str, Any]) -> dict[str, Any]:
    """The dataset group with its name filled in from its file where the preset leaves ``name: null``
    (the generic formats: ``dataset=sequences dataset.path=/data/Beauty.txt`` records and reports as
    ``Beauty``). A name the user sets (``dataset.name=...``) is kept. Presets that name themselves are
    untouched, so their records keep their config hashes."""
    if dataset.get("name") is not None:
        return dataset
    path, file = dataset.get("path"), dataset.get("file")
    if not path and not file:
        raise ConfigError("dataset.name is null (named after its file) but dataset.path is not set; set dataset.path "
                          "to your file, or dataset.name")
    source = Path(str(file or path)).expanduser()
    if source.is_dir():  # a folder holding the one file the reader finds: the folder's name
        return {**dataset, "name": source.name}
    name = source.name
    for suffix in COMPRESSED:  # Beauty.txt.gz -> Beauty
        name = name.removesuffix(suffix)
    return {**dataset, "name": Path(name).stem or name}


def data_home() -> Path:
    return Path(os.environ.get("SEQREC_DATA", Path.home() / ".cache" / "seqrec"))


def dataset_dir(spec: DatasetSpec) -> Path:
    """dataset.path (a folder, or a file for single-file formats); else the embedded copy; else
    the fetch cache $SEQREC_DATA/<name> (Amazon: <name>/<release>)."""
    if spec.path:
        return Path(spec.path).expanduser()
    if (EMBEDDED / spec.files_of).is_dir():
        return EMBEDDED / spec.files_of
    return data_home() / cache_subdir(spec.files_of, spec.options)


def files_hash(directory: Path, named: str | None = None) -> str:
    """SHA-256 over the names and contents of every file below ``directory`` (or of the file itself
    when dataset.path names a file), except hidden files and the Markdown notes we add beside data
    (SOURCE.md), which do not change the data. ``named`` (dataset.file) is the data file, so it
    counts whatever its name."""
    if not directory.exists():
        raise DataError(f"dataset directory not found: {directory} (set dataset.path or fetch the dataset)")
    digest = hashlib.sha256()
    root = directory if directory.is_dir() else directory.parent
    files = [directory] if directory.is_file() else sorted(
        p for p in _files_below(directory)
        if p.suffix != ".md" and not any(s.startswith(".") for s in p.relative_to(directory).parts)
        or named is not None and p.relative_to(directory) == Path(named)
    )
    for path in files:
        digest.update(str(path.relative_to(root)).encode() + b"\0")
        with open(path, "rb") as f:
            for chunk in iter(lambda: f.read(1 << 20), b""):
                digest.update(chunk)
    return digest.hexdigest()


def _files_below(directory: Path) -> list[Path]:
    """Every file below ``directory``, through symlinked folders too (the readers' globs follow
    them, e.g. MIND's train/ linked to a big disk), each real folder once."""
    return [folder / name for folder, _, names in walk_once(directory) for name in names if (folder / name).is_file()]


@dataclass
class PreparedSplit:
    split: SplitData
    dataset_hash: str  # content hash of the raw files
    split_key: str  # content hash of the split: runs with equal keys were evaluated on the same split
    steps: list[list[Any]]  # preprocessing counts, for statistics tables
    from_cache: bool


def prepare_split(spec: DatasetSpec, protocol: str, protocol_options: dict[str, Any] | None = None,
                  cache_dir: str | Path | None = None, seed: int = 0, refit: bool = False) -> PreparedSplit:
    """Reads, preprocesses and splits a dataset, or loads the cached result. ``seed`` draws the order of
    ``spec.shuffle_order`` (unused without it). ``refit`` (temporal only): the split of protocol.refit's second
    fit, preprocessed and trained on every interaction before the test cut (``refit_at``)."""
    protocol_options = dict(protocol_options or {})
    if protocol not in PROTOCOLS:
        raise DataError(f"protocol.name={protocol!r} is unknown; choose one of {', '.join(PROTOCOLS)}")
    if refit and protocol != "temporal":
        raise ConfigError(refit_refusal(protocol))
    accepted = list(inspect.signature(PROTOCOLS[protocol]).parameters)[3:]  # after sequences, user_ids, item_ids
    for key in protocol_options:
        if key not in accepted:
            raise ConfigError(f"protocol.{key} is not an option of protocol {protocol!r} (options: {', '.join(accepted) or 'none'})")
    directory = dataset_dir(spec)
    if not directory.exists():
        raise DataError(f"dataset directory not found: {directory}; {fetch_hint(spec.files_of, directory, spec.options)}")
    data_hash = files_hash(directory, spec.options.get("file"))
    key_src = json.dumps(
        {"format": CACHE_FORMAT, "data": data_hash, "reader": spec.reader, "options": spec.options,
         "preprocess": asdict(spec.preprocess), "protocol": protocol, "protocol_options": protocol_options,
         # only when on: the defaults keep older keys (splits in true order, every target evaluated)
         **({} if spec.history_targets else {"history_targets": False}),
         **({"shuffle_order": True, "shuffle_seed": seed} if spec.shuffle_order else {}),
         **({"refit": True} if refit else {})},
        sort_keys=True, default=str,
    )
    key = hashlib.sha256(key_src.encode()).hexdigest()[:20]
    cache_path = Path(cache_dir or data_home() / "splits") / f"{spec.name}-{protocol}{'-refit' if refit else ''}-{key}.npz"
    if cache_path.is_file():
        try:
            split, steps, fingerprint = load_split(cache_path)
            return PreparedSplit(split, data_hash, fingerprint, steps, from_cache=True)
        except (OSError, ValueError, EOFError, KeyError, zipfile.BadZipFile) as e:  # truncated or overwritten
            log.warning("prepared split %s is unreadable (%s); preparing it again", cache_path, e)
            cache_path.unlink(missing_ok=True)
    try:
        interactions = read_interactions(spec.reader, directory, **spec.options)
    except MissingData as e:
        raise MissingData(f"{e}; {fetch_hint(spec.files_of, directory, spec.options)}") from None
    positional = bool(interactions.attrs.get(POSITIONAL_TIMES))
    if positional and protocol in TIMED_PROTOCOLS:
        raise ConfigError(f"protocol={protocol} cuts by time, and dataset {spec.name} has none ({spec.reader} format: "
                          "each user's items in order, timestamps are positions); use protocol=loo or horizon")
    if protocol == "temporal":
        prepared, split = _temporal_split(interactions, spec, protocol_options, refit)
    else:
        prepared = preprocess(interactions, spec.preprocess)
        split = PROTOCOLS[protocol](prepared.sequences, prepared.user_ids, prepared.item_ids, **protocol_options)
    if not spec.history_targets:
        split = timed_targets_only(split, interactions.attrs.get(UNTIMED))
    if spec.shuffle_order:
        split = shuffle_order(split, seed)
    if positional:
        split = dataclasses.replace(split, times_are_positions=True)
    steps = [list(s) for s in prepared.steps] + (split.session.steps if split.session is not None else [])
    fingerprint = save_split(cache_path, split, steps)
    return PreparedSplit(split, data_hash, fingerprint, steps, from_cache=False)


def timed_targets_only(split: SplitData, untimed: int | None) -> SplitData:
    """The split evaluated on the users whose every target has a real time (dataset.history_targets=false)."""
    if untimed is None:
        raise ConfigError("dataset.history_targets=false needs a reader that marks untimed items (mind); this one has none")

    def timed(es: EvalSet) -> EvalSet:
        if not len(es):  # protocol.refit's split has no validation set
            return es
        keep = ((es.target_times != untimed) | (es.targets == 0)).all(axis=1)
        if not keep.any():
            raise DataError("dataset.history_targets=false leaves no user to evaluate: every target is an untimed history item")
        rows = np.flatnonzero(keep)
        return EvalSet(es.users[rows], es.histories.take(rows), es.targets[rows], es.target_times[rows])

    return dataclasses.replace(split, valid=timed(split.valid), test=timed(split.test))


def refit_refusal(protocol: str) -> str:
    """Why protocol.refit=true is refused with ``protocol`` (one line)."""
    why = ("a refit there would retrain on the whole training window, its validation sessions included, "
           "which is not built yet" if protocol == "session" else
           "it has no global cut before which to retrain (it already trains on everything but each user's held-out targets)")
    return (f"protocol.refit=true is defined for protocol=temporal only, not {protocol}: {why}; "
            "use protocol=temporal, or protocol.refit=false")


def _temporal_split(interactions: Any, spec: DatasetSpec, options: dict[str, Any],
                    refit: bool = False) -> tuple[Prepared, SplitData]:
    """The temporal protocol without leakage: cuts from every interaction's timestamp, then preprocessing whose
    k-core reads only interactions before the training cut (the validation cut; the test cut for ``refit``),
    then the split at the cuts."""
    valid_cut, test_cut = time_cuts(interactions["timestamp"].to_numpy(), **options)
    prepared = preprocess(interactions, spec.preprocess, core_before=test_cut if refit else valid_cut)
    split = (refit_at if refit else split_at)(prepared.sequences, prepared.user_ids, prepared.item_ids, valid_cut, test_cut)
    after = interactions["user"][interactions["timestamp"].to_numpy() >= test_cut].astype(str).unique()
    no_history = int(np.count_nonzero(~np.isin(after, prepared.user_ids)))
    split.temporal = replace(split.temporal, no_history=no_history)
    return prepared, split


def _seq_arrays(prefix: str, s: Sequences) -> dict[str, np.ndarray]:
    return {f"{prefix}_items": s.items, f"{prefix}_offsets": s.offsets, f"{prefix}_times": s.times}


def _seq_from(prefix: str, z: Any) -> Sequences:
    return Sequences(z[f"{prefix}_items"], z[f"{prefix}_offsets"], z[f"{prefix}_times"])


def split_fingerprint(arrays: dict[str, np.ndarray]) -> str:
    """Hash of a split's arrays (names, dtypes, shapes, values): equal for equal splits whatever code
    or settings produced them, so reports can tell whether two runs saw the same split."""
    digest = hashlib.sha256()
    for name in sorted(arrays):
        a = np.ascontiguousarray(arrays[name])
        digest.update(f"{name}:{a.dtype.str}:{a.shape}".encode())
        digest.update(a.tobytes())
    return digest.hexdigest()[:20]


def save_split(path: Path, split: SplitData, steps: list[list[Any]]) -> str:
    """Writes the split atomically (temp file + rename): a killed run leaves no partial cache.
    Returns its fingerprint (stored with it)."""
    arrays: dict[str, np.ndarray] = {**_seq_arrays("train", split.train)}
    for name, es in (("valid", split.valid), ("test", split.test)):
        arrays.update(_seq_arrays(f"{name}_hist", es.histories))
        arrays[f"{name}_users"] = es.users
        arrays[f"{name}_targets"] = es.targets
        arrays[f"{name}_target_times"] = es.target_times
    arrays["user_ids"] = split.user_ids.astype(str)
    arrays["item_ids"] = split.item_ids.astype(str)
    fingerprint = split_fingerprint(arrays)
    meta = {"protocol": split.protocol, "steps": steps, "fingerprint": fingerprint}
    if split.temporal is not None:  # refit only when set: older code reads a temporal split's meta of today
        meta["temporal"] = {k: v for k, v in asdict(split.temporal).items() if k != "refit" or v}
    if split.session is not None:
        meta["session"] = asdict(split.session)
    if split.times_are_positions:
        meta["times_are_positions"] = True
    arrays["meta"] = np.array(json.dumps(meta))
    write_npz_atomically(path, arrays)
    return fingerprint


def load_split(path: Path) -> tuple[SplitData, list[list[Any]], str]:
    """The split, its preprocessing steps and its fingerprint, as save_split wrote them."""
    with np.load(path, allow_pickle=False) as z:
        meta = json.loads(str(z["meta"]))
        evals = {
            name: EvalSet(z[f"{name}_users"], _seq_from(f"{name}_hist", z), z[f"{name}_targets"], z[f"{name}_target_times"])
            for name in ("valid", "test")
        }
        temporal_info = TemporalInfo(**meta["temporal"]) if "temporal" in meta else None
        session_info = SessionInfo(**meta["session"]) if "session" in meta else None
        split = SplitData(_seq_from("train", z), evals["valid"], evals["test"], z["user_ids"], z["item_ids"], meta["protocol"],
                          temporal_info, session_info, bool(meta.get("times_are_positions")))
    return split, meta["steps"], meta["fingerprint"]
