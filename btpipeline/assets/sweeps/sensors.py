"""Sweeps a run left RUNNING end with that run.

A chunk that fails on its last attempt marks its sweep FAILED itself (ops.py). Two ends never
reach that code: a worker killed on the chunk's last attempt, and a run terminated from the UI.
These run status sensors (on by default, evaluated by the daemon) mark the sweeps of such a
``sweep_job`` run FAILED with the run's own error or "run canceled".
"""

from __future__ import annotations

from dagster import (
    DagsterRunStatus,
    DefaultSensorStatus,
    RunStatusSensorContext,
    SensorDefinition,
    SkipReason,
    run_status_sensor,
)

from btpipeline.assets.sweeps.jobs import SWEEP_JOB_NAME
from btpipeline.resources.results_database import ResultsDatabase

ENDS: dict[DagsterRunStatus, str] = {DagsterRunStatus.FAILURE: "sweep_run_failed",
                                     DagsterRunStatus.CANCELED: "sweep_run_canceled"}


def _error(context: RunStatusSensorContext, status: DagsterRunStatus) -> str:
    if status is DagsterRunStatus.CANCELED:
        return f"run {context.dagster_run.run_id} was canceled before the sweep finished"
    message = context.dagster_event.message or "the run failed"
    return f"run {context.dagster_run.run_id} failed: {message}"[:4000]


def sweep_run_end_sensor(status: DagsterRunStatus) -> SensorDefinition:
    """Marks the sweeps of a ``sweep_job`` run that ended with ``status`` FAILED."""

    @run_status_sensor(name=ENDS[status], run_status=status,
                       default_status=DefaultSensorStatus.RUNNING,
                       description="Marks the results database's sweeps that a sweep_job run "
                       "left RUNNING as FAILED when the run ends "
                       f"{status.value.lower()}.")
    def sweep_run_ended(context: RunStatusSensorContext,
                        results_db: ResultsDatabase) -> SkipReason | None:
        if context.dagster_run.job_name != SWEEP_JOB_NAME:
            return SkipReason(f"{context.dagster_run.job_name} is not {SWEEP_JOB_NAME}")
        ended = results_db.end_sweeps_of_run(run_id=context.dagster_run.run_id,
                                             status="FAILED", error=_error(context, status))
        context.log.info(f"run {context.dagster_run.run_id}: {ended} sweep(s) marked FAILED")
        return None

    return sweep_run_ended


def sweep_run_end_sensors() -> list[SensorDefinition]:
    return [sweep_run_end_sensor(status) for status in ENDS]
