"""Failing in-flight steps from the parent, and sending a lost worker's unstarted steps back
to the front of the queue for another worker."""

from __future__ import annotations

import time
from collections.abc import Callable, Iterator

from btpipeline.executors import dagster_internals as internals
from btpipeline.executors.in_flight import InFlight, InFlightSteps
from btpipeline.executors.worker_pool import Worker

FailureOrRetry = Callable[
    [internals.IStepContext, internals.SerializableErrorInfo, internals.KnownExecutionState],
    internals.DagsterEvent,
]


class StepFailures:
    """Step failures the parent decides (lost worker, timeout, memory limit, bad tag)."""

    def __init__(
        self,
        context: internals.PlanOrchestrationContext,
        active: internals.ActiveExecution,
        flights: InFlightSteps,
        failure_or_retry: FailureOrRetry,
        requeue: Callable[[list[internals.ExecutionStep]], None],
    ) -> None:
        self._ctx, self._active, self._flights = context, active, flights
        self._failure_or_retry = failure_or_retry
        self._requeue = requeue

    def failure_for(
        self, flight: InFlight, error: internals.SerializableErrorInfo, allow_retry: bool = True
    ) -> Iterator[internals.DagsterEvent]:
        """The step's failure (or retry, by its retry policy) event, handed to ActiveExecution."""
        step_context = self._ctx.for_step(flight.step)
        if allow_retry:
            event = self._failure_or_retry(step_context, error, self._active.get_known_state())
        else:
            event = internals.step_failure_event(step_context, error)
        flight.terminal = True
        yield event
        self._active.handle_event(event)

    def fail_step(
        self, key: str, exc: BaseException, allow_retry: bool = True
    ) -> Iterator[internals.DagsterEvent]:
        """Fail an in-flight step from the parent (its worker already killed or never used)."""
        flight = self._flights[key]
        if not flight.terminal:
            error = internals.error_info_from_exception(exc)
            yield internals.engine_event(self._ctx.for_step(flight.step), str(exc), error=error)
            yield from self.failure_for(flight, error, allow_retry)
        self._flights.complete(flight, time.monotonic_ns())

    def fail_running_and_requeue(
        self, worker: Worker, make_exc: Callable[[str], Exception]
    ) -> Iterator[internals.DagsterEvent]:
        """A worker is gone: fail the step it was running, keep the ones it finished and
        requeue the ones it had not started."""
        flights = self._flights.of_worker(worker)
        open_flights = [f for f in flights if not f.terminal]
        # the step it was running; if none had started, the first it would have run
        running = next((f for f in open_flights if f.started), open_flights[0] if open_flights
                       else None)
        if running is not None:
            yield from self.fail_step(running.step.key, make_exc(running.step.key))
        requeue = []
        for flight in flights:
            if flight is running:
                continue
            if flight.terminal:
                self._flights.complete(flight, time.monotonic_ns())  # finished before the kill
            else:
                self._flights.drop(flight.step.key)
                requeue.append(flight.step)
        if requeue:
            self._requeue(requeue)
