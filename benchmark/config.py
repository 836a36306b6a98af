"""Typed records of the configuration groups, and the validation of a whole run config.

``validate_config`` runs before any work (no data read, no model built). A bad key fails with one
line naming the key and what it allows. Schemas:

- trainer: ``TrainerConfig``; protocol: ``ProtocolConfig`` + the keyword parameters of the protocol
  function in ``PROTOCOLS``; dataset: ``DatasetSpec`` + ``PreprocessConfig`` + the reader's keyword
  parameters; top level: ``RunConfig``.
- model: derived from the ``_target_`` constructor's signature and type hints, so a new model needs no
  schema of its own (the class must have fit and score and declare reads_order: ``check_recommender_class``).
  ``**_`` in a signature swallows framework arguments and accepts no user keys; a class whose
  ``**kwargs`` are passed on declares where with ``keyword_targets(config)``.
- Values: ``VALUE_RULES`` (by key name, any group) and ``check_combinations`` (rules across groups).
"""

from __future__ import annotations

import dataclasses
import importlib
import inspect
import math
import re
import types
import typing
from dataclasses import dataclass, fields
from typing import Any, Callable

from benchmark.errors import ConfigError


@dataclass(frozen=True)
class TrainerConfig:
    lr: float = 1e-3
    batch_size: int = 256  # training windows per step
    max_epochs: int = 50
    patience: int = 5  # epochs without a better validation metric before stopping
    weight_decay: float = 0.0
    device: str = "auto"  # auto | cpu | cuda | cuda:N
    eval_batch_size: int = 256  # users per evaluation batch (a [256, n_items] score block stays in cache)
    valid_metric: str = "ndcg@10"  # early stopping / model selection; never a test metric
    grad_clip: float | None = 5.0  # max gradient norm; null: no clipping
    optimizer: str = "adam"  # adam | adagrad (with momentum, GRU4Rec's official optimizer)
    betas: tuple[float, float] = (0.9, 0.999)  # Adam's (beta1, beta2)
    momentum: float = 0.0  # adagrad's momentum
    # torch intra-op threads; None: the cores this process may use shared among the runs launched beside
    # it (benchmark.run.default_threads). Part of a run's identity as given (null stays null, so records
    # keep their hashes): a pinned count is a choice that can change float rounding; the count null
    # resolved to is recorded in env.json (torch_threads).
    num_threads: int | None = None
    time_limit: float | None = None  # minutes of training; at the limit the best weights so far are tested
    deterministic: bool = True  # torch deterministic algorithms (identical reruns; may be slower on GPU)
    resume: bool = False  # checkpoint every epoch and continue from the checkpoint when relaunched
    precision: str = "fp32"  # fp32 | bf16 (autocast of the training step) | tf32 (TF32 matmuls, CUDA)
    compile: bool = False  # torch.compile the training step (first steps compile; CPU needs a C++ compiler)
    save_model: bool = False  # also write the fitted model into the record (model.pt; seqrec-report --attribution)
    # Set by run_experiment, not by users: from the top level / dataset.mask_history / trainer.resume.
    mask_history: bool = True  # validation ranks as the test does
    seed: int = 0
    checkpoint_path: str | None = None
    # protocol.refit's second fit: exactly max_epochs epochs (the count chosen on validation), nothing validated,
    # the last weights kept
    refit: bool = False

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> "TrainerConfig":
        known = {f.name for f in fields(cls)}
        return cls(**{k: v for k, v in d.items() if k in known})


# TrainerConfig fields that code fills in; a user key of that name is an error.
TRAINER_INTERNAL = ("mask_history", "seed", "checkpoint_path", "refit")


@dataclass(frozen=True)
class ProtocolConfig:
    name: str
    ks: list[int] = dataclasses.field(default_factory=lambda: [5, 10, 20])  # cut-offs of every @K metric
    # temporal only: after model selection, retrain from scratch on everything before the test cut and test that
    # model (docs/protocols.md); false for loo and horizon
    refit: bool = False


@dataclass(frozen=True)
class RunConfig:
    """The top level of conf/config.yaml; groups are validated by their own schemas."""

    dataset: dict
    model: dict
    protocol: dict
    trainer: dict
    seed: int = 0
    results_dir: str = "results"
    cache_dir: str | None = None
    logger: Any = None
    rerun: bool = False  # run even where a complete record exists, replacing it
    reuse: typing.Literal["same_code", "any_code"] = "same_code"  # which complete records stand in for a run


