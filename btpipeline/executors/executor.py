"""``backtest_executor``: run a job's steps in a pool of warm, isolated worker processes.

The executor class is thin: it sets up isolation, the pool-slot limit, Dagster's
ActiveExecution and the worker pool, then hands over to
:class:`~btpipeline.executors.dispatch.DispatchLoop`.

Concurrency across runs (``max_concurrent_backtests``): steps in the backtest pool
(``@asset(pool="backtests")``) claim a Dagster instance concurrency slot before they are
dispatched (ActiveExecution + InstanceConcurrencyContext, as the stock executors do with
``concurrency.pools.granularity: op``). When ``max_concurrent_backtests`` is set and
``sync_pool_limit`` is on, the run sets that pool's slot count, so the limit holds for every
run on the instance. Within a run, at most that many workers exist.
"""

from __future__ import annotations

import multiprocessing
import os
from collections.abc import Iterator
from contextlib import ExitStack
from pathlib import Path
from typing import Any

from dagster import (
    DagsterInstance,
    InitExecutorContext,
    executor,
    multiple_process_executor_requirements,
)

from btpipeline.executors import dagster_internals as internals
from btpipeline.executors.dispatch import PHASES, DispatchLoop
from btpipeline.executors.forked_server import forked_forkserver, forks_run_process
from btpipeline.executors.load_guard import LoadGuard
from btpipeline.executors.protocol import WorkerSpec
from btpipeline.executors.run_liveness import reap_dead_runs, record_run_process
from btpipeline.executors.run_queue_view import QueueFacts, read_queue_facts
from btpipeline.executors.schema import BACKTEST_EXECUTOR_CONFIG
from btpipeline.executors.worker_pool import WorkerPool
from btpipeline.machine.cores import (
    ExecutionMode,
    backtest_cores,
    scanner_reserved_cores,
    worker_count,
)
from btpipeline.machine.executor_settings import ExecutorSettings, forkserver_preload
from btpipeline.machine.isolation import IsolationSpec
from btpipeline.machine.priority import JobPriority, priority_from_tags, step_priority
from btpipeline.machine.protection import ProtectionLevels, levels_for_mode, make_levels
from btpipeline.monitor.fast_signals import FastSampler


def _record_and_reap(ctx: internals.PlanOrchestrationContext) -> Iterator[internals.DagsterEvent]:
    """Tag this run with its process (so a kill -9 is detectable), and fail this host's runs
    whose process is gone, freeing their pool slots before this run claims one."""
    record_run_process(ctx.instance, ctx.run_id)
    reaped: list[str] = []
    reap_dead_runs(ctx.instance, reaped.append)
    for message in reaped:
        yield internals.engine_event(ctx, f"backtest_executor: {message}")


def _sort_key(step: internals.ExecutionStep) -> float:
    return -step_priority(step.tags)


