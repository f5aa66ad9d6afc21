"""Results-database faults injected for real on a private PostgreSQL server: two writers of
the same partitions at once, a server restart in the middle of a write, a failed re-run."""

from __future__ import annotations

import multiprocessing
import threading
import time
import uuid

import pytest

from btpipeline.errors import ResultsDatabaseError
from btpipeline.resources.results_database import ResultsDatabase
from tests.system.faults.private_postgres import PrivatePostgres
from tests.system.faults.results_helpers import KEYS, T0, partition_digest, write


def _writer(url: str, run_id: str, start: multiprocessing.Event, out: multiprocessing.Queue
            ) -> None:
    db = ResultsDatabase(url=url)
    db.create_schema()
    start.wait(30)
    try:
        for _ in range(30):
            write(db, run_id)
        out.put((run_id, "ok"))
    except Exception as error:  # reported to the test
        out.put((run_id, f"{type(error).__name__}: {error}"))
    finally:
        db.dispose()


def test_two_writers_of_the_same_partitions_both_succeed_with_one_copy(
        private_postgres: PrivatePostgres) -> None:
    url = private_postgres.create_database(f"w{uuid.uuid4().hex[:8]}")
    ctx = multiprocessing.get_context("spawn")
    start, out = ctx.Event(), ctx.Queue()
    procs = [ctx.Process(target=_writer, args=(url, f"run-{i}", start, out)) for i in range(2)]
    for proc in procs:
        proc.start()
    time.sleep(3)
    start.set()
    results = dict(out.get(timeout=120) for _ in procs)
    for proc in procs:
        proc.join(30)
    assert results == {"run-0": "ok", "run-1": "ok"}
    db = ResultsDatabase(url=url)
    digest = partition_digest(db)
    assert sorted(digest) == KEYS and all(rows == 400 for rows, _ in digest.values())
    executions = db.read_executions()
    assert len(executions) == 1 and executions["status"].tolist() == ["SUCCESS"]
    db.dispose()


def test_a_write_during_a_server_restart_waits_and_succeeds(
        private_postgres: PrivatePostgres) -> None:
    url = private_postgres.create_database(f"r{uuid.uuid4().hex[:8]}")
    db = ResultsDatabase(url=url, retry_seconds=60)
    write(db, "before")
    private_postgres.stop()
    restart = threading.Timer(8, private_postgres.start)
    restart.start()
    began = time.monotonic()
    try:
        write(db, "during", scale=2.0)
    finally:
        restart.join()
    waited = time.monotonic() - began
    print(f"write completed {waited:.1f} s after the server stopped (8 s outage)")
    assert waited > 5, f"the write returned after {waited:.1f} s, before the server was back"
    digest = partition_digest(db)
    assert sorted(digest) == KEYS and all(rows == 400 for rows, _ in digest.values())
    assert set(db.read_signals(strategy="macd_crossover", epic="EURUSD")["run_id"]) == {"during"}
    db.dispose()


def test_an_outage_longer_than_the_budget_is_reported_as_transient(
        private_postgres: PrivatePostgres) -> None:
    url = private_postgres.create_database(f"o{uuid.uuid4().hex[:8]}")
    db = ResultsDatabase(url=url, retry_seconds=3)
    db.create_schema()
    private_postgres.stop()
    try:
        with pytest.raises(ResultsDatabaseError) as caught:
            write(db, "lost")
    finally:
        private_postgres.start()
    message = str(caught.value)
    assert "unavailable" in message and "retried for 3 s" in message, message
    assert "correct the input" not in message
    db.dispose()


def test_a_failure_keeps_the_last_good_result_and_its_history(
        private_postgres: PrivatePostgres) -> None:
    url = private_postgres.create_database(f"f{uuid.uuid4().hex[:8]}")
    db = ResultsDatabase(url=url)
    write(db, "good")
    db.record_failure(strategy="macd_crossover", epic="EURUSD", partition_keys=KEYS,
                      run_id="bad", started_at=T0, finished_at=T0, error="InvalidParameterError")
    executions = db.read_executions()
    assert executions["status"].tolist() == ["SUCCESS"]
    assert executions["run_id"].tolist() == ["good"]
    assert executions["total_return"].notna().all()
    attempts = db.read_execution_attempts(strategy="macd_crossover", epic="EURUSD")
    assert attempts[["run_id", "status"]].values.tolist() == [["good", "SUCCESS"],
                                                              ["bad", "FAILED"]]
    db.dispose()


def test_a_newer_range_removes_the_stale_rows_of_overlapping_ranges(
        private_postgres: PrivatePostgres) -> None:
    url = private_postgres.create_database(f"s{uuid.uuid4().hex[:8]}")
    db = ResultsDatabase(url=url)
    write(db, "whole")  # 2024-01..2024-03
    fills, daily = __import__("tests.system.faults.results_helpers",
                              fromlist=["frames"]).frames()
    feb = fills[fills["partition_key"] == "2024-02-01"]
    db.write_backtest(strategy="macd_crossover", epic="EURUSD", partition_keys=["2024-02-01"],
                      run_id="feb", params={}, started_at=T0, finished_at=T0, metrics={},
                      fills=feb, daily=daily[daily["partition_key"] == "2024-02-01"])
    executions = db.read_executions()
    assert executions[["partition_start", "partition_end", "run_id"]].values.tolist() == [
        ["2024-02-01", "2024-02-01", "feb"]]
    db.dispose()
