"""``btpipeline``: the project's own commands (data, demo, reports); Dagster's CLI does the rest."""

from __future__ import annotations

import argparse
import datetime as dt
import os
import sys
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

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
    _record_in_dagster(summary.writes, _months_without_bars(CandleStore(Path(args.data_dir)),
                                                            args))
    return 0


def _months_without_bars(store: Any, args: argparse.Namespace) -> dict[str, list[str]]:
    """Per epic, the months of the asked range with no bars stored (a range in a weekend)."""
    from btpipeline.data.timestamps import months_between

    asked = list(months_between((args.start.year, args.start.month),
                                (args.end.year, args.end.month)))
    return {epic: [f"{y:04d}-{m:02d}" for y, m in asked if (y, m) not in store.months(epic)]
            for epic in args.epics}


def _record_in_dagster(writes: Any, empty: dict[str, list[str]] | None = None) -> None:
    """Each written month as a materialization of ``candles/<EPIC>`` (see cli_records)."""
    from btpipeline.assets.market_data.cli_records import record_candle_writes

    recorded = record_candle_writes(writes, empty)
    if recorded:
        home = os.environ.get("DAGSTER_HOME", "DAGSTER_HOME")
        print(f"recorded {recorded} month(s) of candles in Dagster ({home})")


def cmd_import(args: argparse.Namespace) -> int:
    from btpipeline.data.store import CandleStore, import_csv_into_store
    from btpipeline.universe import default_universe

    summary = import_csv_into_store(CandleStore(Path(args.data_dir)), Path(args.file),
                                    args.epic.upper(), fmt=args.format,
                                    timeframe=args.timeframe,
                                    timestamp_column=args.timestamp_column,
                                    history_start=default_universe().history_start)
    print(summary)
    _record_in_dagster([summary])
    return 0


def cmd_demo(args: argparse.Namespace) -> int:
    from btpipeline.demo import run_demo

    return run_demo(strategies=args.strategies, epics=args.epics, start=args.start, end=args.end)


def _report_strategies(args: argparse.Namespace) -> list[str]:
    """The strategy variants asked for (default: every one the universe declares)."""
    from btpipeline import universe
    from btpipeline.errors import InvalidParameterError

    known = universe.strategies()
    chosen = [*args.strategy, *(args.strategies or [])] or known
    unknown = [name for name in chosen if name not in known]
    if unknown:
        raise InvalidParameterError(
            f"Unknown strategy variant(s) {', '.join(map(repr, unknown))}: expected one of "
            f"{', '.join(known)}. Fix: use one of those names.")
    if args.out is not None and len(chosen) != 1:
        raise InvalidParameterError(
            f"--out names one file, but {len(chosen)} strategies were asked for "
            f"({', '.join(chosen)}). Fix: name exactly one strategy with --out, or drop --out "
            "to write each report to <BTPIPELINE_HOME>/reports/<strategy>.html.")
    return chosen


def cmd_report(args: argparse.Namespace) -> int:
    import webbrowser

    from btpipeline import universe
    from btpipeline.reports.build import write_variant_report
    from btpipeline.resources.results_database import ResultsDatabase

    strategies = _report_strategies(args)
    db = ResultsDatabase()
    if args.text:
        from btpipeline.reports.text import build_report, render_text

        for strategy in strategies:
            print(render_text(build_report(db, strategy, universe.epics())), end="\n\n")
        return 0
    for strategy in strategies:
        _, path = write_variant_report(db, strategy, universe.epics(), capital=args.capital,
                                       path=args.out, source=f"results database {db.safe_url}")
        print(path)
        if args.open:
            webbrowser.open(path.resolve().as_uri())
    return 0


def cmd_export_signals(args: argparse.Namespace) -> int:
    from btpipeline.resources.results_database import ResultsDatabase
    from btpipeline.results.engine import redact

    db = ResultsDatabase()
    try:
        written = db.export_signals(to_url=args.to, csv=args.csv, variant=args.variant,
                                    epic=args.epic)
    finally:
        db.dispose()
    where = args.csv if args.csv is not None else redact(args.to)
    print(f"{written} fills written to backtest_signals in {where}")
    return 0


def cmd_universe(args: argparse.Namespace) -> int:
    from btpipeline.universe import default_universe, default_universe_path, load_universe

    path = Path(args.file) if args.file else default_universe_path()
    grid = load_universe(path) if args.file else default_universe()
    print(f"{path}: valid; partitions from {grid.history_start:%Y-%m}, "
          f"{len(grid.grid())} backtest assets")
    for name, variant in grid.variants.items():
        print(f"  backtest/{name}/{{{','.join(grid.instruments_of(name))}}}  "
              f"{variant.strategy} {variant.params or 'defaults'} {variant.timeframe}")
    return 0


def _timestamp_ns(text: str) -> int:
    try:
        moment = dt.datetime.fromisoformat(text)
    except ValueError:
        raise argparse.ArgumentTypeError(
            f"{text!r} is not a time: use YYYY-MM-DD or YYYY-MM-DDTHH:MM (UTC)") from None
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=dt.timezone.utc)
    return int(moment.timestamp()) * 1_000_000_000


