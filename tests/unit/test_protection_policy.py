"""The one protection policy: levels, mode scaling, and the CLOSED / OPEN / HALF_OPEN machine
both guards (the breaker sensor and the executor's fast path) step."""

from __future__ import annotations

import pytest

from btpipeline.errors import InvalidParameterError
from btpipeline.machine.protection import (
    ProtectionLevels,
    ProtectionSignals,
    levels_for_mode,
    make_levels,
    trip_reasons,
)
from btpipeline.machine.protection_state import (
    CircuitState,
    ProtectionMachine,
    ProtectionState,
)

LEVELS = ProtectionLevels(resume_hold_seconds=1.0, probe_seconds=5.0,
                          max_resume_hold_seconds=3.0)
CALM = ProtectionSignals(cpu_fraction=0.2, memory_fraction=0.3)


def _cpu(value: float) -> ProtectionSignals:
    return ProtectionSignals(cpu_fraction=value, memory_fraction=0.3)


def test_a_signal_over_its_level_trips_and_names_itself() -> None:
    machine = ProtectionMachine(LEVELS)
    assert machine.observe(0.0, CALM) is None
    opened = machine.observe(1.0, _cpu(0.9))
    assert opened is not None and opened.state is CircuitState.OPEN
    assert opened.reason == "cpu 90.0% > 85.0% of the machine"


def test_extra_reasons_trip_and_keep_it_open() -> None:
    machine = ProtectionMachine(LEVELS)
    assert machine.observe(0.0, CALM, extra=["preempted"]).state is CircuitState.OPEN
    assert machine.observe(5.0, CALM, extra=["preempted"]) is None
    assert machine.observe(5.5, CALM) is None  # healthy from here, hold 1 s
    assert machine.observe(6.5, CALM).state is CircuitState.HALF_OPEN


def test_open_waits_for_the_reset_level_not_the_trip_level() -> None:
    machine = ProtectionMachine(LEVELS, ProtectionState(CircuitState.OPEN, 0.0, ("cpu",)))
    # 0.80 is under the 0.85 trip level but over the 0.765 reset level: stays OPEN
    for now in (1.0, 2.0, 3.0):
        assert machine.observe(now, _cpu(0.80)) is None
    assert machine.observe(4.0, _cpu(0.70)) is None  # below reset: the hold starts
    assert machine.observe(4.5, _cpu(0.80)) is None  # over reset again: the hold restarts
    assert machine.observe(5.0, _cpu(0.70)) is None
    resumed = machine.observe(6.0, _cpu(0.70))
    assert resumed is not None and resumed.state is CircuitState.HALF_OPEN


def test_min_open_seconds_keeps_it_open_after_a_trip() -> None:
    levels = LEVELS.model_copy(update={"min_open_seconds": 10.0, "resume_hold_seconds": 0.0})
    machine = ProtectionMachine(levels, ProtectionState(CircuitState.OPEN, 100.0, ("cpu",)))
    assert machine.observe(105.0, CALM) is None
    assert machine.observe(110.0, CALM).state is CircuitState.HALF_OPEN


def test_half_open_closes_after_the_probe_and_a_quick_retrip_doubles_the_hold() -> None:
    machine = ProtectionMachine(LEVELS)
    machine.observe(0.0, _cpu(0.9))
    machine.observe(0.1, CALM)
    assert machine.observe(1.1, CALM).state is CircuitState.HALF_OPEN
    assert machine.observe(2.0, _cpu(0.9)).state is CircuitState.OPEN  # within the probe
    assert machine.state.hold_seconds == 2.0
    machine.observe(2.1, CALM)
    assert machine.observe(3.5, CALM) is None
    assert machine.observe(4.2, CALM).state is CircuitState.HALF_OPEN
    machine.observe(4.3, _cpu(0.9))
    assert machine.state.hold_seconds == 3.0  # doubled, capped at max_resume_hold_seconds
    machine.observe(4.5, CALM)
    assert machine.observe(7.5, CALM).state is CircuitState.HALF_OPEN
    closed = machine.observe(12.5, CALM)
    assert closed is not None and closed.state is CircuitState.CLOSED
    assert machine.observe(20.0, _cpu(0.9)).state is CircuitState.OPEN
    assert machine.state.hold_seconds == 1.0  # a trip from CLOSED starts from the base hold


def test_a_trip_after_the_probe_has_passed_starts_from_the_base_hold() -> None:
    machine = ProtectionMachine(LEVELS, ProtectionState(CircuitState.HALF_OPEN, 0.0,
                                                        hold_seconds=2.0))
    assert machine.observe(6.0, _cpu(0.9)).state is CircuitState.OPEN
    assert machine.state.hold_seconds == 1.0


def test_the_state_round_trips_through_json_and_reads_old_records() -> None:
    state = ProtectionState(CircuitState.OPEN, 12.5, ("cpu 90% > 85%", "memory"), 13.0, 2.0)
    assert ProtectionState.from_json(state.to_json()) == state
    assert ProtectionState.from_json(None) == ProtectionState()
    old = ProtectionState.from_json('{"state": "HALF_OPEN", "since": 3.0, "reason": "ok"}')
    assert old == ProtectionState(CircuitState.HALF_OPEN, 3.0, ("ok",))


def test_modes_scale_the_levels_in_one_place() -> None:
    base = ProtectionLevels(scanner_latency_budget_ms=1000.0)
    assert levels_for_mode(base, "CONCURRENT") == base
    alone = levels_for_mode(base, "standalone")
    assert alone.cpu_fraction == 1.0 and alone.memory_fraction == base.memory_fraction
    assert not trip_reasons(_cpu(1.0), alone)
    live = levels_for_mode(base, "PRIORITY_LIVE")
    assert live.cpu_fraction == pytest.approx(0.68)
    assert live.memory_fraction == 0.80
    assert live.scanner_latency_budget_ms == 500.0 and live.cpu_pressure_pct == 20.0
    assert live.scanner_run_delay_fraction == 0.125
    assert live.resume_hold_seconds == 2 * base.resume_hold_seconds
    published = levels_for_mode(ProtectionLevels(), "PRIORITY_LIVE")
    slow = ProtectionSignals(scanner_latency_ms=70.0, scanner_budget_ms=100.0)
    assert trip_reasons(slow, published) and not trip_reasons(slow, ProtectionLevels())


def test_an_unknown_mode_and_bad_levels_are_refused_with_the_fix() -> None:
    with pytest.raises(InvalidParameterError, match="execution_mode 'FAST'.*Fix"):
        levels_for_mode(ProtectionLevels(), "FAST")
    with pytest.raises(InvalidParameterError, match="cpu_threshold=85.*Fix"):
        make_levels("settings", {"cpu_fraction": "cpu_threshold"}, cpu_fraction=85)


def test_the_reset_levels_are_the_levels_times_one_minus_hysteresis() -> None:
    signals = ProtectionSignals(memory_fraction=0.85, scanner_run_delay_fraction=0.23,
                                window_s=0.2)
    assert not trip_reasons(signals, LEVELS)
    reset = trip_reasons(signals, LEVELS, scale=0.9)
    assert reset == ["memory 85% > 81%", "scanner waited for a CPU 23% of the last 200 ms"]
