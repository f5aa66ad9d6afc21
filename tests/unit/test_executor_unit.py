"""Pure-function tests of the backtest executor: config, cores, priority, counters, API."""

from __future__ import annotations

import os
import time

import pytest

import btpipeline.executors as executors
from btpipeline.errors import (
    ExecutorConfigError,
    StepTimeout,
    WorkerLost,
    WorkerMemoryLimitExceeded,
)
from btpipeline.executors.counters import (
    CounterType,
    PerformanceCounter,
    PerformanceProfiler,
    get_counter,
)
from btpipeline.executors.executor import BacktestExecutor
from btpipeline.executors.schema import BACKTEST_EXECUTOR_CONFIG
from btpipeline.machine.cores import (
    ExecutionMode,
    backtest_cores,
    scanner_reserved_cores,
    worker_count,
)
from btpipeline.machine.executor_settings import ExecutorSettings
from btpipeline.machine.priority import (
    JobPriority,
    SchedPolicy,
    priority_from_tags,
    priority_tags,
)


def test_public_api_is_pinned():
    assert sorted(executors.__all__) == sorted([
        "BACKTEST_POOL", "RUN_PRIORITY_TAG", "STEP_TIMEOUT_TAG", "BacktestExecutor",
        "CounterType", "ExecutorSettings", "ExecutionMode", "ExecutorConfigError",
        "ExecutorError", "InvalidStepTagError", "JobPriority", "PerformanceCounter",
        "PerformanceProfiler", "StepTimeout", "WorkerLost", "WorkerMemoryLimitExceeded",
        "WorkerStartupError", "backtest_executor", "get_counter", "priority_from_tags",
        "priority_tags",
    ])
    for name in executors.__all__:
        assert getattr(executors, name) is not None


def test_only_dagster_internals_imports_private_dagster():
    import pathlib
    import re

    private = re.compile(r"^\s*(from|import)\s+dagster\._", re.MULTILINE)
    package = pathlib.Path(executors.__file__).parent
    offenders = [
        path.name for path in package.glob("*.py")
        if path.name != "dagster_internals.py" and private.search(path.read_text())
    ]
    assert offenders == []


def test_schema_is_generated_from_every_settings_field():
    from btpipeline.executors.schema import dagster_default

    fields = ExecutorSettings.model_fields
    assert list(BACKTEST_EXECUTOR_CONFIG) == list(fields)
    for name, info in fields.items():
        schema_field = BACKTEST_EXECUTOR_CONFIG[name]
        assert info.description, name
        assert schema_field.description == info.description, name
        assert not schema_field.is_required, name
        expected = {info.default: {}} if name == "retries" else dagster_default(info.default)
        assert schema_field.default_value == expected, name


def test_schema_defaults_validate_back_into_the_model():
    defaults = {name: field.default_value for name, field in BACKTEST_EXECUTOR_CONFIG.items()}
    assert ExecutorSettings.from_env(defaults, environ={}) == ExecutorSettings()


def test_settings_keep_their_names_and_defaults():
    cfg = ExecutorSettings()
    assert (cfg.max_concurrent_backtests, cfg.live_scanner_cpu_reserve, cfg.execution_mode,
            cfg.retries, cfg.max_steps_per_batch, cfg.shed_max_priority,
            cfg.shed_cpu_threshold) == (None, 0.25, ExecutionMode.CONCURRENT, "enabled", 8,
                                        "NORMAL", 0.85)
    protection = [n for n in ExecutorSettings.model_fields
                  if n.startswith("shed_") or n == "load_shedding_enabled"]
    assert list(ExecutorSettings.model_fields)[-len(protection):] == protection


# ---------------------------------------------------------------- cores and modes


@pytest.mark.parametrize(
    ("mode", "cores", "expected"),
    [
        (ExecutionMode.STANDALONE, [0, 1], (0, 1)),
        (ExecutionMode.CONCURRENT, [0, 1], (1,)),
        (ExecutionMode.PRIORITY_LIVE, [0, 1], (1,)),
        (ExecutionMode.CONCURRENT, list(range(8)), (2, 3, 4, 5, 6, 7)),
        (ExecutionMode.PRIORITY_LIVE, list(range(8)), (2, 3, 4, 5)),
        (ExecutionMode.CONCURRENT, [0], (0,)),
    ],
)
def test_backtest_cores_by_mode(mode, cores, expected):
    cfg = ExecutorSettings(execution_mode=mode, live_scanner_cpu_reserve=0.25)
    assert backtest_cores(cfg, cores) == expected


