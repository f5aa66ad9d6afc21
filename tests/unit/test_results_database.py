"""ResultsDatabase's write path, the same on SQLite and on PostgreSQL (see conftest results_db):
round trip, replacement, partial rewrites, rollback on failure, failures, UTC timestamps."""

from __future__ import annotations

import datetime as dt
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pytest

from btpipeline.errors import ResultsDatabaseError
from btpipeline.resources.results_database import ResultsDatabase
from btpipeline.results import writer

JAN, FEB, MAR = "2024-01-01", "2024-02-01", "2024-03-01"
T0 = dt.datetime(2024, 4, 1, 12, 0, tzinfo=dt.timezone.utc)
SIGNAL_COLUMNS = ["partition_key", "timestamp", "seq", "side", "action", "price", "size", "pnl"]
DAILY_COLUMNS = ["partition_key", "day", "pnl", "bars", "bars_in_market"]


def make_fills(keys: Sequence[str], per_month: int = 6, shift: float = 0.0) -> pd.DataFrame:
    """Alternating OPEN/CLOSE fills, ``per_month`` per partition, hourly from the 2nd."""
    frames = []
    for key in keys:
        stamps = pd.date_range(pd.Timestamp(key, tz="UTC") + pd.Timedelta(days=1),
                               periods=per_month, freq="h")
        opens = np.arange(per_month) % 2 == 0
        frames.append(pd.DataFrame({
            "timestamp": stamps,
            "side": np.where(opens, "BUY", "SELL"),
            "action": np.where(opens, "OPEN", "CLOSE"),
            "price": 1.1 + shift + np.arange(per_month) * 1e-4,
            "size": 100_000.0,
            "pnl": np.where(opens, np.nan, 10.0 + shift + np.arange(per_month)),
            "partition_key": key,
        }))
    return pd.concat(frames, ignore_index=True)


def make_daily(keys: Sequence[str], days: int = 3, shift: float = 0.0) -> pd.DataFrame:
    frames = []
    for key in keys:
        dates = pd.date_range(key, periods=days, freq="D")
        frames.append(pd.DataFrame({
            "day": dates.strftime("%Y-%m-%d"), "pnl": 5.0 + shift + np.arange(days),
            "bars": 1440, "bars_in_market": 60 + np.arange(days), "partition_key": key,
        }))
    return pd.concat(frames, ignore_index=True)


def write(db: ResultsDatabase, keys: Sequence[str], run_id: str = "run-1", shift: float = 0.0,
          fills: pd.DataFrame | None = None, daily: pd.DataFrame | None = None,
          epic: str = "EURUSD", metrics: dict[str, float] | None = None) -> None:
    db.write_backtest(
        strategy="macd_crossover", epic=epic, partition_keys=list(keys), run_id=run_id,
        params={"fast": 12, "slow": np.int64(26)}, started_at=T0,
        finished_at=T0 + dt.timedelta(seconds=2.5),
        metrics=metrics or {"sharpe": 1.5 + shift, "num_trades": 9, "profit_factor": 2.0},
        fills=make_fills(keys, shift=shift) if fills is None else fills,
        daily=make_daily(keys, shift=shift) if daily is None else daily)


def signals(db: ResultsDatabase, **kw: Any) -> pd.DataFrame:
    return db.read_signals(strategy="macd_crossover", epic="EURUSD", **kw)


def daily(db: ResultsDatabase) -> pd.DataFrame:
    return db.read_daily_pnl(strategy="macd_crossover", epic="EURUSD")


def expected_signals(fills: pd.DataFrame) -> pd.DataFrame:
    out = fills.assign(seq=fills.groupby("partition_key").cumcount())
    return out[SIGNAL_COLUMNS].reset_index(drop=True)


def assert_same(actual: pd.DataFrame, expected: pd.DataFrame) -> None:
    pd.testing.assert_frame_equal(actual.reset_index(drop=True), expected.reset_index(drop=True),
                                  check_dtype=False)


