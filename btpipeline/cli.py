"""``btpipeline``: the project's own commands (data, demo, reports); Dagster's CLI does the rest."""

from __future__ import annotations

import argparse
import datetime as dt
import os
import sys
from collections.abc import Callable, Sequence
from pathlib import Path

from btpipeline import settings
from btpipeline.errors import BtPipelineError


def _date(text: str) -> dt.date:
    try:
        return dt.date.fromisoformat(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not a date: use YYYY-MM-DD") from None


def _epics(text: str) -> list[str]:
    return [e.strip().upper() for e in text.split(",") if e.strip()]


def _names(text: str) -> list[str]:
    return [s.strip() for s in text.split(",") if s.strip()]


def cmd_generate(args: argparse.Namespace) -> int:
    from btpipeline.data.store import CandleStore, generate_into_store
    from btpipeline.validation import check_date_range

    check_date_range(args.start, args.end)
    summary = generate_into_store(CandleStore(Path(args.data_dir)), args.epics, args.start,
                                  args.end, args.seed)
    print(summary)
    return 0


def cmd_import(args: argparse.Namespace) -> int:
    from btpipeline.data.store import CandleStore, import_csv_into_store

    summary = import_csv_into_store(CandleStore(Path(args.data_dir)), Path(args.file),
                                    args.epic.upper(), fmt=args.format)
    print(summary)
    return 0


def cmd_demo(args: argparse.Namespace) -> int:
    from btpipeline.demo import run_demo

    return run_demo(strategies=args.strategies, epics=args.epics, start=args.start, end=args.end)


def cmd_report(args: argparse.Namespace) -> int:
    from btpipeline import universe
    from btpipeline.reporting import build_report, render_text
    from btpipeline.resources.results_database import ResultsDatabase

    db = ResultsDatabase()
    for strategy in args.strategies or universe.strategies():
        print(render_text(build_report(db, strategy, universe.epics())), end="\n\n")
    return 0


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="btpipeline", description=__doc__)
    sub = parser.add_subparsers(dest="command", required=True)
    data_dir = dict(default=str(settings.default_data_dir()),
                    help="candle store folder (default: %(default)s)")

    gen = sub.add_parser("generate", help="write deterministic synthetic 1-minute candles")
    gen.add_argument("--epics", type=_epics, required=True, help="comma-separated, e.g. EURUSD,GBPUSD")
    gen.add_argument("--start", type=_date, required=True)
    gen.add_argument("--end", type=_date, required=True, help="inclusive")
    gen.add_argument("--seed", type=int, default=7)
    gen.add_argument("--data-dir", **data_dir)
    gen.set_defaults(func=cmd_generate)

    imp = sub.add_parser("import", help="import a HistData or headed CSV of 1-minute candles")
    imp.add_argument("file")
    imp.add_argument("--epic", required=True)
    imp.add_argument("--format", choices=["auto", "histdata", "generic"], default="auto")
    imp.add_argument("--data-dir", **data_dir)
    imp.set_defaults(func=cmd_import)

    demo = sub.add_parser("demo", help="generate sample data, backfill backtests through Dagster, print reports")
    demo.add_argument("--strategies", type=_names, default=None, help="default: all")
    demo.add_argument("--epics", type=_epics, default=["EURUSD", "GBPUSD"])
    demo.add_argument("--start", type=_date, default=dt.date(2024, 1, 1))
    demo.add_argument("--end", type=_date, default=dt.date(2024, 3, 31), help="inclusive")
    demo.set_defaults(func=cmd_demo)

    rep = sub.add_parser("report", help="print each strategy's metrics table from the results DB")
    rep.add_argument("--strategies", type=_names, default=None)
    rep.set_defaults(func=cmd_report)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    args = _parser().parse_args(argv)
    os.environ.setdefault("DAGSTER_HOME", str(settings.default_dagster_home()))
    func: Callable[[argparse.Namespace], int] = args.func
    try:
        return func(args)
    except BtPipelineError as error:
        print(f"btpipeline {args.command}: {error}", file=sys.stderr)
        return 2


if __name__ == "__main__":
    sys.exit(main())
