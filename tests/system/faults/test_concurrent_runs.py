"""Two identical runs launched at once, writing the same partitions to PostgreSQL results:
both succeed, the results hold one copy of each partition, and Dagster records each partition
once per run."""

from __future__ import annotations

import collections
import subprocess
import sys
import uuid

import pytest
from dagster import AssetKey, DagsterEventType, DagsterInstance, DagsterRunStatus

from btpipeline.resources.results_database import ResultsDatabase
from tests.support import REPO, btpipeline, project_env
from tests.system.faults.private_postgres import PrivatePostgres

pytestmark = pytest.mark.slow
STRATEGIES = ["macd_crossover", "ema_crossover"]
MONTHS = ["2024-01-01", "2024-02-01", "2024-03-01"]


def test_two_identical_runs_on_postgres_both_succeed_with_one_copy(
        tmp_path, private_postgres: PrivatePostgres) -> None:
    url = private_postgres.create_database(f"c{uuid.uuid4().hex[:8]}")
    env = {**project_env(tmp_path), "BTPIPELINE_RESULTS_URL": url}
    btpipeline("generate", "--epics", "EURUSD", "--start", "2023-10-01", "--end", "2024-03-31",
               env=env)
    instance = DagsterInstance.from_config(env["DAGSTER_HOME"])
    instance.get_runs()  # create Dagster's SQLite storage once, before two processes race to
    selection = ",".join(f"backtest/{s}/EURUSD" for s in STRATEGIES)
    command = [sys.executable, "-m", "dagster", "asset", "materialize", "-m",
               "btpipeline.definitions", "--select", selection,
               "--partition-range", f"{MONTHS[0]}...{MONTHS[-1]}"]
    procs = [subprocess.Popen(command, cwd=REPO, env=env, stdout=subprocess.PIPE,
                              stderr=subprocess.STDOUT, text=True) for _ in range(2)]
    outputs = [proc.communicate(timeout=300)[0] for proc in procs]
    for proc, out in zip(procs, outputs, strict=True):
        assert proc.returncode == 0, out[-3000:]

    runs = instance.get_runs()
    assert len(runs) == 2 and {r.status for r in runs} == {DagsterRunStatus.SUCCESS}
    for run in runs:
        records = instance.get_records_for_run(
            run.run_id, of_type=DagsterEventType.ASSET_MATERIALIZATION).records
        per_asset = collections.Counter(
            (r.event_log_entry.dagster_event.asset_key, r.event_log_entry.dagster_event.partition)
            for r in records)
        assert set(per_asset.values()) == {1} and len(per_asset) == len(STRATEGIES) * len(MONTHS)
    for strategy in STRATEGIES:
        key = AssetKey(["backtest", strategy, "EURUSD"])
        assert instance.get_materialized_partitions(key) == set(MONTHS)

    db = ResultsDatabase(url=url)
    for strategy in STRATEGIES:
        fills = db.read_signals(strategy=strategy, epic="EURUSD")
        assert sorted(fills["partition_key"].unique()) == MONTHS
        assert fills["run_id"].nunique() == 1  # one run's copy, not a mix
        assert not fills.duplicated(["partition_key", "seq"]).any()
        daily = db.read_daily_pnl(strategy=strategy, epic="EURUSD")
        assert daily["day"].is_unique
    executions = db.read_executions(epic="EURUSD")
    assert len(executions) == len(STRATEGIES) and set(executions["status"]) == {"SUCCESS"}
    db.dispose()
    instance.dispose()
