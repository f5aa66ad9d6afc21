"""The parent's dispatch loop: Dagster's ActiveExecution over a pool of warm workers.

One pass of :meth:`DispatchLoop.run`: handle a termination request, launch ready steps on idle
workers (``launch.Launcher``), poll the worker pipes for events, then reap (memory limit,
timeouts, recycling, dead workers: ``worker_faults.WorkerFaults``). The in-flight steps are
kept by ``in_flight.InFlightSteps``; failing them from the parent and sending unstarted ones
back to the queue is ``requeue.StepFailures``; per-phase timings are ``step_timings``.

Batches: when ``batch_cap`` > 1 (no step of the plan is in a pool), an idle worker gets up to
``batch_cap`` independent ready steps without a timeout in one request, run in one Dagster plan
call. Each step keeps its own events; a step's success unblocks its downstream steps at once.
If the worker is killed or dies mid-batch, the step it was running fails (retry policy
applies), steps it finished stay finished, and the steps it had not started go back to the
front of the queue for another worker.
"""

from __future__ import annotations

import functools
import time
from collections.abc import Callable, Iterator
from multiprocessing.connection import wait

from btpipeline.errors import WorkerStartupError
from btpipeline.executors import dagster_internals as internals
from btpipeline.executors.counters import PerformanceCounter
from btpipeline.executors.in_flight import InFlightSteps
from btpipeline.executors.launch import Launcher
from btpipeline.executors.load_guard import LoadGuard, guard_message, guard_metadata
from btpipeline.executors.protocol import (
    StepDone,
    StepEvent,
    StepSystemError,
    WorkerReady,
    WorkerStartFailed,
)
from btpipeline.executors.requeue import FailureOrRetry, StepFailures
from btpipeline.executors.step_timings import PHASES, StepTimings
from btpipeline.executors.worker_faults import WorkerFaults
from btpipeline.executors.worker_pool import Worker, WorkerPool, WorkerStatus
from btpipeline.machine.executor_settings import ExecutorSettings

__all__ = ["PHASES", "DispatchLoop"]

_NOTHING, _EOF = object(), object()


def _receive(worker: Worker) -> object:
    """The next message on the worker's pipe, ``_NOTHING`` if none waits, ``_EOF`` if it died."""
    try:
        if not worker.conn.poll():
            return _NOTHING
        return worker.conn.recv()
    except (EOFError, OSError):
        return _EOF