class BacktestExecutor(internals.Executor):
    def __init__(
        self,
        config: ExecutorSettings,
        step_dependency_config: internals.StepDependencyConfig | None = None,
    ) -> None:
        self.config = config
        self._retries = internals.RetryMode(config.retries)
        self._step_dependency_config = (
            step_dependency_config or internals.StepDependencyConfig.default())

    @property
    def retries(self) -> internals.RetryMode:
        return self._retries

    @property
    def step_dependency_config(self) -> internals.StepDependencyConfig:
        return self._step_dependency_config

    def execute(
        self, plan_context: internals.PlanOrchestrationContext,
        execution_plan: internals.ExecutionPlan,
    ) -> Iterator[internals.DagsterEvent]:
        run = plan_context.dagster_run
        priority = priority_from_tags(run.tags, strict=True)
        slot_cores = self._slot_cores()
        # Batches only where holding a step in a worker's queue cannot hold a pool slot.
        batch_cap = (1 if internals.plan_uses_pools(execution_plan)
                     else self.config.max_steps_per_batch)
        loop = None
        with ExitStack() as stack:
            concurrency = stack.enter_context(
                internals.new_concurrency_context(
                    plan_context.instance, run, priority.dagster_priority))
            active = stack.enter_context(internals.new_active_execution(
                execution_plan, self.retries, concurrency, _sort_key,
                len(slot_cores) * batch_cap, self._step_dependency_config))
            mp_context, worker_start = self._mp_context(plan_context, stack)  # before threads
            guard = self._load_guard(plan_context, priority, slot_cores)
            pool = WorkerPool(mp_context,
                              self._spec_factory(plan_context, execution_plan, priority),
                              slot_cores, guard.register if guard is not None else None,
                              guard.unregister if guard is not None else None)
            stack.callback(pool.shutdown)
            # The workers open the instance and rebuild the job while this process does the
            # run's bookkeeping below (no step is dispatched, no slot claimed before the loop).
            pool.start_all()
            yield from _record_and_reap(plan_context)
            yield from self._sync_pool_limit(plan_context)
            yield internals.engine_event(
                plan_context, f"backtest_executor: starting {len(slot_cores)} warm worker(s), "
                f"run priority {priority.name} (parent pid {os.getpid()}).",
                {**self._plan_metadata(priority, slot_cores), "worker_start": worker_start})
            if guard is not None:
                stack.callback(guard.stop)  # runs first: SIGCONT before the workers are stopped
                guard.start()
                yield internals.engine_event(plan_context, _guard_description(guard, self.config))
            loop = DispatchLoop(plan_context, active, pool, self.config,
                                self.log_failure_or_retry_event_after_error, batch_cap, guard)
            yield from loop.run()
        yield internals.engine_event(plan_context, "backtest_executor: finished; per-phase step "
                              "timings in µs.", _summary(loop, pool))

    # ------------------------------------------------------------------ helpers
    def _load_guard(self, ctx: internals.PlanOrchestrationContext, priority: JobPriority,
                    slot_cores: list[int | None]) -> LoadGuard | None:
        """The fast path, for runs at or below ``shed_max_priority`` (None otherwise)."""
        cfg = self.config
        if not cfg.load_shedding_enabled or priority.value > JobPriority[
                cfg.shed_max_priority].value:
            return None
        total = len(os.sched_getaffinity(0))
        used = (len(set(slot_cores)) if cfg.worker_affinity_enabled
                else min(len(slot_cores), total))
        free = 0 if cfg.execution_mode is ExecutionMode.STANDALONE else max(0, total - used)
        instance_ref, run_id = ctx.instance.get_ref(), ctx.run_id
        opened: list[DagsterInstance] = []

        def queue_facts() -> QueueFacts:
            if not opened:  # its own instance: this runs in the guard's thread
                opened.append(DagsterInstance.from_ref(instance_ref))
            return read_queue_facts(opened[0], run_id, priority, cfg.follow_breaker,
                                    cfg.preemption_enabled)

        status = Path(cfg.scanner_status_file) if cfg.scanner_status_file else None
        return LoadGuard(
            levels_from_executor_config(cfg), free, interval_s=cfg.shed_interval_seconds,
            sampler=FastSampler(status, cfg.shed_cpu_window_seconds, measure_cpu=free > 0,
                                burst_window_s=cfg.shed_cpu_burst_window_seconds),
            queue_reader=queue_facts if (cfg.follow_breaker or cfg.preemption_enabled) else None,
            queue_interval_s=cfg.queue_check_interval_seconds,
            kernel_wakeups=cfg.shed_kernel_wakeups)

    def _slot_cores(self) -> list[int | None]:
        available = sorted(os.sched_getaffinity(0))
        cores = backtest_cores(self.config, available)
        count = worker_count(self.config, available)
        if not self.config.worker_affinity_enabled:
            return [None] * count
        return [cores[i % len(cores)] for i in range(count)]

    def _plan_metadata(self, priority: JobPriority, slot_cores: list[int | None]) -> dict:
        available = sorted(os.sched_getaffinity(0))
        return {
            "execution_mode": self.config.execution_mode.value,
            "worker_cores": str(slot_cores),
            "scanner_cores": str(list(scanner_reserved_cores(self.config, available))),
            "nice": priority.nice if self.config.worker_priority_enabled else "inherited",
            "sched_policy": priority.sched_policy.name if self.config.worker_priority_enabled
            else "inherited",
            "memory_limit_mb": self.config.backtest_worker_memory_limit_mb,
            "max_steps_per_worker": self.config.max_steps_per_worker,
        }

    def _sync_pool_limit(
        self, ctx: internals.PlanOrchestrationContext
    ) -> Iterator[internals.DagsterEvent]:
        limit = self.config.max_concurrent_backtests
        if not (limit and self.config.sync_pool_limit):
            return
        from btpipeline.monitor.queue_control import breaker_holds_pool  # no import cycle

        if breaker_holds_pool(ctx.instance):
            yield internals.engine_event(
                ctx, f"backtest_executor: the circuit breaker holds pool "
                f"{self.config.backtest_pool!r}; its limit is left as the breaker set it.")
            return
        previous = internals.set_pool_limit(ctx.instance, self.config.backtest_pool, limit)
        if previous is not None and previous != limit:
            yield internals.engine_event(
                ctx, f"backtest_executor: pool {self.config.backtest_pool!r} set to {limit} "
                f"slot(s) instance-wide (was {previous}).")

    def _mp_context(self, ctx: internals.PlanOrchestrationContext, stack: ExitStack
                    ) -> tuple[Any, str]:
        """The workers' forkserver context and how its server started. By default it is a
        fork of this process for this run (``forked_server.py``: it has imported everything a
        worker needs); with ``BTPIPELINE_WORKER_START=spawn``, or while another thread runs
        here, a fresh Python importing the preload list."""
        mp_context = multiprocessing.get_context("forkserver")
        if forks_run_process():
            if stack.enter_context(forked_forkserver()) is not None:
                return mp_context, "fork of the run process"
            spawned = "fresh Python (another thread was running in the run process)"
        else:
            spawned = "fresh Python (BTPIPELINE_WORKER_START=spawn)"
        preload = list(forkserver_preload())  # the deployment's list, never run config
        module = ctx.reconstructable_job.get_module()
        if module and module not in preload:
            preload.append(module)
        mp_context.set_forkserver_preload(preload)  # no effect once the forkserver runs
        return mp_context, spawned

    def _spec_factory(
        self, ctx: internals.PlanOrchestrationContext, plan: internals.ExecutionPlan,
        priority: JobPriority,
    ):
        cfg = self.config
        common: dict[str, Any] = dict(
            instance_ref=ctx.instance.get_ref(), recon_job=ctx.reconstructable_job,
            dagster_run=ctx.dagster_run, run_config=ctx.run_config,
            repository_load_data=plan.repository_load_data, retry_mode=self.retries,
            parent_pid=os.getpid(), event_batch_size=cfg.event_batch_size,
        )

        def make(worker_id: int, core: int | None) -> WorkerSpec:
            isolation = IsolationSpec(
                cores=(core,) if core is not None else None,
                nice=priority.nice if cfg.worker_priority_enabled else None,
                sched_policy=priority.sched_policy if cfg.worker_priority_enabled else None,
                rlimit_as_mb=cfg.worker_rlimit_as_mb,
            )
            return WorkerSpec(worker_id=worker_id, isolation=isolation, **common)

        return make


