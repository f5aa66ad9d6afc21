"""kill -9 of a backtest worker mid-run: the step is retried, the run succeeds, and the results
database holds every month exactly once."""

import json
import signal
import subprocess
import sys
import time

import psutil
import pytest
from dagster import DagsterEventType, DagsterInstance

from btpipeline.resources.results_database import ResultsDatabase
from tests.support import REPO, btpipeline, project_env
from tests.support.processes import first_worker

pytestmark = pytest.mark.slow
STRATEGIES = ["macd_crossover", "ema_crossover", "rsi_mean_reversion", "bollinger_breakout"]

RUN_SCRIPT = """
import json, sys
from dagster import AssetKey, DagsterInstance, execute_job, reconstructable
from btpipeline.definitions import backtest_job_def
if __name__ == "__main__":
    keys = [AssetKey(["backtest", s, "EURUSD"]) for s in json.loads(sys.argv[1])]
    config = {"execution": {"config": {"max_concurrent_backtests": 1}}}
    tags = {"dagster/asset_partition_range_start": "2024-01-01",
            "dagster/asset_partition_range_end": "2024-06-01"}
    with execute_job(reconstructable(backtest_job_def), instance=DagsterInstance.get(),
                     run_config=config, tags=tags, asset_selection=keys) as result:
        print("RUN", result.run_id, result.success)
"""


def _first_step_started(instance: DagsterInstance) -> bool:
    return any(r.event_log_entry.dagster_event
               and r.event_log_entry.dagster_event.event_type == DagsterEventType.STEP_START
               for run in instance.get_runs(limit=1)
               for r in instance.get_records_for_run(run.run_id).records)


def test_a_killed_worker_is_replaced_and_its_step_retried_without_losing_rows(tmp_path) -> None:
    env = project_env(tmp_path)
    btpipeline("generate", "--epics", "EURUSD", "--start", "2023-12-01", "--end", "2024-06-30",
               env=env)
    proc = subprocess.Popen([sys.executable, "-c", RUN_SCRIPT, json.dumps(STRATEGIES)], cwd=REPO,
                            env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    instance = DagsterInstance.from_config(env["DAGSTER_HOME"])
    victim = None
    deadline = time.monotonic() + 120
    while victim is None and time.monotonic() < deadline and proc.poll() is None:
        if _first_step_started(instance):
            victim = first_worker(psutil.Process(proc.pid))
        time.sleep(0.05)
    assert victim is not None, "never saw a busy worker to kill"
    victim.send_signal(signal.SIGKILL)
    out, err = proc.communicate(timeout=300)
    assert " True" in out, out + err

    run_id = out.split()[1]
    events = [r.event_log_entry.dagster_event for r in instance.get_records_for_run(run_id).records
              if r.event_log_entry.dagster_event]
    assert any(e.event_type == DagsterEventType.STEP_UP_FOR_RETRY for e in events)
    successes = [e.step_key for e in events if e.event_type == DagsterEventType.STEP_SUCCESS]
    assert sorted(successes) == sorted(f"backtest__{s}__EURUSD" for s in STRATEGIES)

    db = ResultsDatabase(url=f"sqlite:///{tmp_path / 'btp' / 'results.db'}")
    for strategy in STRATEGIES:
        daily = db.read_daily_pnl(strategy=strategy, epic="EURUSD")
        assert daily["day"].is_unique
        assert sorted(daily["partition_key"].unique()) == [f"2024-0{m}-01" for m in range(1, 7)]
    executions = db.read_executions(epic="EURUSD")
    assert set(executions["status"]) == {"SUCCESS"} and len(executions) == len(STRATEGIES)