def _cores(text: str) -> tuple[int, ...]:
    try:
        return tuple(int(c) for c in text.split(",") if c.strip())
    except ValueError:
        raise argparse.ArgumentTypeError(
            f"{text!r} is not a core list: use e.g. 0 or 0,1 ('' for no pinning)") from None


def cmd_scanner(args: argparse.Namespace) -> int:
    import logging

    from btpipeline.data.store import CandleStore
    from btpipeline.machine.heartbeat import default_status_path
    from btpipeline.scanner.app import ScannerOptions, run_scanner
    from btpipeline.scanner.runner import ScannerConfig
    from btpipeline.strategies import strategy_names

    logging.basicConfig(level=logging.INFO, stream=sys.stderr,
                        format="%(asctime)s btpipeline scanner %(levelname)s: %(message)s")
    epics = args.epics or CandleStore(Path(args.data_dir)).epics()
    if not epics:
        raise BtPipelineError(
            f"No candles are stored under {args.data_dir}, so there is nothing to scan. Fix: "
            "`btpipeline generate --epics EURUSD --start 2024-01-01 --end 2024-01-31` first, "
            "or pass --data-dir.")
    loop = ScannerConfig(status_path=Path(args.status_path or default_status_path()),
                         cadence_seconds=args.cadence_seconds, budget_ms=args.budget_ms,
                         window=args.window, max_ticks=args.ticks,
                         latency_log=Path(args.latency_log) if args.latency_log else None)
    return run_scanner(ScannerOptions(
        epics=epics, strategies=args.strategies or strategy_names(), loop=loop,
        data_dir=Path(args.data_dir), results_url=args.results_url, nice=args.nice,
        cores=args.cores, replay_start_ns=args.replay_start, replay_mode=args.replay_clock,
        replay_speed=args.replay_speed))


def cmd_status(args: argparse.Namespace) -> int:
    from btpipeline.machine.heartbeat import default_status_path, read_scanner_status
    from btpipeline.scanner.report import render_dagster_runs, render_scanner

    path = Path(args.status_path or default_status_path())
    status = read_scanner_status(path)
    if args.json:
        print("null" if status is None else status.to_json())
    else:
        print(render_scanner(status, path))
        print(render_dagster_runs())
    return 0 if status is not None and status.state == "running" else 1


