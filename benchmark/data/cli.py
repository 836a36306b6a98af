"""The `seqrec-data` command: list the datasets, fetch one, print its statistics.

    seqrec-data list
    seqrec-data show ml-25m
    seqrec-data fetch ml-1m
    seqrec-data fetch mind-small --accept-licence
    seqrec-data fetch amazon-beauty release=2018
    seqrec-data stats sequences --path ~/data/Beauty.txt
    seqrec-data stats lastfm-1k item=artist

NAME is a `conf/dataset/<NAME>.yaml` (so statistics use exactly the preprocessing `seqrec
dataset=NAME` uses), a domain preset (news, movie, music, product) or ``amazon-<category>``;
``key=value`` words override dataset keys as `seqrec dataset.key=value` would.
"""

from __future__ import annotations

import argparse
import sys
import warnings
from pathlib import Path
from typing import Any

from benchmark.errors import BenchmarkError, DataError, OneLineParser

PRESETS = ("news", "movie", "music", "product")


def _conf_dir() -> Path:
    from benchmark.cli import CONF_DIR

    return Path(CONF_DIR)


def dataset_config(name: str, overrides: list[str] = (), path: str | None = None) -> dict[str, Any]:
    """The `dataset` config `seqrec dataset=NAME dataset.k=v ...` would run with."""
    return run_groups(name, overrides, path)[0]


def run_groups(name: str, overrides: list[str] = (), path: str | None = None) -> tuple[dict[str, Any], dict[str, Any]]:
    """The `dataset` and `protocol` configs `seqrec dataset=NAME dataset.k=v ...` would run with (a preset of a
    published benchmark, `yoochoose-srgnn-64`, chooses its protocol)."""
    from hydra import compose, initialize_config_dir
    from hydra.errors import HydraException
    from omegaconf import OmegaConf

    from benchmark.config import check_dataset
    from benchmark.data.catalog import amazon_category, lookup
    from benchmark.data.dataset import named_by_file

    conf = _conf_dir()
    base, extra = name, []
    if not (conf / "dataset" / f"{name}.yaml").is_file():
        if not (name.startswith("amazon-") and len(name) > len("amazon-")):
            names = sorted(p.stem for p in (conf / "dataset").glob("*.yaml"))
            raise DataError(f"unknown dataset {name!r}; known: {', '.join(names)}, amazon-<category>")
        lookup(name)  # an unsafe category in the name is a one-line error naming it
        # Any Amazon category: the amazon-beauty settings with this name and category.
        base, extra = "amazon-beauty", [f"name={name}", f"category={amazon_category(name.split('-', 1)[1])}"]
    words = extra + list(overrides) + ([f"path={path}"] if path is not None else [])
    for word in words:
        if "=" not in word:
            raise DataError(f"expected key=value, got {word!r}")
    try:
        with initialize_config_dir(config_dir=str(conf), version_base="1.3"):
            cfg = compose("config", overrides=[f"dataset={base}"])
            absent = object()  # nested keys too: columns.user of the csv preset

            def exists(key: str) -> bool:
                return OmegaConf.select(cfg.dataset, key, default=absent) is not absent

            cfg = compose("config", overrides=[f"dataset={base}"] + [
                ("" if exists(w.split("=", 1)[0]) else "+") + f"dataset.{w}" for w in words])
    except HydraException as e:
        raise DataError(f"bad dataset override: {str(e).splitlines()[0]}") from None
    dataset = named_by_file(OmegaConf.to_container(cfg.dataset, resolve=True))
    check_dataset(dataset)  # as `seqrec` checks it: a misspelled key (`releas=2018`) is an error naming it
    return dataset, OmegaConf.to_container(cfg.protocol, resolve=True)


WIDTH = 120  # `seqrec-data list` fits a terminal of this many columns; details are in `seqrec-data show NAME`


def _access(info: Any) -> str:
    return "manual download" if info.manual else "licence click-through" if info.click_through else \
        "-" if info.generic else "direct download"


def _status(name: str, info: Any, with_path: bool) -> str:
    """Whether the files are here: embedded, fetched and verified, put there by hand, or missing."""
    from benchmark.data.dataset import EMBEDDED
    from benchmark.data.download import MANIFEST, dataset_cache, is_cached

    cache = dataset_cache(name, info.options)
    where = f": {cache}" if with_path else ""
    if info.generic:
        return "your files (dataset.path)"
    if (EMBEDDED / name).is_dir():
        return "embedded" + (f": {EMBEDDED / name}" if with_path else "")
    if (cache / MANIFEST).is_file():
        return "cached (verified)" + where
    if is_cached(cache) and info.manual:
        return "cached" + where
    if is_cached(cache):  # a fetch writes its manifest last: without one, files put there by hand (or a broken fetch)
        return "files without a fetch manifest (unverified)" + where
    return "not cached" + (f" (expected in {cache})" if with_path else "")


def _catalog_names() -> list[str]:
    from benchmark.data.catalog import DATASETS

    return list(DATASETS) + sorted(p.stem for p in (_conf_dir() / "dataset").glob("amazon-*.yaml"))


def _info(name: str) -> Any:
    from benchmark.data.catalog import DEFAULT_AMAZON_RELEASE, lookup

    return lookup(name, {"release": DEFAULT_AMAZON_RELEASE} if name.startswith("amazon-") else {})


