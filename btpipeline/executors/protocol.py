"""Messages between the run process (parent) and its warm workers, over one Pipe per worker.

Parent -> worker: :class:`StepRequest` (one step, or a batch of independent ready steps run in
one Dagster plan call), or ``None`` to stop.
Worker -> parent: :class:`WorkerReady` (or :class:`WorkerStartFailed`) once, then per request any
number of :class:`StepEvent`, at most one :class:`StepSystemError`, and a :class:`StepDone`.

Timestamps are ``time.monotonic_ns()``: CLOCK_MONOTONIC is system-wide on Linux, so parent and
worker stamps can be subtracted.
"""

from __future__ import annotations

from typing import Any, NamedTuple

from btpipeline.machine.isolation import IsolationSpec


class WorkerSpec(NamedTuple):
    """Everything a worker needs to open the instance and rebuild the job once."""

    worker_id: int
    instance_ref: Any  # InstanceRef
    recon_job: Any  # ReconstructableJob
    dagster_run: Any  # DagsterRun
    run_config: Any
    repository_load_data: Any
    retry_mode: Any  # RetryMode
    isolation: IsolationSpec
    parent_pid: int
    pause_flags: Any = None  # shared RawArray: see btpipeline.machine.pause_points
    event_batch_size: int = 0  # see ExecutorSettings.event_batch_size


class StepRequest(NamedTuple):
    step_keys: tuple[str, ...]  # one step, or a batch run in one execute_plan_iterator call
    known_state: Any  # KnownExecutionState
    sent_ns: int


class WorkerReady(NamedTuple):
    worker_id: int
    pid: int
    ready_ns: int
    isolation: dict[str, object]
    warnings: list[str]


class WorkerStartFailed(NamedTuple):
    worker_id: int
    pid: int
    error: Any  # SerializableErrorInfo


class StepEvent(NamedTuple):
    step_key: str | None  # the event's step (None: a plan-level event of a batch)
    event: Any  # DagsterEvent, already written to the event log by the worker


class StepSystemError(NamedTuple):
    """An exception that escaped Dagster's step machinery (the step may lack a failure event)."""

    step_keys: tuple[str, ...]
    error: Any  # SerializableErrorInfo


class StepDone(NamedTuple):
    step_keys: tuple[str, ...]
    received_ns: int
    finished_ns: int
    event_write_ns: int
    event_send_ns: int
