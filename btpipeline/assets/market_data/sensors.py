"""A sensor that backtests new market data: a month file that appears or changes in the store
requests a run of that epic's candles and backtests over the contiguous months that changed.

The cursor maps ``EPIC/YYYY-MM`` to the file's modification time, so a re-import of a month
triggers again and an untouched month never does.
"""

import datetime as dt
import json
from collections.abc import Iterator

from dagster import (
    DefaultSensorStatus,
    RunRequest,
    SensorDefinition,
    SensorEvaluationContext,
    SkipReason,
    sensor,
)

from btpipeline.assets.keys import backtest_key, candles_key
from btpipeline.assets.selections import AssetJob
from btpipeline.machine.naming import month_key
from btpipeline.machine.tags import RANGE_END_TAG, RANGE_START_TAG
from btpipeline.resources.market_data_store import MarketDataStore


def changed_months(store: MarketDataStore, seen: dict[str, int]) -> dict[str, list[str]]:
    """``{epic: [YYYY-MM, ...]}`` of month files new or modified since ``seen``; updates it."""
    changed: dict[str, list[str]] = {}
    for epic in store.epics():
        for year, month in store.months(epic=epic):
            name = f"{year:04d}-{month:02d}"
            mtime = store.store().path(epic, year, month).stat().st_mtime_ns
            if seen.get(f"{epic}/{name}") != mtime:
                seen[f"{epic}/{name}"] = mtime
                changed.setdefault(epic, []).append(name)
    return changed


def contiguous(months: list[str]) -> Iterator[tuple[str, str]]:
    """Group sorted ``YYYY-MM`` strings into (first, last) runs of consecutive months."""
    def index(m: str) -> int:
        return int(m[:4]) * 12 + int(m[5:7]) - 1

    ordered = sorted(months)
    start = prev = ordered[0]
    for month in ordered[1:]:
        if index(month) != index(prev) + 1:
            yield start, prev
            start = month
        prev = month
    yield start, prev


def _requests(changed: dict[str, list[str]], grid: list[tuple[str, str]],
              first_month: str) -> Iterator[RunRequest]:
    """A run per contiguous range of changed months of each instrument the grid uses, from
    ``first_month`` (``YYYY-MM``, the partitions' first) on."""
    for epic, all_months in sorted(changed.items()):
        variants = [v for v, instrument in grid if instrument == epic]
        months = [m for m in all_months if m >= first_month]
        if not variants or not months:
            continue  # an instrument no variant uses, or months before the partitions
        keys = [candles_key(epic)] + [backtest_key(v, epic) for v in variants]
        for first, last in contiguous(months):
            yield RunRequest(
                run_key=f"{epic}:{first}..{last}:{hash(tuple(months)) & 0xFFFFFFFF:x}",
                asset_selection=keys,
                tags={RANGE_START_TAG: month_key(first), RANGE_END_TAG: month_key(last)},
            )


def make_market_data_sensor(job: AssetJob, grid: list[tuple[str, str]],
                            history_start: dt.date) -> SensorDefinition:
    """``grid``: the universe's (variant, instrument) pairs; ``history_start``: its first
    partition (months before it are not requested)."""
    first_month = month_key(history_start)[:7]

    @sensor(name="market_data_sensor", job=job, minimum_interval_seconds=30,
            default_status=DefaultSensorStatus.STOPPED,
            description="Backtests every variant on months of candles that are new or changed.")
    def market_data_sensor(context: SensorEvaluationContext, market_data: MarketDataStore):
        seen: dict[str, int] = json.loads(context.cursor) if context.cursor else {}
        changed = changed_months(market_data, seen)
        if not changed:
            yield SkipReason(f"No new or changed month files under {market_data.root}.")
            return
        yield from _requests(changed, grid, first_month)
        context.update_cursor(json.dumps(seen, sort_keys=True))

    return market_data_sensor
