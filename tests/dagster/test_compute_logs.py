"""FileComputeLogManager: a step's printed output is captured where the UI reads it."""

from dagster import DagsterEventType, execute_job, instance_for_test, job, op, reconstructable

from btpipeline.executors import backtest_executor

FILE_LOGS = {"compute_logs": {"module": "btpipeline.executors.compute_logs",
                              "class": "FileComputeLogManager", "config": {}}}


@op
def shout() -> int:
    print("hello from a warm worker")
    return 1


def printing_job():
    @job(executor_def=backtest_executor)
    def printing():
        shout()

    return printing


def test_step_stdout_is_captured_for_the_ui_without_tail_processes(tmp_path) -> None:
    with instance_for_test(temp_dir=str(tmp_path), overrides=FILE_LOGS) as instance:
        assert type(instance.compute_log_manager).__name__ == "FileComputeLogManager"
        config = {"execution": {"config": {"max_concurrent_backtests": 1}}}
        with execute_job(reconstructable(printing_job), instance=instance,
                         run_config=config) as result:
            assert result.success
            run_id = result.run_id
        events = [r.event_log_entry.dagster_event
                  for r in instance.get_records_for_run(run_id).records]
        captured = [e for e in events
                    if e is not None and e.event_type == DagsterEventType.LOGS_CAPTURED]
        assert captured, "the step never reported captured logs"
        manager = instance.compute_log_manager
        texts = []
        for event in captured:
            key = [run_id, "compute_logs", event.event_specific_data.file_key]
            data = manager.get_log_data(key)
            texts.append((data.stdout or b"").decode())
            assert manager.is_capture_complete(key)
        assert any("hello from a warm worker" in text for text in texts)
