"""`seqrec-report RESULTS_DIR`: tables with paired significance tests from the run records below a folder."""

from __future__ import annotations

import argparse
import shlex
import sys
from pathlib import Path

from benchmark import stats
from benchmark.errors import BenchmarkError, OneLineParser
from benchmark.record import find_records, is_complete
from benchmark.report.build import DEFAULT_METRICS, PROTOCOL_METRICS, SLICES, ReportOptions, build_report, write_report
from benchmark.report.runs import ReportError
from benchmark.report.table import render_markdown


def folder(text: str) -> Path:
    """A path argument; an empty one is refused (Path('') is the current folder)."""
    if not text.strip():
        raise argparse.ArgumentTypeError("is empty; give a folder")
    return Path(text)


def parser() -> argparse.ArgumentParser:
    p = OneLineParser(prog="seqrec-report", description=__doc__)
    p.add_argument("results_dir", type=folder, help="folder holding run records (searched recursively), or a file "
                   "listing run directories one per line (a sweep's runs.txt)")
    p.add_argument("--out", type=folder, help="folder to write the report to (default RESULTS_DIR/report); "
                   "it then holds this report only: report files of an earlier one are replaced or removed, other files kept")
    p.add_argument("--metrics", help="comma-separated metrics, the first ranks models (default: "
                   f"{','.join(DEFAULT_METRICS)} for leave-one-out, {','.join(PROTOCOL_METRICS['horizon'])} for horizon; "
                   "their sampled_* versions too where recorded)")
    p.add_argument("--reference", help="model to test every other model against (default: best non-sequential baseline per dataset)")
    p.add_argument("--test", choices=stats.TESTS, default="ttest", help="paired test on per-user metrics (default %(default)s)")
    p.add_argument("--correction", choices=stats.CORRECTIONS, default="holm", help="multiple-comparison correction (default %(default)s)")
    p.add_argument("--alpha", type=float, default=0.05, help="significance level (default %(default)s)")
    p.add_argument("--resamples", type=int, default=10_000, help="sign flips / bootstrap samples (default %(default)s)")
    p.add_argument("--stat-seed", type=int, default=0, help="seed of the randomization and bootstrap tests")
    p.add_argument("--slice", default="", help=f"comma-separated breakdowns, each a table and a figure: {', '.join(SLICES)}")
    p.add_argument("--efficiency", action="store_true", help="add parameters, training seconds and ms per user, and a figure of accuracy against training seconds")
    p.add_argument("--setup", action="store_true", help="also write dataset statistics and a methods paragraph")
    p.add_argument("--protocol", help="report only runs of this protocol")
    p.add_argument("--attribution", action="store_true", help="how far back each sequence model looks: the top item's "
                   "score change when the history item at distance d is removed (needs records run with trainer.save_model=true)")
    p.add_argument("--attribution-users", type=int, help=f"with --attribution: test users sampled per dataset (default {ReportOptions.attribution_users})")
    p.add_argument("--attribution-depth", type=int, help=f"with --attribution: distances 1 (newest) to this (default {ReportOptions.attribution_depth})")
    return p


def _names(text: str) -> list[str]:
    """A comma-separated list, each name once in first-given order: a repeat would add a column and a
    comparison (a stricter correction) for nothing."""
    return list(dict.fromkeys(name.strip() for name in text.split(",") if name.strip()))


def run(argv: list[str]) -> int:
    args = parser().parse_args(argv)
    sizes = {"attribution_users": args.attribution_users, "attribution_depth": args.attribution_depth}
    if not args.attribution and any(v is not None for v in sizes.values()):
        raise ReportError("--attribution-users and --attribution-depth apply to --attribution only; add --attribution")
    options = ReportOptions(
        metrics=None if args.metrics is None else _names(args.metrics), reference=args.reference, test=args.test,
        correction=args.correction, alpha=args.alpha, resamples=args.resamples, stat_seed=args.stat_seed,
        slices=_names(args.slice), efficiency=args.efficiency,
        setup=args.setup, protocol=args.protocol, attribution=args.attribution,
        **{key: value for key, value in sizes.items() if value is not None},
    )
    source = args.results_dir
    if source.is_file():
        out = args.out or source.parent / "report"
        try:
            listed = source.read_text(encoding="utf-8")
        except UnicodeDecodeError as e:
            raise ReportError(f"{source} is neither a folder of run records nor a list of run folders "
                              f"(not UTF-8 text: {e.reason} at byte {e.start})") from None
        except OSError as e:
            raise ReportError(f"{source} cannot be read ({e.strerror or e})") from None
        records = sorted({Path(line) for line in listed.split() if line})
        for d in records:
            if not is_complete(d):
                raise ReportError(f"{source} lists {d}, which is not a complete run record")
    elif source.is_dir():
        out = args.out or source / "report"
        records = find_records(source)
    else:
        raise ReportError(f"results folder not found: {source}")
    if not records:
        raise ReportError(f"no complete run records under {source}")
    command = "seqrec-report " + shlex.join(argv)
    report = build_report(records, options, command, str(source))
    written = write_report(report, out)
    for stem, table in report.tables.items():
        print(render_markdown(table) + "\n")
    if report.families is not None:
        print(render_markdown(report.families[0]) + "\n")
    print(report.friedman_text + "\n")
    print(f"wrote {len(written)} files to {out}")
    return 0


def main(argv: list[str] | None = None) -> None:
    try:
        sys.exit(run(sys.argv[1:] if argv is None else argv))
    except BenchmarkError as e:
        print(f"seqrec-report: error: {e}", file=sys.stderr)
        sys.exit(2)


if __name__ == "__main__":
    main()
