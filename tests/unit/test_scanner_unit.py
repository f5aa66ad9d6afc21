"""The live scanner's parts in-process: replay feed, scan vs the strategy kernels, change
tracking, latency window, heartbeat reader, live_signals table, and the loop itself."""

from __future__ import annotations

import dataclasses
import datetime as dt
import json
import threading
from pathlib import Path

import numpy as np
import pytest

import btpipeline.scanner as scanner_api
from btpipeline.data.store import CandleStore, generate_into_store
from btpipeline.errors import InvalidParameterError, MissingDataError, UnknownStrategyError
from btpipeline.scanner import (
    BAR_NS,
    LatencyWindow,
    ReplayFeed,
    Scanner,
    ScannerConfig,
    ScannerStatus,
    ScanPlan,
    SignalTracker,
    read_scanner_status,
    write_status,
)
from btpipeline.scanner.scan import scan
from btpipeline.scanner.tick_trace import HEADER, SchedSample, parse_schedstat
from btpipeline.strategies import get_strategy, strategy_names

EPICS = ["EURUSD", "USDJPY"]


@pytest.fixture(scope="module")
def store(tmp_path_factory: pytest.TempPathFactory) -> CandleStore:
    """Synthetic EURUSD/USDJPY for 2023-12-27..2024-01-06 (crosses a month boundary)."""
    root = tmp_path_factory.mktemp("candles")
    candle_store = CandleStore(root)
    generate_into_store(candle_store, EPICS, dt.date(2023, 12, 27), dt.date(2024, 1, 6), seed=3)
    return candle_store


@pytest.fixture(scope="module")
def plan() -> ScanPlan:
    return ScanPlan.build(EPICS, strategy_names())


def _ns(text: str) -> int:
    return int(dt.datetime.fromisoformat(text).replace(tzinfo=dt.timezone.utc).timestamp()) * 10**9


# -- public API --------------------------------------------------------------------------------
def test_public_api_is_pinned() -> None:
    assert scanner_api.__all__ == sorted([
        "BAR_NS", "CandleFeed", "LatencySummary", "LatencyWindow", "ReplayFeed", "ScanPlan",
        "Scanner", "ScannerConfig", "ScannerStatus", "Signal", "SignalSink", "SignalTracker",
        "default_status_path", "read_scanner_status", "write_status"])
    for name in scanner_api.__all__:
        assert getattr(scanner_api, name) is not None


# -- ReplayFeed --------------------------------------------------------------------------------
def _replay(feed: ReplayFeed, ticks: int, bars: int) -> list[tuple[int, tuple, tuple]]:
    out = []
    for _ in range(ticks):
        feed.advance()
        out.append((feed.now_ns, *(tuple(feed.latest(e, bars).close[-3:]) for e in EPICS)))
    return out


def test_replay_feed_is_deterministic_and_advances_one_bar_per_tick(store) -> None:
    start = _ns("2024-01-01T23:58:00")
    first = _replay(ReplayFeed(store, EPICS, start_ns=start), 6, 500)
    again = _replay(ReplayFeed(store, EPICS, start_ns=start), 6, 500)
    assert first == again
    feed = ReplayFeed(store, EPICS, start_ns=start)
    newest = []
    for _ in range(4):
        feed.advance()
        candles = feed.latest("EURUSD", 500)
        assert len(candles) == 500 and np.all(np.diff(candles.timestamp) > 0)
        newest.append(int(candles.timestamp[-1]))
    assert newest == [start + i * BAR_NS for i in range(4)]


def test_replay_feed_latest_matches_the_store_across_a_month_boundary(store) -> None:
    feed = ReplayFeed(store, EPICS, start_ns=_ns("2024-01-01T00:05:00"))
    feed.advance()
    got = feed.latest("USDJPY", 2000)
    want = store.read_range("USDJPY", _ns("2024-01-01T00:05:00"), _ns("2024-01-01T00:06:00"),
                            warmup_bars=1999)
    assert len(got) == 2000 and got.timestamp[0] < _ns("2024-01-01T00:00:00")
    np.testing.assert_array_equal(got.timestamp, want.timestamp)
    np.testing.assert_array_equal(got.close, want.close)


def test_replay_feed_skips_the_weekend_gap_and_reports_the_end(store) -> None:
    last = store.coverage("EURUSD")[1]
    feed = ReplayFeed(store, EPICS, start_ns=last)
    feed.advance()
    assert int(feed.latest("EURUSD", 1).timestamp[-1]) == last and not feed.exhausted
    feed.advance()
    assert feed.exhausted and int(feed.latest("EURUSD", 1).timestamp[-1]) == last


