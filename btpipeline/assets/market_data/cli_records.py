"""Candles written by ``btpipeline generate`` / ``btpipeline import``, recorded in Dagster.

Outside a run, Dagster does not know the store changed: the UI would show the candles' months
as never materialized and warn "Upstream data missing" on the backtests. Each month the CLI
wrote is reported as a runless materialization of ``candles/<EPIC>`` for that month's
partition, with the bars it holds; a month of a ``generate`` range that got no bars (a weekend)
is reported as an observation with ``bars: 0``, so "no data" and "never written" differ in the
UI (an observation on the partition vs. nothing at all).
"""

from __future__ import annotations

import warnings
from collections.abc import Iterable

from dagster import AssetMaterialization, AssetObservation, DagsterInstance, MetadataValue

from btpipeline.assets.keys import candles_key
from btpipeline.data.store import WriteSummary


def _partition(month: str) -> str:
    """``2024-01`` -> the monthly partition key ``2024-01-01``."""
    return f"{month[:7]}-01"


def _events(writes: Iterable[WriteSummary], empty: dict[str, list[str]],
            ) -> list[AssetMaterialization | AssetObservation]:
    events: list[AssetMaterialization | AssetObservation] = []
    for write in writes:
        for month, bars in write.months.items():
            events.append(AssetMaterialization(
                candles_key(write.epic), partition=_partition(month),
                description=f"{write.epic} {month[:7]}: {bars:,} bars from {write.source}",
                metadata={"bars": MetadataValue.int(int(bars)),
                          "month": MetadataValue.text(month[:7]),
                          "source": MetadataValue.text(write.source)}))
    for epic, months in empty.items():
        for month in months:
            events.append(AssetObservation(
                candles_key(epic), partition=_partition(month),
                description=f"{epic} {month[:7]}: no bars in the range written (no data)",
                metadata={"bars": MetadataValue.int(0), "month": MetadataValue.text(month[:7])}))
    return events


def record_candle_writes(writes: Iterable[WriteSummary],
                         empty: dict[str, list[str]] | None = None) -> int:
    """Report the writes on the instance in ``DAGSTER_HOME``; returns the events recorded.

    Best effort: the candles are stored either way, so a Dagster instance that cannot be opened
    is a warning (with the fix), not an error."""
    events = _events(writes, empty or {})
    try:
        with DagsterInstance.get() as instance:
            for event in events:
                instance.report_runless_asset_event(event)
    except Exception as error:  # any failure to reach the instance: the data is stored anyway
        warnings.warn(
            f"The candles are stored, but recording them in Dagster failed ({error}). The UI "
            "will show these months as not materialized. Fix: set DAGSTER_HOME to the "
            "instance `dagster dev` uses, or materialize candles/<EPIC> for those months.",
            stacklevel=2)
        return 0
    return len(events)
