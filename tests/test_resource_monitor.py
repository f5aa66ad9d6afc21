"""The circuit breaker's state machine, its samples, and the sensor that throttles the
backtest pool through Dagster's own concurrency slots."""

import json
import time

import pytest
from dagster import build_sensor_context, instance_for_test

from btpipeline.assets.keys import HEALTH_KEY
from btpipeline.assets.monitoring.resource_monitor import evaluate
from btpipeline.errors import InvalidParameterError
from btpipeline.monitor.breaker import Breaker, BreakerState, BreakerThresholds
from btpipeline.monitor.queue_control import breaker_holds_pool
from btpipeline.monitor.sampler import ResourceSample, read_pressure, read_scanner_p99
from btpipeline.monitor.settings import ResourceMonitorSettings
from btpipeline.scanner.status import SCHEMA_VERSION

LIMITS = BreakerThresholds(cooldown_seconds=10, probe_seconds=20)
POOLS = {"concurrency": {"pools": {"granularity": "op", "default_limit": 2}}}


def _sample(cpu=0.2, memory=0.3, pressure=1.0, latency=None) -> ResourceSample:
    return ResourceSample(cpu, memory, pressure, 0.0, latency)


def test_a_cpu_spike_opens_the_breaker_and_names_the_signal() -> None:
    opened = Breaker().step(_sample(cpu=0.95), 100.0, LIMITS)
    assert opened.state is BreakerState.OPEN and "cpu" in opened.reason


def test_scanner_latency_over_budget_opens_the_breaker() -> None:
    opened = Breaker().step(_sample(latency=1500.0), 0.0, LIMITS)
    assert opened.state is BreakerState.OPEN and "scanner_latency" in opened.reason


def test_open_waits_for_the_reset_level_not_the_trip_level() -> None:
    opened = Breaker(BreakerState.OPEN, 0.0, "cpu")
    # 0.80 is under the 0.85 trip level but over the 0.765 reset level: stay OPEN.
    assert opened.step(_sample(cpu=0.80), 60.0, LIMITS).state is BreakerState.OPEN
    assert opened.step(_sample(cpu=0.50), 60.0, LIMITS).state is BreakerState.HALF_OPEN


def test_open_waits_for_the_cooldown() -> None:
    opened = Breaker(BreakerState.OPEN, 100.0, "cpu")
    assert opened.step(_sample(), 105.0, LIMITS).state is BreakerState.OPEN
    assert opened.step(_sample(), 110.0, LIMITS).state is BreakerState.HALF_OPEN


def test_half_open_closes_after_the_probe_or_reopens_on_a_trip() -> None:
    probing = Breaker(BreakerState.HALF_OPEN, 0.0)
    assert probing.step(_sample(), 10.0, LIMITS) == probing
    assert probing.step(_sample(), 20.0, LIMITS).state is BreakerState.CLOSED
    assert probing.step(_sample(memory=0.99), 5.0, LIMITS).state is BreakerState.OPEN


def test_bad_thresholds_are_refused_with_the_fix() -> None:
    with pytest.raises(InvalidParameterError, match="cpu_threshold.*Fix"):
        BreakerThresholds(cpu_threshold=85)


def test_breaker_state_round_trips_through_the_cursor() -> None:
    breaker = Breaker(BreakerState.HALF_OPEN, 12.5, "recovered")
    assert Breaker.from_json(breaker.to_json()) == breaker
    assert Breaker.from_json(None).state is BreakerState.CLOSED


def test_pressure_and_scanner_status_are_read_from_their_files(tmp_path) -> None:
    (tmp_path / "cpu").write_text("some avg10=12.50 avg60=3.00 avg300=1.00 total=123\n"
                                  "full avg10=0.00 avg60=0.00 avg300=0.00 total=0\n")
    assert read_pressure("cpu", tmp_path) == 12.5
    assert read_pressure("io", tmp_path) is None
    status = tmp_path / "status.json"
    heartbeat = {"pid": 1, "started_at": "2026-01-01T00:00:00Z", "cadence_seconds": 1.0,
                 "budget_ms": 1000.0, "epics": ["EURUSD"], "strategies": ["macd_crossover"],
                 "isolation": {}, "feed": "replay", "p99_ms": 42.0, "version": SCHEMA_VERSION}
    status.write_text(json.dumps({**heartbeat, "heartbeat_unix": time.time()}))
    assert read_scanner_p99(status) == 42.0
    status.write_text(json.dumps({**heartbeat, "heartbeat_unix": time.time() - 999}))
    assert read_scanner_p99(status) is None  # stale: the scanner is not running
    status.write_text(json.dumps({**heartbeat, "heartbeat_unix": time.time(), "stopped": True}))
    assert read_scanner_p99(status) is None
    assert read_scanner_p99(tmp_path / "missing.json") is None


def test_the_sensor_closes_the_pool_when_open_and_restores_it_when_closed() -> None:
    settings = ResourceMonitorSettings(cooldown_seconds=10, probe_seconds=20, normal_pool_limit=2)
    with instance_for_test(overrides=POOLS) as instance:
        def tick(cursor, sample, now):
            context = build_sensor_context(instance=instance, cursor=cursor)
            result = evaluate(context, settings, sample, now)
            slots = instance.event_log_storage.get_concurrency_info("backtests").slot_count
            return result, slots

        result, slots = tick(None, _sample(cpu=0.97), 0.0)
        assert slots == 0 and breaker_holds_pool(instance)
        assert result.asset_events[0].asset_key == HEALTH_KEY
        assert result.asset_events[0].metadata["breaker_state"].value == "OPEN"
        assert "breaker OPEN" in result.skip_reason.skip_message
        quiet, slots = tick(result.cursor, _sample(cpu=0.97), 5.0)
        assert not quiet.asset_events and slots == 0
        result, slots = tick(result.cursor, _sample(), 10.0)
        assert slots == 1
        result, slots = tick(result.cursor, _sample(), 30.0)
        assert slots == 2 and not breaker_holds_pool(instance)


def test_modes_set_the_breaker_levels() -> None:
    base = ResourceMonitorSettings(execution_mode="CONCURRENT").thresholds()
    live = ResourceMonitorSettings(execution_mode="PRIORITY_LIVE").thresholds()
    alone = ResourceMonitorSettings(execution_mode="standalone").thresholds()
    assert live.cpu_threshold < base.cpu_threshold
    assert live.scanner_latency_budget_ms == base.scanner_latency_budget_ms / 2
    assert alone.cpu_threshold == 1.0 and alone.memory_threshold == base.memory_threshold
    with pytest.raises(InvalidParameterError, match="execution_mode 'FAST'"):
        ResourceMonitorSettings(execution_mode="FAST").thresholds()
