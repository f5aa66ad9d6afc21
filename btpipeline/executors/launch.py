"""Picking ready steps and sending them to idle workers, one at a time or in batches.

Ready steps come from ActiveExecution (highest ``dagster/priority`` first, pool slots claimed
by it) into a pending queue; each idle worker gets the next request from it. Batches: when
``batch_cap`` > 1 (no step of the plan is in a pool), an idle worker gets up to ``batch_cap``
independent ready steps without a timeout in one request, once the run has shown its steps
are short (``max_batch_seconds``).
"""

from __future__ import annotations

import math
import time
from collections.abc import Iterator

from btpipeline.errors import InvalidStepTagError
from btpipeline.executors import dagster_internals as internals
from btpipeline.executors.in_flight import InFlight, InFlightSteps
from btpipeline.executors.load_guard import LoadGuard
from btpipeline.executors.protocol import StepRequest
from btpipeline.executors.requeue import StepFailures
from btpipeline.executors.step_timings import StepTimings
from btpipeline.executors.worker_pool import Worker, WorkerPool, WorkerStatus
from btpipeline.machine.executor_settings import ExecutorSettings
from btpipeline.machine.tags import STEP_TIMEOUT_TAG


class Launcher:
    """The pending queue of ready steps and how they are sent to idle workers."""

    def __init__(
        self,
        context: internals.PlanOrchestrationContext,
        active: internals.ActiveExecution,
        pool: WorkerPool,
        config: ExecutorSettings,
        *,
        flights: InFlightSteps,
        failures: StepFailures,
        timings: StepTimings,
        batch_cap: int = 1,
        guard: LoadGuard | None = None,
    ) -> None:
        self._ctx, self._active, self._pool, self._cfg = context, active, pool, config
        self._flights, self._failures, self._timings = flights, failures, timings
        self._batch_cap = max(1, batch_cap)
        self._guard = guard
        # steps ActiveExecution handed out (or a dead worker never started), not yet dispatched
        self._pending: list[internals.ExecutionStep] = []
        self.batches = 0

    def requeue(self, steps: list[internals.ExecutionStep]) -> None:
        """Put steps a lost worker never started back at the front of the queue."""
        self._pending[:0] = steps

    def drop_pending(self) -> None:
        """Termination: steps never dispatched stay un-run, as with Dagster's executors."""
        self._pending = []

    def launch(self) -> Iterator[internals.DagsterEvent]:
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
            return self.timeout_for(step) is None
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
        step_seconds = self._timings.step_seconds
        if step_seconds is None:
            return 1
        return max(1, int(self._cfg.max_batch_seconds / max(step_seconds, 1e-6)))

    def _dispatch(
        self, batch: list[internals.ExecutionStep], worker: Worker,
        known_state: internals.KnownExecutionState,
    ) -> Iterator[internals.DagsterEvent]:
        timeout_s = None
        if len(batch) == 1:
            try:
                timeout_s = self.timeout_for(batch[0])
            except InvalidStepTagError as exc:
                self._flights.add(InFlight(batch[0], worker, 0, 0, None))
                yield from self._failures.fail_step(batch[0].key, exc, allow_retry=False)
                return
        now = time.monotonic_ns()
        paused_s = self._guard.paused_seconds() if self._guard else 0.0
        for step in batch:
            self._flights.add(InFlight(step, worker, self._flights.ready_ns(step), now,
                                       timeout_s, paused_s))
        self.batches += 1
        self._pool.assign(worker, StepRequest(tuple(s.key for s in batch), known_state, now))

    def timeout_for(self, step: internals.ExecutionStep) -> float | None:
        """The step's timeout: its ``STEP_TIMEOUT_TAG``, else the configured default."""
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
