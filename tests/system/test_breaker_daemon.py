"""With the real Dagster daemon: while the breaker is OPEN a queued backtest run stays queued;
closing the breaker lets it run."""

import json
import subprocess
import sys
import time

import pytest
from dagster import DagsterInstance, DagsterRunStatus

from btpipeline.machine.protection_state import CircuitState, ProtectionState
from btpipeline.monitor.queue_control import apply_protection
from tests.support import REPO, btpipeline, project_env, run, stop

pytestmark = pytest.mark.slow
EPICS = "EURUSD,GBPUSD,USDJPY,AUDUSD,USDCHF,USDCAD"


def _set_breaker(instance, state: CircuitState, reason: str = "test") -> None:
    """Publish a breaker state and set the pool for it, as the resource-monitor sensor does."""
    apply_protection(instance, ProtectionState(state, time.time(), (reason,)), "backtests", 2)


def _status(instance: DagsterInstance, run_id: str) -> DagsterRunStatus:
    return instance.get_run_by_id(run_id).status


def _wait_until(predicate, timeout_s: float) -> bool:
    end = time.monotonic() + timeout_s
    while time.monotonic() < end:
        if predicate():
            return True
        time.sleep(1)
    return False


def test_an_open_breaker_keeps_backtest_runs_queued_until_it_closes(tmp_path) -> None:
    env = project_env(tmp_path)
    btpipeline("generate", "--epics", EPICS, "--start", "2024-01-01", "--end", "2024-01-31",
               env=env)
    instance = DagsterInstance.from_config(env["DAGSTER_HOME"])
    _set_breaker(instance, CircuitState.OPEN)
    # dagster-daemon's own module (what `dagster dev` starts), not the script on PATH.
    daemon = subprocess.Popen([sys.executable, "-m", "dagster._daemon", "run",
                               "-w", "workspace.yaml"], cwd=REPO, env=env,
                              stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
                              start_new_session=True)
    try:
        run([sys.executable, "-m", "dagster", "job", "launch", "-w", "workspace.yaml",
             "-j", "backtest_job",
             "--tags", json.dumps({"dagster/partition": "2024-01-01"})], env)
        (queued,) = instance.get_runs()
        time.sleep(20)  # four dequeue passes of the run queue daemon
        assert _status(instance, queued.run_id) == DagsterRunStatus.QUEUED
        _set_breaker(instance, CircuitState.CLOSED)
        assert _wait_until(lambda: _status(instance, queued.run_id) == DagsterRunStatus.SUCCESS,
                           240), f"run ended {_status(instance, queued.run_id)}"
    finally:
        stop(daemon)
        # Leave no OPEN breaker behind, also when an assertion above failed.
        _set_breaker(instance, CircuitState.CLOSED)
