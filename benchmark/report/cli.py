"""`seqrec-report RESULTS_DIR`: tables with paired significance tests from the run records below a folder."""

from __future__ import annotations

import argparse
import sys
from dataclasses import replace
from pathlib import Path

from benchmark import stats
from benchmark.errors import BenchmarkError, OneLineParser
from benchmark.record import find_records, is_complete
from benchmark.report.build import DEFAULT_METRICS, PROTOCOL_METRICS, SLICES, ReportOptions, build_report, write_report
from benchmark.report.runs import ReportError, load_run
from benchmark.report.settings import CANDIDATE_SETS, records_by_setting, report_folders
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
    p.add_argument("--protocol", help="report only runs of this protocol (loo, horizon, temporal, session)")
    p.add_argument("--candidates", choices=CANDIDATE_SETS, help="report only runs with this candidate set")
    p.add_argument("--name", help="the report's name in LaTeX labels, tab:NAME-results (default: the results "
                   "folder's name, plus the setting where a folder holds several)")
    p.add_argument("--latex-wide", action="store_true", help="LaTeX tables span both columns (table*) and are "
                   "scaled to \\textwidth (needs \\usepackage{graphicx})")
    p.add_argument("--order-effect", action="store_true", help="per dataset, the best sequence model on validation in "
                   "true order against the same model trained with dataset.shuffle_order=true, with the paired test "
                   "(order_effect.md, and a line in the families table)")
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
        slices=_names(args.slice), efficiency=args.efficiency, setup=args.setup, protocol=args.protocol,
        candidates=args.candidates, name=args.name, latex_wide=args.latex_wide, order_effect=args.order_effect,
        attribution=args.attribution, **{key: value for key, value in sizes.items() if value is not None},
    )
    options.check()  # before any record is read
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
    by_setting, damaged = records_by_setting(records, args.protocol, args.candidates)
    for d in damaged:
        load_run(d)  # raises the one-line error naming the record and its problem
    # Every setting's report is built before any is written: a refusal leaves the earlier reports whole.
    name = options.name or (source.parent.name if source.is_file() else source.name) or "report"
    several = len(by_setting) > 1
    # With several settings each report's options name its own, so that the footer's command rebuilds it.
    reports = {setting: build_report(s.records, replace(options, protocol=s.protocol, candidates=s.candidates) if several
                                   else options, str(source), f"{name}-{setting}" if several else name)
               for setting, s in by_setting.items()}
    folders = report_folders(list(reports), out, "")
    for setting, report in reports.items():
        written = write_report(report, folders[setting])
        if len(reports) > 1:
            print(f"## {setting}\n")
        for table in report.tables.values():
            print(render_markdown(table) + "\n")
        if report.families is not None:
            print(render_markdown(report.families[0]) + "\n")
        if report.order_effect is not None:
            print(render_markdown(report.order_effect.table) + "\n")
        print(report.friedman_text + "\n")
        print(f"wrote {len(written)} files to {folders[setting]}")
    return 0


def main(argv: list[str] | None = None) -> None:
    from benchmark.userdir import load_user_dirs

    try:
        load_user_dirs()  # records of a user's models: their classes declare order and family
        sys.exit(run(sys.argv[1:] if argv is None else argv))
    except BenchmarkError as e:
        print(f"seqrec-report: error: {e}", file=sys.stderr)
        sys.exit(2)


if __name__ == "__main__":
    main()
