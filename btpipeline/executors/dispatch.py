"""The parent's dispatch loop: Dagster's ActiveExecution over a pool of warm workers.

One pass of :meth:`DispatchLoop.run`: handle a termination request, launch ready steps on idle
workers (highest ``dagster/priority`` first, pool slots claimed by ActiveExecution), poll the
worker pipes for events, then reap (memory limit, timeouts, recycling, dead workers).

Batches: when ``batch_cap`` > 1 (no step of the plan is in a pool), an idle worker gets up to
``batch_cap`` independent ready steps without a timeout in one request, run in one Dagster plan
call. Each step keeps its own events; a step's success unblocks its downstream steps at once.
If the worker is killed or dies mid-batch, the step it was running fails (retry policy
applies), steps it finished stay finished, and the steps it had not started go back to the
front of the queue for another worker.
"""

from __future__ import annotations

import dataclasses
import functools
import math
import time
from collections.abc import Callable, Iterator
from multiprocessing.connection import wait

from btpipeline.executors import dagster_internals as internals
from btpipeline.executors.counters import PerformanceCounter
from btpipeline.executors.errors import (
    InvalidStepTagError,
    StepTimeout,
    WorkerLost,
    WorkerMemoryLimitExceeded,
    WorkerStartupError,
)
from btpipeline.executors.load_guard import LoadGuard, guard_message, guard_metadata
from btpipeline.executors.protocol import (
    StepDone,
    StepEvent,
    StepRequest,
    StepSystemError,
    WorkerReady,
    WorkerStartFailed,
)
from btpipeline.executors.worker_pool import Worker, WorkerPool, WorkerStatus, rss_mb
from btpipeline.machine.executor_settings import ExecutorSettings
from btpipeline.machine.tags import STEP_TIMEOUT_TAG

FailureOrRetry = Callable[
    [internals.IStepContext, internals.SerializableErrorInfo, internals.KnownExecutionState],
    internals.DagsterEvent,
]
MAX_STARTUP_FAILURES = 3
PHASES = ("queue_wait", "dispatch", "compute", "event_write", "event_send", "result", "total")


_NOTHING, _EOF = object(), object()


def _receive(worker: Worker) -> object:
    """The next message on the worker's pipe, ``_NOTHING`` if none waits, ``_EOF`` if it died."""
    try:
        if not worker.conn.poll():
            return _NOTHING
        return worker.conn.recv()
    except (EOFError, OSError):
        return _EOF


