"""Every private Dagster API (``dagster._core`` / ``dagster._utils``) btpipeline uses, in one place.

Checked against dagster 1.13.27 (pyproject pins ``dagster>=1.13.27,<1.14``). When Dagster is
upgraded, this is the one module to re-read against ``_core/executor/multiprocess.py`` and
``_core/execution/plan/active.py``; the rest of the executor only imports names from here.

The worker side mirrors ``MultiprocessExecutorChildProcessCommand.execute``: build a plan
restricted to one step with the parent's known state, then run ``execute_plan_iterator``. The
events it yields are written to the event log by the worker's own DagsterInstance (through the
log manager, when each DagsterEvent is created); the parent only re-yields them to Dagster's
orchestration loop and to ``ActiveExecution.handle_event``. Events created in the parent
(engine events, failures of lost workers) are written by the parent. So every event is
stored exactly once, as with the stock multiprocess executor.
"""

from __future__ import annotations

import os
import time
from collections.abc import Callable, Iterator, Mapping, Sequence
from typing import Any

from dagster._core.definitions.reconstruct import ReconstructableJob
from dagster._core.definitions.repository_definition import RepositoryLoadData
from dagster._core.errors import DagsterExecutionInterruptedError
from dagster._core.events import (
    ASSET_CHECK_EVENTS,
    ASSET_EVENTS,
    EVENT_TYPE_TO_PIPELINE_RUN_STATUS,
    DagsterEvent,
    EngineEventData,
)
from dagster._core.events.log import EventLogEntry
from dagster._core.execution.api import create_execution_plan, execute_plan_iterator
from dagster._core.execution.compute_logs import redirect_to_file
from dagster._core.execution.context.system import IStepContext, PlanOrchestrationContext
from dagster._core.execution.plan.active import ActiveExecution, _pool_key_for_step
from dagster._core.execution.plan.instance_concurrency_context import InstanceConcurrencyContext
from dagster._core.execution.plan.objects import StepFailureData
from dagster._core.execution.plan.plan import ExecutionPlan
from dagster._core.execution.plan.state import KnownExecutionState
from dagster._core.execution.plan.step import ExecutionStep
from dagster._core.execution.retries import RetryMode, get_retries_config
from dagster._core.execution.step_dependency_config import StepDependencyConfig
from dagster._core.executor.base import Executor
from dagster._core.instance import DagsterInstance
from dagster._core.instance.ref import InstanceRef
from dagster._core.launcher import CheckRunHealthResult, WorkerStatus
from dagster._core.launcher.default_run_launcher import DefaultRunLauncher
from dagster._core.storage.compute_log_manager import CapturedLogContext, ComputeIOType
from dagster._core.storage.dagster_run import DagsterRun
from dagster._core.storage.event_log.sqlite.sqlite_event_log import SqliteEventLogStorage
from dagster._core.storage.local_compute_log_manager import (
    IO_TYPE_EXTENSION,
    LocalComputeLogManager,
)
from dagster._core.storage.sqlalchemy_compat import db_result
from dagster._core.storage.sqlite_storage import DagsterSqliteStorage
from dagster._core.system_config.objects import ResolvedRunConfig
from dagster._serdes import ConfigurableClassData
from dagster._utils import ensure_file, touch_file
from dagster._utils.error import SerializableErrorInfo, serializable_error_info_from_exc_info
from dagster._utils.interrupts import capture_interrupts

from btpipeline.machine.pause_points import critical_section

