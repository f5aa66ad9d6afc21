"""Run failure detection for runs whose process died (kill -9, OOM, a full disk).

Dagster learns that a run ended from the run process itself; a process killed outright says
nothing, so its run stays STARTED and the ``backtests`` pool slots its steps claimed stay
claimed: with two slots, two crashes block every later backtest. Each run process therefore
records its pid, host and process start time as run tags (``record_run_process``) when
``backtest_executor`` starts. A run whose recorded process is gone is dead:

* with the daemon (``dagster dev``), Dagster's run monitoring asks the run launcher
  (``btpipeline.executors.run_launcher.LivenessRunLauncher``) about every STARTED run and marks
  dead ones FAILED; ``free_slots_after_run_end_seconds`` then frees their slots;
* without it (CLI runs), every new ``backtest_executor`` run does the same for this host's
  dead runs before it claims a slot (``reap_dead_runs``).
"""

from __future__ import annotations

import os
import socket
from collections.abc import Callable

import psutil
from dagster import DagsterInstance, DagsterRun, DagsterRunStatus, RunsFilter

RUN_PID_TAG = "btpipeline/run_pid"
RUN_HOST_TAG = "btpipeline/run_host"
RUN_PROCESS_STARTED_TAG = "btpipeline/run_process_started"


def _create_time(pid: int) -> str:
    return f"{psutil.Process(pid).create_time():.2f}"


def record_run_process(instance: DagsterInstance, run_id: str) -> None:
    """Tag run ``run_id`` with this process's pid, host and start time."""
    pid = os.getpid()
    instance.add_run_tags(run_id, {RUN_PID_TAG: str(pid), RUN_HOST_TAG: socket.gethostname(),
                                   RUN_PROCESS_STARTED_TAG: _create_time(pid)})


def run_process_alive(run: DagsterRun) -> bool | None:
    """True/False if this host can tell whether the run's recorded process lives; None when
    the run has no record or ran on another host."""
    tags = run.tags
    if RUN_PID_TAG not in tags or tags.get(RUN_HOST_TAG) != socket.gethostname():
        return None
    pid = int(tags[RUN_PID_TAG])
    try:
        return _create_time(pid) == tags.get(RUN_PROCESS_STARTED_TAG)  # not a reused pid
    except (psutil.NoSuchProcess, psutil.ZombieProcess):
        return False
    except psutil.Error:
        return None


def dead_run_message(run: DagsterRun) -> str:
    return (f"Run process {run.tags.get(RUN_PID_TAG)} on {run.tags.get(RUN_HOST_TAG)} is gone "
            "(killed, out of memory, or its disk filled) without ending the run: marked "
            "FAILED and its concurrency slots freed. Fix: re-run the partitions it did not "
            "materialize.")


def reap_dead_runs(instance: DagsterInstance, log: Callable[[str], None] = print) -> list[str]:
    """Mark this host's STARTED runs whose process is gone FAILED and free their slots.
    Returns the run ids reaped."""
    reaped = []
    for record in instance.get_run_records(RunsFilter(statuses=[DagsterRunStatus.STARTED])):
        run = record.dagster_run
        if run_process_alive(run) is not False:
            continue
        instance.report_run_failed(run, dead_run_message(run))
        freed = instance.event_log_storage.free_concurrency_slots_for_run(run.run_id)
        log(f"Reaped dead run {run.run_id} (process {run.tags.get(RUN_PID_TAG)}): marked "
            f"FAILED, freed {freed or 0} concurrency slot(s).")
        reaped.append(run.run_id)
    return reaped
