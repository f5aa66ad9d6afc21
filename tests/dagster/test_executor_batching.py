"""Batches: several ready steps per worker request (one Dagster plan call), events per step."""

from __future__ import annotations

import os
import tempfile
from collections import Counter

from dagster import DagsterEventType, execute_job, instance_for_test, reconstructable

from tests.support import executor_jobs as jobs

SCRATCH = "/dev/shm" if os.path.isdir("/dev/shm") else None
FILE_LOGS = {"compute_logs": {"module": "btpipeline.executors.compute_logs",
                              "class": "FileComputeLogManager", "config": {}}}


def _events(instance, run_id, event_type=None):
    return [r.dagster_event for r in instance.all_logs(run_id)
            if r.dagster_event and (event_type is None or r.dagster_event.event_type == event_type)]


def _counts(instance, run_id, event_type):
    return Counter(e.step_key for e in _events(instance, run_id, event_type))


def _batch_sizes(instance, run_id):
    return [e.engine_event_data.metadata["batch_size"].value
            for e in _events(instance, run_id, DagsterEventType.ENGINE_EVENT)
            if e.step_key and "step ran in worker" in e.message]


def test_trivial_steps_run_in_batches_with_every_step_event_once():
    with tempfile.TemporaryDirectory(dir=SCRATCH) as home, \
            instance_for_test(temp_dir=home) as instance:
        config = {"execution": {"config": {"max_concurrent_backtests": 2,
                                           "execution_mode": "STANDALONE",
                                           "max_steps_per_batch": 4,
                                           # sizes from counts only, not from step times
                                           "max_batch_seconds": 600.0}}}
        with execute_job(reconstructable(jobs.trivial_20), instance=instance,
                         run_config=config) as result:
            assert result.success
            assert [result.output_for_node(f"noop_{i:03d}") for i in range(20)] == list(range(20))
            run_id = result.run_id
        keys = {f"noop_{i:03d}" for i in range(20)}
        for event_type in (DagsterEventType.STEP_START, DagsterEventType.STEP_SUCCESS):
            assert _counts(instance, run_id, event_type) == Counter({k: 1 for k in keys})
        sizes = _batch_sizes(instance, run_id)
        assert len(sizes) == 20
        assert max(sizes) == 4 and min(sizes) >= 1
        # one log capture per request, not per step
        assert len(_events(instance, run_id, DagsterEventType.LOGS_CAPTURED)) < 20


def test_no_batches_before_a_step_time_is_known():
    """Default max_batch_seconds: the first request of a run is always a single step."""
    with tempfile.TemporaryDirectory(dir=SCRATCH) as home, \
            instance_for_test(temp_dir=home) as instance:
        config = {"execution": {"config": {"max_concurrent_backtests": 1,
                                           "execution_mode": "STANDALONE"}}}
        with execute_job(reconstructable(jobs.trivial_20), instance=instance,
                         run_config=config) as result:
            assert result.success
            run_id = result.run_id
        sizes = _batch_sizes(instance, run_id)
        assert len(sizes) == 20 and sizes[0] == 1


def test_max_steps_per_batch_1_is_one_step_per_request():
    with tempfile.TemporaryDirectory(dir=SCRATCH) as home, \
            instance_for_test(temp_dir=home) as instance:
        config = {"execution": {"config": {"max_concurrent_backtests": 2,
                                           "execution_mode": "STANDALONE",
                                           "max_steps_per_batch": 1}}}
        with execute_job(reconstructable(jobs.trivial_20), instance=instance,
                         run_config=config) as result:
            assert result.success
            run_id = result.run_id
        assert set(_batch_sizes(instance, run_id)) == {1}
        assert len(_events(instance, run_id, DagsterEventType.LOGS_CAPTURED)) == 20


def test_killed_worker_fails_its_running_step_and_requeues_unstarted_ones(tmp_path):
    """Batch [first_in_batch, dies_mid_batch, later_0..2]: first_in_batch stays done,
    dies_mid_batch is retried (WorkerLost), the later steps run once each on the replacement
    worker."""
    with tempfile.TemporaryDirectory(dir=SCRATCH) as home, \
            instance_for_test(temp_dir=home, overrides=FILE_LOGS) as instance:
        config = {"execution": {"config": {"max_concurrent_backtests": 1,
                                           "execution_mode": "STANDALONE",
                                           "max_steps_per_batch": 8,
                                           "max_batch_seconds": 600.0}},
                  "ops": {"dies_mid_batch": {"config": {"marker": str(tmp_path / "died")}}}}
        with execute_job(reconstructable(jobs.batch_death_job), instance=instance,
                         run_config=config) as result:
            assert result.success
            run_id = result.run_id
            killed_pid = int((tmp_path / "died").read_text())
            assert result.output_for_node("first_in_batch") == killed_pid  # ran before the kill
            assert all(result.output_for_node(f"later_{i}") != killed_pid for i in range(3))
        keys = ["warm_up", "first_in_batch", "dies_mid_batch", "later_0", "later_1", "later_2"]
        requests = [sorted(e.logs_captured_data.step_keys)
                    for e in _events(instance, run_id, DagsterEventType.LOGS_CAPTURED)]
        assert requests[0] == ["warm_up"]
        assert requests[1] == sorted(keys[1:])  # one batch: first_in_batch ... later_2
        assert _counts(instance, run_id, DagsterEventType.STEP_START) == Counter(
            {k: 1 for k in keys})
        assert _counts(instance, run_id, DagsterEventType.STEP_SUCCESS) == Counter(
            {k: 1 for k in keys})
        retries = _events(instance, run_id, DagsterEventType.STEP_UP_FOR_RETRY)
        assert [e.step_key for e in retries] == ["dies_mid_batch"]
        assert "WorkerLost" in retries[0].step_retry_data.error.message
        assert _counts(instance, run_id, DagsterEventType.STEP_RESTARTED) == Counter(
            {"dies_mid_batch": 1})
        assert _events(instance, run_id, DagsterEventType.STEP_FAILURE) == []
        # the step's printed output is readable where the UI reads it, for its capture key
        manager = instance.compute_log_manager
        texts = {}
        for event in _events(instance, run_id, DagsterEventType.LOGS_CAPTURED):
            key = [run_id, "compute_logs", event.logs_captured_data.file_key]
            stdout = (manager.get_log_data(key).stdout or b"").decode()
            for step_key in event.logs_captured_data.step_keys:
                texts[step_key] = texts.get(step_key, "") + stdout
        assert "stdout of first_in_batch" in texts["first_in_batch"]
        assert "stdout of later_1" in texts["later_1"]