def test_write_then_read_back_equal(results_db: ResultsDatabase) -> None:
    write(results_db, [JAN, FEB])
    assert_same(signals(results_db)[SIGNAL_COLUMNS], expected_signals(make_fills([JAN, FEB])))
    assert_same(daily(results_db)[DAILY_COLUMNS], make_daily([JAN, FEB])[DAILY_COLUMNS])
    assert set(signals(results_db)["run_id"]) == {"run-1"}
    closed = results_db.read_closed_trade_pnls(strategy="macd_crossover", epic="EURUSD")
    assert list(closed) == [11.0, 13.0, 15.0] * 2
    (row,) = results_db.read_executions(strategy="macd_crossover").to_dict("records")
    assert (row["partition_start"], row["partition_end"], row["status"]) == (JAN, FEB, "SUCCESS")
    assert row["params"] == {"fast": 12, "slow": 26} and row["error"] is None
    assert row["sharpe"] == 1.5 and row["num_trades"] == 9 and row["duration_ms"] == 2500
    assert row["bars"] == 6 * 1440  # not in metrics: the sum of the daily bars
    assert results_db.count_rows() == {"backtest_executions": 1, "backtest_signals": 12,
                                       "backtest_daily_pnl": 6}


def test_timestamps_round_trip_as_utc(results_db: ResultsDatabase) -> None:
    fills = make_fills([JAN])
    fills["timestamp"] = fills["timestamp"] + pd.Timedelta(microseconds=123456)
    write(results_db, [JAN], fills=fills)
    stored = signals(results_db)["timestamp"]
    assert str(stored.dtype) == "datetime64[ns, UTC]"
    assert list(stored) == list(fills["timestamp"])
    (row,) = results_db.read_executions().to_dict("records")
    assert row["started_at"] == T0 and row["started_at"].tzinfo is not None
    assert row["written_at"] >= T0


def test_export_signals_rebuilds_the_seeds_table_for_sql(results_db: ResultsDatabase,
                                                          tmp_path: Path) -> None:
    """The fills are stored in blocks; ``export_signals`` writes the seed's one-row-per-fill
    ``backtest_signals`` table, where a SQL filter on a timestamp bound by SQLAlchemy finds
    the rows and a missing pnl is NULL; exporting again leaves the same table."""
    from sqlalchemy import create_engine, func, select

    from btpipeline.results.export import signals_table as table

    write(results_db, [JAN, FEB])
    write(results_db, [JAN], epic="GBPUSD")
    url = f"sqlite:///{tmp_path / 'signals.db'}"
    assert results_db.export_signals(to_url=url) == 18
    assert results_db.export_signals(to_url=url, epic="EURUSD") == 12  # replaces those rows
    cutoff = dt.datetime(2024, 1, 2, 2, 30, tzinfo=dt.timezone.utc)  # fills at 00:00..05:00
    engine = create_engine(url)
    with engine.connect() as conn:
        count = select(func.count()).select_from(table).where(table.c.epic == "EURUSD",
                                                              table.c.partition_key == JAN)
        later = conn.execute(count.where(table.c.timestamp > cutoff)).scalar_one()
        exact = conn.execute(count.where(
            table.c.timestamp == dt.datetime(2024, 1, 2, 3, tzinfo=dt.timezone.utc))).scalar_one()
        nulls = conn.execute(count.where(table.c.pnl.is_(None))).scalar_one()
        total = conn.execute(select(func.count()).select_from(table)).scalar_one()
        exported = pd.read_sql(select(table).where(table.c.epic == "EURUSD")
                               .order_by(table.c.partition_key, table.c.seq), conn)
    engine.dispose()
    assert (later, exact, nulls, total) == (3, 1, 3, 18)
    assert_same(exported[SIGNAL_COLUMNS].assign(timestamp=pd.to_datetime(
        exported["timestamp"], utc=True)), signals(results_db)[SIGNAL_COLUMNS])
    csv = tmp_path / "signals.csv"
    assert results_db.export_signals(csv=csv, variant="macd_crossover", epic="GBPUSD") == 6
    from_csv = pd.read_csv(csv, parse_dates=["timestamp"])
    assert_same(from_csv[SIGNAL_COLUMNS], results_db.read_signals(epic="GBPUSD")[SIGNAL_COLUMNS])