def resolve_device(device: str) -> str:
    import torch

    if device == "auto":
        return "cuda" if torch.cuda.is_available() else "cpu"
    return device


def check_device(device: Any) -> None:
    """trainer.device names a device this machine has (a model that never trains would otherwise
    ignore it, and a trained one would fail with a traceback mid-run)."""
    import torch

    if not isinstance(device, str) or device in ("auto", "cpu"):
        return
    if device.startswith("cuda"):
        index = int(device.partition(":")[2] or 0)
        count = torch.cuda.device_count() if torch.cuda.is_available() else 0
        if index >= count:
            raise ConfigError(f"trainer.device={device!r} is not available here (this torch {torch.__version__} sees "
                              f"{count} CUDA device{'s' if count != 1 else ''}); use trainer.device=auto or cpu")
    elif device == "mps" and not torch.backends.mps.is_available():
        raise ConfigError("trainer.device='mps' is not available here; use trainer.device=auto or cpu")


# ---------------------------------------------------------------------------------------------
# Value rules: key name -> (check, what is allowed). Applied to that key in any group it appears.


def _positive(v: Any) -> bool:
    return v > 0


def _non_negative(v: Any) -> bool:
    return v >= 0


def _probability(v: Any) -> bool:
    return 0 <= v < 1


def _positive_or_none(v: Any) -> bool:
    return v is None or v > 0


def _positive_list(v: Any) -> bool:
    return len(v) > 0 and all(k > 0 for k in v)


def _device(v: Any) -> bool:
    return v in ("auto", "cpu", "cuda", "mps") or re.fullmatch(r"cuda:\d+", v) is not None


# The per-user metrics each protocol computes (benchmark/evaluation.py), which early stopping can read.
PROTOCOL_METRICS = {"loo": ("hr", "ndcg", "mrr"), "horizon": ("recall", "ndcg"), "temporal": ("hr", "ndcg", "mrr"),
                    "session": ("hr", "ndcg", "mrr")}


def _date(v: Any) -> bool:
    from benchmark.data.split import parse_date

    return v is None or parse_date(v) is not None


def _metric(v: Any) -> bool:
    return re.fullmatch(r"(hr|ndcg|mrr|recall)@\d+", v) is not None


