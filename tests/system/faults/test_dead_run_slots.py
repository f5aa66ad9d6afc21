"""A CLI run killed with kill -9 while its steps hold ``backtests`` pool slots: the next run
is not blocked (the dead run is marked FAILED and its slots freed), no slot stays claimed and
no process of the dead run is left behind."""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import time

import psutil
import pytest
from dagster import DagsterInstance, DagsterRun, DagsterRunStatus

from btpipeline.executors.dagster_internals import WorkerStatus
from btpipeline.executors.run_liveness import (
    RUN_HOST_TAG,
    RUN_PID_TAG,
    RUN_PROCESS_STARTED_TAG,
)
from btpipeline.machine.tags import BACKTEST_POOL
from tests.support import REPO, btpipeline, project_env

pytestmark = pytest.mark.slow
SELECTION = "backtest/macd_crossover/EURUSD,backtest/ema_crossover/EURUSD"


def _materialize(env: dict[str, str], first: str, last: str) -> subprocess.Popen:
    return subprocess.Popen(
        [sys.executable, "-m", "dagster", "asset", "materialize", "-m", "btpipeline.definitions",
         "--select", SELECTION, "--partition-range", f"{first}...{last}"],
        cwd=REPO, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
        start_new_session=True)


def _claimed(instance: DagsterInstance) -> list[str]:
    return [slot.run_id for slot in
            instance.event_log_storage.get_concurrency_info(BACKTEST_POOL).claimed_slots]


def _kill_while_holding_slots(instance: DagsterInstance, victim: subprocess.Popen
                              ) -> tuple[str, int, list[int]]:
    """kill -9 the run process once it holds pool slots; its run id, the slots it held and
    the pids of its process family."""
    deadline, first_claim = time.monotonic() + 120, None
    while time.monotonic() < deadline and victim.poll() is None:
        claimed = len(_claimed(instance))
        if claimed >= 2:  # both slots held: without a fix every later run would block
            break
        if claimed and first_claim is None:
            first_claim = time.monotonic()
        if first_claim is not None and time.monotonic() - first_claim > 0.5:
            break  # one slot held is still a leak to check
        time.sleep(0.01)
    assert _claimed(instance), "the run never claimed a pool slot"
    family = [victim.pid] + [p.pid for p in psutil.Process(victim.pid).children(recursive=True)]
    dead_run = _claimed(instance)[0]
    held = len(_claimed(instance))
    victim.send_signal(signal.SIGKILL)  # the run process only, as the OOM killer would
    victim.wait(10)
    assert dead_run in _claimed(instance), "the slot was freed by something else"
    return dead_run, held, family


def test_a_killed_cli_run_leaks_no_slot_and_blocks_no_later_run(tmp_path) -> None:
    # Two workers, so the run can hold both slots of the pool at once.
    env = project_env(tmp_path, BTPIPELINE_EXECUTION_MODE="STANDALONE")
    btpipeline("generate", "--epics", "EURUSD", "--start", "2023-10-01", "--end", "2024-12-31",
               env=env)
    instance = DagsterInstance.from_config(env["DAGSTER_HOME"])
    victim = _materialize(env, "2024-01-01", "2024-12-01")
    try:
        dead_run, held, family = _kill_while_holding_slots(instance, victim)
    finally:
        if victim.poll() is None:
            victim.kill()

    began = time.monotonic()
    later = _materialize(env, "2024-01-01", "2024-01-01")
    try:
        out, _ = later.communicate(timeout=150)
    finally:
        if later.poll() is None:
            later.kill()
    recovery_s = time.monotonic() - began
    assert later.returncode == 0, out[-3000:]
    assert "Step blocked by limit" not in out
    assert instance.get_run_by_id(dead_run).status == DagsterRunStatus.FAILURE
    assert _claimed(instance) == []
    print(f"later run finished {recovery_s:.1f} s after the kill ({held} slot(s) were held)")
    time.sleep(2)  # the dead run's workers notice their parent is gone within ~1 s
    left = [pid for pid in family if psutil.pid_exists(pid)
            and psutil.Process(pid).status() != psutil.STATUS_ZOMBIE]
    assert left == [], f"processes of the killed run are still alive: {left}"


def test_run_monitoring_sees_a_dead_run_process_through_the_launcher(tmp_path) -> None:
    """Under the daemon, run monitoring asks the instance's launcher (dagster.yaml) about each
    STARTED run: a run whose recorded process has exited is reported FAILED."""
    env = project_env(tmp_path)
    instance = DagsterInstance.from_config(env["DAGSTER_HOME"])
    assert instance.run_monitoring_enabled
    assert instance.run_monitoring_settings["free_slots_after_run_end_seconds"] > 0
    launcher = instance.run_launcher
    assert launcher.supports_check_run_worker_health
    gone = subprocess.Popen([sys.executable, "-c", "pass"])
    gone.wait()
    alive_tags = {RUN_PID_TAG: str(os.getpid()), RUN_HOST_TAG: socket.gethostname(),
                  RUN_PROCESS_STARTED_TAG: f"{psutil.Process().create_time():.2f}"}
    dead_tags = {**alive_tags, RUN_PID_TAG: str(gone.pid)}
    assert launcher.check_run_worker_health(DagsterRun("j", tags=alive_tags)).status == \
        WorkerStatus.RUNNING
    dead = launcher.check_run_worker_health(DagsterRun("j", tags=dead_tags))
    assert dead.status == WorkerStatus.FAILED and "is gone" in dead.msg
    unknown = launcher.check_run_worker_health(DagsterRun("j", tags={}))
    assert unknown.status == WorkerStatus.RUNNING  # cannot tell: never failed on a guess
    instance.dispose()