#: ExecutorSettings field -> ProtectionLevels field, for the fast path.
EXECUTOR_LEVEL_FIELDS = {
    "shed_cpu_threshold": "cpu_fraction",
    "shed_cpu_burst_threshold": "cpu_burst_fraction",
    "shed_memory_threshold": "memory_fraction",
    "shed_scanner_run_delay_threshold": "scanner_run_delay_fraction",
    "shed_scanner_latency_budget_ms": "scanner_latency_budget_ms",
    "shed_hysteresis": "hysteresis",
    "shed_resume_hold_seconds": "resume_hold_seconds",
}


def levels_from_executor_config(cfg: ExecutorSettings) -> ProtectionLevels:
    """The fast path's protection levels, from the executor's ``shed_*`` settings, scaled for
    ``execution_mode`` by :func:`~btpipeline.machine.protection.levels_for_mode`.

    ``shed_cpu_threshold`` -> ``cpu_fraction`` (of the cores the workers leave free),
    ``shed_memory_threshold`` -> ``memory_fraction``, ``shed_scanner_run_delay_threshold``
    -> ``scanner_run_delay_fraction``, ``shed_scanner_latency_budget_ms`` ->
    ``scanner_latency_budget_ms`` (None: the scanner's published budget), ``shed_hysteresis``
    -> ``hysteresis``, ``shed_resume_hold_seconds`` -> ``resume_hold_seconds``. Every other
    level keeps the model's default: no minimum OPEN time, the hold doubled up to 30 s after
    a re-trip within ``probe_seconds`` (5 s) of resuming; the fast path reads no pressure stall.
    """
    values = {level: getattr(cfg, field) for field, level in EXECUTOR_LEVEL_FIELDS.items()}
    names = {level: field for field, level in EXECUTOR_LEVEL_FIELDS.items()}
    return levels_for_mode(make_levels("backtest_executor config", names, **values),
                           cfg.execution_mode)


def _guard_description(guard: LoadGuard, cfg: ExecutorSettings) -> str:
    return (f"backtest_executor: fast path on ({guard.wakeup_description()}; "
            f"{guard.free_cores:g} core(s) left beside the workers, breaker "
            f"{'followed' if cfg.follow_breaker else 'ignored'}, preemption "
            f"{'on' if cfg.preemption_enabled else 'off'}); workers are paused while the "
            "scanner needs the machine.")


def _summary(loop: DispatchLoop | None, pool: WorkerPool) -> dict[str, Any]:
    if loop is None:
        return {}
    out: dict[str, Any] = {
        "workers_started": len(loop.worker_pids),
        "requests": loop.batches,
        "worker_replacements": pool.replacements,
        "worker_startup_ms": str([round(ms, 1) for ms in loop.startup_ms]),
        "replacement_time_to_ready_ms": str([round(ms, 1) for ms in loop.replacement_ready_ms]),
    }
    for phase in PHASES:
        stats = loop.counters[phase].get_stats()
        out[f"{phase}_p50_us"] = int(stats["p50"])
        out[f"{phase}_p99_us"] = int(stats["p99"])
    return out


@executor(
    name="backtest_executor",
    config_schema=BACKTEST_EXECUTOR_CONFIG,
    requirements=multiple_process_executor_requirements(),
)
def backtest_executor(init_context: InitExecutorContext) -> BacktestExecutor:
    """Runs each step in a warm worker process pinned outside the live scanner's cores.

    Workers start once per run (forkserver, preloaded), open the instance and rebuild the job
    once, then run many steps. See ``btpipeline/machine/executor_settings.py`` for the settings.
    """
    return BacktestExecutor(ExecutorSettings.from_env(init_context.executor_config))
