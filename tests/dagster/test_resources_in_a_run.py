"""The project's resources inside a real Dagster run (``materialize``): the MarketDataStore
reads candles, the ResultsDatabase creates its tables, on SQLite and PostgreSQL (see conftest
results_db). Outside Dagster: tests/unit/test_data_resource.py, test_results_connection.py."""

from __future__ import annotations

import datetime as dt

import numpy as np
from dagster import Definitions, asset, materialize

from btpipeline.data.store import CandleStore, generate_into_store
from btpipeline.resources.market_data_store import MarketDataStore
from btpipeline.resources.results_database import ResultsDatabase

JAN = int(np.datetime64("2024-01-01", "ns").astype(np.int64))
FEB = int(np.datetime64("2024-02-01", "ns").astype(np.int64))
TABLES = {"backtest_executions", "backtest_signals", "backtest_daily_pnl"}


def test_the_market_data_store_works_inside_a_dagster_run(tmp_path) -> None:
    generate_into_store(CandleStore(tmp_path), ["EURUSD"], dt.date(2024, 1, 1),
                        dt.date(2024, 1, 31), 7)

    @asset
    def bars(market_data: MarketDataStore) -> int:
        return len(market_data.read_range(epic="EURUSD", start_ns=JAN, end_ns=FEB))

    result = materialize([bars], resources={"market_data": MarketDataStore(root=str(tmp_path))})
    assert result.success
    january = CandleStore(tmp_path).read_month("EURUSD", 2024, 1)
    assert result.output_for_node("bars") == len(january)


def test_the_results_database_works_inside_a_dagster_run(results_db: ResultsDatabase) -> None:
    @asset
    def counts(results_db: ResultsDatabase) -> dict[str, int]:
        results_db.create_schema()
        return results_db.count_rows()

    result = materialize([counts], resources={"results_db": results_db})
    assert result.success
    assert result.output_for_node("counts") == {name: 0 for name in TABLES}
    assert Definitions(assets=[counts], resources={"results_db": results_db})

