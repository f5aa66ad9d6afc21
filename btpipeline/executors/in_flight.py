"""Bookkeeping of the steps sent to workers and not complete yet: the parent's view of them."""

from __future__ import annotations

import dataclasses
import time

from btpipeline.executors import dagster_internals as internals
from btpipeline.executors.worker_pool import Worker


@dataclasses.dataclass(slots=True)
class InFlight:
    """One step sent to a worker: when it became ready and was sent, and what the worker said."""

    step: internals.ExecutionStep
    worker: Worker
    ready_ns: int
    dispatched_ns: int
    timeout_s: float | None
    paused_s_at_dispatch: float = 0.0
    terminal: bool = False
    started: bool = False
    system_error: internals.SerializableErrorInfo | None = None


class InFlightSteps:
    """The run's in-flight steps by step key, and when each completed step completed.

    Completing a step tells ActiveExecution (``verify_complete``) and records the moment its
    downstream steps became ready: their ``queue_wait`` starts there.
    """

    def __init__(self, context: internals.PlanOrchestrationContext,
                 active: internals.ActiveExecution) -> None:
        self._ctx, self._active = context, active
        self._steps: dict[str, InFlight] = {}
        self._finished_ns: dict[str, int] = {}
        self._start_ns = time.monotonic_ns()

    def __len__(self) -> int:
        return len(self._steps)

    def __contains__(self, key: str) -> bool:
        return key in self._steps

    def __getitem__(self, key: str) -> InFlight:
        return self._steps[key]

    def get(self, key: str) -> InFlight | None:
        return self._steps.get(key)

    def add(self, flight: InFlight) -> None:
        self._steps[flight.step.key] = flight

    def drop(self, key: str) -> None:
        """Forget a step that never started (it goes back to the queue, or stays un-run)."""
        self._steps.pop(key, None)

    def keys(self) -> list[str]:
        return sorted(self._steps)

    def all(self) -> list[InFlight]:
        return list(self._steps.values())

    def of_worker(self, worker: Worker) -> list[InFlight]:
        """The in-flight steps of the worker's current request, in request order."""
        return [self._steps[k] for k in worker.step_keys
                if k in self._steps and self._steps[k].worker is worker]

    def busy_workers(self) -> list[Worker]:
        return list({id(f.worker): f.worker for f in self._steps.values()}.values())

    def ready_ns(self, step: internals.ExecutionStep) -> int:
        """When the step became ready: the run's start, or its last upstream step's completion."""
        upstream = step.get_execution_dependency_keys()
        return max([self._start_ns, self._finished_ns.get(step.key, 0),
                    *(self._finished_ns.get(key, 0) for key in upstream)])

    def complete(self, flight: InFlight, now: int) -> None:
        key = flight.step.key
        self._finished_ns[key] = now
        self._steps.pop(key, None)
        self._active.verify_complete(self._ctx, key)