def test_replay_feed_wall_clock_maps_elapsed_time_times_speed(store) -> None:
    wall = iter([1_000 * 10**9, 1_002 * 10**9])  # two ticks, 2 s apart
    start = _ns("2024-01-02T10:00:00")
    feed = ReplayFeed(store, EPICS, start_ns=start, mode="wall", speed=60.0,
                      wall_clock_ns=lambda: next(wall))
    feed.advance()
    assert feed.now_ns == start
    feed.advance()
    assert feed.now_ns == start + 120 * 10**9  # 2 s x 60 = two minutes of data
    assert int(feed.latest("EURUSD", 1).timestamp[-1]) == start + BAR_NS


def test_replay_feed_default_start_leaves_a_full_warmup(store, plan) -> None:
    feed = ReplayFeed(store, EPICS, warmup_bars=plan.max_bars)
    feed.advance()
    assert len(feed.latest("EURUSD", plan.max_bars)) == plan.max_bars


def test_replay_feed_refuses_bad_settings_and_missing_data(store, tmp_path) -> None:
    with pytest.raises(InvalidParameterError, match="bar"):
        ReplayFeed(store, EPICS, mode="tape")  # type: ignore[arg-type]
    with pytest.raises(MissingDataError, match="btpipeline generate --epics GBPUSD"):
        ReplayFeed(store, ["GBPUSD"])
    with pytest.raises(UnknownStrategyError):
        ScanPlan.build(EPICS, ["nope"])


# -- scan == strategy kernels ------------------------------------------------------------------
def test_signals_equal_target_positions_on_the_same_bars(store, plan) -> None:
    """Independent check: the bars come straight from the store, not from the feed."""
    feed = ReplayFeed(store, EPICS, start_ns=_ns("2024-01-03T09:00:00"))
    for _ in range(120):
        feed.advance()
    signals = scan(feed, plan, scheduled_ns=0)
    assert {(s.epic, s.strategy) for s in signals} == {(e, s) for e in EPICS
                                                       for s in strategy_names()}
    for signal in signals:
        strategy = get_strategy(signal.strategy)
        params = strategy.make_params()
        bars = store.read_range(signal.epic, signal.bar_timestamp_ns,
                                signal.bar_timestamp_ns + 1,
                                warmup_bars=strategy.warmup_bars(params) - 1)
        assert len(bars) == strategy.warmup_bars(params)
        assert signal.position == int(strategy.target_positions(bars, params)[-1])
        assert signal.price == float(bars.close[-1])
        # and the whole stored history agrees: the warm-up is long enough
        history = store.read_range(signal.epic, store.coverage(signal.epic)[0],
                                   signal.bar_timestamp_ns + 1)
        assert signal.position == int(strategy.target_positions(history, params)[-1])


def test_tracker_writes_each_pair_once_then_only_changes() -> None:
    from btpipeline.scanner.scan import Signal

    now = dt.datetime(2024, 1, 2, tzinfo=dt.timezone.utc)
    tracker = SignalTracker()
    first = [Signal("EURUSD", "ema_crossover", 0, 1, 1.1, 5),
             Signal("EURUSD", "macd_crossover", 0, -1, 1.1, 6)]
    rows = tracker.changes(first, scanned_at=now, tick=0)
    assert [(r["side"], r["previous"]) for r in rows] == [("BUY", None), ("SELL", None)]
    assert tracker.changes(first, scanned_at=now, tick=0) == rows  # not committed: retried
    tracker.commit(rows)
    later = [Signal("EURUSD", "ema_crossover", BAR_NS, 1, 1.2, 5),
             Signal("EURUSD", "macd_crossover", BAR_NS, 0, 1.2, 6)]
    rows = tracker.changes(later, scanned_at=now, tick=2)
    assert [(r["strategy"], r["side"], r["previous"]) for r in rows] == [
        ("macd_crossover", "FLAT", -1)]


# -- latency and heartbeat ---------------------------------------------------------------------
def test_latency_window_percentiles_and_misses() -> None:
    window = LatencyWindow(size=100, budget_us=50_000)
    for us in [*range(1_000, 101_000, 1_000), 200_000]:  # 101 samples; the oldest drops out
        window.add(us)
    summary = window.summary()
    assert (summary.samples, summary.p50_ms, summary.p99_ms, summary.max_ms) == (
        100, 51.0, 100.0, 200.0)
    assert window.ticks == 101 and window.missed_deadlines == 51


