"""The market-data sensor requests backtests for new or changed months; the nightly schedule
targets the month holding yesterday."""

import datetime as dt
import json
import os

from dagster import build_schedule_context, build_sensor_context

from btpipeline.assets.market_data.sensors import contiguous
from btpipeline.assets.partitions import RANGE_END_TAG, RANGE_START_TAG
from btpipeline.data.store import generate_into_store
from btpipeline.definitions import defs
from btpipeline.resources.market_data_store import MarketDataStore


def _tick(store: MarketDataStore, cursor: str | None):
    sensor = defs.get_repository_def().get_sensor_def("market_data_sensor")
    context = build_sensor_context(cursor=cursor, resources={"market_data": store},
                                   definitions=defs)
    result = sensor.evaluate_tick(context)
    return result, context.cursor


def test_new_months_request_one_run_per_epic_over_the_contiguous_range(tmp_path) -> None:
    store = MarketDataStore(root=str(tmp_path))
    generate_into_store(store.store(), ["EURUSD", "USDJPY"], dt.date(2024, 1, 1),
                        dt.date(2024, 2, 29), 7)
    result, cursor = _tick(store, None)
    requests = sorted(result.run_requests, key=lambda r: r.tags[RANGE_START_TAG])
    assert len(requests) == 2
    for request in requests:
        assert request.tags[RANGE_START_TAG] == "2024-01-01"
        assert request.tags[RANGE_END_TAG] == "2024-02-01"
        paths = {"/".join(k.path) for k in request.asset_selection}
        epic = next(p.split("/")[1] for p in paths if p.startswith("candles/"))
        assert f"backtest/macd_crossover/{epic}" in paths
        assert len(paths) == 1 + 4
    assert len(json.loads(cursor)) == 4


def test_an_unchanged_store_skips_with_a_reason(tmp_path) -> None:
    store = MarketDataStore(root=str(tmp_path))
    generate_into_store(store.store(), ["EURUSD"], dt.date(2024, 1, 1), dt.date(2024, 1, 31), 7)
    _, cursor = _tick(store, None)
    result, _ = _tick(store, cursor)
    assert not result.run_requests
    assert "No new or changed month files" in result.skip_message


def test_a_rewritten_month_triggers_again(tmp_path) -> None:
    store = MarketDataStore(root=str(tmp_path))
    generate_into_store(store.store(), ["EURUSD"], dt.date(2024, 1, 1), dt.date(2024, 2, 29), 7)
    _, cursor = _tick(store, None)
    path = store.store().path("EURUSD", 2024, 2)
    os.utime(path, ns=(path.stat().st_atime_ns, path.stat().st_mtime_ns + 1_000_000))
    result, _ = _tick(store, cursor)
    (request,) = result.run_requests
    assert (request.tags[RANGE_START_TAG], request.tags[RANGE_END_TAG]) == ("2024-02-01", "2024-02-01")


def test_contiguous_groups_consecutive_months_across_a_year_end() -> None:
    months = ["2023-11", "2023-12", "2024-01", "2024-03"]
    assert list(contiguous(months)) == [("2023-11", "2024-01"), ("2024-03", "2024-03")]


def test_nightly_schedule_targets_the_month_of_yesterday() -> None:
    repo = defs.get_repository_def()
    schedule = repo.get_schedule_def("nightly_backtest")
    first_of_march = dt.datetime(2024, 3, 1, 1, 15, tzinfo=dt.timezone.utc)
    request = schedule.evaluate_tick(
        build_schedule_context(scheduled_execution_time=first_of_march, repository_def=repo)).run_requests[0]
    assert request.partition_key == "2024-02-01"
    mid_march = dt.datetime(2024, 3, 15, 1, 15, tzinfo=dt.timezone.utc)
    request = schedule.evaluate_tick(
        build_schedule_context(scheduled_execution_time=mid_march, repository_def=repo)).run_requests[0]
    assert request.partition_key == "2024-03-01"