__all__ = [
    "CheckRunHealthResult",
    "ConfigurableClassData",
    "DefaultRunLauncher",
    "WorkerStatus",
    "ActiveExecution", "DagsterEvent", "DagsterExecutionInterruptedError", "DagsterInstance",
    "DagsterRun", "ExecutionPlan", "ExecutionStep", "Executor", "IStepContext", "InstanceRef",
    "KnownExecutionState", "PlanOrchestrationContext", "ReconstructableJob", "RepositoryLoadData",
    "RetryMode", "SerializableErrorInfo", "StepDependencyConfig", "StepRunner",
    "capture_interrupts", "engine_event", "error_info_from_exception", "get_retries_config",
    "is_terminal_step_event", "new_active_execution", "plan_uses_pools", "new_concurrency_context",
    "serializable_error_info_from_exc_info", "set_pool_limit", "step_failure_event",
    "time_event_writes",
    "enable_event_batching",
    "ASSET_CHECK_EVENTS", "ASSET_EVENTS", "EVENT_TYPE_TO_PIPELINE_RUN_STATUS",
    "DagsterSqliteStorage", "EventLogEntry", "SqliteEventLogStorage", "db_result",
    "sqlite_event_logs_directory",
]


# ---------------------------------------------------------------- parent side


def new_concurrency_context(
    instance: DagsterInstance, run: DagsterRun, run_priority: int
) -> InstanceConcurrencyContext:
    """Dagster's pool-claim context; claims use ``run_priority`` (from btpipeline/priority too)."""
    context = InstanceConcurrencyContext(instance, run)
    context._run_priority = run_priority  # noqa: SLF001 - 1.13 reads only dagster/priority
    return context


def new_active_execution(
    plan: ExecutionPlan,
    retries: RetryMode,
    concurrency: InstanceConcurrencyContext,
    sort_key_fn: Callable[[ExecutionStep], float],
    max_concurrent: int,
    step_dependency_config: StepDependencyConfig,
) -> ActiveExecution:
    return ActiveExecution(
        plan,
        retry_mode=retries,
        sort_key_fn=sort_key_fn,
        max_concurrent=max_concurrent,
        instance_concurrency_context=concurrency,
        step_dependency_config=step_dependency_config,
    )


def plan_uses_pools(plan: ExecutionPlan) -> bool:
    """Whether any step of the plan claims a Dagster concurrency pool slot."""
    # Dagster annotates ExecutionStep, but only reads .pool and .tags, which every step has.
    return any(_pool_key_for_step(step) for step in plan.steps)  # type: ignore[arg-type]


def set_pool_limit(instance: DagsterInstance, pool: str, slots: int) -> int | None:
    """Set ``pool``'s instance-wide slot count; returns the previous count (None: unsupported)."""
    storage = instance.event_log_storage
    if not storage.supports_global_concurrency_limits:
        return None
    info = storage.get_concurrency_info(pool)
    previous = None if info.using_default_limit else info.limit
    if previous != slots:  # a pool never set explicitly reports 0 slots: set it anyway
        storage.set_concurrency_slots(pool, slots)
    return previous


def engine_event(
    context: PlanOrchestrationContext | IStepContext,
    message: str,
    metadata: Mapping[str, Any] | None = None,
    error: SerializableErrorInfo | None = None,
) -> DagsterEvent:
    """An ENGINE_EVENT, run-level or for a step; written to the event log when created."""
    data = EngineEventData(metadata=dict(metadata or {}), error=error)
    return DagsterEvent.engine_event(context, message, data)


def step_failure_event(step_context: IStepContext, error: SerializableErrorInfo) -> DagsterEvent:
    return DagsterEvent.step_failure_event(
        step_context=step_context,
        step_failure_data=StepFailureData(error=error, user_failure_data=None),
    )


def is_terminal_step_event(event: DagsterEvent) -> bool:
    return event.is_step_success or event.is_step_failure or event.is_step_up_for_retry


def error_info_from_exception(exc: BaseException) -> SerializableErrorInfo:
    try:
        raise exc
    except BaseException:  # noqa: BLE001 - only to capture the traceback
        import sys

        return serializable_error_info_from_exc_info(sys.exc_info())


# ---------------------------------------------------------------- worker side


