"""The scanner loop: a fixed-rate schedule, one scan + one transaction per tick, a heartbeat.

Tick ``k`` is scheduled at ``start + k x cadence`` (monotonic clock). Its latency runs from
that scheduled time to the tick's work done (scan and database write), so it includes the
wake-up delay a loaded machine adds. A tick that overruns the next slot makes the scanner skip
the slots already past (``skipped_ticks``) instead of running late back-to-back.

SIGTERM / SIGINT set a flag and wake the sleep: the tick in progress finishes, a final
heartbeat with ``stopped: true`` is written, the database connections are closed.
"""

from __future__ import annotations

import dataclasses
import datetime as dt
import gc
import logging
import os
import select
import signal
import threading
import time
from collections.abc import Sequence
from pathlib import Path
from types import FrameType
from typing import Any, Protocol

from btpipeline.errors import BtPipelineError, InvalidParameterError
from btpipeline.machine.heartbeat import ScannerStatus, write_status
from btpipeline.scanner.feed import CandleFeed
from btpipeline.scanner.latency import LatencyWindow
from btpipeline.scanner.scan import LastSignals, ScanPlan, SignalTracker, scan
from btpipeline.scanner.tick_trace import TickTrace

log = logging.getLogger("btpipeline.scanner")


class SignalSink(Protocol):
    """Where live signals go (``ResultsDatabase`` is one)."""

    def write_live_signals(self, rows: Sequence[dict[str, Any]]) -> int: ...

    def dispose(self) -> None: ...


@dataclasses.dataclass(frozen=True)
class ScannerConfig:
    """How the loop runs. ``max_ticks`` None runs until SIGTERM/SIGINT."""

    status_path: Path
    cadence_seconds: float = 60.0
    budget_ms: float = 1000.0
    window: int = 300
    max_ticks: int | None = None
    latency_log: Path | None = None  # a CSV line per tick (tick_trace.py)

    def __post_init__(self) -> None:
        checks = [("cadence_seconds", self.cadence_seconds > 0, "seconds > 0"),
                  ("budget_ms", self.budget_ms > 0, "milliseconds > 0"),
                  ("window", self.window >= 1, "an integer >= 1 (ticks)"),
                  ("max_ticks", self.max_ticks is None or self.max_ticks >= 1,
                   "an integer >= 1, or unset to run until stopped")]
        for name, ok, expected in checks:
            if not ok:
                raise InvalidParameterError(
                    f"Scanner setting {name} is {getattr(self, name)!r}: expected {expected}. "
                    f"Fix: pass a valid --{name.replace('_', '-')}.")


def _iso(unix: float) -> str:
    return dt.datetime.fromtimestamp(unix, dt.timezone.utc).isoformat(timespec="milliseconds")


