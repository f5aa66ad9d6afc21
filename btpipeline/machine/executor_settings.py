"""Every backtest_executor setting, declared once: :class:`ExecutorSettings`.

The Dagster config schema (``executors/schema.py``) is generated from this model, and every
field ``name`` can be overridden by ``BTPIPELINE_<NAME>`` (e.g.
``BTPIPELINE_MAX_CONCURRENT_BACKTESTS=1``). Precedence: the environment, then the run config,
then the defaults below. The environment wins so an operator can throttle backtests on one
machine without touching job definitions. The model lives in the machine layer because
Dagster-free processes need it too: the live scanner pins itself to the cores the executor
keeps free (:mod:`btpipeline.machine.cores`), Celery nodes isolate themselves like workers.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from typing import Any, ClassVar, Literal

from pydantic import Field, ValidationInfo, field_validator

from btpipeline.errors import ExecutorConfigError, SettingsError
from btpipeline.machine.cores import ExecutionMode
from btpipeline.machine.settings import SettingsModel
from btpipeline.machine.tags import BACKTEST_POOL

DEFAULT_PRELOAD: tuple[str, ...] = (
    "dagster",
    "dagster._core.storage.sqlite_storage",
    "dagster._core.execution.api",
    "dagster._core.execution.plan.execute_plan",
    "sqlalchemy",
    "numpy",
    "pandas",
    "pyarrow",
    "psutil",
    "btpipeline.executors.worker",
)
PRELOAD_ENV = "BTPIPELINE_FORKSERVER_PRELOAD"
_PRIORITY_PATTERN = "^(CRITICAL|HIGH|NORMAL|LOW|BULK)$"


def forkserver_preload(environ: Mapping[str, str] | None = None) -> tuple[str, ...]:
    """Modules the executor's forkserver imports once, so workers start warm.

    A deployment setting, not run config: whoever may launch a run must not choose modules
    to import into the run process. ``BTPIPELINE_FORKSERVER_PRELOAD`` (comma-separated, set in
    the environment of the code server / run processes; read when a run starts) replaces the
    default list."""
    raw = (os.environ if environ is None else environ).get(PRELOAD_ENV)
    if raw is None:
        return DEFAULT_PRELOAD
    return tuple(part.strip() for part in raw.split(",") if part.strip())


class ExecutorSettings(SettingsModel):
    """The backtest_executor's settings (run config ``execution: config:`` keys)."""

    error: ClassVar[type[SettingsError]] = ExecutorConfigError

    max_concurrent_backtests: int | None = Field(
        default=None, ge=1,
        description="Warm workers per run, and the slot limit set on the backtest pool (shared "
        "by every run on this Dagster instance). Default: one per core backtests may use.")
    live_scanner_cpu_reserve: float = Field(
        default=0.25, ge=0.0, lt=1.0,
        description="Fraction of the cores kept free for the live scanner (rounded up, never "
        "all cores).")
    scanner_cores: tuple[int, ...] | None = Field(
        default=None,
        description="Explicit CPU ids reserved for the live scanner; overrides the fraction.")
    worker_affinity_enabled: bool = Field(
        default=True,
        description="Pin each worker to one core outside the scanner's; false pins nothing.")
    worker_priority_enabled: bool = Field(
        default=True,
        description="Apply the run priority's nice value and scheduling class "
        "(SCHED_BATCH/IDLE) to workers.")
    backtest_worker_memory_limit_mb: int = Field(
        default=4096, ge=0,
        description="Resident memory (MiB) a worker may reach during a step; over it the step "
        "fails and the worker is replaced. 0 disables the check.")
    worker_recycle_rss_mb: int | None = Field(
        default=None, ge=0,
        description="A worker whose RSS is above this after a step is replaced before its next "
        "step. Default 80% of backtest_worker_memory_limit_mb; 0 disables.")
    worker_rlimit_as_mb: int = Field(
        default=0, ge=0,
        description="RLIMIT_AS (virtual memory, MiB) set in each worker, turning huge "
        "allocations into a MemoryError inside the step. Counts virtual size, so leave "
        "headroom. 0 = off.")
    max_steps_per_worker: int = Field(
        default=1000, ge=1,
        description="A worker is replaced after running this many steps (bounds state leaks).")
    max_steps_per_batch: int = Field(
        default=8, ge=1,
        description="Up to this many independent ready steps without a timeout run in one "
        "Dagster plan call in a worker (Dagster's per-call cost paid once per batch; events "
        "stay per step). Only for plans without pool steps; 1 = one step per call.")
    max_batch_seconds: float = Field(
        default=0.25, gt=0.0,
        description="A batch holds at most this many seconds of work at the run's observed "
        "step time (no batches before the first step finished), so long steps are never "
        "queued behind each other in one worker.")
    execution_mode: ExecutionMode = Field(
        default=ExecutionMode.CONCURRENT,
        description="How many cores backtests may take: STANDALONE, CONCURRENT or "
        "PRIORITY_LIVE.")
    retries: Literal["enabled", "disabled"] = Field(
        default="enabled",
        description="Dagster step retries (RetryPolicy): enabled or disabled.")
    backtest_pool: str = Field(
        default=BACKTEST_POOL,
        description="Dagster concurrency pool whose slots max_concurrent_backtests sets.")
    sync_pool_limit: bool = Field(
        default=True,
        description="At run start set the backtest pool's slot count to "
        "max_concurrent_backtests when that is given (instance-wide, so the limit holds across "
        "concurrent runs).")
    default_step_timeout_seconds: float | None = Field(
        default=None, gt=0.0,
        description="Timeout for steps without a btpipeline/timeout_seconds op tag (null: "
        "none).")
    worker_shutdown_grace_seconds: float = Field(
        default=5.0, ge=0.0,
        description="On run termination, seconds busy workers get to record their "
        "interruption before they are killed.")
    memory_poll_interval_seconds: float = Field(
        default=0.1, gt=0.0,
        description="How often the parent samples busy workers' RSS (0.1 = 10 Hz).")
    record_step_timings: bool = Field(
        default=True,
        description="Write one engine event per step with its phase timings (µs) as metadata.")
    event_batch_size: int = Field(
        default=64, ge=0,
        description="Workers store a step's per-partition materializations (and other batched "
        "events) in one write of up to this many events where the instance's event log "
        "supports it (PostgreSQL: 12 monthly materializations cost one transaction instead of "
        "12); 0 stores every event on its own. An operator's DAGSTER_EVENT_BATCH_SIZE wins.")
    follow_breaker: bool = Field(
        default=True,
        description="Pause while the resource-monitor sensor's circuit breaker is OPEN.")
    preemption_enabled: bool = Field(
        default=True,
        description="LOW and BULK runs pause while a HIGH or CRITICAL run is queued or "
        "running.")
    queue_check_interval_seconds: float = Field(
        default=1.0, gt=0.0,
        description="How often the fast path reads the breaker state and the run queue from "
        "the instance.")
    scanner_status_file: str | None = Field(
        default=None,
        description="The live scanner's status JSON. Default: $BTPIPELINE_SCANNER_STATUS or "
        "<BTPIPELINE_HOME>/scanner/status.json.")

    # protection levels (fast path)
    load_shedding_enabled: bool = Field(
        default=True,
        description="The fast path: a thread in the run samples load every "
        "shed_interval_seconds and pauses (SIGSTOP) this run's workers while the live scanner "
        "needs the machine, the circuit breaker is OPEN, or a higher-priority run waits; "
        "SIGCONT when healthy.")
    shed_max_priority: str = Field(
        default="NORMAL", pattern=_PRIORITY_PATTERN,
        description="Runs at or below this priority (CRITICAL, HIGH, NORMAL, LOW, BULK) may be "
        "paused; higher ones never are.")
    shed_interval_seconds: float = Field(
        default=0.025, gt=0.0, le=1.0,
        description="Fast-path sampling interval (0.025 = 40 Hz); it also samples at once "
        "when the kernel wakes it (shed_kernel_wakeups).")
    shed_cpu_window_seconds: float = Field(
        default=0.2, gt=0.0,
        description="CPU use and the scanner's run delay are measured over this trailing "
        "window (longer ignores short blips but reacts later); at least "
        "shed_interval_seconds.")
    shed_cpu_burst_window_seconds: float = Field(
        default=0.05, gt=0.0,
        description="A second, short CPU window for multi-core hogs (shed_cpu_burst_threshold); "
        "at least shed_interval_seconds, at most shed_cpu_window_seconds.")
    shed_cpu_burst_threshold: float = Field(
        default=1.3, gt=0.0, le=8.0,
        description="Pause at once when, over shed_cpu_burst_window_seconds, other processes "
        "use more than this fraction of the cores the workers leave free (above 1: more than "
        "those cores hold, which a single busy process cannot do).")
    shed_kernel_wakeups: bool = Field(
        default=True,
        description="Let the kernel wake the fast path between samples: inotify on the "
        "scanner's heartbeat, and a PSI trigger on the scanner's own cgroup v2 group where it "
        "has one. Off, or where neither is available, it polls every shed_interval_seconds "
        "(the run's log says which).")
    shed_cpu_threshold: float = Field(
        default=0.85, gt=0.0, le=1.0,
        description="Pause when processes other than this run's workers use more than this "
        "fraction of the cores the workers leave free, while a live scanner runs (off in "
        "STANDALONE, where they leave none).")
    shed_memory_threshold: float = Field(
        default=0.90, gt=0.0, le=1.0,
        description="Pause when the machine's memory use exceeds this fraction.")
    shed_scanner_run_delay_threshold: float = Field(
        default=0.25, gt=0.0, le=1.0,
        description="Pause when the live scanner sat runnable but waiting for a CPU more than "
        "this fraction of the CPU window (/proc/<pid>/schedstat).")
    shed_scanner_latency_budget_ms: float | None = Field(
        default=None, gt=0.0,
        description="Pause when a scanner tick takes longer than this, or the next tick is "
        "this late. Default: the budget the scanner publishes.")
    shed_hysteresis: float = Field(
        default=0.10, ge=0.0, lt=1.0,
        description="Resume only once every signal is below its level x (1 - "
        "shed_hysteresis).")
    shed_resume_hold_seconds: float = Field(
        default=1.0, ge=0.0,
        description="...and has stayed there this long (doubled after a trip soon after a "
        "resume).")

    @field_validator("retries", mode="before")
    @classmethod
    def _retries_selector(cls, value: Any) -> Any:
        """Dagster's retries config is a selector (``{"enabled": {}}``): keep its key."""
        return next(iter(value)) if isinstance(value, Mapping) else value

    @field_validator("shed_cpu_window_seconds")
    @classmethod
    def _window_covers_interval(cls, value: float, info: ValidationInfo) -> float:
        interval = info.data.get("shed_interval_seconds")
        if interval is not None and value < interval:
            raise ValueError(f"seconds >= shed_interval_seconds ({interval})")
        return value

    @field_validator("shed_cpu_burst_window_seconds")
    @classmethod
    def _burst_window_between(cls, value: float, info: ValidationInfo) -> float:
        interval = info.data.get("shed_interval_seconds")
        window = info.data.get("shed_cpu_window_seconds")
        if interval is not None and value < interval:
            raise ValueError(f"seconds >= shed_interval_seconds ({interval})")
        if window is not None and value > window:
            raise ValueError(f"seconds <= shed_cpu_window_seconds ({window})")
        return value

    @property
    def recycle_rss_mb(self) -> int | None:
        """RSS after a step above which a worker is retired (default 80 % of the limit)."""
        if self.worker_recycle_rss_mb is not None:
            return self.worker_recycle_rss_mb or None
        return int(self.backtest_worker_memory_limit_mb * 0.8) or None