def _status(**changes: object) -> ScannerStatus:
    base = ScannerStatus(pid=1, started_at="2024-01-01T00:00:00+00:00", heartbeat_unix=1000.0,
                         cadence_seconds=2.0, budget_ms=1000.0, epics=EPICS,
                         strategies=["ema_crossover"], isolation={"nice": -10, "cores": [0]},
                         feed="test")
    return dataclasses.replace(base, **changes)


def test_status_reader_marks_old_heartbeats_stale(tmp_path: Path) -> None:
    path = tmp_path / "scanner" / "status.json"
    assert read_scanner_status(path) is None
    write_status(path, _status(ticks=5, p99_ms=12.5))
    fresh = read_scanner_status(path, now=1005.9)
    assert fresh is not None and fresh.state == "running" and fresh.p99_ms == 12.5
    assert fresh.age_seconds == pytest.approx(5.9) and fresh == _status(ticks=5, p99_ms=12.5)
    stale = read_scanner_status(path, now=1006.1)  # > 3 cadences of 2 s
    assert stale is not None and stale.stale and stale.state == "stale"
    write_status(path, _status(stopped=True))
    stopped = read_scanner_status(path, now=99_999.0)
    assert stopped is not None and stopped.state == "stopped" and not stopped.stale
    assert len(path.read_bytes()) < 1024
    assert [p.name for p in path.parent.iterdir()] == ["status.json"]  # no temp files left


def test_status_reader_ignores_garbage(tmp_path: Path) -> None:
    path = tmp_path / "status.json"
    for content in (b"", b"{not json", b"[]", json.dumps({"version": 99}).encode(),
                    json.dumps({"version": 1, "pid": 3}).encode()):
        path.write_bytes(content)
        assert read_scanner_status(path) is None


def test_scanner_config_rejects_bad_values(tmp_path: Path) -> None:
    with pytest.raises(InvalidParameterError, match="cadence-seconds"):
        ScannerConfig(status_path=tmp_path / "s.json", cadence_seconds=0)


# -- live_signals table ------------------------------------------------------------------------
def _row(epic: str, minute: int, position: int) -> dict[str, object]:
    t = dt.datetime(2024, 1, 2, 10, minute, tzinfo=dt.timezone.utc)
    return {"scanned_at": t, "epic": epic, "strategy": "ema_crossover", "bar_timestamp": t,
            "position": position, "previous": None, "side": {1: "BUY", -1: "SELL", 0: "FLAT"}[
                position], "price": 1.1, "latency_us": 1234, "tick": minute}


def test_live_signals_write_is_idempotent_per_bar(results_db) -> None:
    rows = [_row("EURUSD", 0, 1), _row("USDJPY", 0, -1)]
    assert results_db.write_live_signals(rows) == 2
    assert results_db.write_live_signals(rows + [_row("EURUSD", 1, 0)]) == 1
    frame = results_db.read_live_signals()
    assert list(frame["epic"]) == ["EURUSD", "USDJPY", "EURUSD"]
    assert list(frame["side"]) == ["BUY", "SELL", "FLAT"]
    assert str(frame["bar_timestamp"].dtype) == "datetime64[ns, UTC]"
    assert len(results_db.read_live_signals(epic="USDJPY")) == 1
    assert results_db.count_rows()["backtest_signals"] == 0  # backtest tables untouched


# -- the loop, in-process ----------------------------------------------------------------------
class _MemorySink:
    def __init__(self) -> None:
        self.ticks: list[list[dict]] = []
        self.disposed = False

    def write_live_signals(self, rows):  # one call per tick = one transaction per tick
        self.ticks.append(list(rows))
        return len(rows)

    def dispose(self) -> None:
        self.disposed = True


def test_scanner_loop_runs_ticks_and_stops_cleanly(store, plan, tmp_path: Path) -> None:
    status_path = tmp_path / "status.json"
    sink = _MemorySink()
    feed = ReplayFeed(store, EPICS, start_ns=_ns("2024-01-03T09:00:00"))
    config = ScannerConfig(status_path=status_path, cadence_seconds=0.05, max_ticks=5,
                           latency_log=tmp_path / "latency.csv")
    assert Scanner(config, plan, feed, sink, feed_name="test").run() == 0
    status = read_scanner_status(status_path)
    assert status is not None and status.stopped and status.ticks == 5 and status.window == 5
    assert status.p50_ms is not None and status.p50_ms <= status.p99_ms <= status.max_ms
    assert sink.disposed and len(sink.ticks[0]) == len(EPICS) * len(strategy_names())
    assert status.signals_written == sum(len(t) for t in sink.ticks)
    bar_times = sorted({r["bar_timestamp"] for t in sink.ticks for r in t})
    assert bar_times[0] == dt.datetime(2024, 1, 3, 9, tzinfo=dt.timezone.utc)
    header, *lines = config.latency_log.read_text().splitlines()
    assert header == HEADER and [int(line.split(",")[0]) for line in lines] == list(range(5))
    for line in lines:  # ms, not ns: inside the tick, give or take a scheduler tick (<= 10 ms)
        latency, _scan, _write, wake, cpu, runq = (float(v) for v in line.split(",")[2:])
        assert cpu > 0 and runq >= 0 and wake >= 0 and cpu + runq <= latency + 10


