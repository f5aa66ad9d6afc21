"""The results schema under Alembic: a database made by the release before variants (tables
as ``create_tables`` made them, no ``alembic_version``) is upgraded in place when a
``ResultsDatabase`` opens it, on SQLite and PostgreSQL; its rows keep their values and gain
``variant`` (= strategy) and ``params_hash`` (of the stored params), and its one-row-per-fill
``backtest_signals`` move into fill blocks that read back identical."""

from __future__ import annotations

import datetime as dt
import importlib

import pandas as pd
import pytest
from sqlalchemy import Engine, insert, inspect

from btpipeline.resources.results_database import ResultsDatabase
from btpipeline.results import migrate
from btpipeline.results.engine import build_engine, create_tables, normalize_url
from btpipeline.results.hashing import settings_hash

initial = importlib.import_module("btpipeline.results.migrations.versions.0001_initial")

T0 = dt.datetime(2024, 2, 1, tzinfo=dt.timezone.utc)
PARAMS = {"fast": 12, "slow": 26, "signal": 9, "timeframe": "M1"}
JAN = T0.replace(month=1)
FILLS = [  # two months, in the stored rows' seq order (not their insertion order)
    {"partition_key": "2024-01-01", "timestamp": JAN, "seq": 0, "side": "BUY",
     "action": "OPEN", "price": 1.1, "size": 100_000.0, "pnl": None},
    {"partition_key": "2024-01-01", "timestamp": JAN + dt.timedelta(minutes=7, microseconds=5),
     "seq": 2, "side": "BUY", "action": "OPEN", "price": 1.0999, "size": 100_000.0,
     "pnl": 0.0},
    {"partition_key": "2024-01-01", "timestamp": JAN + dt.timedelta(minutes=7), "seq": 1,
     "side": "SELL", "action": "CLOSE", "price": 1.10013, "size": 100_000.0,
     "pnl": 12.999999999999996},
    {"partition_key": "2024-02-01", "timestamp": T0 + dt.timedelta(days=1), "seq": 0,
     "side": "SELL", "action": "CLOSE", "price": 1.2, "size": 50_000.0, "pnl": -3.25},
]


def _old_release_database(db: ResultsDatabase) -> Engine:
    """The four tables as released before this change, with one run of macd_crossover."""
    engine = build_engine(normalize_url(db.url), db.db_schema)
    if db.db_schema:
        create_tables(engine, db.db_schema, tables=[])  # the schema only
    tables = initial.initial_metadata()
    with engine.begin() as conn:
        tables.create_all(conn)
        key = {"strategy": "macd_crossover", "epic": "EURUSD", "run_id": "r1"}
        run = {**key, "partition_start": "2024-01-01", "partition_end": "2024-01-01",
               "status": "SUCCESS", "started_at": T0.replace(tzinfo=None),
               "finished_at": T0.replace(tzinfo=None)}
        conn.execute(insert(tables.tables["backtest_executions"]).values(
            **run, duration_ms=5, params=PARAMS, written_at=T0.replace(tzinfo=None),
            pnl=12.5))
        conn.execute(insert(tables.tables["backtest_execution_attempts"]).values(
            **run, written_at=T0.replace(tzinfo=None)))
        conn.execute(insert(tables.tables["backtest_signals"]),
                     [{**key, **fill, "timestamp": fill["timestamp"].replace(tzinfo=None)}
                      for fill in FILLS])
        conn.execute(insert(tables.tables["backtest_daily_pnl"]).values(
            **key, partition_key="2024-01-01", day="2024-01-02", pnl=12.5, bars=1440,
            bars_in_market=60))
    return engine


def test_a_database_of_the_previous_release_is_upgraded_and_keeps_its_rows(results_db
                                                                           ) -> None:
    engine = _old_release_database(results_db)
    try:
        assert not inspect(engine).has_table("alembic_version", schema=results_db.db_schema)
    finally:
        engine.dispose()
    digest = settings_hash(PARAMS)
    executions = results_db.read_executions(variant="macd_crossover")
    assert executions[["strategy", "variant", "params_hash"]].values.tolist() == [
        ["macd_crossover", "macd_crossover", digest]]
    assert executions["pnl"].tolist() == [12.5] and executions["params"][0] == PARAMS
    fills = results_db.read_signals(variant="macd_crossover")
    expected = pd.DataFrame(sorted(FILLS, key=lambda f: (f["partition_key"], f["seq"])))
    pd.testing.assert_frame_equal(  # moved into fill blocks, bit for bit
        fills[list(expected.columns)], expected.astype({"pnl": float, "timestamp":
                                                        "datetime64[ns, UTC]"}))
    jan = fills["partition_key"] == "2024-01-01"  # February: no execution row holds it
    assert set(fills["run_id"]) == {"r1"} and set(fills["params_hash"][jan]) == {digest}
    assert results_db.count_rows()["backtest_signals"] == len(FILLS)
    for frame in (results_db.read_daily_pnl(variant="macd_crossover"),
                  results_db.read_execution_attempts(variant="macd_crossover")):
        assert frame["variant"].tolist() == ["macd_crossover"]
        assert frame["params_hash"].tolist() == [digest]
    engine = build_engine(normalize_url(results_db.url), results_db.db_schema)
    try:
        with engine.connect() as conn:
            assert migrate.current_revision(conn, results_db.db_schema) == \
                migrate.head_revision()
    finally:
        engine.dispose()


def test_after_the_upgrade_two_variants_of_one_strategy_keep_their_own_rows(results_db
                                                                            ) -> None:
    _old_release_database(results_db).dispose()
    fills = pd.DataFrame({"timestamp": [pd.Timestamp("2024-01-03T10:00", tz="UTC")],
                          "side": ["SELL"], "action": ["OPEN"], "price": [1.09],
                          "size": [1000.0], "pnl": [float("nan")],
                          "partition_key": ["2024-01-01"]})
    daily = pd.DataFrame({"day": ["2024-01-03"], "pnl": [-1.0], "bars": [1440],
                          "bars_in_market": [10], "partition_key": ["2024-01-01"]})
    results_db.write_backtest(
        strategy="macd_crossover", variant="macd_fast", epic="EURUSD",
        partition_keys=["2024-01-01"], run_id="r2", params={"fast": 8}, started_at=T0,
        finished_at=T0, metrics={"pnl": -1.0}, fills=fills, daily=daily)
    runs = results_db.read_executions(strategy="macd_crossover")
    assert sorted(runs["variant"]) == ["macd_crossover", "macd_fast"]
    assert results_db.read_daily_pnl(variant="macd_crossover")["pnl"].tolist() == [12.5]
    assert results_db.read_daily_pnl(variant="macd_fast")["pnl"].tolist() == [-1.0]
    assert results_db.read_signals(variant="macd_fast")["params_hash"].tolist() == [
        settings_hash({"fast": 8})]


def test_opening_an_up_to_date_database_changes_nothing(results_db) -> None:
    results_db.create_schema()
    before = results_db.count_rows()
    results_db.create_schema()
    assert results_db.count_rows() == before


@pytest.mark.parametrize("revision", ["0001"])
def test_the_initial_revision_creates_the_released_tables(results_db, revision) -> None:
    engine = build_engine(normalize_url(results_db.url), results_db.db_schema)
    try:
        migrate.upgrade(engine, results_db.db_schema, revision)
        columns = {c["name"] for c in inspect(engine).get_columns(
            "backtest_daily_pnl", schema=results_db.db_schema)}
        assert "strategy" in columns and "variant" not in columns
    finally:
        engine.dispose()
