"""Celery routing for ``backtest_celery_job`` without a broker: queue names per priority,
node priority, per-process isolation, memory limit, task arguments, broker errors. The two
real nodes are tested in tests/system/test_celery_nodes.py."""

import pytest

from btpipeline.distributed.bootstrap import isolation_spec, memory_limit_kib, step_keys
from btpipeline.distributed.broker import BROKER_ENV, check_reachable
from btpipeline.distributed.queues import (
    NODE_PRIORITY_ENV,
    QUEUE_ENV,
    node_priority,
    priority_queues,
    queue_for,
)
from btpipeline.errors import BrokerUnreachable, UnknownNodePriority
from btpipeline.machine.cores import ExecutionMode
from btpipeline.machine.executor_settings import ExecutorSettings
from btpipeline.machine.isolation import IsolationSpec
from btpipeline.machine.priority import JobPriority, SchedPolicy


def test_each_priority_has_its_own_queue_named_after_the_base() -> None:
    assert priority_queues({}) == {
        JobPriority.CRITICAL: "backtests-critical", JobPriority.HIGH: "backtests-high",
        JobPriority.NORMAL: "backtests", JobPriority.LOW: "backtests-low",
        JobPriority.BULK: "backtests-bulk"}
    assert queue_for(JobPriority.BULK, {QUEUE_ENV: "staging"}) == "staging-bulk"


def test_a_node_runs_at_the_highest_priority_it_serves_unless_told() -> None:
    assert node_priority(["backtests-bulk", "backtests-low"], {}) is JobPriority.LOW
    assert node_priority(["backtests-bulk", "backtests"], {}) is JobPriority.NORMAL
    assert node_priority(["dagster"], {}) is None
    assert node_priority(["backtests"], {NODE_PRIORITY_ENV: "bulk"}) is JobPriority.BULK
    with pytest.raises(UnknownNodePriority, match="BTPIPELINE_CELERY_NODE_PRIORITY"):
        node_priority(["backtests"], {NODE_PRIORITY_ENV: "urgent"})


def test_pool_processes_isolate_like_backtest_executor_workers() -> None:
    concurrent = ExecutorSettings()  # 2 cores: core 0 is the scanner's, backtests get core 1
    assert isolation_spec(concurrent, JobPriority.LOW, 0, [0, 1]) == IsolationSpec(
        cores=(1,), nice=10, sched_policy=SchedPolicy.BATCH, rlimit_as_mb=0)
    standalone = ExecutorSettings(execution_mode=ExecutionMode.STANDALONE, worker_rlimit_as_mb=900)
    assert isolation_spec(standalone, JobPriority.BULK, 3, [0, 1]) == IsolationSpec(
        cores=(1,), nice=19, sched_policy=SchedPolicy.IDLE, rlimit_as_mb=900)
    unprioritised = ExecutorSettings(worker_priority_enabled=False, worker_affinity_enabled=False)
    assert isolation_spec(unprioritised, JobPriority.BULK, 0, [0, 1]) == IsolationSpec()
    assert isolation_spec(concurrent, None, 0, [0, 1]).nice is None


def test_memory_limit_becomes_celerys_max_memory_per_child_in_kib() -> None:
    assert memory_limit_kib(ExecutorSettings(backtest_worker_memory_limit_mb=512)) == 512 * 1024
    assert memory_limit_kib(ExecutorSettings(backtest_worker_memory_limit_mb=0)) is None


def test_step_keys_are_read_from_dagster_celerys_task_arguments() -> None:
    packed = {"__class__": "ExecuteStepArgs", "step_keys_to_execute": ["backtest__a__EURUSD"]}
    assert step_keys({"execute_step_args_packed": packed}) == ["backtest__a__EURUSD"]
    assert step_keys({}) == [] and step_keys(None) == []


def test_an_unreachable_broker_names_the_url_and_the_variable() -> None:
    with pytest.raises(BrokerUnreachable) as caught:
        check_reachable("amqp://guest:secret@127.0.0.1:1//", BROKER_ENV, timeout_s=1)
    message = str(caught.value)
    assert "amqp://guest:***@127.0.0.1:1//" in message and "secret" not in message
    assert BROKER_ENV in message