VALUE_RULES: dict[str, tuple[Callable[[Any], bool], str]] = {
    # trainer
    "lr": (_positive, "a number > 0"),
    "batch_size": (_positive, "an integer >= 1"),
    "eval_batch_size": (_positive, "an integer >= 1"),
    "max_epochs": (_positive, "an integer >= 1"),
    "patience": (_positive, "an integer >= 1"),
    "weight_decay": (_non_negative, "a number >= 0"),
    "time_limit": (_positive_or_none, "null or a number of minutes > 0"),
    "grad_clip": (_positive_or_none, "null or a number > 0"),
    "optimizer": (lambda v: v in ("adam", "adagrad"), "adam or adagrad"),
    "betas": (lambda v: len(v) == 2 and all(0 <= b < 1 for b in v), "a list of two numbers in [0, 1)"),
    "momentum": (_probability, "a number in [0, 1)"),
    "num_threads": (_positive_or_none, "null or an integer >= 1"),
    "device": (_device, "auto, cpu, cuda, cuda:N or mps"),
    "precision": (lambda v: v in ("fp32", "bf16", "tf32"), "fp32, bf16 or tf32"),
    "valid_metric": (_metric, "METRIC@K with METRIC one of hr, ndcg, mrr (loo) or recall, ndcg (horizon)"),
    # protocol
    "ks": (_positive_list, "a non-empty list of integers >= 1"),
    "k": (_positive, "an integer >= 1"),
    "n_negatives": (_positive, "an integer >= 1"),
    "candidates": (lambda v: v in ("full", "sampled"), "full or sampled"),
    "sampler": (lambda v: v in ("uniform", "popularity"), "uniform or popularity"),
    "negatives_seed": (_non_negative, "an integer >= 0"),  # numpy refuses a negative seed mid-run
    "test_quantile": (lambda v: 0 < v < 1, "a number in (0, 1)"),  # temporal
    "valid_quantile": (lambda v: 0 < v < 1, "a number in (0, 1)"),
    "test_date": (_date, "a date YYYY-MM-DD (UTC), or null"),
    "valid_date": (_date, "a date YYYY-MM-DD (UTC), or null"),
    "test_days": (_positive, "a number of days > 0"),  # session
    "train_fraction": (lambda v: 0 < v <= 1, "a number in (0, 1], e.g. 0.015625 for 1/64"),
    "valid_fraction": (lambda v: 0 < v < 1, "a number in (0, 1)"),
    "min_item_count": (_positive, "an integer >= 1"),
    # dataset
    "user_core": (_positive, "an integer >= 1"),
    "item_core": (_positive, "an integer >= 1"),
    "min_seq_len": (_positive, "an integer >= 1"),
    # models
    "max_len": (_positive, "an integer >= 1"),
    "hidden": (_positive, "an integer >= 1"),
    "layers": (_positive, "an integer >= 1"),
    "heads": (_positive, "an integer >= 1"),
    "horizon": (_positive, "an integer >= 1"),
    "decoder_layers": (_positive, "an integer >= 1"),
    "beam_size": (_positive, "an integer >= 1"),
    "window": (_positive, "an integer >= 1"),
    "horizontal_filters": (_non_negative, "an integer >= 0"),  # Caser: 0 of one kind is the paper's ablation
    "vertical_filters": (_non_negative, "an integer >= 0"),
    "kernel": (_positive, "an integer >= 1"),
    "dilations": (_positive_list, "a non-empty list of integers >= 1"),
    "dropout": (_probability, "a number in [0, 1)"),
    "mask_prob": (lambda v: 0 < v < 1, "a number in (0, 1)"),
    "cell": (lambda v: v in ("gru", "lstm"), "gru or lstm"),
    "activation": (lambda v: v in ("gelu", "relu"), "gelu or relu"),
    "hidden_dropout": (_probability, "a number in [0, 1)"),
    "training": (lambda v: v in ("windows", "session_parallel"), "windows or session_parallel"),
    "sample_alpha": (_non_negative, "a number >= 0"),
    "bpreg": (_non_negative, "a number >= 0"),
    "logq": (_non_negative, "a number >= 0"),
    "dim": (_positive, "an integer >= 1"),  # BPR-MF
    "l2": (_non_negative, "a number >= 0 (> 0 for EASE)"),  # EASE, BPR-MF
    "shrink": (_non_negative, "a number >= 0"),  # ItemKNN
    # top level
    "seed": (lambda v: 0 <= v < 2**32, "an integer >= 0 and < 2^32 (numpy's seed range)"),
    # datasets: epoch units, or datetime text (the reader's fine_times); checked before any data is read
    "timestamp_unit": (lambda v: v in ("s", "ms", "us", "ns", "iso") or "%" in v,
                       "s, ms, us, ns, iso or a strftime format such as '%Y-%m-%d %H:%M:%S'"),
}


# ---------------------------------------------------------------------------------------------
# Types


def _type_name(tp: Any) -> str:
    if tp is type(None):
        return "null"
    origin = typing.get_origin(tp)
    if origin in (typing.Union, types.UnionType):
        return " or ".join(_type_name(a) for a in typing.get_args(tp))
    if origin is typing.Literal:
        return "one of " + ", ".join(map(str, typing.get_args(tp)))
    if origin in (list, tuple):
        args = [a for a in typing.get_args(tp) if a is not Ellipsis]
        return f"a list of {_type_name(args[0])}" if args else "a list"
    if origin is dict or tp is dict:
        return "a mapping"
    return {int: "an integer", float: "a number", str: "a string", bool: "true or false"}.get(tp, getattr(tp, "__name__", str(tp)))


def _matches(value: Any, tp: Any) -> bool:
    """Whether a YAML/OmegaConf value fits a type hint (ints are accepted where floats are)."""
    if tp is Any or tp is inspect.Parameter.empty or tp is object:
        return True
    if tp is type(None) or tp is None:
        return value is None
    origin = typing.get_origin(tp)
    if origin in (typing.Union, types.UnionType):
        return any(_matches(value, a) for a in typing.get_args(tp))
    if origin is typing.Literal:
        return value in typing.get_args(tp)
    if origin in (list, tuple, typing.Sequence) or tp in (list, tuple):
        if not isinstance(value, (list, tuple)):
            return False
        args = [a for a in typing.get_args(tp) if a is not Ellipsis]
        return not args or all(_matches(v, args[0]) for v in value)
    if origin is dict or tp is dict:
        return isinstance(value, dict)
    if tp is bool:
        return isinstance(value, bool)
    if tp is int:
        return isinstance(value, int) and not isinstance(value, bool)
    if tp is float:
        return isinstance(value, (int, float)) and not isinstance(value, bool)
    if isinstance(tp, type):
        return isinstance(value, tp)
    return True  # a hint we cannot check (a forward reference, a protocol class)


