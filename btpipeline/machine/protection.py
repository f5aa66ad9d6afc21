"""ONE protection policy for the live scanner: the levels, their mode scaling, the trip checks.

Two guards protect the scanner and both decide with this module:

* the circuit breaker (the ``resource_monitor`` sensor, seconds apart) throttles *queued*
  work through the ``backtests`` pool's slots (``btpipeline.monitor.queue_control``);
* the executor's fast path (``btpipeline.executors.load_guard``, every 25 ms inside a run and
  at once when the kernel wakes it) pauses *running* work with SIGSTOP and resumes it with
  SIGCONT.

Each turns what it measures into :class:`ProtectionSignals`, checks them against one
:class:`ProtectionLevels` (scaled for the execution mode by :func:`levels_for_mode`, the only
place modes change levels) and steps one state machine,
:class:`~btpipeline.machine.protection_state.ProtectionMachine` (CLOSED / OPEN / HALF_OPEN with
level and time hysteresis).

Where the state is published: the breaker sensor writes its
:class:`~btpipeline.machine.protection_state.ProtectionState` at every transition to the
Dagster instance's key-value store (key ``btpipeline/breaker``), the one record that the
executors' load guards, ``btpipeline status`` and the executor's pool sync read: every process
holding the instance can read it in a millisecond, with no server running. The HTTP client can
only reach GraphQL, so the same sensor tick also records the same object (its JSON, under
the ``protection`` metadata key) as a ``machine_health`` asset observation: the UI's and the
client's view of that record, never a second source.

No Dagster import here, nothing from executors/, assets/, sensors/ or resources/.
"""

from __future__ import annotations

import dataclasses
import enum
from collections.abc import Mapping

from pydantic import BaseModel, ConfigDict, Field, ValidationError

from btpipeline.errors import InvalidParameterError

#: PRIORITY_LIVE multiplies the CPU level by this (see :func:`levels_for_mode` for why).
PRIORITY_LIVE_CPU_FACTOR = 0.8
#: PRIORITY_LIVE halves the scanner-facing levels: pressure stall, run delay, latency budget.
PRIORITY_LIVE_SCANNER_FACTOR = 0.5
#: PRIORITY_LIVE trips at this memory use at the latest.
PRIORITY_LIVE_MEMORY_CAP = 0.80
MODES = ("STANDALONE", "CONCURRENT", "PRIORITY_LIVE")


class ProtectionLevels(BaseModel):
    """Every trip level and the resume hysteresis, declared once for both guards."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    cpu_fraction: float = Field(
        default=0.85, gt=0.0, le=1.0,
        description="Trip when CPU use exceeds this fraction: of the machine for the breaker, "
        "of the cores the workers leave free (used by other processes) for the fast path.")
    cpu_burst_fraction: float = Field(
        default=1.3, gt=0.0, le=8.0,
        description="Trip at once when, over a short burst window, other processes use more "
        "than this fraction of the cores left free (fast path only). Above 1: more load than "
        "the free cores hold, which one busy process cannot make, so a single process's blip "
        "waits for cpu_fraction over the full window while a multi-core hog is caught in "
        "tens of milliseconds.")
    memory_fraction: float = Field(
        default=0.90, gt=0.0, le=1.0, description="Trip when memory use exceeds this fraction.")
    cpu_pressure_pct: float = Field(
        default=40.0, ge=0.0, le=100.0,
        description="Trip when /proc/pressure/cpu 'some avg10' (% of time stalled) exceeds this.")
    scanner_latency_budget_ms: float | None = Field(
        default=None, gt=0.0,
        description="Trip when the live scanner's latency exceeds this (ms); None: the budget "
        "the scanner publishes in its status file.")
    scanner_budget_scale: float = Field(
        default=1.0, gt=0.0, le=1.0,
        description="Applied to the scanner's published budget (the mode sets it).")
    scanner_run_delay_fraction: float = Field(
        default=0.25, gt=0.0, le=1.0,
        description="Trip when the scanner sat runnable but waiting for a CPU more than this "
        "fraction of the sampling window (/proc/<pid>/schedstat).")
    hysteresis: float = Field(
        default=0.10, ge=0.0, lt=1.0,
        description="Resume only once every signal is below its level x (1 - hysteresis).")
    min_open_seconds: float = Field(
        default=0.0, ge=0.0, description="Stay OPEN at least this long after a trip.")
    resume_hold_seconds: float = Field(
        default=1.0, ge=0.0,
        description="...and until every signal has stayed below its reset level this long "
        "(doubled after a re-trip in HALF_OPEN).")
    max_resume_hold_seconds: float = Field(
        default=30.0, ge=0.0, description="The doubled hold never exceeds this.")
    probe_seconds: float = Field(
        default=5.0, ge=0.0,
        description="HALF_OPEN lasts this long before CLOSED; a trip within it reopens with "
        "the hold doubled.")


def make_levels(source: str, names: Mapping[str, str] | None = None,
                **values: float | None) -> ProtectionLevels:
    """:class:`ProtectionLevels` from a settings source, refusing bad values with the fix.

    ``names`` maps level fields to the setting names the user wrote (for the message)."""
    try:
        return ProtectionLevels.model_validate(values)
    except ValidationError as error:
        problems = [f"{(names or {}).get(str(e['loc'][0]), e['loc'][0])}={e['input']!r} "
                    f"({e['msg']})" for e in error.errors()]
        raise InvalidParameterError(
            f"{source}: invalid protection level(s): {'; '.join(problems)}. Fix: fractions are "
            "in (0, 1] (e.g. 0.85 for 85 %), seconds and milliseconds >= 0.") from None


def levels_for_mode(levels: ProtectionLevels, mode: str | enum.Enum) -> ProtectionLevels:
    """The levels under an execution mode (its name, or an enum whose ``value`` is the name).

    * STANDALONE: no scanner on this machine, backtests may fill every core: CPU never trips
      (memory, pressure and a scanner's own signals still do).
    * CONCURRENT: the levels as configured.
    * PRIORITY_LIVE: the scanner comes first: CPU (and CPU burst) x0.8, memory at most 80 %,
      pressure stall, scanner run delay and latency budget x0.5, resume hold x2.

    Why x0.8 for CPU (the breaker used x0.8, the fast path x0.7): PRIORITY_LIVE already caps
    backtests at half the machine's cores, and the breaker's CPU figure counts the backtests
    themselves, so x0.7 (0.595 of the machine) trips on the backtests' own half plus a little
    noise and keeps the pool flapping; the scanner's direct signals (latency, overdue tick,
    run delay), halved here, catch real harm sooner than any CPU level, so CPU need not be
    the first line.
    """
    name = str(getattr(mode, "value", mode)).strip().upper()
    if name == "CONCURRENT":
        return levels
    if name == "STANDALONE":
        return levels.model_copy(update={"cpu_fraction": 1.0})
    if name != "PRIORITY_LIVE":
        raise InvalidParameterError(
            f"execution_mode {getattr(mode, 'value', mode)!r} is not a mode; expected one of "
            f"{', '.join(MODES)}. Fix: set one of those (or unset BTPIPELINE_EXECUTION_MODE).")
    half = PRIORITY_LIVE_SCANNER_FACTOR
    budget = levels.scanner_latency_budget_ms
    return levels.model_copy(update={
        "cpu_fraction": levels.cpu_fraction * PRIORITY_LIVE_CPU_FACTOR,
        "cpu_burst_fraction": levels.cpu_burst_fraction * PRIORITY_LIVE_CPU_FACTOR,
        "memory_fraction": min(levels.memory_fraction, PRIORITY_LIVE_MEMORY_CAP),
        "cpu_pressure_pct": levels.cpu_pressure_pct * half,
        "scanner_run_delay_fraction": levels.scanner_run_delay_fraction * half,
        "scanner_latency_budget_ms": None if budget is None else budget * half,
        "scanner_budget_scale": levels.scanner_budget_scale * half,
        "resume_hold_seconds": levels.resume_hold_seconds * 2,
    })


@dataclasses.dataclass(frozen=True)
class ProtectionSignals:
    """What a guard measured, in the levels' terms; ``None`` where a signal is absent."""

    cpu_fraction: float | None = None
    cpu_scope: str = "the machine"  # what cpu_fraction is a fraction of, for messages
    cpu_burst_fraction: float | None = None  # the same over the short burst window
    burst_window_s: float = 0.0
    memory_fraction: float | None = None
    cpu_pressure_pct: float | None = None
    scanner_latency_ms: float | None = None
    scanner_latency_kind: str = "tick"  # "tick" (the last one) or "p99 latency", for messages
    scanner_budget_ms: float | None = None  # the budget the scanner publishes
    scanner_overdue_ms: float | None = None  # how far past its budget the current tick is
    scanner_run_delay_fraction: float | None = None
    window_s: float = 0.0  # the window the run delay was measured over


