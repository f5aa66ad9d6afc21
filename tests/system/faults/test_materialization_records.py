"""A worker killed while it records a step's materializations: the retried step records only
the partitions still missing, so each partition has exactly one materialization in the run."""

from __future__ import annotations

import collections
import signal
import subprocess
import sys
import time

import psutil
import pytest
from dagster import DagsterEventType, DagsterInstance

from tests.support import REPO, btpipeline, project_env
from tests.support.processes import first_worker

pytestmark = pytest.mark.slow
MONTHS = [f"2024-{m:02d}-01" for m in range(1, 13)]
RUN_SCRIPT = """
from dagster import AssetKey, DagsterInstance, execute_job, reconstructable
from btpipeline.definitions import backtest_job_def
if __name__ == "__main__":
    config = {"execution": {"config": {"max_concurrent_backtests": 1}}}
    tags = {"dagster/asset_partition_range_start": "2024-01-01",
            "dagster/asset_partition_range_end": "2024-12-01"}
    with execute_job(reconstructable(backtest_job_def), instance=DagsterInstance.get(),
                     run_config=config, tags=tags,
                     asset_selection=[AssetKey(["backtest", "macd_crossover", "EURUSD"])]) as r:
        print("RUN", r.run_id, r.success)
"""


def _materialized(instance: DagsterInstance) -> list[str]:
    runs = instance.get_runs(limit=1)
    if not runs:
        return []
    records = instance.get_records_for_run(
        runs[0].run_id, of_type=DagsterEventType.ASSET_MATERIALIZATION).records
    return [r.event_log_entry.dagster_event.partition for r in records]


def test_a_worker_killed_while_recording_materializations_records_each_once(tmp_path) -> None:
    env = project_env(tmp_path)
    btpipeline("generate", "--epics", "EURUSD", "--start", "2023-10-01", "--end", "2024-12-31",
               env=env)
    instance = DagsterInstance.from_config(env["DAGSTER_HOME"])
    proc = subprocess.Popen([sys.executable, "-c", RUN_SCRIPT], cwd=REPO, env=env,
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    killed_after = None
    deadline = time.monotonic() + 180
    try:
        while killed_after is None and time.monotonic() < deadline and proc.poll() is None:
            done = _materialized(instance)
            if done:
                worker = first_worker(psutil.Process(proc.pid))
                if worker is not None:
                    worker.send_signal(signal.SIGKILL)
                    killed_after = len(done)
            time.sleep(0.005)
        out, err = proc.communicate(timeout=300)
    finally:
        if proc.poll() is None:
            proc.kill()
    assert " True" in out, out + err[-3000:]
    if killed_after is None or killed_after >= len(MONTHS):
        pytest.skip(f"the kill came too late to interrupt the records ({killed_after})")
    counts = collections.Counter(_materialized(instance))
    assert counts == collections.Counter(MONTHS), counts
    run_id = out.split()[1]
    retried = instance.get_records_for_run(run_id, of_type=DagsterEventType.STEP_UP_FOR_RETRY)
    assert retried.records, "the kill did not make the step retry"