def test_schedstat_parses_on_cpu_and_run_queue_time_and_refuses_garbage() -> None:
    assert parse_schedstat("56806211 119870551 57\n") == SchedSample(56806211, 119870551)
    with pytest.raises(ValueError, match="schedstat has 1 fields"):
        parse_schedstat("12\n")


def test_request_stop_interrupts_a_long_sleep(store, plan, tmp_path: Path) -> None:
    feed = ReplayFeed(store, EPICS, start_ns=_ns("2024-01-03T09:00:00"))
    config = ScannerConfig(status_path=tmp_path / "status.json", cadence_seconds=3600)
    scanner = Scanner(config, plan, feed, _MemorySink())
    worker = threading.Thread(target=scanner.run)
    worker.start()
    try:
        for _ in range(600):  # wait for the first tick (no wall-clock assertion)
            status = read_scanner_status(config.status_path)
            if status is not None and status.ticks == 1:
                break
            threading.Event().wait(0.05)
        scanner.request_stop()
    finally:
        worker.join(timeout=30)
    assert not worker.is_alive()
    status = read_scanner_status(config.status_path)
    assert status is not None and status.stopped and status.ticks == 1


# -- isolation ---------------------------------------------------------------------------------
def test_isolation_reports_what_the_kernel_refused_and_why(monkeypatch) -> None:
    """Both calls refused (as for a non-root user without the cores): reported, not fatal."""
    import os

    from btpipeline.scanner.isolation import apply_scanner_isolation

    def refuse(*_args: object) -> None:
        raise PermissionError(13, "Permission denied")

    def invalid(*_args: object) -> None:
        raise OSError(22, "Invalid argument")

    monkeypatch.setattr(os, "setpriority", refuse)
    monkeypatch.setattr(os, "sched_setaffinity", invalid)
    monkeypatch.setattr(os, "geteuid", lambda: 1000)
    report = apply_scanner_isolation(-10, (7,))
    assert len(report.refused) == 2
    assert "could not pin to cores [7]" in report.refused[0] and "--cores" in report.refused[0]
    assert "could not set nice -10" in report.refused[1] and "not root" in report.refused[1]
    text = report.describe()
    assert text.startswith("isolation applied: nothing; refused: could not pin")
    assert report.as_dict()["requested_cores"] == [7]


_ISOLATE_AND_REPORT = (
    "import json; from btpipeline.scanner.isolation import apply_scanner_isolation; "
    "from btpipeline.machine.isolation import current_isolation; "
    "r = apply_scanner_isolation(-10, ()); "
    "print(json.dumps({'facts': current_isolation(), 'notes': list(r.notes), "
    "'refused': list(r.refused)}))")


def _isolated_child(own_session: bool) -> dict:
    import json
    import subprocess
    import sys

    done = subprocess.run([sys.executable, "-c", _ISOLATE_AND_REPORT], capture_output=True,
                          text=True, check=True, timeout=60, start_new_session=own_session)
    return json.loads(done.stdout)


def test_a_scanner_leading_its_session_gives_its_autogroup_its_nice() -> None:
    """With autogroup on, nice alone ranks the scanner only inside its session: as a session
    leader (a service, ``setsid``) it sets its autogroup's nice too; sharing the shell's
    session it leaves that alone and says how to fix it."""
    import os

    from btpipeline.machine.isolation import autogroup_enabled

    if not autogroup_enabled() or os.geteuid() != 0:
        pytest.skip("needs kernel.sched_autogroup_enabled=1 and root (a negative nice)")
    leader = _isolated_child(own_session=True)
    assert leader["refused"] == [] and leader["facts"]["autogroup_nice"] == -10
    assert not any("own session" in note for note in leader["notes"])
    follower = _isolated_child(own_session=False)
    assert follower["facts"]["autogroup_nice"] != -10
    assert any("setsid btpipeline scanner" in note for note in follower["notes"])
