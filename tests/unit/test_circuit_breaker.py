"""The circuit breaker's state machine, its samples and its settings per mode (pure rules; the
sensor on a real instance: tests/dagster/test_resource_monitor_sensor.py)."""

import json
import time

import pytest

from btpipeline.errors import InvalidParameterError
from btpipeline.machine.heartbeat import SCHEMA_VERSION
from btpipeline.machine.protection_state import CircuitState, ProtectionState
from btpipeline.monitor.breaker import step_breaker
from btpipeline.monitor.sampler import ResourceSample, read_pressure, read_scanner_p99
from btpipeline.monitor.settings import ResourceMonitorSettings

LIMITS = ResourceMonitorSettings(cooldown_seconds=10, probe_seconds=20,
                                 execution_mode="CONCURRENT").levels()
POOLS = {"concurrency": {"pools": {"granularity": "op", "default_limit": 2}}}


def _sample(cpu=0.2, memory=0.3, pressure=1.0, latency=None) -> ResourceSample:
    return ResourceSample(cpu, memory, pressure, 0.0, latency)


def _step(state: ProtectionState, sample: ResourceSample, now: float) -> CircuitState:
    return step_breaker(state, sample, now, LIMITS).state


def test_a_cpu_spike_opens_the_breaker_and_names_the_signal() -> None:
    opened = step_breaker(ProtectionState(), _sample(cpu=0.95), 100.0, LIMITS)
    assert opened.state is CircuitState.OPEN and opened.reason.startswith("cpu 95.0% > 85.0%")


def test_scanner_latency_over_budget_opens_the_breaker() -> None:
    opened = step_breaker(ProtectionState(), _sample(latency=1500.0), 0.0, LIMITS)
    assert opened.state is CircuitState.OPEN
    assert opened.reason == "scanner p99 latency 1500 ms > 1000 ms budget"


def test_open_waits_for_the_reset_level_not_the_trip_level() -> None:
    opened = ProtectionState(CircuitState.OPEN, 0.0, ("cpu",))
    # 0.80 is under the 0.85 trip level but over the 0.765 reset level: stay OPEN.
    assert _step(opened, _sample(cpu=0.80), 60.0) is CircuitState.OPEN
    assert _step(opened, _sample(cpu=0.50), 60.0) is CircuitState.HALF_OPEN


def test_open_waits_for_the_cooldown() -> None:
    opened = ProtectionState(CircuitState.OPEN, 100.0, ("cpu",))
    assert _step(opened, _sample(), 105.0) is CircuitState.OPEN
    assert _step(opened, _sample(), 110.0) is CircuitState.HALF_OPEN


def test_half_open_closes_after_the_probe_or_reopens_on_a_trip() -> None:
    probing = ProtectionState(CircuitState.HALF_OPEN, 0.0)
    assert step_breaker(probing, _sample(), 10.0, LIMITS) == probing
    assert _step(probing, _sample(), 20.0) is CircuitState.CLOSED
    assert _step(probing, _sample(memory=0.99), 5.0) is CircuitState.OPEN


def test_bad_thresholds_are_refused_with_the_fix() -> None:
    with pytest.raises(InvalidParameterError, match="cpu_threshold=85.*Fix"):
        ResourceMonitorSettings(cpu_threshold=85).levels()


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


def test_modes_set_the_breaker_levels() -> None:
    base = ResourceMonitorSettings(execution_mode="CONCURRENT").levels()
    live = ResourceMonitorSettings(execution_mode="PRIORITY_LIVE").levels()
    alone = ResourceMonitorSettings(execution_mode="standalone").levels()
    assert live.cpu_fraction < base.cpu_fraction
    assert live.scanner_latency_budget_ms == base.scanner_latency_budget_ms / 2
    assert alone.cpu_fraction == 1.0 and alone.memory_fraction == base.memory_fraction
    assert (base.min_open_seconds, base.probe_seconds, base.resume_hold_seconds) == (30, 30, 0)
    with pytest.raises(InvalidParameterError, match="execution_mode 'FAST'"):
        ResourceMonitorSettings(execution_mode="FAST").levels()


def test_the_execution_mode_comes_from_the_environment(monkeypatch) -> None:
    monkeypatch.setenv("BTPIPELINE_EXECUTION_MODE", "PRIORITY_LIVE")
    assert ResourceMonitorSettings().levels().cpu_fraction == pytest.approx(0.85 * 0.8)


