"""btpipeline's Dagster executor: warm, isolated worker processes for backtests.

Public API (pinned by tests/unit/test_executor_unit.py)::

    from btpipeline.executors import backtest_executor, JobPriority, priority_tags

The priority, tag, mode and settings names are re-exported from the machine layer
(``btpipeline.machine``) for users; code inside the package imports them from there.
"""

from btpipeline.errors import (
    ExecutorConfigError,
    ExecutorError,
    InvalidStepTagError,
    StepTimeout,
    WorkerLost,
    WorkerMemoryLimitExceeded,
    WorkerStartupError,
)
from btpipeline.executors.counters import (
    CounterType,
    PerformanceCounter,
    PerformanceProfiler,
    get_counter,
)
from btpipeline.executors.executor import BacktestExecutor, backtest_executor
from btpipeline.machine.cores import ExecutionMode
from btpipeline.machine.executor_settings import ExecutorSettings
from btpipeline.machine.priority import JobPriority, priority_from_tags, priority_tags
from btpipeline.machine.tags import BACKTEST_POOL, RUN_PRIORITY_TAG, STEP_TIMEOUT_TAG

__all__ = [
    "BACKTEST_POOL",
    "RUN_PRIORITY_TAG",
    "STEP_TIMEOUT_TAG",
    "BacktestExecutor",
    "CounterType",
    "ExecutorSettings",
    "ExecutionMode",
    "ExecutorConfigError",
    "ExecutorError",
    "InvalidStepTagError",
    "JobPriority",
    "PerformanceCounter",
    "PerformanceProfiler",
    "StepTimeout",
    "WorkerLost",
    "WorkerMemoryLimitExceeded",
    "WorkerStartupError",
    "backtest_executor",
    "get_counter",
    "priority_from_tags",
    "priority_tags",
]
