"""btpipeline's Dagster executor: warm, isolated worker processes for backtests.

Public API (pinned by tests/unit/test_executor_unit.py)::

    from btpipeline.executors import backtest_executor, JobPriority, priority_tags
"""

from btpipeline.executors.config import ExecutionConfig, ExecutionMode
from btpipeline.executors.counters import (
    CounterType,
    PerformanceCounter,
    PerformanceProfiler,
    get_counter,
)
from btpipeline.executors.errors import (
    ExecutorConfigError,
    ExecutorError,
    InvalidStepTagError,
    StepTimeout,
    WorkerLost,
    WorkerMemoryLimitExceeded,
    WorkerStartupError,
)
from btpipeline.executors.executor import BacktestExecutor, backtest_executor
from btpipeline.executors.priority import JobPriority, priority_from_tags, priority_tags
from btpipeline.executors.tags import BACKTEST_POOL, RUN_PRIORITY_TAG, STEP_TIMEOUT_TAG

__all__ = [
    "BACKTEST_POOL",
    "RUN_PRIORITY_TAG",
    "STEP_TIMEOUT_TAG",
    "BacktestExecutor",
    "CounterType",
    "ExecutionConfig",
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
