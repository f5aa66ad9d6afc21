"""The backtest_executor's Dagster config schema (declared apart from the executor).

Each field maps 1:1 onto :class:`btpipeline.executors.config.ExecutionConfig`; every field can
be overridden by ``BTPIPELINE_<FIELD_NAME_IN_CAPS>`` in the run process's environment.
"""

from __future__ import annotations

from typing import Any

from dagster import Bool, Enum, EnumValue, Field, Float, Int, Noneable, String

from btpipeline.executors.config import ExecutionConfig, ExecutionMode
from btpipeline.executors.dagster_internals import get_retries_config

_D = ExecutionConfig()

_MODE = Enum(
    "BacktestExecutionMode",
    [
        EnumValue(ExecutionMode.STANDALONE.value, description="Backtests may use every core."),
        EnumValue(ExecutionMode.CONCURRENT.value,
                  description="Every core except the live scanner's reserve."),
        EnumValue(ExecutionMode.PRIORITY_LIVE.value,
                  description="Every core except the reserve, and at most half the machine."),
    ],
)


def _f(config_type: Any, default: Any, description: str) -> Field:
    return Field(config_type, default_value=default, is_required=False, description=description)


BACKTEST_EXECUTOR_CONFIG: dict[str, Field] = {
    "max_concurrent_backtests": Field(
        Noneable(Int), default_value=None, is_required=False,
        description="Warm workers per run, and the slot limit set on the backtest pool (shared "
        "by every run on this Dagster instance). Default: one per core backtests may use.",
    ),
    "live_scanner_cpu_reserve": _f(Float, _D.live_scanner_cpu_reserve,
        "Fraction of the cores kept free for the live scanner (rounded up, never all cores)."),
    "scanner_cores": Field(Noneable([Int]), default_value=None, is_required=False,
        description="Explicit CPU ids reserved for the live scanner; overrides the fraction."),
    "worker_affinity_enabled": _f(Bool, _D.worker_affinity_enabled,
        "Pin each worker to one core outside the scanner's; false pins nothing."),
    "worker_priority_enabled": _f(Bool, _D.worker_priority_enabled,
        "Apply the run priority's nice value and scheduling class (SCHED_BATCH/IDLE) to workers."),
    "backtest_worker_memory_limit_mb": _f(Int, _D.backtest_worker_memory_limit_mb,
        "Resident memory (MiB) a worker may reach during a step; over it the step fails and the "
        "worker is replaced. 0 disables the check."),
    "worker_recycle_rss_mb": Field(Noneable(Int), default_value=None, is_required=False,
        description="A worker whose RSS is above this after a step is replaced before its next "
        "step. Default 80% of backtest_worker_memory_limit_mb; 0 disables."),
    "worker_rlimit_as_mb": _f(Int, _D.worker_rlimit_as_mb,
        "RLIMIT_AS (virtual memory, MiB) set in each worker, turning huge allocations into a "
        "MemoryError inside the step. Counts virtual size, so leave headroom. 0 = off."),
    "max_steps_per_worker": _f(Int, _D.max_steps_per_worker,
        "A worker is replaced after running this many steps (bounds state leaks)."),
    "max_steps_per_batch": _f(Int, _D.max_steps_per_batch,
        "Up to this many independent ready steps without a timeout run in one Dagster plan call "
        "in a worker (Dagster's per-call cost paid once per batch; events stay per step). Only "
        "for plans without pool steps; 1 = one step per call."),
    "max_batch_seconds": _f(Float, _D.max_batch_seconds,
        "A batch holds at most this many seconds of work at the run's observed step time "
        "(no batches before the first step finished), so long steps are never queued behind "
        "each other in one worker."),
    "execution_mode": _f(_MODE, _D.execution_mode.value,
        "How many cores backtests may take: STANDALONE, CONCURRENT or PRIORITY_LIVE."),
    "retries": get_retries_config(),
    "backtest_pool": _f(String, _D.backtest_pool,
        "Dagster concurrency pool whose slots max_concurrent_backtests sets."),
    "sync_pool_limit": _f(Bool, _D.sync_pool_limit,
        "At run start set the backtest pool's slot count to max_concurrent_backtests when that "
        "is given (instance-wide, so the limit holds across concurrent runs)."),
    "default_step_timeout_seconds": Field(Noneable(Float), default_value=None, is_required=False,
        description="Timeout for steps without a btpipeline/timeout_seconds op tag (null: none)."),
    "worker_shutdown_grace_seconds": _f(Float, _D.worker_shutdown_grace_seconds,
        "On run termination, seconds busy workers get to record their interruption before "
        "they are killed."),
    "memory_poll_interval_seconds": _f(Float, _D.memory_poll_interval_seconds,
        "How often the parent samples busy workers' RSS (0.1 = 10 Hz)."),
    "record_step_timings": _f(Bool, _D.record_step_timings,
        "Write one engine event per step with its phase timings (µs) as metadata."),
    "event_batch_size": _f(Int, _D.event_batch_size,
        "Workers store a step's per-partition materializations (and other batched events) "
        "in one write of up to this many events where the instance's event log supports it "
        "(PostgreSQL: 12 monthly materializations cost one transaction instead of 12); 0 "
        "stores every event on its own. An operator's DAGSTER_EVENT_BATCH_SIZE wins."),
    "load_shedding_enabled": _f(Bool, _D.load_shedding_enabled,
        "The fast path: a thread in the run samples load every shed_interval_seconds and "
        "pauses (SIGSTOP) this run's workers while the live scanner needs the machine, the "
        "circuit breaker is OPEN, or a higher-priority run waits; SIGCONT when healthy."),
    "shed_max_priority": _f(String, _D.shed_max_priority,
        "Runs at or below this priority (CRITICAL, HIGH, NORMAL, LOW, BULK) may be paused; "
        "higher ones never are."),
    "shed_interval_seconds": _f(Float, _D.shed_interval_seconds,
        "Fast-path sampling interval (0.05 = 20 Hz)."),
    "shed_cpu_window_seconds": _f(Float, _D.shed_cpu_window_seconds,
        "CPU use is measured over this trailing window (longer ignores short blips)."),
    "shed_cpu_threshold": _f(Float, _D.shed_cpu_threshold,
        "Pause when processes other than this run's workers use more than this fraction of "
        "the cores the workers leave free, while a live scanner runs (off in STANDALONE, where "
        "they leave none)."),
    "shed_memory_threshold": _f(Float, _D.shed_memory_threshold,
        "Pause when the machine's memory use exceeds this fraction."),
    "shed_scanner_run_delay_threshold": _f(Float, _D.shed_scanner_run_delay_threshold,
        "Pause when the live scanner sat runnable but waiting for a CPU more than this fraction "
        "of the CPU window (/proc/<pid>/schedstat)."),
    "shed_scanner_latency_budget_ms": Field(Noneable(Float), default_value=None,
        is_required=False, description="Pause when a scanner tick takes longer than this, or "
        "the next tick is this late. Default: the budget the scanner publishes."),
    "shed_hysteresis": _f(Float, _D.shed_hysteresis,
        "Resume only once every signal is below its level x (1 - shed_hysteresis)."),
    "shed_resume_hold_seconds": _f(Float, _D.shed_resume_hold_seconds,
        "...and has stayed there this long (doubled after a trip soon after a resume)."),
    "follow_breaker": _f(Bool, _D.follow_breaker,
        "Pause while the resource-monitor sensor's circuit breaker is OPEN."),
    "preemption_enabled": _f(Bool, _D.preemption_enabled,
        "LOW and BULK runs pause while a HIGH or CRITICAL run is queued or running."),
    "queue_check_interval_seconds": _f(Float, _D.queue_check_interval_seconds,
        "How often the fast path reads the breaker state and the run queue from the instance."),
    "scanner_status_file": Field(Noneable(String), default_value=None, is_required=False,
        description="The live scanner's status JSON. Default: $BTPIPELINE_SCANNER_STATUS or "
        "<BTPIPELINE_HOME>/scanner/status.json."),
}
