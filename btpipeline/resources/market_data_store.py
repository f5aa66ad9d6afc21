"""``MarketDataStore``: the Dagster resource in front of the candle store (``CandleStore``).

Assets and sensors take it as ``market_data``; its only configuration is the folder. The
``CandleStore`` it builds is cheap (a path): opened month files are cached per process by
``btpipeline.data.month_files``, so every call can build a fresh one.
"""

from __future__ import annotations

from pathlib import Path

from dagster import ConfigurableResource
from pydantic import Field

from btpipeline import settings
from btpipeline.data.candles import Candles
from btpipeline.data.store import CandleStore, WriteSummary


class MarketDataStore(ConfigurableResource):
    """1-minute candles of every epic, one Arrow file per epic per UTC month."""

    root: str = Field(
        default=str(settings.default_data_dir()),
        description="Folder of per-epic per-month Arrow files (<root>/<EPIC>/<YYYY-MM>.arrow).",
    )

    def store(self) -> CandleStore:
        return CandleStore(Path(self.root))

    def read_range(self, *, epic: str, start_ns: int, end_ns: int,
                   warmup_bars: int = 0) -> Candles:
        return self.store().read_range(epic, start_ns, end_ns, warmup_bars=warmup_bars)

    def write(self, *, epic: str, candles: Candles, source: str) -> WriteSummary:
        return self.store().write(epic, candles, source=source)

    def timeframe(self, *, epic: str) -> str | None:
        """Timeframe of ``epic``'s stored bars (M1 unless imported otherwise), None if none."""
        return self.store().timeframe(epic)

    def months(self, *, epic: str) -> list[tuple[int, int]]:
        return self.store().months(epic)

    def epics(self) -> list[str]:
        return self.store().epics()

    def coverage(self, *, epic: str) -> tuple[int, int] | None:
        return self.store().coverage(epic)
