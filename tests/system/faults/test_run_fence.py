"""Writes after death: once Dagster has marked a run FAILED, its late write commits nothing."""

from __future__ import annotations

import pytest
from dagster import (
    DagsterEvent,
    DagsterEventType,
    DagsterRunStatus,
    instance_for_test,
    job,
    op,
)

from btpipeline.assets.run_fence import run_fence
from btpipeline.errors import RunNotLiveError
from btpipeline.resources.results_database import ResultsDatabase
from tests.system.faults.results_helpers import write


@op
def _step() -> None:
    """Stands for a backtest step."""


@job
def _one_step() -> None:
    _step()


def test_a_write_of_a_run_marked_failed_commits_nothing(tmp_path) -> None:
    db = ResultsDatabase(url=f"sqlite:///{tmp_path / 'results.db'}")
    with instance_for_test() as instance:
        run = instance.create_run_for_job(_one_step, run_id=None)
        instance.run_storage.handle_run_event(run.run_id, DagsterEvent(
            event_type_value=DagsterEventType.RUN_START.value, job_name=run.job_name))
        assert instance.get_run_by_id(run.run_id).status == DagsterRunStatus.STARTED
        write(db, run.run_id, fence=run_fence(instance, run.run_id))  # live: committed
        instance.report_run_failed(run, "worker lost (injected)")
        with pytest.raises(RunNotLiveError, match="FAILURE.*not STARTED"):
            write(db, run.run_id, scale=2.0, fence=run_fence(instance, run.run_id))
    assert set(db.read_signals(strategy="macd_crossover", epic="EURUSD")["price"]) == {1.1}
    history = db.read_execution_attempts()
    assert history["status"].tolist() == ["SUCCESS"]
    db.dispose()
