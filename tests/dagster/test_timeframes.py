"""Timeframes: bars resampled from the stored 1-minute data equal pandas' resample of the
same data (label = open time, UTC, left-closed), and a variant runs on them through Dagster."""

from __future__ import annotations

import datetime as dt

import numpy as np
import pandas as pd
import pytest
from dagster import instance_for_test

from btpipeline.data.synthetic import generate_candles
from btpipeline.data.timeframes import TIMEFRAME_MINUTES, resample, source_bars
from btpipeline.epics import get_epic
from btpipeline.errors import InvalidParameterError
from btpipeline.resources.market_data_store import MarketDataStore
from btpipeline.resources.results_database import ResultsDatabase
from btpipeline.strategies import get_strategy, run_backtest
from tests.support.backtest_runs import run_range


def _pandas_bars(candles, minutes: int) -> pd.DataFrame:
    frame = pd.DataFrame({"open": candles.open, "high": candles.high, "low": candles.low,
                          "close": candles.close, "volume": candles.volume},
                         index=pd.to_datetime(np.asarray(candles.timestamp), utc=True))
    bars = frame.resample(f"{minutes}min", label="left", closed="left").agg(
        {"open": "first", "high": "max", "low": "min", "close": "last", "volume": "sum"})
    return bars[frame["open"].resample(f"{minutes}min").count() > 0]


@pytest.mark.parametrize("timeframe", list(TIMEFRAME_MINUTES))
def test_resampled_bars_equal_pandas_resample_on_the_same_data(timeframe: str) -> None:
    candles = generate_candles(get_epic("EURUSD"), dt.date(2024, 1, 1), dt.date(2024, 2, 1))
    ours = resample(candles, timeframe)
    theirs = _pandas_bars(candles, TIMEFRAME_MINUTES[timeframe])
    assert list(pd.to_datetime(ours.timestamp, utc=True)) == list(theirs.index)
    for column in ("open", "high", "low", "close", "volume"):
        np.testing.assert_array_equal(getattr(ours, column), theirs[column].to_numpy())


def test_bar_convention_sunday_open_and_unknown_timeframe() -> None:
    candles = generate_candles(get_epic("EURUSD"), dt.date(2024, 1, 7), dt.date(2024, 1, 8))
    days = pd.to_datetime(resample(candles, "D1").timestamp, utc=True)
    # The week opens Sunday 22:00 UTC: a short D1 bar labelled Sunday 00:00, then Monday.
    assert [str(d) for d in days] == ["2024-01-07 00:00:00+00:00", "2024-01-08 00:00:00+00:00"]
    h4 = pd.to_datetime(resample(candles, "H4").timestamp, utc=True)
    assert str(h4[0]) == "2024-01-07 20:00:00+00:00" and set(h4.hour) <= {0, 4, 8, 12, 16, 20}
    assert source_bars(10, "H1") == 600
    with pytest.raises(InvalidParameterError, match="Unknown timeframe 'W1'"):
        resample(candles, "W1")


def test_a_variant_runs_on_hourly_bars_through_dagster(results_db: ResultsDatabase,
                                                       tmp_path) -> None:
    db = results_db
    resources = {"market_data": MarketDataStore(root=str(tmp_path / "data")), "results_db": db}
    with instance_for_test() as instance:
        assert run_range(instance, resources, "2024-01-01", "2024-03-01", ["ema_crossover"],
                         backtest_config={"timeframe": "H1",
                                          "params": {"fast": 5.0, "slow": 20.0}}).success
    fills = db.read_signals(strategy="ema_crossover", epic="EURUSD")
    assert len(fills) > 20
    stamps = fills["timestamp"]
    assert (stamps.dt.minute == 0).all() and (stamps.dt.second == 0).all()
    # The same as a direct run on the hourly bars of the same data, warm-up counted in hours.
    strategy = get_strategy("ema_crossover")
    params = strategy.make_params({"fast": 5, "slow": 20})
    start = pd.Timestamp("2024-01-01", tz="UTC").value
    end = pd.Timestamp("2024-04-01", tz="UTC").value
    minutes = MarketDataStore(root=str(tmp_path / "data")).read_range(
        epic="EURUSD", start_ns=start, end_ns=end,
        warmup_bars=source_bars(strategy.warmup_bars(params), "H1"))
    direct = run_backtest(resample(minutes, "H1"), strategy="ema_crossover", params=params,
                          epic=get_epic("EURUSD"), start_ns=start, end_ns=end)
    assert list(direct.fills["timestamp"]) == list(stamps)
    np.testing.assert_allclose(direct.fills["pnl"], fills["pnl"], rtol=0, atol=1e-9)
    assert db.read_executions(strategy="ema_crossover", epic="EURUSD").iloc[0][
        "params"]["timeframe"] == "H1"
    daily = db.read_daily_pnl(strategy="ema_crossover", epic="EURUSD")
    assert daily["bars"].max() <= 24  # hourly bars per UTC day


