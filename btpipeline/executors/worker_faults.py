"""What the parent does about workers outside their steps' own events: the memory limit, step
timeouts, a worker that dies, recycling, and the kill after a termination's grace period.

A killed or dead worker's running step fails (retry policy applies), the steps it finished
stay finished and the ones it had not started go back to the queue (``StepFailures``); then a
replacement worker starts, unless the run is stopping.
"""

from __future__ import annotations

import functools
import time
from collections.abc import Callable, Iterator

from btpipeline.errors import (
    StepTimeout,
    WorkerLost,
    WorkerMemoryLimitExceeded,
    WorkerStartupError,
)
from btpipeline.executors import dagster_internals as internals
from btpipeline.executors.in_flight import InFlightSteps
from btpipeline.executors.load_guard import LoadGuard
from btpipeline.executors.requeue import StepFailures
from btpipeline.executors.worker_pool import Worker, WorkerPool, WorkerStatus, rss_mb
from btpipeline.machine.executor_settings import ExecutorSettings

MAX_STARTUP_FAILURES = 3

# Reads and handles what a killed worker sent before it died (the loop's message handling).
DrainDead = Callable[[Worker], Iterator[internals.DagsterEvent]]


class WorkerFaults:
    """Limits, deaths, recycling and replacement of the run's workers."""

    def __init__(
        self,
        pool: WorkerPool,
        config: ExecutorSettings,
        *,
        flights: InFlightSteps,
        failures: StepFailures,
        drain_dead: DrainDead,
        stopping: Callable[[], bool],
        guard: LoadGuard | None = None,
    ) -> None:
        self._pool, self._cfg, self._guard = pool, config, guard
        self._flights, self._failures = flights, failures
        self._drain_dead, self._stopping = drain_dead, stopping
        self._next_memory_check = 0.0
        self._startup_failures = 0

    def worker_ready(self) -> None:
        """A worker came up: the count of workers that died before becoming ready restarts."""
        self._startup_failures = 0

    def reap(self) -> Iterator[internals.DagsterEvent]:
        """Stop retired workers, enforce the memory limit (at its poll interval) and timeouts."""
        self._pool.reap_retired()
        now = time.monotonic()
        if self._cfg.backtest_worker_memory_limit_mb and now >= self._next_memory_check:
            self._next_memory_check = now + self._cfg.memory_poll_interval_seconds
            yield from self._check_memory()
        yield from self._check_timeouts()

    def exited(self) -> Iterator[Worker]:
        """Live workers whose process exited (not retiring ones): their pipes are drained next."""
        for worker in self._pool.live():
            if not worker.process.is_alive() and worker.status is not WorkerStatus.RETIRING:
                yield worker

    def _check_memory(self) -> Iterator[internals.DagsterEvent]:
        limit = self._cfg.backtest_worker_memory_limit_mb
        for worker in self._flights.busy_workers():
            used = rss_mb(worker)
            if used > limit:
                yield from self._kill_and_fail(worker, functools.partial(
                    _memory_error, pid=worker.pid, limit_mb=limit, used_mb=used))

    def _check_timeouts(self) -> Iterator[internals.DagsterEvent]:
        now = time.monotonic_ns()
        for flight in self._flights.all():
            if flight.timeout_s is None:
                continue
            elapsed = (now - flight.dispatched_ns) / 1e9
            if self._guard is not None:  # time paused by the fast path is not the step's
                elapsed -= self._guard.paused_seconds() - flight.paused_s_at_dispatch
            if elapsed > flight.timeout_s and flight.step.key in self._flights:
                yield from self._kill_and_fail(flight.worker, functools.partial(
                    _timeout_error, pid=flight.worker.pid, timeout_s=flight.timeout_s,
                    elapsed_s=elapsed))

    def _kill_and_fail(
        self, worker: Worker, make_exc: Callable[[str], Exception]
    ) -> Iterator[internals.DagsterEvent]:
        """Kill a busy worker, fail the step it was running and re-queue unstarted ones."""
        self._pool.kill(worker)
        yield from self._drain_dead(worker)  # events sent before the kill still count
        yield from self._failures.fail_running_and_requeue(worker, make_exc)
        self._restart(worker)

    def worker_died(self, worker: Worker) -> Iterator[internals.DagsterEvent]:
        """EOF on the pipe: the worker exited or was killed from outside."""
        retiring = worker.status is WorkerStatus.RETIRING
        self._pool.kill(worker)
        pid = worker.pid or worker.process.pid or 0
        yield from self._failures.fail_running_and_requeue(
            worker, lambda key: WorkerLost(key, pid, worker.process.exitcode))
        if retiring:
            self._pool.forget(worker)  # its successor was started when it was retired
            return
        if worker.ready_ns is None:
            self._startup_failures += 1
            if self._startup_failures >= MAX_STARTUP_FAILURES:
                raise WorkerStartupError(worker.process.pid or 0, "it died before becoming "
                                         f"ready ({MAX_STARTUP_FAILURES} workers in a row)")
        self._restart(worker)

    def _restart(self, worker: Worker) -> None:
        self._pool.forget(worker)
        if not self._stopping():
            self._pool.replace(worker)

    def maybe_recycle(self, worker: Worker) -> None:
        """Retire an idle worker past ``max_steps_per_worker`` or ``recycle_rss_mb``."""
        if worker.status is not WorkerStatus.IDLE or self._stopping():
            return
        limit = self._cfg.recycle_rss_mb
        if worker.steps_run >= self._cfg.max_steps_per_worker or (
            limit and rss_mb(worker) > limit
        ):
            self._pool.retire(worker)

    def kill_after_interrupt(self) -> Iterator[internals.DagsterEvent]:
        """The termination grace period is over: kill the busy workers, fail what still ran."""
        for worker in self._flights.busy_workers():
            self._pool.kill(worker)
            yield from self._drain_dead(worker)
            for flight in self._flights.of_worker(worker):
                if flight.terminal:
                    self._flights.complete(flight, time.monotonic_ns())
                elif not flight.started and len(worker.step_keys) > 1:
                    self._flights.drop(flight.step.key)  # a batch's step never started
                else:
                    exc = internals.DagsterExecutionInterruptedError(
                        f'Step "{flight.step.key}" was still running '
                        f"{self._cfg.worker_shutdown_grace_seconds:g} s after the run was "
                        f"terminated; its worker (pid {worker.pid}) was killed.")
                    yield from self._failures.fail_step(flight.step.key, exc, allow_retry=False)
            self._pool.forget(worker)


def _memory_error(key: str, *, pid: int, limit_mb: int, used_mb: float) -> Exception:
    return WorkerMemoryLimitExceeded(key, pid, limit_mb, used_mb)


def _timeout_error(key: str, *, pid: int, timeout_s: float, elapsed_s: float) -> Exception:
    return StepTimeout(key, pid, timeout_s, elapsed_s)