def cmd_list(_: argparse.Namespace) -> int:
    import textwrap

    import pandas as pd

    rows, unchecked = [], []
    for name in _catalog_names():
        info = _info(name)
        published = any(r.checksums or r.members for r in info.files)
        if not published:
            unchecked.append(f"{name}: {info.no_checksum}")
        rows.append({"dataset": name, "domain": info.domain, "reader": info.reader, "access": _access(info),
                     "checksum": "published" if published else "none (why below)", "status": _status(name, info, False)})
    print(pd.DataFrame(rows).to_string(index=False))
    notes = ["amazon-<category> works for any category (dataset.release: 2014, 2014-5core, 2018, 2018-5core, 2023, "
             "2023-5core).", "Details (files, size, checksums, licence, citation, where): seqrec-data show NAME."]
    presets = [f"{preset} -> {dataset_config(preset)['name']}" for preset in PRESETS
               if (_conf_dir() / "dataset" / f"{preset}.yaml").is_file()]
    if presets:
        notes.append("domain presets: " + ", ".join(presets))
    notes += ["no published checksum (the fetch records the SHA-256 of what it downloaded):"] + [f"  {u}" for u in unchecked]
    print()
    for note in notes:
        print(textwrap.fill(note, WIDTH, subsequent_indent="    " if note.startswith("  ") else "  "))
    return 0


def cmd_show(args: argparse.Namespace) -> int:
    """Everything the catalog knows about one dataset, one field a line."""
    from benchmark.data.catalog import DATASETS, lookup

    if args.name in DATASETS and not args.overrides:  # the generic formats' configs need a file to be named
        info = lookup(args.name)
    else:
        cfg = dataset_config(args.name, args.overrides)
        info = lookup(cfg.get("source") or cfg["name"], {k: v for k, v in cfg.items() if k in ("category", "release")})
    files = [f"{r.url}" + (f" ({r.size:,} bytes)" if r.size else "") for r in info.files]
    fields = [("dataset", info.name), ("domain", info.domain), ("reader", info.reader), ("source", info.source),
              ("licence", info.licence), ("access", _access(info)), ("native files", info.layout),
              ("download", "; ".join(files) or "-"), ("how to get it", info.manual or info.click_through or "-"),
              ("checksums", info.checksums), ("citation", info.citation or "-"),
              ("caution", "; ".join(r.on_mismatch for r in info.files if r.on_mismatch) or "-"),
              ("status", _status(info.name, info, True))]
    for key, value in fields:
        print(f"{key + ':':14} {value}")
    return 0


def cmd_fetch(args: argparse.Namespace) -> int:
    from benchmark.data.catalog import lookup
    from benchmark.data.download import fetch

    cfg = dataset_config(args.name, args.overrides)
    reader_keys = {k: v for k, v in cfg.items() if k in ("category", "release")}
    name = cfg.get("source") or cfg["name"]  # the files of yoochoose-srgnn-64 are yoochoose's
    info = lookup(name, reader_keys)
    if info.click_through:
        print(f"{name}: licence terms apply: {info.click_through}", file=sys.stderr)
    target = fetch(name, reader_keys, accept_licence=args.accept_licence, force=args.force,
                   progress=not args.quiet, info=info)
    print(f"{name}: ready in {target}")
    return 0


def cmd_stats(args: argparse.Namespace) -> int:
    from benchmark.data.dataset import DatasetSpec
    from benchmark.data.stats import dataset_stats, stats_json, stats_table

    cfg, protocol = run_groups(args.name, args.overrides, args.path)
    stats = dataset_stats(DatasetSpec.from_dict(cfg), protocol)
    print(stats_table(stats))
    print(stats_json(stats))
    return 0


def build_parser() -> argparse.ArgumentParser:
    parser = OneLineParser(prog="seqrec-data", description="List, fetch and describe the benchmark datasets.")
    sub = parser.add_subparsers(dest="command", required=True)
    sub.add_parser("list", help="every dataset: domain, access, checksum, cached or not").set_defaults(func=cmd_list)
    show = sub.add_parser("show", help="one dataset: native files, size, checksums, licence, citation, where")
    show.add_argument("name")
    show.add_argument("overrides", nargs="*", metavar="key=value")
    show.set_defaults(func=cmd_show)
    fetch = sub.add_parser("fetch", help="download, verify and unpack a dataset into $SEQREC_DATA")
    fetch.add_argument("name")
    fetch.add_argument("overrides", nargs="*", metavar="key=value")
    fetch.add_argument("--accept-licence", "--accept-license", action="store_true",
                       help="you have read and accepted the dataset's licence terms (MIND, EB-NeRD, Amazon 2023)")
    fetch.add_argument("--force", action="store_true", help="fetch again even when cached")
    fetch.add_argument("--quiet", action="store_true", help="no progress bar")
    fetch.set_defaults(func=cmd_fetch)
    stats = sub.add_parser("stats", help="raw and preprocessed counts (table + one JSON line)")
    stats.add_argument("name")
    stats.add_argument("overrides", nargs="*", metavar="key=value")
    stats.add_argument("--path", help="read the native files here (never touches the network)")
    stats.set_defaults(func=cmd_stats)
    return parser


def main(argv: list[str] | None = None) -> int:
    parser = build_parser()
    args, extra = parser.parse_known_args(argv)
    # argparse leaves key=value words that follow an option (`stats NAME --path DIR k=v`) unparsed
    if extra and hasattr(args, "overrides") and not any(w.startswith("-") for w in extra):
        args.overrides = list(args.overrides) + extra
    elif extra:
        parser.error(f"unrecognized arguments: {' '.join(extra)}")
    with warnings.catch_warnings():
        warnings.simplefilter("always")
        warnings.formatwarning = lambda msg, cat, *a, **k: f"seqrec-data: warning: {msg}\n"
        try:
            return args.func(args)
        except BenchmarkError as e:
            print(f"seqrec-data: error: {e}", file=sys.stderr)
            return 2


if __name__ == "__main__":
    sys.exit(main())
