"""The circuit breaker's view of the machine: a sensor sample as protection signals.

The levels, the mode scaling and the CLOSED / OPEN / HALF_OPEN machine are the one policy in
:mod:`btpipeline.machine.protection`; this module only says what the breaker measures: the
machine's CPU and memory use, CPU pressure stall (PSI) and the live scanner's p99 latency
(:class:`~btpipeline.monitor.sampler.ResourceSample`). The sensor keeps the state in its
cursor and publishes it at every transition (``queue_control.py``).
"""

from __future__ import annotations

from btpipeline.machine.protection import ProtectionLevels, ProtectionSignals
from btpipeline.machine.protection_state import ProtectionMachine, ProtectionState
from btpipeline.monitor.sampler import ResourceSample


def breaker_signals(sample: ResourceSample) -> ProtectionSignals:
    return ProtectionSignals(
        cpu_fraction=sample.cpu_fraction, memory_fraction=sample.memory_fraction,
        cpu_pressure_pct=sample.cpu_pressure_avg10, scanner_latency_ms=sample.scanner_p99_ms,
        scanner_latency_kind="p99 latency")


def step_breaker(state: ProtectionState, sample: ResourceSample, now: float,
                 levels: ProtectionLevels) -> ProtectionState:
    """The breaker's state after ``sample`` (``state`` itself when nothing changed)."""
    machine = ProtectionMachine(levels, state)
    machine.observe(now, breaker_signals(sample))
    return machine.state
