"""CandleStore: per-month Arrow files, memory-mapped reads, merges, warm-up, clear failures."""

from __future__ import annotations

import datetime as dt
from pathlib import Path

import numpy as np
import pyarrow as pa
import pytest

from btpipeline.data import month_files
from btpipeline.data.candles import FIELDS, Candles
from btpipeline.data.store import CandleStore, generate_into_store, import_csv_into_store
from btpipeline.data.synthetic import generate_candles
from btpipeline.epics import get_epic
from btpipeline.errors import (
    CorruptDataFileError,
    DataValidationError,
    MissingDataError,
    UnknownEpicError,
)

EURUSD = get_epic("EURUSD")


def _ns(day: str) -> int:
    return int(np.datetime64(day, "ns").astype(np.int64))


def _same(a: Candles, b: Candles) -> bool:
    return all(np.array_equal(getattr(a, f), getattr(b, f)) for f in FIELDS)


def _bars(start: str, count: int, price: float = 1.1) -> Candles:
    ts = _ns(start) + 60 * 10**9 * np.arange(count, dtype=np.int64)
    p = np.full(count, price)
    return Candles(ts, p, p + 0.001, p - 0.001, p, np.ones(count))


@pytest.fixture
def store(tmp_path) -> CandleStore:
    store = CandleStore(tmp_path / "data")
    generate_into_store(store, ["EURUSD"], dt.date(2024, 1, 1), dt.date(2024, 2, 29), 7)
    return store


def test_write_then_read_round_trips(store) -> None:
    expected = generate_candles(EURUSD, dt.date(2024, 1, 1), dt.date(2024, 2, 29))
    assert store.months("EURUSD") == [(2024, 1), (2024, 2)]
    assert store.epics() == ["EURUSD"]
    assert store.path("EURUSD", 2024, 1) == store.root / "EURUSD" / "2024-01.arrow"
    january = store.read_month("EURUSD", 2024, 1)
    assert _same(january, expected.between(_ns("2024-01-01"), _ns("2024-02-01")))
    assert _same(store.read_range("EURUSD", _ns("2024-01-01"), _ns("2024-03-01")), expected)
    assert store.coverage("EURUSD") == (int(expected.timestamp[0]), int(expected.timestamp[-1]))
    assert store.coverage("GBPUSD") is None


def test_a_month_file_is_an_uncompressed_arrow_ipc_file(store) -> None:
    with pa.ipc.open_file(store.path("EURUSD", 2024, 1)) as reader:
        assert reader.schema.field("timestamp").type == pa.timestamp("ns", tz="UTC")
        assert reader.num_record_batches == 1
        assert reader.read_all().num_rows == len(store.read_month("EURUSD", 2024, 1))


def test_read_month_returns_views_of_the_memory_map_not_copies(store) -> None:
    path = store.path("EURUSD", 2024, 2)
    month_files.forget(path)
    before = pa.total_allocated_bytes()
    candles = store.read_month("EURUSD", 2024, 2)
    data_bytes = len(candles) * 8 * len(FIELDS)
    assert data_bytes > 1_000_000
    assert pa.total_allocated_bytes() - before < data_bytes // 10
    for name in FIELDS:
        array = getattr(candles, name)
        assert not array.flags.owndata and not array.flags.writeable
    assert candles.timestamp.dtype == np.int64
    # A second read reuses the cached map: the very same arrays.
    assert store.read_month("EURUSD", 2024, 2).close is candles.close


def test_a_rewritten_file_is_reopened_not_served_from_the_cache(store) -> None:
    first = store.read_month("EURUSD", 2024, 1)
    store.write("EURUSD", _bars("2024-01-31T23:59", 1, price=1.2345), source="patch")
    again = store.read_month("EURUSD", 2024, 1)
    assert again.close[-1] == 1.2345 and first.close[-1] != 1.2345


def test_rewriting_merges_and_new_bars_replace_same_timestamps(tmp_path) -> None:
    store = CandleStore(tmp_path)
    store.write("GBPUSD", _bars("2024-03-04T10:00", 10, price=1.2), source="old")
    summary = store.write("GBPUSD", _bars("2024-03-04T10:05", 10, price=1.3), source="new")
    merged = store.read_month("GBPUSD", 2024, 3)
    assert len(merged) == 15 and summary.months == {"2024-03": 15} and summary.bars == 10
    assert merged.close.tolist() == [1.2] * 5 + [1.3] * 10
    assert np.array_equal(merged.timestamp, _bars("2024-03-04T10:00", 15).timestamp)


def test_a_write_spanning_months_splits_at_utc_month_ends(tmp_path) -> None:
    store = CandleStore(tmp_path)
    summary = store.write("EURUSD", _bars("2024-01-31T23:58", 4), source="x")
    assert summary.months == {"2024-01": 2, "2024-02": 2}
    assert store.months("EURUSD") == [(2024, 1), (2024, 2)]


def test_read_range_warm_up_walks_back_across_the_month_boundary(store) -> None:
    everything = store.read_range("EURUSD", _ns("2024-01-01"), _ns("2024-03-01"))
    start = _ns("2024-02-01")
    candles = store.read_range("EURUSD", start, _ns("2024-02-02"), warmup_bars=100)
    first_feb = int(np.searchsorted(everything.timestamp, start))
    assert _same(candles, everything.take(slice(first_feb - 100, first_feb + 1440)))
    assert candles.timestamp[99] < start <= candles.timestamp[100]


def test_warm_up_is_shorter_when_the_data_starts_later(store) -> None:
    candles = store.read_range("EURUSD", _ns("2024-01-02"), _ns("2024-01-03"), warmup_bars=10**6)
    assert candles.timestamp[0] == store.coverage("EURUSD")[0]