class StepRunner:
    """Runs single steps of one run in a warm worker; the job is rebuilt once, here."""

    def __init__(
        self,
        recon_job: ReconstructableJob,
        run: DagsterRun,
        run_config: Mapping[str, object],
        repository_load_data: RepositoryLoadData | None,
        retry_mode: RetryMode,
        instance: DagsterInstance,
    ) -> None:
        self._job = recon_job.with_repository_load_data(repository_load_data)
        self._job_def = self._job.get_definition()  # import the code location once
        self._run, self._run_config = run, run_config
        self._rld = repository_load_data
        self._retry_mode = retry_mode.for_inner_plan()
        self._instance = instance
        self._resolved_config: ResolvedRunConfig | None = None
        self._full_plan: ExecutionPlan | None = None

    def _plan_for(self, step_keys: Sequence[str], known_state: KnownExecutionState
                  ) -> ExecutionPlan:
        """What ``create_execution_plan(step_keys_to_execute=..., known_state=...)`` returns.

        That call builds the whole job's plan and then subsets it, every time: O(job size) per
        call (~140 ms for a 200-op job). The whole-job plan does not depend on the known state
        (only the subset step does), so it is built once per worker and subset per request
        with ``build_subset_plan`` exactly as ``ExecutionPlan.build`` does. Keys not in the
        whole-job plan (resolved dynamic steps) take Dagster's own path.
        """
        if self._full_plan is None or self._resolved_config is None:
            self._resolved_config = ResolvedRunConfig.build(self._job_def, self._run_config)
            self._full_plan = ExecutionPlan.build(
                self._job_def, self._resolved_config, known_state=KnownExecutionState(),
                repository_load_data=self._rld)
        full = self._full_plan
        # Once dynamic outputs have resolved, a step downstream of them (a collect, or a
        # plain step fed by one) needs those resolved steps in the plan it is subset from.
        if not known_state.dynamic_mappings and all(
                key in full.step_dict_by_key for key in step_keys):
            if list(step_keys) == full.step_keys_to_execute:
                return full._replace(known_state=known_state)
            return full._replace(known_state=known_state).build_subset_plan(
                list(step_keys), self._job_def, self._resolved_config)
        return create_execution_plan(
            job=self._job, run_config=self._run_config, step_keys_to_execute=list(step_keys),
            known_state=known_state, repository_load_data=self._rld)

    def run_steps(
        self, step_keys: Sequence[str], known_state: KnownExecutionState
    ) -> Iterator[DagsterEvent]:
        """Run one step, or a batch of independent ready steps, in one plan call.

        A batch pays Dagster's per-call costs (plan build, resource init, log capture) once;
        each step still gets its own STEP_START ... STEP_SUCCESS/FAILURE events. The inner plan
        never retries (``for_inner_plan``): retries are decided by the parent's ActiveExecution.
        """
        plan = self._plan_for(step_keys, known_state)
        yield from execute_plan_iterator(
            plan, self._job, self._run, run_config=self._run_config,
            retry_mode=self._retry_mode, instance=self._instance,
        )


def sqlite_event_logs_directory(base_dir: str) -> str:
    """Where ``DagsterSqliteStorage`` keeps the event log shards under ``base_dir``."""
    return os.path.join(base_dir, "history", "runs", "")


def enable_event_batching(size: int) -> None:
    """Let this process hand batched events (a step's per-partition materializations) to the
    event log in one ``store_event_batch`` call. Dagster reads the variable at every event
    (dagster/_core/instance/methods/event_methods.py); storages without a batch write
    (SQLite) store the events one by one as before. A value set by the operator is kept."""
    if size > 0:
        os.environ.setdefault("DAGSTER_EVENT_BATCH_SIZE", str(size))


def time_event_writes(instance: DagsterInstance) -> Callable[[], int]:
    """Wrap this instance object's event writes; returns a function popping the ns spent."""
    original = instance.handle_new_event
    spent = [0]

    def timed(*args: Any, **kwargs: Any) -> None:
        start = time.perf_counter_ns()
        try:
            with critical_section():  # never SIGSTOPped holding the event log's write lock
                original(*args, **kwargs)
        finally:
            spent[0] += time.perf_counter_ns() - start

    instance.handle_new_event = timed  # type: ignore[method-assign]

    def pop() -> int:
        value, spent[0] = spent[0], 0
        return value

    return pop