@dataclass(frozen=True)
class Key:
    """One allowed key of a group: its type hint (Any when unknown)."""

    name: str
    hint: Any = Any


def _hints(fn: Callable) -> dict[str, Any]:
    try:
        return typing.get_type_hints(fn)
    except Exception:  # unresolvable string annotations: fall back to no types
        return {}


def signature_keys(fn: Callable, skip: int = 0) -> tuple[list[Key], bool]:
    """The keyword parameters of ``fn`` (after the first ``skip`` positional ones) as Keys, and whether
    it takes further user keys (a ``**kwargs`` not named ``_``). A parameter without a hint takes the
    type of its default."""
    target = fn.__init__ if inspect.isclass(fn) else fn
    hints = _hints(target)
    params = list(inspect.signature(fn).parameters.values())
    keys, open_ended = [], False
    for p in params[skip:]:
        if p.kind is p.VAR_KEYWORD:
            open_ended = p.name != "_"
        elif p.kind is not p.VAR_POSITIONAL:
            hint = hints.get(p.name, Any)
            if hint is Any and p.default not in (inspect.Parameter.empty, None):
                hint = float if type(p.default) is float else type(p.default)
            keys.append(Key(p.name, hint))
    return keys, open_ended


def dataclass_keys(cls: type, exclude: tuple[str, ...] = ()) -> list[Key]:
    hints = _hints(cls)
    return [Key(f.name, hints.get(f.name, Any)) for f in fields(cls) if f.name not in exclude]


def _wants_float(hint: Any) -> bool:
    """A float hint (float, float | None) that no int hint also matches."""
    options = typing.get_args(hint) if typing.get_origin(hint) in (typing.Union, types.UnionType) else (hint,)
    return float in options and int not in options


def check_group(group: str, values: dict[str, Any], keys: list[Key], open_ended: bool = False, owner: str = "",
                into: dict[str, Any] | None = None) -> None:
    """Unknown keys, wrong types and impossible values of one group -> ConfigError naming the key.
    An int given for a float key is written back to ``into`` (default ``values``) as a float, so
    that ``grad_clip=5`` and ``grad_clip=5.0`` are one configuration (one hash, one run directory)."""
    allowed = {k.name: k for k in keys}
    into = values if into is None else into
    where = f"{group} ({owner})" if owner else group or "the config"
    for name, value in values.items():
        full = f"{group}.{name}" if group else name
        if name not in allowed:
            if open_ended:
                continue
            raise ConfigError(f"unknown key {full}; {where} takes: {', '.join(allowed) or 'no keys'}")
        hint = allowed[name].hint
        if not _matches(value, hint):
            raise ConfigError(f"{full}={value!r} has the wrong type; it must be {_type_name(hint)}")
        if isinstance(value, float) and not math.isfinite(value):  # NaN passes every < and > check below
            raise ConfigError(f"{full}={value!r} is not allowed; it must be a finite number")
        if name in VALUE_RULES:
            check, text = VALUE_RULES[name]
            try:
                ok = check(value)
            except TypeError:  # null where the hint allows it, or a same-named key of another type
                ok = True
            if not ok:
                raise ConfigError(f"{full}={value!r} is not allowed; it must be {text}")
        if isinstance(value, int) and not isinstance(value, bool) and _wants_float(hint):
            into[name] = float(value)


def import_target(path: str) -> Any:
    """The class or function a ``_target_`` names; ConfigError saying whether its module cannot be
    imported (and why) or the module has no such name."""
    module, _, attr = path.rpartition(".")
    if not module or not attr:
        raise ConfigError(f"model._target_={path!r} is not a dotted path to a class (module.Class)")
    try:
        found = importlib.import_module(module)
    except Exception as e:  # the module's own failure (a syntax error, a missing dependency) is the news
        raise ConfigError(f"model._target_={path!r}: module {module} cannot be imported ({error_line(e)}); "
                          "a module of your own must lie in a folder of SEQREC_USER_DIR (docs/extending.md)") from None
    if not hasattr(found, attr):
        raise ConfigError(f"model._target_={path!r}: module {module} has no class {attr}")
    return getattr(found, attr)


def error_line(error: BaseException) -> str:
    """'ExceptionType: message' on one line (with the file and line of a syntax error)."""
    where = f" ({error.filename}, line {error.lineno})" if isinstance(error, SyntaxError) else ""
    return " ".join(f"{type(error).__name__}: {error}".split()) + where