class DispatchLoop:
    """Drives one run's steps through the pool; yields every DagsterEvent for the run."""

    def __init__(
        self,
        context: internals.PlanOrchestrationContext,
        active: internals.ActiveExecution,
        pool: WorkerPool,
        config: ExecutorSettings,
        failure_or_retry: FailureOrRetry,
        batch_cap: int = 1,
        guard: LoadGuard | None = None,
    ) -> None:
        self._ctx, self._active, self._pool, self._cfg = context, active, pool, config
        self._guard = guard
        self._stopping = False
        self._stop_deadline = 0.0
        self._timings = StepTimings()
        self._flights = InFlightSteps(context, active)
        self._failures = StepFailures(context, active, self._flights, failure_or_retry,
                                      requeue=self._requeue)
        self._launcher = Launcher(context, active, pool, config, flights=self._flights,
                                  failures=self._failures, timings=self._timings,
                                  batch_cap=batch_cap, guard=guard)
        self._faults = WorkerFaults(pool, config, flights=self._flights,
                                    failures=self._failures, drain_dead=self._drain_dead,
                                    stopping=lambda: self._stopping, guard=guard)
        self.startup_ms: list[float] = []
        self.replacement_ready_ms: list[float] = []
        self.worker_pids: set[int] = set()
        # step-timing events, written after the next dispatch: off the workers' critical path
        self._deferred: list[Callable[[], internals.DagsterEvent]] = []

    @property
    def counters(self) -> dict[str, PerformanceCounter]:
        return self._timings.counters

    @property
    def batches(self) -> int:
        """Requests sent to workers (a batch of steps is one request)."""
        return self._launcher.batches

    # ------------------------------------------------------------------ main loop
    def run(self) -> Iterator[internals.DagsterEvent]:
        while (not self._stopping and not self._active.is_complete) or self._flights:
            yield from self._check_interrupt()
            yield from self._guard_events()
            if not self._stopping and not (self._guard and self._guard.holding):
                yield from self._launcher.launch()
            yield from self._flush_deferred()
            yield from self._poll()
            yield from self._reap()
            yield from self._active.plan_events_iterator(self._ctx)
        yield from self._flush_deferred()
        if self._stopping:
            yield internals.engine_event(
                self._ctx, "backtest_executor: all workers stopped after the termination request.")
            raise internals.DagsterExecutionInterruptedError()

    def _flush_deferred(self) -> Iterator[internals.DagsterEvent]:
        """Write the step-timing events of steps that finished since the last call."""
        deferred, self._deferred = self._deferred, []
        for make in deferred:
            yield make()

    def _check_interrupt(self) -> Iterator[internals.DagsterEvent]:
        if self._stopping:
            if time.monotonic() > self._stop_deadline:
                yield from self._faults.kill_after_interrupt()
            return
        if not self._active.check_for_interrupts():
            return
        busy = self._flights.keys()
        yield internals.engine_event(
            self._ctx, f"backtest_executor: termination requested; interrupting {len(busy)} busy "
            f"worker(s), killing any still running after "
            f"{self._cfg.worker_shutdown_grace_seconds:g} s.", {"steps_interrupted": str(busy)})
        self._stopping = True
        if self._guard is not None:
            self._guard.stop()  # SIGCONT first: a stopped worker cannot take SIGINT
        self._launcher.drop_pending()
        self._stop_deadline = time.monotonic() + self._cfg.worker_shutdown_grace_seconds
        self._active.mark_interrupted()
        self._pool.interrupt_busy()

    def _guard_events(self) -> Iterator[internals.DagsterEvent]:
        if self._guard is None:
            return
        for notice in self._guard.drain_notices():
            yield internals.engine_event(self._ctx, guard_message(notice), guard_metadata(notice))

    def _requeue(self, steps: list[internals.ExecutionStep]) -> None:
        if not self._stopping:
            self._launcher.requeue(steps)

    def _reap(self) -> Iterator[internals.DagsterEvent]:
        yield from self._faults.reap()
        for worker in self._faults.exited():
            yield from self._drain(worker)

    # ------------------------------------------------------------------ poll
    def _poll(self) -> Iterator[internals.DagsterEvent]:
        by_conn = self._pool.by_conn()
        if not by_conn:
            time.sleep(self._cfg.memory_poll_interval_seconds)
            return
        for conn in wait(list(by_conn), timeout=self._poll_timeout()):
            yield from self._drain(by_conn[conn])  # type: ignore[index]

    def _poll_timeout(self) -> float:
        timeout = self._cfg.memory_poll_interval_seconds
        sleep = self._active.sleep_interval()
        return max(0.0, min(timeout, sleep)) if sleep > 0 else timeout

    def _drain(self, worker: Worker) -> Iterator[internals.DagsterEvent]:
        """Handle every message waiting on the worker's pipe; EOF means it died."""
        while worker.status is not WorkerStatus.DEAD:
            message = _receive(worker)
            if message is _NOTHING:
                return
            if message is _EOF:
                yield from self._faults.worker_died(worker)
                return
            yield from self._handle(worker, message)

    def _drain_dead(self, worker: Worker) -> Iterator[internals.DagsterEvent]:
        """What a killed worker sent before it died."""
        while (message := _receive(worker)) not in (_NOTHING, _EOF):
            yield from self._handle(worker, message)

    def _handle(self, worker: Worker, message: object) -> Iterator[internals.DagsterEvent]:
        if isinstance(message, StepEvent):
            yield from self._handle_step_event(worker, message)
        elif isinstance(message, StepDone):
            yield from self._step_done(worker, message)
        elif isinstance(message, StepSystemError):
            for key in message.step_keys:
                if (flight := self._flights.get(key)) is not None:
                    flight.system_error = message.error
        elif isinstance(message, WorkerReady):
            yield from self._worker_ready(worker, message)
        elif isinstance(message, WorkerStartFailed):
            self._pool.kill(worker)
            raise WorkerStartupError(message.pid, message.error.to_string())

    def _handle_step_event(
        self, worker: Worker, message: StepEvent
    ) -> Iterator[internals.DagsterEvent]:
        event = message.event
        yield event
        self._active.handle_event(event)
        flight = self._flights.get(message.step_key) if message.step_key else None
        if flight is not None:
            if event.is_step_start:
                flight.started = True
            if internals.is_terminal_step_event(event):
                flight.terminal = True
        if event.is_resource_init_failure:  # fails the request's steps (a batch's: no step key)
            for other in self._flights.of_worker(worker):
                if not other.terminal:
                    yield from self._failures.failure_for(other, event.engine_event_data.error)

    def _worker_ready(self, worker: Worker, ready: WorkerReady) -> Iterator[internals.DagsterEvent]:
        self._pool.mark_ready(worker, ready)
        self._faults.worker_ready()
        self.worker_pids.add(ready.pid)
        startup = worker.startup_ms or 0.0
        ready_times = self.replacement_ready_ms if worker.replaces is not None else self.startup_ms
        ready_times.append(startup)
        if worker.replaces is None and not ready.warnings:
            return
        what = (f"replacing worker {worker.replaces}" if worker.replaces is not None
                else "with isolation warnings")
        yield internals.engine_event(
            self._ctx, f"backtest_executor: worker {worker.worker_id} (pid {ready.pid}) ready in "
            f"{startup:.0f} ms, {what}.",
            {"pid": ready.pid, "time_to_ready_ms": round(startup, 1),
             "isolation": str(ready.isolation), "warnings": "; ".join(ready.warnings) or "none"})

    # ------------------------------------------------------------------ step completion
    def _step_done(self, worker: Worker, done: StepDone) -> Iterator[internals.DagsterEvent]:
        flights = self._flights.of_worker(worker)
        now = time.monotonic_ns()
        self._timings.observe(done)
        for position, flight in enumerate(flights):
            if (not flight.terminal and self._stopping and not flight.started
                    and len(done.step_keys) > 1):
                self._flights.drop(flight.step.key)  # a batch's step never started
                continue
            if not flight.terminal and flight.system_error is not None:
                yield from self._failures.failure_for(flight, flight.system_error)
            timings = self._timings.record(flight, done, now)
            if self._cfg.record_step_timings:  # written once the next step is dispatched
                self._deferred.append(functools.partial(
                    internals.engine_event, self._ctx.for_step(flight.step),
                    f"backtest_executor: step ran in worker {worker.worker_id} (pid "
                    f"{worker.pid}).",
                    {**{f"{k}_us": v for k, v in timings.items()}, "pid": worker.pid,
                     "worker_steps_run": worker.steps_run + position + 1,
                     "batch_size": len(done.step_keys)}))
            self._flights.complete(flight, now)
        self._pool.finish_step(worker)
        self._faults.maybe_recycle(worker)
