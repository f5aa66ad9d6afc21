"""backtest_executor end to end: real runs through execute_job on a temporary instance.
Interrupting the process that runs one: tests/system/test_executor_run_termination.py."""

from __future__ import annotations

import os
import tempfile
import threading
import time
from collections import Counter

import psutil
import pytest
from dagster import (
    AssetKey,
    DagsterEventType,
    execute_job,
    instance_for_test,
    reconstructable,
)

from btpipeline.machine.isolation import autogroup_enabled
from tests.support import executor_jobs as jobs
from tests.support.instances import shipped_storage

# tmpfs when there is one: Dagster's SQLite event log fsyncs every event.
SCRATCH = "/dev/shm" if os.path.isdir("/dev/shm") else None


def _executor(**config) -> dict:
    return {"execution": {"config": config}}


@pytest.fixture(scope="module")
def instance():
    """The storage btpipeline ships (batched event-log writes), as in a deployment."""
    with tempfile.TemporaryDirectory(dir=SCRATCH) as home:
        with instance_for_test(temp_dir=home, overrides=shipped_storage(home)) as inst:
            yield inst


def _events(instance, run_id, event_type=None):
    return [r.dagster_event for r in instance.all_logs(run_id)
            if r.dagster_event and (event_type is None or r.dagster_event.event_type == event_type)]


def _messages(instance, run_id, event_type):
    return [e.step_key for e in _events(instance, run_id, event_type)]


def _failure_message(instance, run_id, step_key):
    failures = [e for e in _events(instance, run_id, DagsterEventType.STEP_FAILURE)
                if e.step_key == step_key]
    assert len(failures) == 1, f"{step_key}: {len(failures)} failures"
    return failures[0].step_failure_data.error.message


# ---------------------------------------------------------------- 20 steps, warm, isolated


@pytest.fixture(scope="module")
def twenty(instance):
    config = _executor(max_concurrent_backtests=2, execution_mode="CONCURRENT",
                       live_scanner_cpu_reserve=0.25)
    with execute_job(reconstructable(jobs.twenty_step_job), instance=instance,
                     run_config=config, tags={"btpipeline/priority": "LOW"}) as result:
        outputs = [result.output_for_node(f"report_{i:03d}") for i in range(jobs.N_STEPS - 1)]
        outputs.append(result.output_for_node("materialize_op"))
        yield result, outputs


def test_twenty_steps_succeed_with_every_event_stored_once(instance, twenty):
    result, _ = twenty
    assert result.success
    steps = {f"report_{i:03d}" for i in range(jobs.N_STEPS - 1)} | {"materialize_op"}
    starts = Counter(_messages(instance, result.run_id, DagsterEventType.STEP_START))
    successes = Counter(_messages(instance, result.run_id, DagsterEventType.STEP_SUCCESS))
    assert starts == Counter({key: 1 for key in steps})
    assert successes == Counter({key: 1 for key in steps})
    logs = [r for r in instance.all_logs(result.run_id)
            if not r.dagster_event and "running in pid" in r.user_message]
    assert len(logs) == jobs.N_STEPS


def test_materialization_and_step_timings_are_in_the_event_log(instance, twenty):
    result, _ = twenty
    records = instance.get_records_for_run(
        result.run_id, of_type=DagsterEventType.ASSET_MATERIALIZATION).records
    assert [r.event_log_entry.dagster_event.asset_key for r in records] == [
        AssetKey("executor_test_asset")]
    timing_events = [e for e in _events(instance, result.run_id, DagsterEventType.ENGINE_EVENT)
                     if e.step_key and "step ran in worker" in e.message]
    assert len(timing_events) == jobs.N_STEPS
    metadata = timing_events[0].engine_event_data.metadata
    for phase in ("queue_wait", "dispatch", "compute", "event_write", "result", "total"):
        assert metadata[f"{phase}_us"].value >= 0


def test_workers_are_warm(twenty):
    _, outputs = twenty
    pids = {out["pid"] for out in outputs}
    assert len(pids) <= 2 < len(outputs)
    assert os.getpid() not in pids


def test_workers_are_pinned_and_niced(twenty):
    _, outputs = twenty
    cores = sorted(os.sched_getaffinity(0))
    expected_core = [c for c in cores if c != cores[0]][0] if len(cores) > 1 else cores[0]
    for out in outputs:
        assert out["cores"] == [expected_core]  # CPU0 kept for the scanner
        assert out["nice"] == 10  # LOW
        assert out["sched_policy"] == "BATCH"
        if autogroup_enabled():  # its own session's autogroup carries the nice too
            assert out["autogroup_nice"] == 10