def _hourly_csv(path, start: str, hours: int) -> None:
    stamps = pd.date_range(start, periods=hours, freq="h", tz="UTC")
    price = 1.1 + 0.001 * np.sin(np.arange(hours) / 5)
    frame = pd.DataFrame({"timestamp": stamps.strftime("%Y-%m-%d %H:%M:%S"), "open": price,
                          "high": price + 0.0005, "low": price - 0.0005, "close": price,
                          "volume": 1.0})
    frame.to_csv(path, index=False)


def test_the_importer_records_the_timeframe_and_refuses_a_second_one(tmp_path) -> None:
    from btpipeline.data.store import CandleStore, import_csv_into_store
    from btpipeline.errors import DataValidationError

    store = CandleStore(tmp_path / "data")
    csv = tmp_path / "h1.csv"
    _hourly_csv(csv, "2024-01-01 00:00", 24 * 40)
    import_csv_into_store(store, csv, "EURUSD", timeframe="H1")
    assert store.timeframe("EURUSD") == "H1" and store.timeframe("GBPUSD") is None
    with pytest.raises(DataValidationError, match="holds EURUSD bars at H1, these are M1"):
        import_csv_into_store(store, csv, "EURUSD", timeframe="M1")
    with pytest.raises(DataValidationError, match="not the open time of a D1 bar"):
        import_csv_into_store(CandleStore(tmp_path / "other"), csv, "EURUSD", timeframe="D1")


def test_a_variant_runs_on_data_imported_at_its_timeframe(tmp_path) -> None:
    from btpipeline.data.store import CandleStore, import_csv_into_store

    csv = tmp_path / "h1.csv"
    _hourly_csv(csv, "2023-12-01 00:00", 24 * 92)
    import_csv_into_store(CandleStore(tmp_path / "data"), csv, "EURUSD", timeframe="H1")
    db = ResultsDatabase(url=f"sqlite:///{tmp_path / 'results.db'}")
    resources = {"market_data": MarketDataStore(root=str(tmp_path / "data")), "results_db": db}
    params = {"fast": 3.0, "slow": 8.0}
    with instance_for_test() as instance:
        h4 = run_range(instance, resources, "2024-01-01", "2024-02-01", ["ema_crossover"],
                       backtest_config={"timeframe": "H4", "params": params})
        assert h4.success  # H4 bars built from the stored H1 ones
        m15 = run_range(instance, resources, "2024-01-01", "2024-01-01", ["ema_crossover"],
                        backtest_config={"timeframe": "M15", "params": params})
        assert not m15.success  # finer than what is stored
        failure = [e for e in m15.all_events if e.event_type_value == "STEP_FAILURE"]
        assert "stored at H1" in str(failure[0].event_specific_data.error.message)
    fills = db.read_signals(strategy="ema_crossover", epic="EURUSD")
    assert len(fills) > 5 and (fills["timestamp"].dt.hour % 4 == 0).all()


def test_a_live_evaluation_sees_only_closed_bars_of_its_timeframe() -> None:
    from btpipeline.data.timeframes import closed_bars

    minutes = generate_candles(get_epic("EURUSD"), dt.date(2024, 1, 8), dt.date(2024, 1, 8))
    start = pd.Timestamp("2024-01-08 10:00", tz="UTC").value

    def upto(hhmm: str):
        """The 1-minute bars closed by hh:mm (those opened before it)."""
        return minutes.between(0, pd.Timestamp(f"2024-01-08 {hhmm}", tz="UTC").value)

    # At 10:59 the 10:00 hour is unfinished: the newest H1 bar is 09:00.
    assert int(closed_bars(upto("10:59"), "H1").timestamp[-1]) == start - 3600 * 10**9
    # Once the 10:59 minute has closed, the 10:00 bar is complete and evaluated.
    assert int(closed_bars(upto("11:00"), "H1").timestamp[-1]) == start
    # A clock past the hour closes it even when its last minute had no bar.
    quiet = upto("10:58")
    assert int(closed_bars(quiet, "H1", now_ns=pd.Timestamp(
        "2024-01-08 11:00:05", tz="UTC").value).timestamp[-1]) == start