def test_a_range_without_bars_raises_missing_data_with_the_fix(store) -> None:
    with pytest.raises(MissingDataError) as info:
        store.read_range("EURUSD", _ns("2024-05-01"), _ns("2024-06-01"), warmup_bars=50)
    message = str(info.value)
    assert "EURUSD" in message and "2024-05-01T00:00:00Z" in message
    assert "2024-01..2024-02" in message  # the months found
    assert "btpipeline generate --epics EURUSD --start 2024-05-01 --end 2024-05-31" in message
    assert "btpipeline import FILE --epic EURUSD" in message
    assert isinstance(info.value, FileNotFoundError)
    with pytest.raises(MissingDataError):
        store.read_month("EURUSD", 2024, 5)


def test_an_unknown_epic_lists_the_known_ones(store) -> None:
    with pytest.raises(UnknownEpicError, match="EURUSD"):
        store.read_range("EURXXX", _ns("2024-01-01"), _ns("2024-02-01"))
    with pytest.raises(UnknownEpicError):
        store.months("EURXXX")


def _corrupt(store: CandleStore, payload: bytes | pa.Table) -> Path:
    path = store.path("EURUSD", 2024, 3)
    path.parent.mkdir(parents=True, exist_ok=True)
    if isinstance(payload, bytes):
        path.write_bytes(payload)
    else:
        with pa.ipc.new_file(str(path), payload.schema) as writer:
            writer.write_table(payload)
    return path


@pytest.mark.parametrize("payload", [
    b"this is not arrow at all" * 100,
    b"",
    pa.table({"time": pa.array([1, 2], pa.int64()), "price": pa.array([1.0, 1.1])}),
    pa.table({"timestamp": pa.array([1, 2], pa.int64()), "open": [1.0, 1.1], "high": [1.0, 1.1],
              "low": [1.0, 1.1], "close": [1.0, 1.1], "volume": [1.0, 1.0]}),
], ids=["garbage", "empty", "wrong-columns", "int-timestamps"])
def test_a_corrupt_file_raises_naming_the_path_and_the_fix(store, payload) -> None:
    path = _corrupt(store, payload)
    with pytest.raises(CorruptDataFileError) as info:
        store.read_month("EURUSD", 2024, 3)
    message = str(info.value)
    assert str(path) in message
    assert f"delete {path}" in message and "btpipeline generate --epics EURUSD" in message
    with pytest.raises(CorruptDataFileError):  # read_range surfaces it too
        store.read_range("EURUSD", _ns("2024-03-01"), _ns("2024-04-01"))


def test_a_failed_write_leaves_the_stored_file_byte_identical(store) -> None:
    path = store.path("EURUSD", 2024, 1)
    before = path.read_bytes()
    bad = _bars("2024-01-10T10:00", 5)
    high = bad.high.copy()
    high[3] = bad.open[3] - 0.01
    with pytest.raises(DataValidationError) as info:
        store.write("EURUSD", Candles(bad.timestamp, bad.open, high, bad.low, bad.close,
                                      bad.volume), source="bad batch")
    assert "bad batch, row 3" in str(info.value)
    assert path.read_bytes() == before
    # TIMEFRAME: the store records the epic's bar timeframe beside the month files.
    assert sorted(p.name for p in path.parent.iterdir()) == ["2024-01.arrow", "2024-02.arrow",
                                                             "TIMEFRAME"]


def test_a_write_failing_mid_way_keeps_every_month_and_leaves_no_temp_file(store, monkeypatch):
    paths = [store.path("EURUSD", 2024, m) for m in (1, 2)]
    before = [p.read_bytes() for p in paths]

    def broken_replace(src: str, dst: str) -> None:
        raise OSError("disk full")

    monkeypatch.setattr(month_files.os, "replace", broken_replace)
    with pytest.raises(OSError, match="disk full"):
        store.write("EURUSD", _bars("2024-01-31T23:58", 4, price=1.5), source="x")
    assert [p.read_bytes() for p in paths] == before
    assert sorted(p.name for p in paths[0].parent.iterdir()) == ["2024-01.arrow", "2024-02.arrow",
                                                                 "TIMEFRAME"]


def test_import_csv_into_store_round_trips(tmp_path) -> None:
    csv = tmp_path / "eurusd.csv"
    csv.write_text("20240102 170000;1.10435;1.1044;1.1043;1.10438;0\n"
                   "20240102 170100;1.10438;1.1045;1.10437;1.10445;0\n")
    store = CandleStore(tmp_path / "data")
    summary = import_csv_into_store(store, csv, "EURUSD")
    assert summary.months == {"2024-01": 2} and str(csv) in str(summary)
    stored = store.read_range("EURUSD", _ns("2024-01-02T22:00"), _ns("2024-01-02T22:02"))
    assert stored.close.tolist() == [1.10438, 1.10445]


def test_generate_into_store_summary_and_month_files(tmp_path) -> None:
    store = CandleStore(tmp_path)
    summary = generate_into_store(store, ["EURUSD", "USDJPY"], dt.date(2024, 1, 15),
                                  dt.date(2024, 2, 10), seed=3)
    assert store.epics() == ["EURUSD", "USDJPY"]
    assert summary.months("USDJPY") == ["2024-01", "2024-02"]
    expected = generate_candles(get_epic("USDJPY"), dt.date(2024, 1, 15), dt.date(2024, 2, 10), 3)
    assert summary.bars == 2 * len(expected)
    assert _same(store.read_range("USDJPY", _ns("2024-01-01"), _ns("2024-03-01")), expected)
    assert "USDJPY" in str(summary)