def test_a_corrupt_fill_block_names_its_month_and_the_fix(results_db: ResultsDatabase) -> None:
    from sqlalchemy import update

    from btpipeline.results.tables import fill_blocks

    write(results_db, [JAN, FEB])
    with results_db._get_engine().begin() as conn:
        conn.execute(update(fill_blocks).where(fill_blocks.c.partition_key == FEB)
                     .values(data=b"not a block"))
    with pytest.raises(ResultsDatabaseError,
                       match=r"macd_crossover EURUSD for the month 2024-02 .*materialize"):
        signals(results_db)
    assert len(signals(results_db, partition_keys=[JAN])) == 6  # other months still read


def test_other_timezones_are_stored_as_the_same_instant(results_db: ResultsDatabase) -> None:
    fills = make_fills([JAN])
    fills["timestamp"] = fills["timestamp"].dt.tz_convert("Asia/Tokyo")
    write(results_db, [JAN], fills=fills)
    assert list(signals(results_db)["timestamp"]) == list(make_fills([JAN])["timestamp"])


def test_writing_the_same_call_twice_keeps_one_copy(results_db: ResultsDatabase) -> None:
    write(results_db, [JAN, FEB])
    counts = results_db.count_rows()
    write(results_db, [JAN, FEB])
    assert results_db.count_rows() == counts
    assert_same(signals(results_db)[SIGNAL_COLUMNS], expected_signals(make_fills([JAN, FEB])))


def test_rewriting_the_partitions_replaces_values(results_db: ResultsDatabase) -> None:
    write(results_db, [JAN, FEB])
    counts = results_db.count_rows()
    write(results_db, [JAN, FEB], run_id="run-2", shift=0.5)
    assert results_db.count_rows() == counts
    assert_same(signals(results_db)[SIGNAL_COLUMNS],
                expected_signals(make_fills([JAN, FEB], shift=0.5)))
    assert_same(daily(results_db)[DAILY_COLUMNS], make_daily([JAN, FEB], shift=0.5)[DAILY_COLUMNS])
    (row,) = results_db.read_executions().to_dict("records")
    assert (row["run_id"], row["sharpe"]) == ("run-2", 2.0)


def test_rewriting_a_subset_leaves_the_other_partitions(results_db: ResultsDatabase) -> None:
    write(results_db, [JAN, FEB, MAR])
    write(results_db, [FEB], run_id="run-2", shift=0.5)
    got = signals(results_db)
    assert set(got[got["partition_key"] == FEB]["run_id"]) == {"run-2"}
    assert set(got[got["partition_key"] != FEB]["run_id"]) == {"run-1"}
    expected = pd.concat([make_fills([JAN]), make_fills([FEB], shift=0.5), make_fills([MAR])])
    assert_same(got[SIGNAL_COLUMNS], expected_signals(expected.reset_index(drop=True)))
    assert results_db.count_rows()["backtest_signals"] == 18
    # The JAN..MAR row described February's replaced fills: it is removed, not left beside.
    ranges = results_db.read_executions()[["partition_start", "partition_end", "run_id"]]
    assert ranges.values.tolist() == [[FEB, FEB, "run-2"]]
    assert signals(results_db, partition_keys=[MAR])["partition_key"].unique().tolist() == [MAR]


def test_other_epics_and_strategies_are_untouched(results_db: ResultsDatabase) -> None:
    write(results_db, [JAN], epic="GBPUSD")
    write(results_db, [JAN])
    write(results_db, [JAN], fills=make_fills([JAN])[:0], daily=make_daily([JAN])[:0])
    assert len(results_db.read_signals(strategy="macd_crossover", epic="GBPUSD")) == 6
    assert len(results_db.read_signals(strategy="macd_crossover")) == 6
    assert results_db.read_signals(strategy="other").empty


def test_empty_results_clear_the_partitions(results_db: ResultsDatabase) -> None:
    write(results_db, [JAN, FEB])
    write(results_db, [JAN], fills=pd.DataFrame(), daily=pd.DataFrame(), run_id="run-2")
    assert set(signals(results_db)["partition_key"]) == {FEB}
    assert set(daily(results_db)["partition_key"]) == {FEB}


def _assert_unchanged(db: ResultsDatabase, before: dict[str, pd.DataFrame]) -> None:
    assert_same(signals(db), before["signals"])
    assert_same(daily(db), before["daily"])
    assert_same(db.read_executions(), before["executions"])