# What every model class must have (benchmark.models.base.Recommender): methods, then declarations.
RECOMMENDER_METHODS = ("fit", "score")


def check_recommender_class(path: str, target: Any) -> None:
    """A ``_target_`` that is not a recommender class: what it lacks, in one line."""
    if not inspect.isclass(target):
        raise ConfigError(f"model._target_={path!r} is not a class; a model is a class with fit and score "
                          "(a subclass of benchmark.models.Recommender)")
    missing = [m for m in RECOMMENDER_METHODS
               if not callable(getattr(target, m, None)) or m in getattr(target, "__abstractmethods__", ())]
    if missing:
        raise ConfigError(f"model._target_={path!r}: class {target.__name__} has no {' and no '.join(missing)} "
                          "method; a model needs fit(data, trainer) and score(batch) (benchmark.models.Recommender)")
    if not isinstance(getattr(target, "reads_order", None), bool):
        raise ConfigError(f"model._target_={path!r}: class {target.__name__} does not declare reads_order; set the "
                          "class attribute reads_order = True (it reads the order of a history) or False (a set)")


def check_model(model: dict[str, Any]) -> None:
    """The model group against its constructor's signature (plus ``keyword_targets`` if declared)."""
    if not isinstance(model, dict) or "_target_" not in model:
        raise ConfigError("model has no _target_; choose a model with model=NAME (see conf/model/)")
    target = import_target(model["_target_"])
    check_recommender_class(model["_target_"], target)
    keys, open_ended = signature_keys(target)
    if open_ended and hasattr(target, "keyword_targets"):
        for fn in target.keyword_targets(model):
            more, open_ended = signature_keys(fn)
            keys += [k for k in more if k.name not in {k.name for k in keys}]
    values = {k: v for k, v in model.items() if not k.startswith("_")}
    check_group("model", values, keys, open_ended, owner=model["_target_"].rsplit(".", 1)[-1], into=model)
    if isinstance(values.get("hidden"), int) and isinstance(values.get("heads"), int) and values["heads"] > 0:
        if values["hidden"] % values["heads"]:
            raise ConfigError(
                f"model.heads={values['heads']} must divide model.hidden={values['hidden']} (attention heads split the hidden size)"
            )


def check_combinations(config: dict[str, Any]) -> None:
    """Rules across groups: what the protocol needs from the data, the metric the trainer watches."""
    from benchmark.data.dataset import PROTOCOLS

    protocol, dataset, trainer = config["protocol"], config["dataset"], config.get("trainer", {})
    # Each user must keep at least one training item besides the validation and test targets.
    k = protocol.get("k") if isinstance(protocol.get("k"), int) else 1
    needs = {"loo": 3, "horizon": 2 * k + 1}.get(protocol["name"])
    horizon = config["model"].get("horizon")
    if isinstance(horizon, int) and "k" in protocol and isinstance(protocol["k"], int) and horizon > protocol["k"]:
        raise ConfigError(
            f"model.horizon={horizon} is larger than what the split keeps (protocol.k={protocol['k']}); "
            f"use model.horizon <= {protocol['k']}"
        )
    if protocol.get("refit") is True and protocol["name"] != "temporal":
        from benchmark.data.dataset import refit_refusal

        raise ConfigError(refit_refusal(protocol["name"]))
    min_len = max(int(dataset.get("min_seq_len", 1) or 1), int(dataset.get("user_core", 1) or 1))
    if needs is not None and protocol["name"] in PROTOCOLS and min_len < needs:
        raise ConfigError(
            f"dataset.min_seq_len={dataset.get('min_seq_len')} is too small for protocol {protocol['name']}"
            f"{' with k=' + str(protocol['k']) if 'k' in protocol else ''}: it keeps every user's last "
            f"{needs - 1} items for evaluation; use dataset.min_seq_len >= {needs}"
        )
    metric = trainer.get("valid_metric")
    if isinstance(metric, str) and "@" in metric:
        name, k = metric.split("@")[0], int(metric.rsplit("@", 1)[1])
        computed = PROTOCOL_METRICS.get(protocol["name"], (name,))
        if name not in computed:
            raise ConfigError(f"trainer.valid_metric={metric!r} is not computed by protocol {protocol['name']}; "
                              f"use one of {', '.join(f'{m}@{k}' for m in computed)}")
        if k not in protocol.get("ks", [k]):
            ks = ", ".join(f"{name}@{x}" for x in protocol["ks"])
            raise ConfigError(f"trainer.valid_metric={metric!r} is not computed; protocol.ks gives {ks}")


