"""SIGINT to the process running a backtest_executor run (as Ctrl-C or a run termination
does) ends the run and leaves no worker alive. The run lives in its own Python process here,
so the test can interrupt it; the executor's in-process runs: tests/dagster/test_executor_runs.py.
"""

from __future__ import annotations

import signal
import subprocess
import sys
import time
from pathlib import Path

import psutil
from dagster import DagsterRunStatus, instance_for_test

from tests.support import REPO

WORKER_EXIT_S = 30.0


def _written_pids(pid_dir: Path) -> list[int]:
    """The pids the long steps wrote so far. A step's file exists from the moment it is opened,
    before its pid is written, so an empty (or half-written) file does not count yet."""
    pids = []
    for path in pid_dir.glob("*.pid"):
        text = path.read_text().strip()
        if text.isdigit():
            pids.append(int(text))
    return pids


def _alive(pids: list[int]) -> list[int]:
    """Those of ``pids`` still running (a zombie has ended: only its exit status is left)."""
    alive = []
    for pid in pids:
        try:
            if psutil.Process(pid).status() != psutil.STATUS_ZOMBIE:
                alive.append(pid)
        except psutil.NoSuchProcess:
            continue
    return alive


def test_run_termination_leaves_no_worker_alive(tmp_path):
    home, pid_dir = tmp_path / "home", tmp_path / "pids"
    home.mkdir()
    pid_dir.mkdir()
    code = ("from tests.support.executor_jobs import run_long_job_until_terminated as run; "
            f"run({str(home)!r}, {str(pid_dir)!r})")
    proc = subprocess.Popen([sys.executable, "-c", code], cwd=REPO)
    try:
        deadline = time.monotonic() + 90
        while len(worker_pids := _written_pids(pid_dir)) < 2:
            assert proc.poll() is None, "run process exited before both steps started"
            assert time.monotonic() < deadline, "steps did not start"
            time.sleep(0.2)
        proc.send_signal(signal.SIGINT)
        proc.wait(timeout=60)
    finally:
        if proc.poll() is None:
            proc.kill()
    deadline = time.monotonic() + WORKER_EXIT_S  # exiting takes a moment under load
    while (alive := _alive(worker_pids)) and time.monotonic() < deadline:
        time.sleep(0.2)
    assert alive == [], f"workers still alive {WORKER_EXIT_S} s after the run process ended"
    with instance_for_test(temp_dir=str(home)) as inst:
        run_id = (pid_dir / "run_id").read_text()
        assert inst.get_run_by_id(run_id).status in (DagsterRunStatus.CANCELED,
                                                     DagsterRunStatus.FAILURE)

