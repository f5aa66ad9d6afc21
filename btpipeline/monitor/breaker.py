"""The circuit breaker: CLOSED -> OPEN -> HALF_OPEN -> CLOSED, with hysteresis.

Pure logic, no I/O: feed it a :class:`~btpipeline.monitor.sampler.ResourceSample` and the
time, get the next state. The sensor persists the state in its cursor (``to_json`` /
``from_json``) and turns transitions into run-queue actions (``queue_control.py``).

- CLOSED -> OPEN when any signal crosses its trip threshold (CPU, memory, CPU pressure, the
  scanner's p99 latency over its budget).
- OPEN -> HALF_OPEN once every signal is below its *reset* threshold (trip minus hysteresis)
  and ``cooldown_seconds`` have passed since the trip: one backtest slot is let through.
- HALF_OPEN -> CLOSED after ``probe_seconds`` of healthy samples; back to OPEN on any trip.
"""

from __future__ import annotations

import dataclasses
import enum
import json

from btpipeline.errors import InvalidParameterError
from btpipeline.monitor.sampler import ResourceSample


class BreakerState(enum.Enum):
    CLOSED = "CLOSED"
    OPEN = "OPEN"
    HALF_OPEN = "HALF_OPEN"


@dataclasses.dataclass(frozen=True)
class BreakerThresholds:
    """Trip levels (fractions for CPU and memory, avg10 % for pressure, ms for latency)."""

    cpu_threshold: float = 0.85
    memory_threshold: float = 0.90
    cpu_pressure_threshold: float = 40.0
    scanner_latency_budget_ms: float = 1000.0
    hysteresis: float = 0.10
    cooldown_seconds: float = 30.0
    probe_seconds: float = 30.0

    def __post_init__(self) -> None:
        for name in ("cpu_threshold", "memory_threshold", "hysteresis"):
            value = getattr(self, name)
            if not 0.0 < value <= 1.0:
                raise InvalidParameterError(
                    f"Breaker threshold {name} must be a fraction in (0, 1]; got {value}. "
                    f"Fix: e.g. {name}=0.85 for 85%.")
        for name in ("cooldown_seconds", "probe_seconds", "scanner_latency_budget_ms",
                     "cpu_pressure_threshold"):
            if getattr(self, name) < 0:
                raise InvalidParameterError(
                    f"Breaker setting {name} must be >= 0; got {getattr(self, name)}.")

    def for_mode(self, mode: str) -> BreakerThresholds:
        """Mode-specific levels: STANDALONE has no scanner and lets backtests fill every core
        (CPU never trips; memory and pressure still do); PRIORITY_LIVE puts the scanner first
        (CPU x0.8, pressure and latency budget x0.5); CONCURRENT as configured."""
        if mode == "STANDALONE":
            return dataclasses.replace(self, cpu_threshold=1.0)
        if mode == "PRIORITY_LIVE":
            return dataclasses.replace(
                self, cpu_threshold=self.cpu_threshold * 0.8,
                cpu_pressure_threshold=self.cpu_pressure_threshold * 0.5,
                scanner_latency_budget_ms=self.scanner_latency_budget_ms * 0.5)
        return self

    def tripped_by(self, sample: ResourceSample, scale: float = 1.0) -> list[str]:
        """The signals over their threshold x ``scale`` (scale < 1 gives the reset levels)."""
        checks = [
            ("cpu", sample.cpu_fraction, self.cpu_threshold),
            ("memory", sample.memory_fraction, self.memory_threshold),
            ("cpu_pressure", sample.cpu_pressure_avg10, self.cpu_pressure_threshold),
            ("scanner_latency", sample.scanner_p99_ms, self.scanner_latency_budget_ms),
        ]
        return [f"{name} {value:.3g} > {limit * scale:.3g}" for name, value, limit in checks
                if value is not None and value > limit * scale]


@dataclasses.dataclass(frozen=True)
class Breaker:
    state: BreakerState = BreakerState.CLOSED
    since: float = 0.0  # when the current state was entered (epoch seconds)
    reason: str = ""

    def step(self, sample: ResourceSample, now: float, limits: BreakerThresholds) -> Breaker:
        """The next breaker (``self`` when nothing changes)."""
        tripped = limits.tripped_by(sample)
        if self.state is not BreakerState.OPEN and tripped:
            return Breaker(BreakerState.OPEN, now, "; ".join(tripped))
        if self.state is BreakerState.OPEN:
            still = limits.tripped_by(sample, scale=1.0 - limits.hysteresis)
            if not still and now - self.since >= limits.cooldown_seconds:
                return Breaker(BreakerState.HALF_OPEN, now, "recovered below reset levels")
            return self
        if self.state is BreakerState.HALF_OPEN and now - self.since >= limits.probe_seconds:
            return Breaker(BreakerState.CLOSED, now, f"healthy for {limits.probe_seconds:.0f} s")
        return self

    def to_json(self) -> str:
        return json.dumps({"state": self.state.value, "since": self.since, "reason": self.reason})

    @staticmethod
    def from_json(text: str | None) -> Breaker:
        if not text:
            return Breaker()
        data = json.loads(text)
        return Breaker(BreakerState(data["state"]), float(data["since"]), data.get("reason", ""))
