"""When the executor sheds load: trip levels per execution mode and the pause/resume machine.

Pure logic, no I/O, so every rule is unit-tested with made-up samples and clocks.
:class:`~btpipeline.executors.load_guard.LoadGuard` feeds it a sample every ~50 ms and turns
its decisions into SIGSTOP / SIGCONT of the run's workers.

Hysteresis, two ways:

* levels: trip at a threshold, resume only once every signal is below threshold x
  ``(1 - hysteresis)``;
* time: resume only after ``resume_hold_seconds`` of healthy samples; a trip within
  ``flap_window_seconds`` of a resume doubles that hold (up to ``max_resume_hold_seconds``),
  so a load that comes back whenever backtests resume does not make them flap.
"""

from __future__ import annotations

import dataclasses
import enum

from btpipeline.machine.cores import ExecutionMode
from btpipeline.monitor.fast_signals import FastSample


@dataclasses.dataclass(frozen=True)
class ShedLimits:
    """Trip levels of the fast path (fractions of what they measure)."""

    cpu_threshold: float = 0.85  # of the cores backtests leave to everything else
    memory_threshold: float = 0.90
    scanner_run_delay_threshold: float = 0.25  # of the window the scanner sat runnable, waiting
    scanner_latency_budget_ms: float | None = None  # None: the budget the scanner publishes
    scanner_budget_scale: float = 1.0  # applied to the scanner's published budget
    hysteresis: float = 0.10
    resume_hold_seconds: float = 1.0
    max_resume_hold_seconds: float = 30.0
    flap_window_seconds: float = 5.0

    def for_mode(self, mode: ExecutionMode) -> ShedLimits:
        """PRIORITY_LIVE (the scanner comes first) trips earlier and waits longer to resume."""
        if mode is not ExecutionMode.PRIORITY_LIVE:
            return self
        budget = self.scanner_latency_budget_ms
        return dataclasses.replace(
            self, cpu_threshold=self.cpu_threshold * 0.7,
            memory_threshold=min(self.memory_threshold, 0.80),
            scanner_run_delay_threshold=self.scanner_run_delay_threshold * 0.5,
            scanner_latency_budget_ms=None if budget is None else budget * 0.5,
            scanner_budget_scale=0.5,
            resume_hold_seconds=self.resume_hold_seconds * 2)


def trip_reasons(sample: FastSample, limits: ShedLimits, free_cores: float, *,
                 scale: float = 1.0, ignore_latency_before: float | None = None
                 ) -> list[str]:
    """Signals over their level x ``scale`` (``scale`` < 1 gives the resume levels).

    ``free_cores``: cores left to non-backtest work when this run's workers all run (0 in
    STANDALONE: the CPU signal is off there). The CPU signal also needs a live scanner: busy
    cores hurt no one latency-critical when none runs (memory, the breaker and preemption
    still apply). ``ignore_latency_before``: a scanner heartbeat
    older than this (epoch s) reports a tick from before the pause; it says nothing about now.
    """
    reasons: list[str] = []
    if free_cores > 0 and sample.scanner_heartbeat_unix is not None:
        limit = limits.cpu_threshold * free_cores * scale
        if sample.other_cpu_cores > limit:
            reasons.append(f"other processes use {sample.other_cpu_cores:.2f} cores > "
                           f"{limit:.2f} (of {free_cores:g} left beside the backtests)")
    if sample.memory_fraction > limits.memory_threshold * scale:
        reasons.append(f"memory {sample.memory_fraction:.0%} > "
                       f"{limits.memory_threshold * scale:.0%}")
    reasons += _scanner_reasons(sample, limits, scale, ignore_latency_before)
    return reasons


def _scanner_reasons(sample: FastSample, limits: ShedLimits, scale: float,
                     ignore_before: float | None) -> list[str]:
    if sample.scanner_heartbeat_unix is None:
        return []
    reasons = []
    budget = limits.scanner_latency_budget_ms
    if budget is None and sample.scanner_budget_ms is not None:
        budget = sample.scanner_budget_ms * limits.scanner_budget_scale
    fresh = ignore_before is None or sample.scanner_heartbeat_unix >= ignore_before
    latency = sample.scanner_last_latency_ms
    if budget is not None and fresh and latency is not None and latency > budget * scale:
        reasons.append(f"scanner tick took {latency:.0f} ms > {budget * scale:.0f} ms budget")
    if sample.scanner_overdue_ms:
        reasons.append(f"scanner tick {sample.scanner_overdue_ms:.0f} ms past its budget")
    delay = sample.scanner_run_delay_fraction
    if delay is not None and delay > limits.scanner_run_delay_threshold * scale:
        reasons.append(f"scanner waited for a CPU {delay:.0%} of the last "
                       f"{sample.window_s * 1000:.0f} ms")
    return reasons


class ShedState(enum.Enum):
    RUNNING = "RUNNING"
    PAUSED = "PAUSED"


@dataclasses.dataclass(frozen=True)
class Decision:
    state: ShedState
    reason: str


@dataclasses.dataclass
class ShedMachine:
    """RUNNING <-> PAUSED with level and time hysteresis; ``update`` returns a Decision on a
    transition, else None."""

    limits: ShedLimits
    state: ShedState = ShedState.RUNNING
    since: float = 0.0
    healthy_since: float | None = None
    hold: float = dataclasses.field(init=False)
    last_resume: float | None = None

    def __post_init__(self) -> None:
        self.hold = self.limits.resume_hold_seconds

    def update(self, now: float, tripped: list[str], healthy: bool) -> Decision | None:
        """``tripped``: reasons at trip levels; ``healthy``: every signal below reset levels."""
        if self.state is ShedState.RUNNING:
            if not tripped:
                return None
            self._backoff(now)
            self.state, self.since, self.healthy_since = ShedState.PAUSED, now, None
            return Decision(ShedState.PAUSED, "; ".join(tripped))
        if not healthy:
            self.healthy_since = None
            return None
        if self.healthy_since is None:
            self.healthy_since = now
        if now - self.healthy_since < self.hold:
            return None
        paused_for = now - self.since
        self.state, self.since, self.last_resume = ShedState.RUNNING, now, now
        return Decision(ShedState.RUNNING, f"healthy for {self.hold:g} s after {paused_for:.1f} "
                        "s paused")

    def _backoff(self, now: float) -> None:
        recent = self.last_resume is not None and now - self.last_resume < (
            self.limits.flap_window_seconds)
        self.hold = (min(self.hold * 2, self.limits.max_resume_hold_seconds) if recent
                     else self.limits.resume_hold_seconds)
