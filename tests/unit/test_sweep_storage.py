"""Sweep storage on ResultsDatabase (SQLite and PostgreSQL, see conftest results_db): a chunk's
rows, a retried chunk stored exactly once, a re-run with the same sweep id replacing its rows."""

from __future__ import annotations

import math
from typing import Any

from btpipeline.resources.results_database import ResultsDatabase
from btpipeline.sweeps.spec import METRICS


def _start(db: ResultsDatabase, sweep_id: str = "s1", run_id: str = "run-1") -> None:
    db.start_sweep(sweep_id=sweep_id, strategy="macd_crossover", epic="EURUSD",
                   range_start="2024-01-01", range_end="2024-01-31",
                   costs={"spread_pips": 0.8}, grid={"fast": [8, 12]}, rules=["fast < slow"],
                   rank_by="sharpe", combinations=4, run_id=run_id)


def _rows(indexes: range, shift: float = 0.0) -> list[dict[str, Any]]:
    return [{"index": i, "combination": f"c{i:04d}_fast{i}", "params": {"fast": i},
             **{m: float(i) + shift for m in METRICS}, "profit_factor": math.inf,
             "fills": 10 + i, "compute_ms": 1.0} for i in indexes]


def test_chunks_round_trip_with_infinite_metrics_as_nan(results_db: ResultsDatabase) -> None:
    _start(results_db)
    results_db.write_sweep_chunk(sweep_id="s1", chunk=0, run_id="run-1", rows=_rows(range(2)))
    results_db.write_sweep_chunk(sweep_id="s1", chunk=1, run_id="run-1",
                                 rows=_rows(range(2, 4)))
    results_db.finish_sweep(sweep_id="s1", status="SUCCESS")
    table = results_db.read_sweep_results("s1")
    assert list(table["combination"]) == [0, 1, 2, 3] and list(table["chunk"]) == [0, 0, 1, 1]
    assert list(table["sharpe"]) == [0.0, 1.0, 2.0, 3.0]
    assert table["profit_factor"].isna().all() and table.iloc[1]["params"] == {"fast": 1}
    sweep = results_db.read_sweep("s1")
    assert sweep is not None and sweep["status"] == "SUCCESS"
    assert sweep["rules"] == ["fast < slow"] and sweep["costs"] == {"spread_pips": 0.8}


def test_a_retried_chunk_is_stored_exactly_once(results_db: ResultsDatabase) -> None:
    _start(results_db)
    results_db.write_sweep_chunk(sweep_id="s1", chunk=0, run_id="run-1", rows=_rows(range(2)))
    results_db.write_sweep_chunk(sweep_id="s1", chunk=1, run_id="run-1",
                                 rows=_rows(range(2, 4)))
    results_db.write_sweep_chunk(sweep_id="s1", chunk=1, run_id="run-1",
                                 rows=_rows(range(2, 4), shift=0.5))
    assert results_db.count_sweep_rows("s1") == {0: 1, 1: 1, 2: 1, 3: 1}
    assert list(results_db.read_sweep_results("s1")["sharpe"]) == [0.0, 1.0, 2.5, 3.5]


def test_a_rerun_with_the_same_id_replaces_its_rows(results_db: ResultsDatabase) -> None:
    _start(results_db)
    results_db.write_sweep_chunk(sweep_id="s1", chunk=0, run_id="run-1", rows=_rows(range(4)))
    _start(results_db, "s2")
    results_db.write_sweep_chunk(sweep_id="s2", chunk=0, run_id="run-1", rows=_rows(range(1)))
    _start(results_db, run_id="run-2")
    sweep = results_db.read_sweep("s1")
    assert sweep is not None and (sweep["run_id"], sweep["status"]) == ("run-2", "RUNNING")
    assert results_db.read_sweep_results("s1").empty
    assert results_db.count_sweep_rows("s2") == {0: 1}  # another sweep is untouched
