"""Per-phase step timings of one run, and the running estimate of one step's worker time."""

from __future__ import annotations

from btpipeline.executors.counters import PerformanceCounter
from btpipeline.executors.in_flight import InFlight
from btpipeline.executors.protocol import StepDone

PHASES = ("queue_wait", "dispatch", "compute", "event_write", "event_send", "result", "total")


class StepTimings:
    """A performance counter per phase (µs) and ``step_seconds``, what batch sizes go by."""

    def __init__(self) -> None:
        self.counters = {p: PerformanceCounter(f"backtest_executor.{p}") for p in PHASES}
        self.step_seconds: float | None = None  # running estimate of one step's worker time

    def observe(self, done: StepDone) -> None:
        """Fold a finished request's time per step into ``step_seconds``."""
        if not done.step_keys:
            return
        sample = (done.finished_ns - done.received_ns) / 1e9 / len(done.step_keys)
        previous = self.step_seconds
        self.step_seconds = sample if previous is None else 0.5 * previous + 0.5 * sample

    def record(self, flight: InFlight, done: StepDone, now: int) -> dict[str, int]:
        """Phase times of one step; a batch's worker-side phases are split evenly."""
        n = max(1, len(done.step_keys))
        compute = done.finished_ns - done.received_ns - done.event_write_ns - done.event_send_ns
        values = {
            "queue_wait": flight.dispatched_ns - flight.ready_ns,
            "dispatch": done.received_ns - flight.dispatched_ns,
            "compute": compute // n,
            "event_write": done.event_write_ns // n,
            "event_send": done.event_send_ns // n,
            "result": now - done.finished_ns,
            "total": now - flight.ready_ns,
        }
        values = {k: max(0, v) // 1000 for k, v in values.items()}
        for name, value in values.items():
            self.counters[name].record(value)
        return values
