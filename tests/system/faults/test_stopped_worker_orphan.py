"""A worker paused by the fast path (SIGSTOP) when its run process is killed: it cannot run
its own parent watch, yet it must not stay behind."""

from __future__ import annotations

import contextlib
import signal
import subprocess
import sys
import time

import psutil
import pytest
from dagster import DagsterEventType, DagsterInstance

from tests.support import REPO, btpipeline, project_env
from tests.support.processes import first_worker
from tests.system.faults.test_materialization_records import RUN_SCRIPT

pytestmark = pytest.mark.slow


def _step_started(instance: DagsterInstance) -> bool:
    runs = instance.get_runs(limit=1)
    return bool(runs) and bool(instance.get_records_for_run(
        runs[0].run_id, of_type=DagsterEventType.STEP_START).records)


def test_a_stopped_worker_dies_with_its_run_process(tmp_path) -> None:
    env = project_env(tmp_path)
    btpipeline("generate", "--epics", "EURUSD", "--start", "2023-10-01", "--end", "2024-12-31",
               env=env)
    instance = DagsterInstance.from_config(env["DAGSTER_HOME"])
    proc = subprocess.Popen([sys.executable, "-c", RUN_SCRIPT], cwd=REPO, env=env,
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    worker: psutil.Process | None = None
    try:
        deadline = time.monotonic() + 180
        while worker is None and time.monotonic() < deadline and proc.poll() is None:
            if _step_started(instance):
                worker = first_worker(psutil.Process(proc.pid))
            time.sleep(0.01)
        assert worker is not None, "never saw a worker"
        worker.send_signal(signal.SIGSTOP)  # what the fast path does under load
        for _ in range(100):
            if worker.status() == psutil.STATUS_STOPPED:
                break
            time.sleep(0.01)
        assert worker.status() == psutil.STATUS_STOPPED
        proc.send_signal(signal.SIGKILL)
        proc.wait(10)
        began = time.monotonic()
        while worker.is_running() and worker.status() != psutil.STATUS_ZOMBIE:
            if time.monotonic() - began > 15:
                worker.kill()
                pytest.fail("the stopped worker outlived its run process by 15 s")
            time.sleep(0.05)
        print(f"stopped worker gone {time.monotonic() - began:.2f} s after the run process")
    finally:  # never leave the run or a stopped worker behind, whatever failed above
        if proc.poll() is None:
            proc.kill()
        if worker is not None:
            with contextlib.suppress(psutil.Error):
                worker.kill()