class Scanner:
    """Runs ``plan`` on ``feed`` every cadence, writes changes to ``sink``, publishes status."""

    def __init__(self, config: ScannerConfig, plan: ScanPlan, feed: CandleFeed,
                 sink: SignalSink, *, isolation: dict[str, Any] | None = None,
                 feed_name: str = "") -> None:
        self.config, self.plan, self.feed, self.sink = config, plan, feed, sink
        self.latency = LatencyWindow(config.window, int(config.budget_ms * 1000))
        self.tracker = SignalTracker()
        self._last_signals: LastSignals = {}  # reused until a new bar of its timeframe closes
        self._trace = None if config.latency_log is None else TickTrace(config.latency_log)
        self._cadence_ns = int(config.cadence_seconds * 1e9)
        self._started_unix = time.time()
        self._stop = False
        self._wake_r, self._wake_w = os.pipe()
        os.set_blocking(self._wake_w, False)
        self._status = ScannerStatus(
            pid=os.getpid(), started_at=_iso(self._started_unix),
            heartbeat_unix=self._started_unix, cadence_seconds=config.cadence_seconds,
            budget_ms=config.budget_ms, epics=list(plan.epics),
            strategies=[s.name for s in plan.strategies], isolation=isolation or {},
            feed=feed_name)

    # -- public ------------------------------------------------------------------------------
    def run(self) -> int:
        """Loop until stopped (or ``max_ticks``); returns the exit code (0)."""
        restore = self._install_signal_handlers()
        try:
            self._publish()
            gc.collect()
            gc.freeze()  # start-up objects leave the collector: no long gen-2 pauses mid-tick
            self._loop()
        except BaseException as error:
            self._status = dataclasses.replace(self._status, last_error=repr(error))
            raise
        finally:
            self._status = dataclasses.replace(self._status, stopped=True)
            self._publish()
            self.sink.dispose()
            if self._trace is not None:
                self._trace.close()
            restore()
            os.close(self._wake_r)
            os.close(self._wake_w)
            self._log_summary()
        return 0

    def request_stop(self, signum: int | None = None, _frame: FrameType | None = None) -> None:
        """Finish the current tick, then stop (signal handler; safe from any thread)."""
        if signum is not None and not self._stop:
            log.info("received %s: stopping after the current tick", signal.Signals(signum).name)
        self._stop = True
        try:
            os.write(self._wake_w, b"x")
        except OSError:
            pass  # pipe full or closed: the flag is enough

    # -- loop --------------------------------------------------------------------------------
    def _loop(self) -> None:
        start, slot = time.monotonic_ns(), 0
        while not self._stop:
            scheduled = start + slot * self._cadence_ns
            if not self._sleep_until(scheduled):
                break
            self._tick(scheduled)
            self._publish()
            if self.config.max_ticks and self.latency.ticks >= self.config.max_ticks:
                break
            slot += 1
            current = (time.monotonic_ns() - start) // self._cadence_ns
            if current >= slot:  # overran: the slots already begun are dropped
                skipped = current - slot + 1
                self._status = dataclasses.replace(
                    self._status, skipped_ticks=self._status.skipped_ticks + skipped)
                slot = current + 1

    def _sleep_until(self, deadline_ns: int) -> bool:
        """Sleep until ``deadline_ns`` (monotonic); False if a stop was requested."""
        while not self._stop:
            remaining = deadline_ns - time.monotonic_ns()
            if remaining <= 0:
                return True
            ready, _, _ = select.select([self._wake_r], [], [], remaining / 1e9)
            if ready:
                os.read(self._wake_r, 64)
        return False

    def _tick(self, scheduled: int) -> None:
        woke = time.monotonic_ns()
        if self._trace is not None:
            self._trace.begin()
        tick_unix = time.time()
        scanned_at = dt.datetime.fromtimestamp(tick_unix, dt.timezone.utc)
        self.feed.advance()
        written, error = 0, None
        signals = scan(self.feed, self.plan, scheduled, self._last_signals)
        scan_done = time.monotonic_ns()
        rows = self.tracker.changes(signals, scanned_at=scanned_at, tick=self.latency.ticks)
        try:
            if rows:
                written = self.sink.write_live_signals(rows)
                self.tracker.commit(rows)
        except BtPipelineError as exc:  # database down: keep scanning, retry the change next tick
            error = str(exc)
            log.error("tick %d: %s", self.latency.ticks, exc)
        done = time.monotonic_ns()
        if self._trace is not None:
            self._trace.end(self.latency.ticks, tick_unix, (done - scheduled) // 1000 / 1000,
                            (scan_done - scheduled) / 1e6, (done - scan_done) / 1e6,
                            (woke - scheduled) / 1e6)
        self._record(scheduled, scan_done, done, tick_unix, written, error, signals)

    def _record(self, scheduled: int, scan_done: int, done: int, tick_unix: float,
                written: int, error: str | None, signals: Sequence[Any]) -> None:
        latency_us = (done - scheduled) // 1000
        if self.latency.add(latency_us):
            log.warning("tick %d missed its budget: %.1f ms > %.0f ms (scan %.1f ms, write "
                        "%.1f ms)", self.latency.ticks - 1, latency_us / 1000,
                        self.config.budget_ms, (scan_done - scheduled) / 1e6,
                        (done - scan_done) / 1e6)
        summary = self.latency.summary()
        newest = max((s.bar_timestamp_ns for s in signals), default=None)
        self._status = dataclasses.replace(
            self._status, last_tick_at=_iso(tick_unix), ticks=self.latency.ticks,
            last_latency_ms=latency_us / 1000, last_scan_ms=(scan_done - scheduled) / 1e6,
            last_write_ms=(done - scan_done) / 1e6, p50_ms=summary.p50_ms,
            p99_ms=summary.p99_ms, max_ms=summary.max_ms, window=summary.samples,
            missed_deadlines=self.latency.missed_deadlines,
            signals_written=self._status.signals_written + written,
            errors=self._status.errors + (error is not None),
            last_error=error or self._status.last_error,
            feed_time=None if newest is None else _iso(newest / 1e9))

    # -- helpers -----------------------------------------------------------------------------
    def _publish(self) -> None:
        self._status = dataclasses.replace(self._status, heartbeat_unix=time.time())
        try:
            write_status(self.config.status_path, self._status)
        except OSError as exc:
            log.error("could not write the heartbeat %s: %s", self.config.status_path, exc)

    def _install_signal_handlers(self) -> Any:
        if threading.current_thread() is not threading.main_thread():
            return lambda: None  # only the main thread may set handlers; use request_stop()
        previous = {s: signal.signal(s, self.request_stop) for s in (signal.SIGTERM, signal.SIGINT)}
        return lambda: [signal.signal(s, h) for s, h in previous.items()]

    def _log_summary(self) -> None:
        s = self._status
        log.info("stopped after %d ticks: p50 %s ms, p99 %s ms, max %s ms (budget %.0f ms, "
                 "%d missed, %d skipped); %d signals written, %d errors", s.ticks, s.p50_ms,
                 s.p99_ms, s.max_ms, s.budget_ms, s.missed_deadlines, s.skipped_ticks,
                 s.signals_written, s.errors)
