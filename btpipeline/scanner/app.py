"""``btpipeline scanner``: wire isolation, the replay feed, the results DB and the loop."""

from __future__ import annotations

import dataclasses
import logging
from collections.abc import Sequence
from pathlib import Path

from btpipeline.data.store import CandleStore
from btpipeline.results.live_sink import LiveSignalSink
from btpipeline.scanner.feed import ClockMode, ReplayFeed
from btpipeline.scanner.isolation import apply_scanner_isolation
from btpipeline.scanner.runner import Scanner, ScannerConfig
from btpipeline.scanner.scan import ScanPlan

log = logging.getLogger("btpipeline.scanner")


@dataclasses.dataclass(frozen=True)
class ScannerOptions:
    """Everything ``btpipeline scanner`` takes (see its ``--help``)."""

    epics: Sequence[str]
    strategies: Sequence[str]
    loop: ScannerConfig
    data_dir: Path
    results_url: str
    nice: int | None = -10
    cores: tuple[int, ...] | None = None
    replay_start_ns: int | None = None
    replay_mode: ClockMode = "bar"
    replay_speed: float = 1.0


def run_scanner(options: ScannerOptions) -> int:
    """Isolate this process, then scan until SIGTERM/SIGINT (or ``max_ticks``)."""
    report = apply_scanner_isolation(options.nice, options.cores)
    log.info("%s", report.describe())
    plan = ScanPlan.build(options.epics, options.strategies)
    feed = ReplayFeed(CandleStore(options.data_dir), plan.epics,
                      start_ns=options.replay_start_ns, warmup_bars=plan.max_bars,
                      mode=options.replay_mode, speed=options.replay_speed)
    # No in-call retries: a tick must not wait out a database outage; the scanner keeps
    # scanning and writes the change on a later tick.
    sink = LiveSignalSink(options.results_url, retry_seconds=0)
    sink.write_live_signals([])  # connect and create live_signals now, not in the first tick
    scanner = Scanner(options.loop, plan, feed, sink, isolation=report.as_dict(),
                      feed_name=feed.describe())
    log.info("scanning %d epics x %d strategies every %g s (budget %g ms, feed: %s); signals "
             "to %s; heartbeat %s", len(plan.epics), len(plan.strategies),
             options.loop.cadence_seconds, options.loop.budget_ms, feed.describe(),
             sink.safe_url, options.loop.status_path)
    return scanner.run()