def _snapshot(db: ResultsDatabase) -> dict[str, pd.DataFrame]:
    return {"signals": signals(db), "daily": daily(db), "executions": db.read_executions()}


def test_a_nan_price_fails_and_changes_nothing(results_db: ResultsDatabase) -> None:
    write(results_db, [JAN, FEB])
    before = _snapshot(results_db)
    fills = make_fills([JAN, FEB], shift=0.5)
    fills.loc[3, "price"] = np.nan
    with pytest.raises(ResultsDatabaseError, match=r"'price'.*row 3"):
        write(results_db, [JAN, FEB], run_id="run-2", fills=fills)
    _assert_unchanged(results_db, before)


def test_an_unknown_side_is_refused_before_writing(results_db: ResultsDatabase) -> None:
    write(results_db, [JAN, FEB])
    before = _snapshot(results_db)
    fills = make_fills([JAN, FEB], shift=0.5)
    fills.loc[len(fills) - 1, "side"] = "HOLD"
    with pytest.raises(ResultsDatabaseError, match="'side' is 'HOLD' at row 11") as caught:
        write(results_db, [JAN, FEB], run_id="run-2", fills=fills)
    assert "Nothing was written" in str(caught.value)
    _assert_unchanged(results_db, before)


def test_a_failing_daily_insert_rolls_back_the_signals_too(results_db: ResultsDatabase) -> None:
    write(results_db, [JAN])
    before = _snapshot(results_db)
    bad_daily = pd.concat([make_daily([JAN]), make_daily([JAN]).iloc[[0]]])  # duplicate day
    with pytest.raises(ResultsDatabaseError, match="IntegrityError"):
        write(results_db, [JAN], run_id="run-2", shift=0.5, daily=bad_daily)
    _assert_unchanged(results_db, before)


def test_a_failed_write_leaves_nothing_staged_for_the_next_one(
        results_db: ResultsDatabase) -> None:
    """On SQLite rows are staged in the connection's TEMP tables before the write lock; rows
    staged by a write that failed must not reappear in the next write on that connection."""
    bad_daily = pd.concat([make_daily([JAN]), make_daily([JAN]).iloc[[0]]])  # duplicate day
    with pytest.raises(ResultsDatabaseError, match="IntegrityError"):
        write(results_db, [JAN], run_id="run-1", daily=bad_daily)
    write(results_db, [FEB], run_id="run-2", shift=0.5)
    assert_same(signals(results_db)[SIGNAL_COLUMNS],
                expected_signals(make_fills([FEB], shift=0.5)))
    assert_same(daily(results_db)[DAILY_COLUMNS], make_daily([FEB], shift=0.5)[DAILY_COLUMNS])


def test_an_error_inside_the_transaction_rolls_back(results_db: ResultsDatabase,
                                                     monkeypatch: pytest.MonkeyPatch) -> None:
    write(results_db, [JAN, FEB])
    before = _snapshot(results_db)
    real_insert = writer.insert_rows

    def insert_then_fail(conn: Any, fills: Any, days: Any) -> None:
        real_insert(conn, fills, days)
        raise OSError("disk full")

    monkeypatch.setattr(writer, "insert_rows", insert_then_fail)
    with pytest.raises(ResultsDatabaseError, match="disk full"):
        write(results_db, [JAN, FEB], run_id="run-2", shift=0.5)
    _assert_unchanged(results_db, before)


@pytest.mark.parametrize("change, message", [
    (lambda f: f.drop(columns=["price"]), "lacks column"),
    (lambda f: f.assign(partition_key="2023-12-01"), "outside the ones being written"),
    (lambda f: f.assign(timestamp=f["timestamp"].dt.tz_localize(None)), "timezone-naive"),
])
def test_bad_fills_are_refused_before_writing(results_db: ResultsDatabase, change: Any,
                                              message: str) -> None:
    write(results_db, [JAN])
    before = _snapshot(results_db)
    with pytest.raises(ResultsDatabaseError, match=message):
        write(results_db, [JAN], run_id="run-2", fills=change(make_fills([JAN])))
    _assert_unchanged(results_db, before)