def test_reserve_never_takes_the_last_core():
    cfg = ExecutorSettings(live_scanner_cpu_reserve=0.9)
    assert scanner_reserved_cores(cfg, [0, 1]) == (0,)
    assert backtest_cores(cfg, [0, 1]) == (1,)
    explicit = ExecutorSettings(scanner_cores=(0, 1))
    assert backtest_cores(explicit, [0, 1]) == (1,)


def test_explicit_scanner_cores_win_over_the_fraction():
    cfg = ExecutorSettings(scanner_cores=(3,), live_scanner_cpu_reserve=0.5)
    assert backtest_cores(cfg, [0, 1, 2, 3]) == (0, 1, 2)


def test_worker_count_defaults_to_backtest_cores():
    assert worker_count(ExecutorSettings(), [0, 1]) == 1
    assert worker_count(ExecutorSettings(max_concurrent_backtests=3), [0, 1]) == 3


def test_affinity_disabled_pins_nothing():
    executor = BacktestExecutor(ExecutorSettings(worker_affinity_enabled=False,
                                                max_concurrent_backtests=2))
    assert executor._slot_cores() == [None, None]
    pinned = BacktestExecutor(ExecutorSettings(max_concurrent_backtests=3,
                                              execution_mode=ExecutionMode.STANDALONE))
    assert all(core is not None for core in pinned._slot_cores())


# ---------------------------------------------------------------- config and env


def test_env_overrides_run_config():
    cfg = ExecutorSettings.from_env(
        {"max_concurrent_backtests": 4, "execution_mode": "STANDALONE",
         "retries": {"enabled": {}}},
        environ={"BTPIPELINE_MAX_CONCURRENT_BACKTESTS": "1",
                 "BTPIPELINE_SCANNER_CORES": "0,1",
                 "BTPIPELINE_WORKER_AFFINITY_ENABLED": "false",
                 "BTPIPELINE_EXECUTION_MODE": "priority_live"},
    )
    assert cfg.max_concurrent_backtests == 1
    assert cfg.scanner_cores == (0, 1)
    assert cfg.worker_affinity_enabled is False
    assert cfg.execution_mode is ExecutionMode.PRIORITY_LIVE
    assert cfg.retries == "enabled"


def test_bad_settings_name_the_field_and_the_fix():
    with pytest.raises(ExecutorConfigError, match="BTPIPELINE_MAX_STEPS_PER_WORKER"):
        ExecutorSettings.from_env({}, environ={"BTPIPELINE_MAX_STEPS_PER_WORKER": "x"})
    with pytest.raises(ExecutorConfigError, match="live_scanner_cpu_reserve.*Fix"):
        ExecutorSettings(live_scanner_cpu_reserve=1.5)
    with pytest.raises(ExecutorConfigError, match="execution_mode.*PRIORITY_LIVE.*'FAST'"):
        ExecutorSettings.from_env({"execution_mode": "FAST"}, environ={})
    with pytest.raises(ExecutorConfigError, match="BTPIPELINE_SHED_HYSTERESIS.*< 1.0.*'1.5'"):
        ExecutorSettings.from_env({}, environ={"BTPIPELINE_SHED_HYSTERESIS": "1.5"})
    with pytest.raises(ExecutorConfigError, match="shed_cpu_window_seconds"):
        ExecutorSettings(shed_interval_seconds=0.5, shed_cpu_window_seconds=0.2)
    with pytest.raises(ExecutorConfigError, match="shed_cpu_burst_window_seconds.*<= "
                       "shed_cpu_window_seconds"):
        ExecutorSettings(shed_cpu_window_seconds=0.2, shed_cpu_burst_window_seconds=0.3)


def test_config_is_frozen():
    from pydantic import ValidationError

    cfg = ExecutorSettings()
    with pytest.raises(ValidationError, match="frozen"):
        cfg.max_steps_per_worker = 3  # type: ignore[misc]


def test_recycle_threshold_defaults_to_80_percent_of_the_limit():
    assert ExecutorSettings(backtest_worker_memory_limit_mb=1000).recycle_rss_mb == 800
    assert ExecutorSettings(worker_recycle_rss_mb=0).recycle_rss_mb is None


# ---------------------------------------------------------------- priority


def test_priority_mapping():
    assert [p.dagster_priority for p in JobPriority] == [20, 10, 0, -10, -20]
    assert [p.nice for p in JobPriority] == [0, 0, 5, 10, 19]
    assert JobPriority.LOW.sched_policy is SchedPolicy.BATCH
    assert JobPriority.BULK.sched_policy is SchedPolicy.IDLE


