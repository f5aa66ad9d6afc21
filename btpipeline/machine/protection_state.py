"""The one protection state machine, CLOSED -> OPEN -> HALF_OPEN -> CLOSED, and its record.

Pure logic, no I/O and no clock of its own: callers pass ``now`` (the breaker sensor epoch
seconds, the fast path a monotonic clock). Both guards step :class:`ProtectionMachine`:

* CLOSED -> OPEN on any trip (a signal over its level, or a caller's extra reason such as
  "circuit breaker OPEN" or preemption for the fast path); the resume hold starts at
  ``resume_hold_seconds``.
* OPEN -> HALF_OPEN once every signal has stayed below its reset level (level x
  ``1 - hysteresis``) for the hold, and at least ``min_open_seconds`` after the trip.
* HALF_OPEN -> CLOSED after ``probe_seconds``; a trip before then reopens with the hold
  doubled (up to ``max_resume_hold_seconds``), so a load that returns whenever work resumes
  does not make it flap.

:class:`ProtectionState` is also the record the breaker publishes (see
:mod:`btpipeline.machine.protection` for where): ``to_json`` / ``from_json``.
"""

from __future__ import annotations

import dataclasses
import enum
import json
from collections.abc import Sequence
from typing import Any

from btpipeline.machine.protection import (
    ProtectionLevels,
    ProtectionSignals,
    trip_reasons,
)


class CircuitState(enum.Enum):
    CLOSED = "CLOSED"  # work runs
    OPEN = "OPEN"  # work is held: no pool slot for queued work, running work paused
    HALF_OPEN = "HALF_OPEN"  # work runs again on probation (the pool gets one slot)


@dataclasses.dataclass(frozen=True)
class ProtectionState:
    """Where the machine is; also the published record (state + reasons + timestamp)."""

    state: CircuitState = CircuitState.CLOSED
    since: float = 0.0  # when the state was entered
    reasons: tuple[str, ...] = ()
    healthy_since: float | None = None  # OPEN: since when every signal is below reset
    hold_seconds: float | None = None  # OPEN / HALF_OPEN: the current resume hold

    @property
    def reason(self) -> str:
        return "; ".join(self.reasons)

    def to_dict(self) -> dict[str, Any]:
        return {"state": self.state.value, "since": self.since, "reason": self.reason,
                "reasons": list(self.reasons), "healthy_since": self.healthy_since,
                "hold_seconds": self.hold_seconds}

    def to_json(self) -> str:
        return json.dumps(self.to_dict())

    @staticmethod
    def from_dict(data: dict[str, Any]) -> ProtectionState:
        reasons = data.get("reasons")
        if reasons is None:  # a record written before reasons were a list
            reasons = [data["reason"]] if data.get("reason") else []
        return ProtectionState(CircuitState(data["state"]), float(data["since"]),
                               tuple(str(r) for r in reasons), data.get("healthy_since"),
                               data.get("hold_seconds"))

    @staticmethod
    def from_json(text: str | None) -> ProtectionState:
        """The state in ``text``; CLOSED when there is none yet."""
        return ProtectionState.from_dict(json.loads(text)) if text else ProtectionState()


def next_state(current: ProtectionState, now: float, tripped: Sequence[str], healthy: bool,
               levels: ProtectionLevels) -> ProtectionState:
    """The state after one observation: ``tripped`` are the reasons over the trip levels,
    ``healthy`` says every signal is below its reset level."""
    if current.state is CircuitState.HALF_OPEN and now - current.since >= levels.probe_seconds:
        current = ProtectionState(CircuitState.CLOSED, now,
                                  (f"no trip for {levels.probe_seconds:g} s after resuming",))
    if current.state is not CircuitState.OPEN:
        return _open(current, now, tripped, levels) if tripped else current
    if not healthy:
        return dataclasses.replace(current, healthy_since=None)
    healthy_since = now if current.healthy_since is None else current.healthy_since
    hold = levels.resume_hold_seconds if current.hold_seconds is None else current.hold_seconds
    open_for, held = now - current.since, now - healthy_since
    if held >= hold and open_for >= levels.min_open_seconds:
        return ProtectionState(
            CircuitState.HALF_OPEN, now,
            (f"below the reset levels for {held:.1f} s after {open_for:.1f} s OPEN",),
            hold_seconds=hold)
    return dataclasses.replace(current, healthy_since=healthy_since)


def _open(current: ProtectionState, now: float, tripped: Sequence[str],
          levels: ProtectionLevels) -> ProtectionState:
    hold = levels.resume_hold_seconds
    if current.state is CircuitState.HALF_OPEN and current.hold_seconds is not None:
        hold = min(current.hold_seconds * 2, levels.max_resume_hold_seconds)
    return ProtectionState(CircuitState.OPEN, now, tuple(tripped), hold_seconds=hold)


class ProtectionMachine:
    """One guard's protection: its levels and its current state."""

    def __init__(self, levels: ProtectionLevels, state: ProtectionState | None = None) -> None:
        self.levels = levels
        self.state = state or ProtectionState()

    def observe(self, now: float, signals: ProtectionSignals, *, extra: Sequence[str] = (),
                resume_signals: ProtectionSignals | None = None) -> ProtectionState | None:
        """Check ``signals`` against the levels and step; the new state on a transition.

        ``extra``: trip reasons the levels do not cover (they also keep it from resuming).
        ``resume_signals``: what to judge the reset levels on, when that differs (the fast
        path ignores a scanner tick reported from before the pause)."""
        tripped = [*trip_reasons(signals, self.levels), *extra]
        healthy = not extra and not trip_reasons(
            resume_signals or signals, self.levels, scale=1.0 - self.levels.hysteresis)
        return self.update(now, tripped, healthy)

    def update(self, now: float, tripped: Sequence[str], healthy: bool
               ) -> ProtectionState | None:
        """Step with reasons already checked; the new state on a transition, else None."""
        before = self.state
        self.state = next_state(before, now, tripped, healthy, self.levels)
        changed = (self.state.state, self.state.since) != (before.state, before.since)
        return self.state if changed else None
