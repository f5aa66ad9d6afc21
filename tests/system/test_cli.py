"""The commands the README shows, run for real in subprocesses on a temporary project home."""

import json
import sqlite3
import sys

import pytest
from dagster import AssetKey, DagsterInstance

from tests.support import btpipeline, project_env, run

pytestmark = pytest.mark.slow


def _instance(env) -> DagsterInstance:
    return DagsterInstance.from_config(env["DAGSTER_HOME"])


def test_dagster_job_execute_runs_a_backtest_partition(tmp_path) -> None:
    env = project_env(tmp_path)
    btpipeline("generate", "--epics", "EURUSD,GBPUSD,USDJPY,AUDUSD,USDCHF,USDCAD",
               "--start", "2024-01-01", "--end", "2024-01-31", env=env)
    run([sys.executable, "-m", "dagster", "job", "execute", "-m", "btpipeline.definitions",
         "-j", "backtest_job",
         "--tags", json.dumps({"dagster/partition": "2024-01-01"})], env)
    instance = _instance(env)
    key = AssetKey(["backtest", "ema_crossover", "USDJPY"])
    assert instance.get_materialized_partitions(key) == {"2024-01-01"}


def test_dagster_asset_materialize_runs_a_partition_range(tmp_path) -> None:
    env = project_env(tmp_path)
    btpipeline("generate", "--epics", "EURUSD", "--start", "2023-12-01", "--end", "2024-03-31",
               env=env)
    run([sys.executable, "-m", "dagster", "asset", "materialize", "-m", "btpipeline.definitions",
         "--select", "backtest/macd_crossover/EURUSD",
         "--partition-range", "2024-01-01...2024-03-01"], env)
    instance = _instance(env)
    key = AssetKey(["backtest", "macd_crossover", "EURUSD"])
    assert instance.get_materialized_partitions(key) == {"2024-01-01", "2024-02-01", "2024-03-01"}
    assert len(instance.get_runs()) == 1


def test_demo_persists_runs_and_results_across_processes(tmp_path) -> None:
    env = project_env(tmp_path)
    out = btpipeline("demo", "--strategies", "macd_crossover,ema_crossover,bollinger_breakout",
                     "--start", "2024-01-01", "--end", "2024-03-31", env=env).stdout
    assert "EURUSD" in out and "GBPUSD" in out and "dagster dev" in out
    # A new process (a "restart") sees the runs and materializations the demo stored.
    check = ("from dagster import DagsterInstance, AssetKey;"
             "i = DagsterInstance.get();"
             "print(len(i.get_runs()), sorted(i.get_materialized_partitions("
             "AssetKey(['backtest','bollinger_breakout','GBPUSD']))))")
    printed = run([sys.executable, "-c", check], env).stdout.strip()
    assert printed == "2 ['2024-01-01', '2024-02-01', '2024-03-01']"
    with sqlite3.connect(tmp_path / "btp" / "results.db") as db:
        executions = db.execute("select count(*) from backtest_executions").fetchone()[0]
    assert executions == 3 * 2


def test_generate_rejects_an_inverted_range_with_the_fix(tmp_path) -> None:
    env = project_env(tmp_path)
    proc = run_failing([sys.executable, "-m", "btpipeline", "generate", "--epics", "EURUSD",
                        "--start", "2024-03-01", "--end", "2024-01-01"], env)
    assert "inverted" in proc.stderr and "swap" in proc.stderr


def test_generate_rejects_an_unknown_epic_listing_known_ones(tmp_path) -> None:
    env = project_env(tmp_path)
    proc = run_failing([sys.executable, "-m", "btpipeline", "generate", "--epics", "EURXXX",
                        "--start", "2024-01-01", "--end", "2024-01-31"], env)
    assert "EURXXX" in proc.stderr and "EURUSD" in proc.stderr


def run_failing(args, env):
    import subprocess

    from tests.support import REPO

    proc = subprocess.run(args, cwd=REPO, env=env, capture_output=True, text=True, timeout=120)
    assert proc.returncode == 2, proc.stdout + proc.stderr
    return proc