def static_keys(group: str) -> list[str] | None:
    """The keys of a group whose schema does not depend on other keys ("" is the top level)."""
    if group == "trainer":
        return [k.name for k in dataclass_keys(TrainerConfig, exclude=TRAINER_INTERNAL)]
    if group == "":
        return [k.name for k in dataclass_keys(RunConfig)]
    return None


def validate_config(config: dict[str, Any]) -> None:
    """Raises ConfigError (one line naming the key and what is allowed) on any bad key or value;
    ints given for float keys become floats in ``config`` (see check_group)."""
    from benchmark.candidates import Candidates
    from benchmark.data.dataset import PROTOCOLS

    check_group("", {k: v for k, v in config.items() if k != "hydra"}, dataclass_keys(RunConfig))
    for group in ("dataset", "model", "protocol", "trainer"):
        if not isinstance(config.get(group), dict):
            raise ConfigError(f"config group {group!r} is missing; choose one with {group}=NAME")

    check_group("trainer", config["trainer"], dataclass_keys(TrainerConfig, exclude=TRAINER_INTERNAL))

    protocol = config["protocol"]
    name = protocol.get("name")
    if name not in PROTOCOLS:
        raise ConfigError(f"protocol.name={name!r} is unknown; choose one of {', '.join(PROTOCOLS)}")
    keys, open_ended = signature_keys(PROTOCOLS[name], skip=3)  # (sequences, user_ids, item_ids, ...)
    keys += dataclass_keys(ProtocolConfig) + dataclass_keys(Candidates)
    check_group("protocol", protocol, keys, open_ended, owner=name)

    check_dataset(config["dataset"])
    check_model(config["model"])
    check_logger(config.get("logger"))
    check_combinations(config)
    check_device(config["trainer"].get("device"))
    check_names(config)


def check_names(config: dict[str, Any]) -> None:
    """Folder and file settings that are empty, and names that are not plain folder names: an empty
    results_dir would write records into the current folder, and a dataset or model name such as ``../x`` put its record outside results_dir."""
    for key in ("results_dir", "cache_dir"):
        if isinstance(config.get(key), str) and not config[key].strip():
            raise ConfigError(f"{key}={config[key]!r} is empty; give a folder"
                              + (" (or leave it out for the default)" if key == "cache_dir" else ""))
    for group in ("dataset", "model"):
        name = config[group].get("name")
        if not isinstance(name, str) or not name.strip() or name in (".", "..") or re.search(r"[/\\\x00]", name):
            raise ConfigError(f"{group}.name={name!r} is not allowed; it must be a plain folder name (no '/', not "
                              "'.' or '..'): the run record is written to a folder of that name")


def check_dataset(dataset: dict[str, Any]) -> None:
    """The dataset group: the spec's and preprocessing's keys plus its reader's keyword parameters."""
    from benchmark.data.dataset import DatasetSpec
    from benchmark.data.preprocess import PreprocessConfig
    from benchmark.data.readers import reader_named

    reader = dataset.get("reader")
    keys, open_ended = signature_keys(reader_named(reader).read, skip=1)  # (directory, ...)
    spec_keys = dataclass_keys(DatasetSpec, exclude=("options", "preprocess")) + dataclass_keys(PreprocessConfig)
    check_group("dataset", dataset, spec_keys + keys, open_ended, owner=f"reader {reader}")
    for key in ("path", "file"):  # '' would silently mean the default (the embedded or fetched copy)
        if isinstance(dataset.get(key), str) and not dataset[key].strip():
            raise ConfigError(f"dataset.{key}={dataset[key]!r} is empty; give a path, or null for the default")


def check_logger(logger: Any) -> None:
    """The logger group against its tracker's constructor (logger=none takes no keys)."""
    from benchmark.loggers import WandbLogger

    if logger is None:
        return
    if not isinstance(logger, dict):
        raise ConfigError(f"logger={logger!r} must be a config group; choose logger=none or logger=wandb")
    name = logger.get("name", "none")
    trackers = {"none": None, "wandb": WandbLogger}
    if name not in trackers and name is not None:
        raise ConfigError(f"logger.name={name!r} is unknown; choose none or wandb")
    keys = signature_keys(trackers[name])[0] if trackers.get(name) else []
    check_group("logger", {k: v for k, v in logger.items() if k != "name"}, keys, owner=str(name or "none"))