def trip_reasons(signals: ProtectionSignals, levels: ProtectionLevels,
                 scale: float = 1.0) -> list[str]:
    """The signals over their level x ``scale`` (``1 - hysteresis`` gives the reset levels)."""
    reasons: list[str] = []
    cpu = signals.cpu_fraction
    if cpu is not None and cpu > levels.cpu_fraction * scale:
        reasons.append(f"cpu {cpu:.1%} > {levels.cpu_fraction * scale:.1%} of "
                       f"{signals.cpu_scope}")
    burst = signals.cpu_burst_fraction
    if burst is not None and burst > levels.cpu_burst_fraction * scale:
        reasons.append(f"cpu burst {burst:.1%} > {levels.cpu_burst_fraction * scale:.1%} of "
                       f"{signals.cpu_scope} over {signals.burst_window_s * 1000:.0f} ms")
    memory = signals.memory_fraction
    if memory is not None and memory > levels.memory_fraction * scale:
        reasons.append(f"memory {memory:.0%} > {levels.memory_fraction * scale:.0%}")
    pressure = signals.cpu_pressure_pct
    if pressure is not None and pressure > levels.cpu_pressure_pct * scale:
        reasons.append(f"cpu_pressure {pressure:.1f} % > {levels.cpu_pressure_pct * scale:.1f} "
                       "% stalled (avg10)")
    return reasons + _scanner_reasons(signals, levels, scale)


def _scanner_reasons(signals: ProtectionSignals, levels: ProtectionLevels,
                     scale: float) -> list[str]:
    reasons = []
    budget = levels.scanner_latency_budget_ms
    if budget is None and signals.scanner_budget_ms is not None:
        budget = signals.scanner_budget_ms * levels.scanner_budget_scale
    latency = signals.scanner_latency_ms
    if budget is not None and latency is not None and latency > budget * scale:
        reasons.append(f"scanner {signals.scanner_latency_kind} {latency:.0f} ms > "
                       f"{budget * scale:.0f} ms budget")
    if signals.scanner_overdue_ms:
        reasons.append(f"scanner tick {signals.scanner_overdue_ms:.0f} ms past its budget")
    delay = signals.scanner_run_delay_fraction
    if delay is not None and delay > levels.scanner_run_delay_fraction * scale:
        reasons.append(f"scanner waited for a CPU {delay:.0%} of the last "
                       f"{signals.window_s * 1000:.0f} ms")
    return reasons