def test_record_failure_keeps_the_last_good_result(results_db: ResultsDatabase) -> None:
    write(results_db, [JAN, FEB])
    before = _snapshot(results_db)
    results_db.record_failure(strategy="macd_crossover", epic="EURUSD", partition_keys=[FEB, JAN],
                              run_id="run-2", started_at=T0, finished_at=T0,
                              error="MissingDataError: no candles")
    assert_same(signals(results_db), before["signals"])
    assert_same(daily(results_db), before["daily"])
    (row,) = results_db.read_executions().to_dict("records")
    assert (row["status"], row["run_id"]) == ("SUCCESS", "run-1")
    assert not isinstance(row["error"], str)
    assert row["sharpe"] == before["executions"]["sharpe"].iloc[0]
    history = results_db.read_execution_attempts().to_dict("records")
    assert [(h["run_id"], h["status"], h["error"] if isinstance(h["error"], str) else None)
            for h in history] == [
        ("run-1", "SUCCESS", None), ("run-2", "FAILED", "MissingDataError: no candles")]


def test_record_failure_replaces_an_earlier_failure(results_db: ResultsDatabase) -> None:
    for run_id in ("run-1", "run-2"):
        results_db.record_failure(strategy="s", epic="EURUSD", partition_keys=[MAR],
                                  run_id=run_id, started_at=T0, finished_at=T0, error=run_id)
    (row,) = results_db.read_executions().to_dict("records")
    assert (row["status"], row["run_id"], row["params"]) == ("FAILED", "run-2", None)
    assert np.isnan(row["sharpe"])


def test_record_failure_for_a_new_range_adds_a_row(results_db: ResultsDatabase) -> None:
    results_db.record_failure(strategy="s", epic="EURUSD", partition_keys=[MAR], run_id="r",
                              started_at=T0, finished_at=T0, error="boom")
    assert results_db.count_rows() == {"backtest_executions": 1, "backtest_signals": 0,
                                       "backtest_daily_pnl": 0}


def test_non_finite_metrics_are_stored_as_null(results_db: ResultsDatabase) -> None:
    write(results_db, [JAN], metrics={"profit_factor": float("inf"), "sharpe": float("nan"),
                                      "sortino": -float("inf"), "total_return": 0.1,
                                      "unknown_metric": 3.0})
    (row,) = results_db.read_executions().to_dict("records")
    assert np.isnan(row["profit_factor"]) and np.isnan(row["sharpe"])
    assert np.isnan(row["sortino"]) and row["total_return"] == 0.1


def test_daily_filters_by_day(results_db: ResultsDatabase) -> None:
    write(results_db, [JAN, FEB])
    got = results_db.read_daily_pnl(strategy="macd_crossover", start_day="2024-01-02",
                                    end_day=dt.date(2024, 2, 1))
    assert got["day"].tolist() == ["2024-01-02", "2024-01-03", "2024-02-01"]


def test_thirty_thousand_fills_write_in_one_go(results_db: ResultsDatabase) -> None:
    keys = [f"2024-{m:02d}-01" for m in range(1, 13)]
    fills = make_fills(keys, per_month=2500)
    write(results_db, keys, fills=fills)
    assert results_db.count_rows()["backtest_signals"] == 30_000
    write(results_db, keys, fills=fills, run_id="run-2")
    assert results_db.count_rows()["backtest_signals"] == 30_000


def test_concurrent_writers_of_different_epics_all_land(results_db: ResultsDatabase) -> None:
    """Several processes of one backfill write at once (SQLite waits for its write lock)."""
    import threading

    epics = ["EURUSD", "GBPUSD", "USDJPY", "AUDUSD"]
    errors: list[BaseException] = []

    def run(epic: str) -> None:
        db = ResultsDatabase(url=results_db.url, db_schema=results_db.db_schema)
        try:
            for attempt in range(3):
                write(db, [JAN, FEB, MAR], epic=epic, run_id=f"{epic}-{attempt}")
        except BaseException as error:  # collected and asserted below
            errors.append(error)
        finally:
            db.dispose()

    threads = [threading.Thread(target=run, args=(epic,)) for epic in epics]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert errors == [], str(errors[0])[:900] if errors else ""
    assert results_db.count_rows() == {"backtest_executions": 4, "backtest_signals": 4 * 18,
                                       "backtest_daily_pnl": 4 * 9}