def _add_scanner_parsers(sub: argparse._SubParsersAction, data_dir: dict) -> None:
    status_path = dict(default=None, help="heartbeat JSON file (default: BTPIPELINE_SCANNER_STATUS "
                       "or <BTPIPELINE_HOME>/scanner/status.json)")
    scan = sub.add_parser("scanner", help="run the live signal scanner until SIGTERM/SIGINT")
    scan.add_argument("--epics", type=_epics, default=None,
                      help="comma-separated (default: every epic with stored candles)")
    scan.add_argument("--strategies", type=_names, default=None, help="default: all")
    scan.add_argument("--cadence-seconds", type=float, default=60.0,
                      help="seconds between scans (default: %(default)s)")
    scan.add_argument("--budget-ms", type=float, default=1000.0,
                      help="latency budget per tick; slower ticks count as missed "
                      "(default: %(default)s)")
    scan.add_argument("--window", type=int, default=300,
                      help="ticks in the rolling latency window (default: %(default)s)")
    scan.add_argument("--ticks", type=int, default=None,
                      help="stop after N ticks (default: run until stopped)")
    scan.add_argument("--cores", type=_cores, default=None,
                      help="cores to pin to, e.g. 0 or 0,1; '' for none (default: the backtest "
                      "executor's scanner reserve)")
    scan.add_argument("--nice", type=int, default=-10,
                      help="nice value to set (default: %(default)s)")
    scan.add_argument("--replay-start", type=_timestamp_ns, default=None,
                      help="replay the stored candles from this UTC time (default: once the "
                      "longest warm-up is available)")
    scan.add_argument("--replay-clock", choices=["bar", "wall"], default="bar",
                      help="bar: one more bar per tick (deterministic); wall: start + wall time "
                      "x --replay-speed (default: %(default)s)")
    scan.add_argument("--replay-speed", type=float, default=1.0)
    scan.add_argument("--results-url", default=settings.default_live_results_url(),
                      help="database for live_signals (default: BTPIPELINE_LIVE_RESULTS_URL, "
                      "else BTPIPELINE_RESULTS_URL if it is a server, else <BTPIPELINE_HOME>/"
                      "live.db: never the backtests' SQLite file, whose writes would block it)")
    scan.add_argument("--status-path", **status_path)
    scan.add_argument("--latency-log", default=None,
                      help="append one CSV line per tick (tick, tick_unix, latency_ms, scan_ms, "
                      "write_ms, wake_ms, cpu_ms, runq_ms: see btpipeline/scanner/tick_trace.py) "
                      "to this file, for plots and benchmarks")
    scan.add_argument("--data-dir", **data_dir)
    scan.set_defaults(func=cmd_scanner)

    status = sub.add_parser("status", help="the scanner's latency and Dagster's run queue "
                            "(exit 0 only while a scanner is running)")
    status.add_argument("--status-path", **status_path)
    status.add_argument("--json", action="store_true", help="print the raw heartbeat (or null)")
    status.set_defaults(func=cmd_status)


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="btpipeline", description=__doc__)
    sub = parser.add_subparsers(dest="command", required=True)
    data_dir: dict[str, Any] = dict(default=str(settings.default_data_dir()),
                                    help="candle store folder (default: %(default)s)")

    gen = sub.add_parser("generate", help="write deterministic synthetic 1-minute candles")
    gen.add_argument("--epics", type=_epics, required=True,
                     help="comma-separated, e.g. EURUSD,GBPUSD")
    gen.add_argument("--start", type=_date, required=True)
    gen.add_argument("--end", type=_date, required=True, help="inclusive")
    gen.add_argument("--seed", type=int, default=7)
    gen.add_argument("--data-dir", **data_dir)
    gen.set_defaults(func=cmd_generate)

    imp = sub.add_parser("import", help="import a HistData or headed CSV of 1-minute candles")
    imp.add_argument("file")
    imp.add_argument("--epic", required=True)
    imp.add_argument("--format", choices=["auto", "histdata", "generic"], default="auto")
    imp.add_argument("--timeframe", choices=["M1", "M5", "M15", "M30", "H1", "H4", "D1"],
                     default="M1", help="timeframe of the file's bars (one per epic per store)")
    imp.add_argument("--timestamp-column", default="timestamp",
                     help="a headed CSV's time column (default: %(default)s, any case)")
    imp.add_argument("--data-dir", **data_dir)
    imp.set_defaults(func=cmd_import)

    demo = sub.add_parser(
        "demo", help="generate sample data, backfill backtests through Dagster, print reports")
    demo.add_argument("--strategies", type=_names, default=None, help="default: all")
    demo.add_argument("--epics", type=_epics, default=["EURUSD", "GBPUSD"])
    demo.add_argument("--start", type=_date, default=dt.date(2024, 1, 1))
    demo.add_argument("--end", type=_date, default=dt.date(2024, 3, 31), help="inclusive")
    demo.set_defaults(func=cmd_demo)

    rep = sub.add_parser("report", help="write each strategy's HTML report from the results DB "
                         "(or print its metrics table with --text)")
    rep.add_argument("strategy", nargs="*", help="strategy names (default: all)")
    rep.add_argument("--strategies", type=_names, default=None, help="comma-separated, as well")
    rep.add_argument("--open", action="store_true", help="open the HTML in the web browser")
    rep.add_argument("--out", type=Path, default=None,
                     help="HTML file (default: <BTPIPELINE_HOME>/reports/<strategy>.html)")
    rep.add_argument("--capital", type=float, default=None,
                     help="account capital the equity curves start from (default: the stored "
                     "runs' initial capital, else 100000)")
    rep.add_argument("--text", action="store_true",
                     help="print the metrics tables instead of writing HTML")
    rep.set_defaults(func=cmd_report)

    uni = sub.add_parser("universe", help="validate a universe file and print its backtest grid")
    uni.add_argument("file", nargs="?", default=None,
                     help="default: BTPIPELINE_UNIVERSE, else universe.yaml at the project root, "
                     "else the packaged default")
    uni.set_defaults(func=cmd_universe)

    _add_scanner_parsers(sub, data_dir)
    _add_results_parsers(sub)
    return parser


def _add_results_parsers(sub: Any) -> None:
    results = sub.add_parser("results", help="the results database's tables")
    commands = results.add_subparsers(dest="results_command", required=True)
    export = commands.add_parser(
        "export-signals", help="rebuild the one-row-per-fill backtest_signals table (or a CSV) "
        "from the stored fill blocks; idempotent")
    export.add_argument("--variant", default=None, help="only this variant (default: all)")
    export.add_argument("--epic", default=None, help="only this epic/instrument (default: all)")
    where = export.add_mutually_exclusive_group(required=True)
    where.add_argument("--to", default=None, help="SQLAlchemy URL of the database to write "
                       "the table into, e.g. sqlite:///signals.db or the results database's")
    where.add_argument("--csv", type=Path, default=None, help="CSV file to write instead")
    export.set_defaults(func=cmd_export_signals)


def _working_directory_importable() -> None:
    """Let a universe file name ``package.module:Class`` from the current directory, as under
    ``python -m`` and Dagster (which import from their working directory); appended, so it
    never shadows an installed module."""
    cwd = os.getcwd()
    if "" not in sys.path and cwd not in sys.path:
        sys.path.append(cwd)


def main(argv: Sequence[str] | None = None) -> int:
    args = _parser().parse_args(argv)
    _working_directory_importable()
    os.environ.setdefault("DAGSTER_HOME", str(settings.default_dagster_home()))
    func: Callable[[argparse.Namespace], int] = args.func
    try:
        return func(args)
    except BtPipelineError as error:
        print(f"btpipeline {args.command}: {error}", file=sys.stderr)
        return 2


if __name__ == "__main__":
    sys.exit(main())
