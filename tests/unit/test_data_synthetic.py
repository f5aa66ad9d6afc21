"""Synthetic candles: deterministic, month-stable, in session hours, OHLC-consistent, realistic."""

from __future__ import annotations

import datetime as dt

import numpy as np
import pytest

from btpipeline.data.candles import FIELDS, Candles
from btpipeline.data.synthetic import generate_candles
from btpipeline.data.validation import validate_candles
from btpipeline.epics import EPICS, get_epic
from btpipeline.errors import InvalidDateRangeError

EURUSD = get_epic("EURUSD")
MINUTE = 60 * 10**9


def _same(a: Candles, b: Candles) -> bool:
    return all(np.array_equal(getattr(a, f), getattr(b, f)) for f in FIELDS)


def test_the_same_seed_gives_the_same_bars_and_another_seed_other_bars() -> None:
    a = generate_candles(EURUSD, dt.date(2024, 1, 1), dt.date(2024, 1, 31), seed=7)
    b = generate_candles(EURUSD, dt.date(2024, 1, 1), dt.date(2024, 1, 31), seed=7)
    c = generate_candles(EURUSD, dt.date(2024, 1, 1), dt.date(2024, 1, 31), seed=8)
    assert _same(a, b)
    assert np.array_equal(a.timestamp, c.timestamp) and not np.array_equal(a.close, c.close)


def test_february_alone_equals_february_within_january_to_march_bit_for_bit() -> None:
    quarter = generate_candles(EURUSD, dt.date(2024, 1, 1), dt.date(2024, 3, 31))
    february = generate_candles(EURUSD, dt.date(2024, 2, 1), dt.date(2024, 2, 29))
    start = np.datetime64("2024-02-01", "ns").astype(np.int64)
    end = np.datetime64("2024-03-01", "ns").astype(np.int64)
    assert len(february) > 20_000
    assert _same(quarter.between(int(start), int(end)), february)
    mid = generate_candles(EURUSD, dt.date(2024, 2, 10), dt.date(2024, 2, 20))
    assert _same(february.between(int(mid.timestamp[0]), int(mid.timestamp[-1]) + 1), mid)


def test_bars_cover_exactly_sunday_22h_to_friday_22h_utc() -> None:
    week = generate_candles(EURUSD, dt.date(2024, 1, 7), dt.date(2024, 1, 13))  # Sun..Sat
    times = week.timestamp.astype("datetime64[ns]").astype("datetime64[m]").astype(object)
    assert times[0] == dt.datetime(2024, 1, 7, 22, 0)
    assert times[-1] == dt.datetime(2024, 1, 12, 21, 59)
    assert len(week) == 5 * 1440 and np.all(np.diff(week.timestamp) > 0)
    year = generate_candles(EURUSD, dt.date(2024, 1, 1), dt.date(2024, 12, 31))
    minutes = year.timestamp // MINUTE
    weekday = (minutes // 1440 + 3) % 7  # Monday = 0
    of_day = minutes % 1440
    assert not np.any(weekday == 5)  # Saturday
    assert not np.any((weekday == 4) & (of_day >= 22 * 60))
    assert not np.any((weekday == 6) & (of_day < 22 * 60))


@pytest.mark.parametrize("name", sorted(EPICS))
def test_ohlc_is_consistent_continuous_and_on_a_tenth_of_a_pip(name) -> None:
    epic = get_epic(name)
    candles = generate_candles(epic, dt.date(2024, 1, 1), dt.date(2024, 3, 31))
    validate_candles(candles, source="synthetic")
    assert np.array_equal(candles.open[1:], candles.close[:-1])  # across months too
    assert np.all(candles.high >= np.maximum(candles.open, candles.close))
    assert np.all(candles.low <= np.minimum(candles.open, candles.close))
    scale = round(10 / epic.pip_size)
    for prices in (candles.open, candles.high, candles.low, candles.close):
        assert np.array_equal(np.rint(prices * scale) / scale, prices)
    assert np.all(candles.volume >= 1) and np.array_equal(candles.volume, np.rint(candles.volume))


@pytest.mark.parametrize("name", sorted(EPICS))
def test_volatility_and_price_level_are_realistic_per_epic(name) -> None:
    epic = get_epic(name)
    candles = generate_candles(epic, dt.date(2023, 1, 1), dt.date(2023, 12, 31))
    returns = np.diff(np.log(candles.close))
    annual = returns.std() * np.sqrt(len(candles))
    assert 0.6 * epic.annual_volatility < annual < 1.5 * epic.annual_volatility
    assert 0.75 < candles.open[0] / epic.reference_price < 1.25
    assert 0.6 < candles.close.min() / epic.reference_price
    assert candles.close.max() / epic.reference_price < 1.6
    pips = (candles.high - candles.low) / epic.pip_size
    assert 0.3 < pips.mean() < 10  # a 1-minute bar spans a pip or a few


def test_the_london_new_york_overlap_is_busier_than_the_asian_session() -> None:
    candles = generate_candles(EURUSD, dt.date(2024, 1, 1), dt.date(2024, 6, 30))
    hour = (candles.timestamp[1:] // MINUTE % 1440) // 60
    moves = np.abs(np.diff(np.log(candles.close)))
    volume = candles.volume[1:]
    overlap, asia = (hour >= 12) & (hour < 16), (hour >= 0) & (hour < 6)
    assert moves[overlap].mean() > 1.5 * moves[asia].mean()
    assert volume[overlap].mean() > 1.5 * volume[asia].mean()


def test_an_inverted_range_is_rejected_with_the_fix() -> None:
    with pytest.raises(InvalidDateRangeError, match="Fix"):
        generate_candles(EURUSD, dt.date(2024, 2, 1), dt.date(2024, 1, 1))


def test_a_saturday_alone_has_no_bars() -> None:
    assert len(generate_candles(EURUSD, dt.date(2024, 1, 6), dt.date(2024, 1, 6))) == 0