# ---------------------------------------------------------------- priority


def test_ready_steps_start_highest_priority_first(instance):
    with execute_job(reconstructable(jobs.priority_job), instance=instance,
                     run_config=_executor(max_concurrent_backtests=1)) as result:
        assert result.success
        order = _messages(instance, result.run_id, DagsterEventType.STEP_START)
    expected = [f"prio_{p + 50:03d}" for p in sorted(jobs.PRIORITIES, reverse=True)]
    assert order == expected


# ---------------------------------------------------------------- limits


def test_memory_limit_and_timeout_fail_their_steps_only(instance):
    config = _executor(max_concurrent_backtests=2, execution_mode="STANDALONE",
                       backtest_worker_memory_limit_mb=800)
    config["ops"] = {"memory_hog": {"config": {"megabytes": 2000, "hold_seconds": 5.0}}}
    with execute_job(reconstructable(jobs.limits_job), instance=instance, run_config=config,
                     raise_on_error=False) as result:
        assert not result.success
        run_id = result.run_id
    memory = _failure_message(instance, run_id, "memory_hog")
    assert "WorkerMemoryLimitExceeded" in memory
    assert "backtest_worker_memory_limit_mb limit of 800 MiB" in memory
    timeout = _failure_message(instance, run_id, "sleepy_step")
    assert "StepTimeout" in timeout and "timeout of 1 s" in timeout
    assert _messages(instance, run_id, DagsterEventType.STEP_SUCCESS) == ["small_step"]
    (summary,) = [e for e in _events(instance, run_id, DagsterEventType.ENGINE_EVENT)
                  if e.message.startswith("backtest_executor: finished")]
    assert summary.engine_event_data.metadata["worker_replacements"].value == 2


# ---------------------------------------------------------------- recovery


def test_sigkilled_worker_is_replaced_and_the_step_retried(instance, tmp_path):
    config = _executor(max_concurrent_backtests=2, execution_mode="STANDALONE")
    config["ops"] = {"dies_once": {"config": {"marker": str(tmp_path / "died")}}}
    with execute_job(reconstructable(jobs.sigkill_job), instance=instance,
                     run_config=config) as result:
        assert result.success
        run_id = result.run_id
    killed_pid = int((tmp_path / "died").read_text())
    assert not psutil.pid_exists(killed_pid) or \
        psutil.Process(killed_pid).status() == psutil.STATUS_ZOMBIE
    retries = _events(instance, run_id, DagsterEventType.STEP_UP_FOR_RETRY)
    assert [e.step_key for e in retries] == ["dies_once"]
    assert "WorkerLost" in retries[0].step_retry_data.error.message
    assert "SIGKILL" in retries[0].step_retry_data.error.message
    starts = Counter(_messages(instance, run_id, DagsterEventType.STEP_START))
    assert starts == Counter({"dies_once": 1, "after_death": 1, "small_step": 1})
    assert _messages(instance, run_id, DagsterEventType.STEP_RESTARTED) == ["dies_once"]
    successes = Counter(_messages(instance, run_id, DagsterEventType.STEP_SUCCESS))
    assert successes == Counter({"dies_once": 1, "after_death": 1, "small_step": 1})
    replaced = [e for e in _events(instance, run_id, DagsterEventType.ENGINE_EVENT)
                if "replacing worker" in e.message]
    assert replaced and replaced[0].engine_event_data.metadata["time_to_ready_ms"].value > 0


# ---------------------------------------------------------------- pools across runs


def test_pool_slot_held_by_another_run_blocks_the_backtest_step(instance):
    storage = instance.event_log_storage
    storage.set_concurrency_slots("backtests", 1)
    assert storage.claim_concurrency_slot("backtests", "other-run", "other-step").is_claimed
    results: list = []

    def run() -> None:
        with execute_job(reconstructable(jobs.pooled_asset_job), instance=instance,
                         run_config=_executor(max_concurrent_backtests=1)) as result:
            results.append((result.success, result.run_id))

    thread = threading.Thread(target=run)
    thread.start()
    try:
        time.sleep(4)
        (run,) = [r for r in instance.get_runs(limit=1) if r.job_name == "pooled_assets"]
        assert _messages(instance, run.run_id, DagsterEventType.STEP_START) == []
    finally:
        storage.free_concurrency_slot_for_step("other-run", "other-step")
        thread.join(timeout=120)
    assert results and results[0][0]
    assert storage.get_concurrency_info("backtests").slot_count == 1
    assert len(_messages(instance, results[0][1], DagsterEventType.STEP_SUCCESS)) == 2