def test_priority_from_tags():
    assert priority_from_tags({}) is JobPriority.NORMAL
    assert priority_from_tags({"btpipeline/priority": "bulk"}) is JobPriority.BULK
    assert priority_from_tags({"dagster/priority": "15"}) is JobPriority.HIGH
    assert priority_from_tags({"dagster/priority": "-10"}) is JobPriority.LOW
    assert priority_from_tags({"btpipeline/priority": "HIGH", "dagster/priority": "-20"}) \
        is JobPriority.HIGH
    assert priority_from_tags({"dagster/priority": "soon"}) is JobPriority.NORMAL
    assert priority_tags(JobPriority.LOW) == {"btpipeline/priority": "LOW",
                                              "dagster/priority": "-10",
                                              "btpipeline/preemptible": "true"}
    assert priority_tags(JobPriority.HIGH)["btpipeline/preemptible"] == "false"


# ---------------------------------------------------------------- errors


def test_error_messages_say_limit_used_and_fix():
    mem = WorkerMemoryLimitExceeded("bt_eurusd", 123, 512, 900.4)
    assert isinstance(mem, MemoryError)
    assert "512 MiB" in str(mem) and "900 MiB" in str(mem) and "Fix" in str(mem)
    timeout = StepTimeout("bt_eurusd", 123, 5, 6.2)
    assert isinstance(timeout, TimeoutError)
    assert "timeout of 5 s" in str(timeout) and "6.2 s" in str(timeout)
    lost = WorkerLost("bt_eurusd", 123, -9)
    assert "SIGKILL" in str(lost) and "RetryPolicy" in str(lost)


# ---------------------------------------------------------------- counters


def test_counter_timers_and_stats():
    counter = PerformanceCounter("unit", CounterType.TIMING)
    timer = counter.start_timer()
    time.sleep(0.002)
    duration = counter.stop_timer(timer)
    assert duration > 0
    assert counter.get_stats()["count"] == 1
    samples = PerformanceCounter("unit.samples")
    for value in range(1, 101):
        samples.record(value)
    stats = samples.get_stats()
    assert stats["count"] == 100
    assert (stats["p50"], stats["p99"], stats["max"], stats["average"]) == (50, 99, 100, 50.5)
    with pytest.raises(KeyError, match="start_timer"):
        counter.stop_timer(timer)


def test_empty_counter_and_profiler():
    assert PerformanceCounter("empty").get_stats()["count"] == 0
    with PerformanceProfiler("unit.profiled") as profiler:
        sum(range(1000))
    with PerformanceProfiler("unit.profiled") as again:
        sum(range(1000))
    assert profiler.duration_us is not None
    assert again.get_stats()["count"] == 2
    assert get_counter("unit.profiled") is profiler.counter


def test_event_batching_is_enabled_only_when_asked_and_keeps_the_operators_value(
        monkeypatch: pytest.MonkeyPatch) -> None:
    from btpipeline.executors.dagster_internals import enable_event_batching

    monkeypatch.delenv("DAGSTER_EVENT_BATCH_SIZE", raising=False)
    enable_event_batching(0)
    assert "DAGSTER_EVENT_BATCH_SIZE" not in os.environ
    enable_event_batching(64)
    assert os.environ["DAGSTER_EVENT_BATCH_SIZE"] == "64"
    monkeypatch.setenv("DAGSTER_EVENT_BATCH_SIZE", "5")
    enable_event_batching(64)
    assert os.environ["DAGSTER_EVENT_BATCH_SIZE"] == "5"


def test_the_worker_start_method_comes_from_the_environment() -> None:
    from btpipeline.executors.forked_server import WORKER_START_ENV, forks_run_process

    assert forks_run_process({}) is True
    assert forks_run_process({WORKER_START_ENV: "fork"}) is True
    assert forks_run_process({WORKER_START_ENV: " Spawn "}) is False
    with pytest.raises(ExecutorConfigError, match=f"{WORKER_START_ENV}.*'spawn'"):
        forks_run_process({WORKER_START_ENV: "exec"})


def test_no_fork_of_the_run_process_while_another_thread_runs() -> None:
    import threading

    from btpipeline.executors.forked_server import forked_forkserver

    stop = threading.Event()
    other = threading.Thread(target=stop.wait, daemon=True)
    other.start()
    try:
        with forked_forkserver() as pid:
            assert pid is None
    finally:
        stop.set()
        other.join()
