"""``LivenessRunLauncher``: Dagster's default launcher, plus the worker health check that run
monitoring needs to notice a run whose process was killed (see ``run_liveness``)."""

from __future__ import annotations

from typing import Any

from dagster import DagsterRun

from btpipeline.executors.dagster_internals import (
    CheckRunHealthResult,
    ConfigurableClassData,
    DefaultRunLauncher,
    WorkerStatus,
)
from btpipeline.executors.run_liveness import dead_run_message, run_process_alive


class LivenessRunLauncher(DefaultRunLauncher):
    """Launches like ``DefaultRunLauncher``; answers run monitoring from the run's pid tags."""

    @classmethod
    def from_config_value(cls, inst_data: ConfigurableClassData, config_value: Any
                          ) -> LivenessRunLauncher:
        return cls(inst_data=inst_data)

    @property
    def supports_check_run_worker_health(self) -> bool:
        return True

    def check_run_worker_health(self, run: DagsterRun) -> CheckRunHealthResult:
        alive = run_process_alive(run)
        if alive is False:
            return CheckRunHealthResult(WorkerStatus.FAILED, dead_run_message(run))
        if alive is None:
            # Not recorded, or another host: cannot tell, and run monitoring fails every status
            # but RUNNING and SUCCESS, so assume it lives.
            return CheckRunHealthResult(WorkerStatus.RUNNING, "no run process recorded here")
        return CheckRunHealthResult(WorkerStatus.RUNNING)
