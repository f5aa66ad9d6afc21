"""The MarketDataStore resource delegates to a CandleStore on its root."""

from __future__ import annotations

import datetime as dt

import numpy as np

from btpipeline import settings
from btpipeline.data.candles import FIELDS
from btpipeline.data.store import CandleStore, generate_into_store
from btpipeline.data.synthetic import generate_candles
from btpipeline.epics import get_epic
from btpipeline.resources.market_data_store import MarketDataStore

JAN = int(np.datetime64("2024-01-01", "ns").astype(np.int64))
FEB = int(np.datetime64("2024-02-01", "ns").astype(np.int64))
MAR = int(np.datetime64("2024-03-01", "ns").astype(np.int64))


def test_the_resource_used_directly_matches_the_candle_store(tmp_path) -> None:
    resource = MarketDataStore(root=str(tmp_path))
    store = CandleStore(tmp_path)
    generate_into_store(resource.store(), ["EURUSD"], dt.date(2024, 1, 1), dt.date(2024, 2, 29), 7)
    assert isinstance(resource.store(), CandleStore) and resource.store().root == tmp_path
    got = resource.read_range(epic="EURUSD", start_ns=FEB, end_ns=MAR, warmup_bars=30)
    want = store.read_range("EURUSD", FEB, MAR, warmup_bars=30)
    assert all(np.array_equal(getattr(got, f), getattr(want, f)) for f in FIELDS)
    assert resource.months(epic="EURUSD") == store.months("EURUSD") == [(2024, 1), (2024, 2)]
    assert resource.epics() == store.epics() == ["EURUSD"]
    assert resource.coverage(epic="EURUSD") == store.coverage("EURUSD")


def test_the_resource_writes_through_to_the_store(tmp_path) -> None:
    resource = MarketDataStore(root=str(tmp_path))
    candles = generate_candles(get_epic("GBPUSD"), dt.date(2024, 1, 1), dt.date(2024, 1, 7))
    summary = resource.write(epic="GBPUSD", candles=candles, source="test")
    assert summary.months == {"2024-01": len(candles)}
    stored = CandleStore(tmp_path).read_range("GBPUSD", JAN, FEB)
    assert np.array_equal(stored.close, candles.close)


def test_the_default_root_is_the_project_data_folder() -> None:
    assert MarketDataStore().root == str(settings.default_data_dir())