@dataclasses.dataclass(slots=True)
class InFlight:
    step: internals.ExecutionStep
    worker: Worker
    ready_ns: int
    dispatched_ns: int
    timeout_s: float | None
    paused_s_at_dispatch: float = 0.0
    terminal: bool = False
    started: bool = False
    system_error: internals.SerializableErrorInfo | None = None


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
        self._failure_or_retry = failure_or_retry
        self._batch_cap = max(1, batch_cap)
        self._step_seconds: float | None = None  # running estimate of one step's worker time
        self._in_flight: dict[str, InFlight] = {}
        # steps ActiveExecution handed out (or a dead worker never started), not yet dispatched
        self._pending: list[internals.ExecutionStep] = []
        self.batches = 0
        self._finished_ns: dict[str, int] = {}
        self._start_ns = time.monotonic_ns()
        self._stopping = False
        self._stop_deadline = 0.0
        self._next_memory_check = 0.0
        self.counters = {p: PerformanceCounter(f"backtest_executor.{p}") for p in PHASES}
        self.startup_ms: list[float] = []
        self.replacement_ready_ms: list[float] = []
        self.worker_pids: set[int] = set()
        self._startup_failures = 0
        # step-timing events, written after the next dispatch: off the workers' critical path
        self._deferred: list[Callable[[], internals.DagsterEvent]] = []

    # ------------------------------------------------------------------ main loop
    def run(self) -> Iterator[internals.DagsterEvent]:
        while (not self._stopping and not self._active.is_complete) or self._in_flight:
            yield from self._check_interrupt()
            yield from self._guard_events()
            if not self._stopping and not (self._guard and self._guard.holding):
                yield from self._launch()
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
                yield from self._kill_in_flight_after_interrupt()
            return
        if not self._active.check_for_interrupts():
            return
        busy = sorted(self._in_flight)
        yield internals.engine_event(
            self._ctx, f"backtest_executor: termination requested; interrupting {len(busy)} busy "
            f"worker(s), killing any still running after "
            f"{self._cfg.worker_shutdown_grace_seconds:g} s.", {"steps_interrupted": str(busy)})
        self._stopping = True
        if self._guard is not None:
            self._guard.stop()  # SIGCONT first: a stopped worker cannot take SIGINT
        self._pending = []  # never dispatched: they stay un-run, as with Dagster's executors
        self._stop_deadline = time.monotonic() + self._cfg.worker_shutdown_grace_seconds
        self._active.mark_interrupted()
        self._pool.interrupt_busy()

    def _guard_events(self) -> Iterator[internals.DagsterEvent]:
        if self._guard is None:
            return
        for notice in self._guard.drain_notices():
            yield internals.engine_event(self._ctx, guard_message(notice), guard_metadata(notice))

    # ------------------------------------------------------------------ launch
    def _launch(self) -> Iterator[internals.DagsterEvent]:
        idle = self._pool.with_status(WorkerStatus.IDLE)
        if not idle:
            return
        # enough for a batch per worker (starting and busy ones included), so batch sizes
        # split the ready steps over all workers; only non-pool plans batch, so steps waiting
        # here hold no pool slot
        workers = max(len(idle), self._pool.working_count()) if self._batch_cap > 1 else len(idle)
        room = workers * self._batch_cap - len(self._pending)
        if room > 0:
            self._pending.extend(self._active.get_steps_to_execute(limit=room))
        yield from self._active.concurrency_event_iterator(self._ctx)
        if not self._pending:
            return
        known_state = self._active.get_known_state()
        for index, worker in enumerate(idle):
            if not self._pending:
                break
            batch = self._take_batch(len(idle) - index)
            yield from self._dispatch(batch, worker, known_state)

    def _batchable(self, step: internals.ExecutionStep) -> bool:
        try:
            return self._timeout_for(step) is None
        except InvalidStepTagError:
            return False

    def _take_batch(self, idle_workers: int) -> list[internals.ExecutionStep]:
        """The next request for one of ``idle_workers`` idle workers, in queue order."""
        first = self._pending.pop(0)
        if self._batch_cap == 1 or not self._batchable(first):
            return [first]
        batchable = 1 + sum(1 for step in self._pending if self._batchable(step))
        size = min(self._batch_cap, self._batch_size_limit(),
                   math.ceil(batchable / max(idle_workers, self._pool.working_count())))
        batch, rest = [first], []
        for step in self._pending:
            if len(batch) < size and self._batchable(step):
                batch.append(step)
            else:
                rest.append(step)
        self._pending = rest
        return batch

    def _batch_size_limit(self) -> int:
        """How many steps fit in ``max_batch_seconds`` at this run's observed step time.

        Unknown (no step finished yet) means one: a batch is only formed once the run has
        shown its steps are short, so long steps are never queued behind each other in one
        worker while another worker idles.
        """
        if self._step_seconds is None:
            return 1
        return max(1, int(self._cfg.max_batch_seconds / max(self._step_seconds, 1e-6)))

    def _dispatch(
        self, batch: list[internals.ExecutionStep], worker: Worker,
        known_state: internals.KnownExecutionState,
    ) -> Iterator[internals.DagsterEvent]:
        timeout_s = None
        if len(batch) == 1:
            try:
                timeout_s = self._timeout_for(batch[0])
            except InvalidStepTagError as exc:
                self._in_flight[batch[0].key] = InFlight(batch[0], worker, 0, 0, None)
                yield from self._fail_step(batch[0].key, exc, allow_retry=False)
                return
        now = time.monotonic_ns()
        paused_s = self._guard.paused_seconds() if self._guard else 0.0
        for step in batch:
            self._in_flight[step.key] = InFlight(step, worker, self._ready_ns(step), now,
                                                 timeout_s, paused_s)
        self.batches += 1
        self._pool.assign(worker, StepRequest(tuple(s.key for s in batch), known_state, now))

    def _timeout_for(self, step: internals.ExecutionStep) -> float | None:
        raw = step.tags.get(STEP_TIMEOUT_TAG)
        if raw is None:
            return self._cfg.default_step_timeout_seconds
        try:
            value = float(raw)
        except ValueError:
            value = -1.0
        if value <= 0:
            raise InvalidStepTagError(step.key, STEP_TIMEOUT_TAG, str(raw), "seconds > 0")
        return value

    def _ready_ns(self, step: internals.ExecutionStep) -> int:
        upstream = step.get_execution_dependency_keys()
        return max([self._start_ns, self._finished_ns.get(step.key, 0),
                    *(self._finished_ns.get(key, 0) for key in upstream)])

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
                yield from self._worker_died(worker)
                return
            yield from self._handle(worker, message)

    def _handle(self, worker: Worker, message: object) -> Iterator[internals.DagsterEvent]:
        if isinstance(message, StepEvent):
            yield from self._handle_step_event(worker, message)
        elif isinstance(message, StepDone):
            yield from self._step_done(worker, message)
        elif isinstance(message, StepSystemError):
            for key in message.step_keys:
                if key in self._in_flight:
                    self._in_flight[key].system_error = message.error
        elif isinstance(message, WorkerReady):
            yield from self._worker_ready(worker, message)
        elif isinstance(message, WorkerStartFailed):
            self._pool.kill(worker)
            raise WorkerStartupError(message.pid, message.error.to_string())

    def _flights_of(self, worker: Worker) -> list[InFlight]:
        """The in-flight steps of the worker's current request, in request order."""
        return [self._in_flight[k] for k in worker.step_keys
                if k in self._in_flight and self._in_flight[k].worker is worker]

    def _handle_step_event(
        self, worker: Worker, message: StepEvent
    ) -> Iterator[internals.DagsterEvent]:
        event = message.event
        yield event
        self._active.handle_event(event)
        flight = self._in_flight.get(message.step_key) if message.step_key else None
        if flight is not None:
            if event.is_step_start:
                flight.started = True
            if internals.is_terminal_step_event(event):
                flight.terminal = True
        if event.is_resource_init_failure:  # fails the request's steps (a batch's: no step key)
            for other in self._flights_of(worker):
                if not other.terminal:
                    yield from self._failure_for(other, event.engine_event_data.error)

    def _worker_ready(self, worker: Worker, ready: WorkerReady) -> Iterator[internals.DagsterEvent]:
        self._pool.mark_ready(worker, ready)
        self._startup_failures = 0
        self.worker_pids.add(ready.pid)
        startup = worker.startup_ms or 0.0
        startups = self.replacement_ready_ms if worker.replaces is not None else self.startup_ms
        startups.append(startup)
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
        flights = self._flights_of(worker)
        now = time.monotonic_ns()
        if done.step_keys:
            sample = (done.finished_ns - done.received_ns) / 1e9 / len(done.step_keys)
            previous = self._step_seconds
            self._step_seconds = sample if previous is None else 0.5 * previous + 0.5 * sample
        for position, flight in enumerate(flights):
            if (not flight.terminal and self._stopping and not flight.started
                    and len(done.step_keys) > 1):
                self._in_flight.pop(flight.step.key, None)  # a batch's step never started
                continue
            if not flight.terminal and flight.system_error is not None:
                yield from self._failure_for(flight, flight.system_error)
            timings = self._timings(flight, done, now)
            if self._cfg.record_step_timings:  # written once the next step is dispatched
                self._deferred.append(functools.partial(
                    internals.engine_event, self._ctx.for_step(flight.step),
                    f"backtest_executor: step ran in worker {worker.worker_id} (pid "
                    f"{worker.pid}).",
                    {**{f"{k}_us": v for k, v in timings.items()}, "pid": worker.pid,
                     "worker_steps_run": worker.steps_run + position + 1,
                     "batch_size": len(done.step_keys)}))
            self._complete(flight, now)
        self._pool.finish_step(worker)
        self._maybe_recycle(worker)

    def _timings(self, flight: InFlight, done: StepDone, now: int) -> dict[str, int]:
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

    def _complete(self, flight: InFlight, now: int) -> None:
        key = flight.step.key
        self._finished_ns[key] = now
        self._in_flight.pop(key, None)
        self._active.verify_complete(self._ctx, key)

    def _maybe_recycle(self, worker: Worker) -> None:
        if worker.status is not WorkerStatus.IDLE or self._stopping:
            return
        limit = self._cfg.recycle_rss_mb
        if worker.steps_run >= self._cfg.max_steps_per_worker or (
            limit and rss_mb(worker) > limit
        ):
            self._pool.retire(worker)

    def _failure_for(
        self, flight: InFlight, error: internals.SerializableErrorInfo, allow_retry: bool = True
    ) -> Iterator[internals.DagsterEvent]:
        step_context = self._ctx.for_step(flight.step)
        if allow_retry:
            event = self._failure_or_retry(step_context, error, self._active.get_known_state())
        else:
            event = internals.step_failure_event(step_context, error)
        flight.terminal = True
        yield event
        self._active.handle_event(event)

    def _fail_step(
        self, key: str, exc: BaseException, allow_retry: bool = True
    ) -> Iterator[internals.DagsterEvent]:
        """Fail an in-flight step from the parent (its worker already killed or never used)."""
        flight = self._in_flight[key]
        if not flight.terminal:
            error = internals.error_info_from_exception(exc)
            yield internals.engine_event(self._ctx.for_step(flight.step), str(exc), error=error)
            yield from self._failure_for(flight, error, allow_retry)
        self._complete(flight, time.monotonic_ns())

    # ------------------------------------------------------------------ reap
    def _reap(self) -> Iterator[internals.DagsterEvent]:
        self._pool.reap_retired()
        now = time.monotonic()
        if self._cfg.backtest_worker_memory_limit_mb and now >= self._next_memory_check:
            self._next_memory_check = now + self._cfg.memory_poll_interval_seconds
            yield from self._check_memory()
        yield from self._check_timeouts()
        for worker in self._pool.live():
            if not worker.process.is_alive() and worker.status is not WorkerStatus.RETIRING:
                yield from self._drain(worker)

    def _busy_workers(self) -> list[Worker]:
        return list({id(f.worker): f.worker for f in self._in_flight.values()}.values())

    def _check_memory(self) -> Iterator[internals.DagsterEvent]:
        limit = self._cfg.backtest_worker_memory_limit_mb
        for worker in self._busy_workers():
            used = rss_mb(worker)
            if used > limit:
                yield from self._kill_and_fail(worker, functools.partial(
                    WorkerMemoryLimitExceeded, pid=worker.pid, limit_mb=limit, used_mb=used))

    def _check_timeouts(self) -> Iterator[internals.DagsterEvent]:
        now = time.monotonic_ns()
        for flight in list(self._in_flight.values()):
            if flight.timeout_s is None:
                continue
            elapsed = (now - flight.dispatched_ns) / 1e9
            if self._guard is not None:  # time paused by the fast path is not the step's
                elapsed -= self._guard.paused_seconds() - flight.paused_s_at_dispatch
            if elapsed > flight.timeout_s and flight.step.key in self._in_flight:
                yield from self._kill_and_fail(flight.worker, functools.partial(
                    StepTimeout, pid=flight.worker.pid, timeout_s=flight.timeout_s,
                    elapsed_s=elapsed))

    def _kill_and_fail(
        self, worker: Worker, make_exc: Callable[[str], Exception]
    ) -> Iterator[internals.DagsterEvent]:
        """Kill a busy worker, fail the step it was running and re-queue unstarted ones."""
        self._pool.kill(worker)
        yield from self._drain_dead(worker)  # events sent before the kill still count
        yield from self._fail_running_and_requeue(worker, make_exc)
        self._restart(worker)

    def _fail_running_and_requeue(
        self, worker: Worker, make_exc: Callable[[str], Exception]
    ) -> Iterator[internals.DagsterEvent]:
        flights = self._flights_of(worker)
        open_flights = [f for f in flights if not f.terminal]
        # the step it was running; if none had started, the first it would have run
        running = next((f for f in open_flights if f.started), open_flights[0] if open_flights
                       else None)
        if running is not None:
            yield from self._fail_step(running.step.key, make_exc(running.step.key))
        requeue = []
        for flight in flights:
            if flight is running:
                continue
            if flight.terminal:
                self._complete(flight, time.monotonic_ns())  # finished before the kill
            else:
                self._in_flight.pop(flight.step.key, None)
                requeue.append(flight.step)
        if requeue and not self._stopping:
            self._pending[:0] = requeue

    def _worker_died(self, worker: Worker) -> Iterator[internals.DagsterEvent]:
        """EOF on the pipe: the worker exited or was killed from outside."""
        retiring = worker.status is WorkerStatus.RETIRING
        self._pool.kill(worker)
        pid = worker.pid or worker.process.pid or 0
        yield from self._fail_running_and_requeue(
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

    def _drain_dead(self, worker: Worker) -> Iterator[internals.DagsterEvent]:
        while (message := _receive(worker)) not in (_NOTHING, _EOF):
            yield from self._handle(worker, message)

    def _restart(self, worker: Worker) -> None:
        self._pool.forget(worker)
        if not self._stopping:
            self._pool.replace(worker)

    def _kill_in_flight_after_interrupt(self) -> Iterator[internals.DagsterEvent]:
        for worker in self._busy_workers():
            self._pool.kill(worker)
            yield from self._drain_dead(worker)
            for flight in self._flights_of(worker):
                if flight.terminal:
                    self._complete(flight, time.monotonic_ns())
                elif not flight.started and len(worker.step_keys) > 1:
                    self._in_flight.pop(flight.step.key, None)  # a batch's step never started
                else:
                    exc = internals.DagsterExecutionInterruptedError(
                        f'Step "{flight.step.key}" was still running '
                        f"{self._cfg.worker_shutdown_grace_seconds:g} s after the run was "
                        f"terminated; its worker (pid {worker.pid}) was killed.")
                    yield from self._fail_step(flight.step.key, exc, allow_retry=False)
            self._pool.forget(worker)
