"""``CandleStore``: candles on disk, one Arrow IPC file per epic per UTC month.

Layout: ``root/<EPIC>/<YYYY-MM>.arrow`` (see ``month_files`` for how files are read and
written), and ``root/<EPIC>/TIMEFRAME`` naming the bars' timeframe (M1 when absent: stores
written before it existed hold 1-minute bars). One epic's store holds one timeframe: writing
bars of another is refused. Every epic name goes through ``btpipeline.epics.get_epic`` so an
unknown one fails with the list of known epics.
"""

from __future__ import annotations

import datetime as dt
import re
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from btpipeline.data.candles import Candles
from btpipeline.data.importers import read_csv_candles
from btpipeline.data.month_files import merge, read_month_file, write_month_file
from btpipeline.data.synthetic import check_arguments, generate_candles
from btpipeline.data.timeframes import misaligned_row, timeframe_minutes
from btpipeline.data.timestamps import (
    iso_utc,
    month_bounds_ns,
    month_name,
    month_of_ns,
    months_between,
)
from btpipeline.data.validation import validate_candles
from btpipeline.epics import get_epic, known_epics
from btpipeline.errors import DataValidationError, InvalidDateRangeError, MissingDataError
from btpipeline.folders import make_dirs

TIMEFRAME_FILE = "TIMEFRAME"
_MONTH_FILE = re.compile(r"^(\d{4})-(\d{2})\.arrow$")
Month = tuple[int, int]


@dataclass(frozen=True)
class WriteSummary:
    """What one ``write`` stored: bars given, and bars now in each month file it wrote."""

    epic: str
    source: str
    bars: int
    months: dict[str, int] = field(default_factory=dict)

    def __str__(self) -> str:
        spans = ", ".join(f"{m}: {n} bars" for m, n in self.months.items()) or "nothing"
        return f"{self.epic}: wrote {self.bars} bars from {self.source} ({spans})"


@dataclass(frozen=True)
class StoreSummary:
    """Several writes (one per epic and month of a ``generate``)."""

    writes: tuple[WriteSummary, ...]

    @property
    def bars(self) -> int:
        return sum(w.bars for w in self.writes)

    def months(self, epic: str) -> list[str]:
        return sorted({m for w in self.writes if w.epic == epic for m in w.months})

    def __str__(self) -> str:
        epics = sorted({w.epic for w in self.writes})
        lines = [f"{e}: {sum(w.bars for w in self.writes if w.epic == e)} bars in months "
                 f"{', '.join(self.months(e))}" for e in epics]
        return "\n".join(lines) or "nothing written"


def _split_by_month(candles: Candles) -> list[tuple[Month, Candles]]:
    """Consecutive views of ``candles`` (sorted) per UTC calendar month."""
    if len(candles) == 0:
        return []
    first, last = month_of_ns(candles.timestamp[0]), month_of_ns(candles.timestamp[-1])
    parts = []
    for year, month in months_between(first, last):
        part = candles.between(*month_bounds_ns(year, month))
        if len(part):
            parts.append(((year, month), part))
    return parts


def _describe_months(months: list[Month]) -> str:
    """``2024-01..2024-03, 2024-06`` (runs of consecutive months), or ``none``."""
    runs: list[list[Month]] = []
    for m in months:
        if runs and _index(m) == _index(runs[-1][-1]) + 1:
            runs[-1].append(m)
        else:
            runs.append([m])
    text = [month_name(*r[0]) + (f"..{month_name(*r[-1])}" if len(r) > 1 else "") for r in runs]
    return ", ".join(text) or "none"


def _index(month: Month) -> int:
    return month[0] * 12 + month[1] - 1


def _day(ns: int) -> dt.date:
    return dt.date(1970, 1, 1) + dt.timedelta(days=int(ns) // (86_400 * 10**9))


class CandleStore:
    """Candles of every epic under ``root``, one Arrow IPC file per epic per UTC month."""

    def __init__(self, root: Path | str) -> None:
        self.root = Path(root)

    def path(self, epic: str, year: int, month: int) -> Path:
        """``root/<EPIC>/<YYYY-MM>.arrow`` (the file need not exist)."""
        get_epic(epic)
        return self.root / epic / f"{month_name(year, month)}.arrow"

    def months(self, epic: str) -> list[Month]:
        """(year, month) of every month file stored for ``epic``, in order."""
        get_epic(epic)
        folder = self.root / epic
        if not folder.is_dir():
            return []
        found = (_MONTH_FILE.match(p.name) for p in folder.iterdir())
        return sorted((int(m.group(1)), int(m.group(2))) for m in found if m)

    def timeframe(self, epic: str) -> str | None:
        """The timeframe of ``epic``'s stored bars; None when nothing is stored."""
        marker = self.root / get_epic(epic).name / TIMEFRAME_FILE
        if marker.is_file():
            return marker.read_text().strip()
        return "M1" if self.months(epic) else None

    def _check_timeframe(self, epic: str, candles: Candles, source: str, timeframe: str) -> None:
        timeframe_minutes(timeframe)
        row = misaligned_row(candles.timestamp, timeframe)
        if row is not None:
            raise DataValidationError(
                source, row, f"bar time {iso_utc(int(candles.timestamp[row]))} is not the open "
                f"time of a {timeframe} bar (UTC-aligned)",
                "pass the timeframe the file really has, or fix that row's time")
        stored = self.timeframe(epic)
        if stored is not None and stored != timeframe:
            raise DataValidationError(
                source, None, f"the store holds {epic} bars at {stored}, these are {timeframe}; "
                "one store keeps one timeframe per epic",
                f"import {timeframe} data into another data folder (--data-dir), or import "
                f"{stored} data here; backtests resample stored bars to longer timeframes")

    def epics(self) -> list[str]:
        """Known epics with at least one month file, sorted."""
        if not self.root.is_dir():
            return []
        known = known_epics()
        names = sorted(p.name for p in self.root.iterdir() if p.is_dir() and p.name in known)
        return [name for name in names if self.months(name)]

    def read_month(self, epic: str, year: int, month: int) -> Candles:
        """One month's candles as read-only views of the memory-mapped file."""
        path = self.path(epic, year, month)
        if not path.is_file():
            raise MissingDataError(
                f"No {epic} candles stored for {month_name(year, month)} ({path} does not "
                f"exist; months stored: {_describe_months(self.months(epic))}). Fix: "
                f"{self._fix(epic, *month_bounds_ns(year, month))}.")
        return read_month_file(path, epic, year, month)

    def coverage(self, epic: str) -> tuple[int, int] | None:
        """(first, last) bar timestamp stored for ``epic`` in epoch ns, or None if none."""
        months = self.months(epic)
        firsts = (self.read_month(epic, *m) for m in months)
        lasts = (self.read_month(epic, *m) for m in reversed(months))
        first = next((c.timestamp[0] for c in firsts if len(c)), None)
        last = next((c.timestamp[-1] for c in lasts if len(c)), None)
        return None if first is None or last is None else (int(first), int(last))

    def _fix(self, epic: str, start_ns: int, end_ns: int) -> str:
        return (f"generate synthetic candles with `btpipeline generate --epics {epic} --start "
                f"{_day(start_ns)} --end {_day(end_ns - 1)}` or import real ones with "
                f"`btpipeline import FILE --epic {epic}`")

    def read_range(self, epic: str, start_ns: int, end_ns: int, *,
                   warmup_bars: int = 0) -> Candles:
        """Bars with ``start_ns <= timestamp < end_ns`` plus up to ``warmup_bars`` bars before
        ``start_ns`` (from earlier month files as needed; fewer when the data starts later).

        A range inside one month with no warm-up from an earlier month is returned as views of
        the memory map; otherwise the pieces are copied into one array per column.
        """
        get_epic(epic)
        if end_ns <= start_ns:
            raise InvalidDateRangeError(
                f"Empty range: end {iso_utc(end_ns)} is not after start {iso_utc(start_ns)}. "
                "Fix: pass an end after the start (the end is exclusive).")
        if warmup_bars < 0:
            raise InvalidDateRangeError(f"warmup_bars is {warmup_bars}. Fix: pass 0 or more.")
        stored = self.months(epic)
        first, last = month_of_ns(start_ns), month_of_ns(end_ns - 1)
        body = [self.read_month(epic, *m).between(start_ns, end_ns)
                for m in stored if first <= m <= last]
        body = [part for part in body if len(part)]
        if not body:
            raise MissingDataError(
                f"No {epic} candles stored in [{iso_utc(start_ns)}, {iso_utc(end_ns)}) "
                f"(months stored: {_describe_months(stored)}). "
                f"Fix: {self._fix(epic, start_ns, end_ns)}.")
        earlier = [m for m in stored if m <= first]
        return Candles.concat(self._warmup(epic, earlier, start_ns, warmup_bars) + body)

    def _warmup(self, epic: str, months: list[Month], start_ns: int, count: int) -> list[Candles]:
        """The last ``count`` bars before ``start_ns``, walking back through ``months``."""
        parts: list[Candles] = []
        for month in reversed(months):
            if count <= 0:
                break
            candles = self.read_month(epic, *month)
            before = int(np.searchsorted(candles.timestamp, start_ns, side="left"))
            part = candles.take(slice(max(before - count, 0), before))
            if len(part):
                parts.insert(0, part)
                count -= len(part)
        return parts

    def write(self, epic: str, candles: Candles, *, source: str,
              timeframe: str = "M1") -> WriteSummary:
        """Validate ``candles`` (bars of ``timeframe``) and merge them into their month files.

        New bars replace stored bars with the same timestamp. Every merged month is validated
        before any file is touched, and each file is replaced atomically, so a failure leaves
        what was stored intact.
        """
        get_epic(epic)
        validate_candles(candles, source=source)
        self._check_timeframe(epic, candles, source, timeframe)
        merged: list[tuple[Path, Candles]] = []
        for (year, month), part in _split_by_month(candles):
            path = self.path(epic, year, month)
            old = self.read_month(epic, year, month) if path.is_file() else part.take(slice(0, 0))
            month_candles = merge(old, part)
            validate_candles(month_candles, source=f"{path} merged with {source}")
            merged.append((path, month_candles))
        make_dirs(self.root / epic)
        (self.root / epic / TIMEFRAME_FILE).write_text(timeframe + "\n")
        for path, month_candles in merged:
            write_month_file(path, month_candles)
        return WriteSummary(epic=epic, source=source, bars=len(candles),
                            months={p.stem: len(c) for p, c in merged})


def generate_into_store(store: CandleStore, epics: list[str], start: dt.date, end: dt.date,
                        seed: int) -> StoreSummary:
    """Write synthetic candles of ``epics`` for ``start``..``end`` (inclusive), month by month."""
    chosen = [get_epic(name) for name in epics]
    check_arguments(start, end, seed)
    writes: list[WriteSummary] = []
    for epic in chosen:
        for year, month in months_between((start.year, start.month), (end.year, end.month)):
            month_start, month_end = month_bounds_ns(year, month)
            first = max(start, _day(month_start))
            last = min(end, _day(month_end - 1))
            candles = generate_candles(epic, first, last, seed)
            if len(candles):
                writes.append(store.write(epic.name, candles, source=f"synthetic (seed {seed})"))
    return StoreSummary(tuple(writes))


def import_csv_into_store(store: CandleStore, path: Path | str, epic: str,
                          fmt: str = "auto", timeframe: str = "M1", *,
                          timestamp_column: str = "timestamp",
                          history_start: dt.date | None = None) -> WriteSummary:
    """Read a HistData or headed CSV file of ``timeframe`` bars and merge its candles into
    ``epic``'s month files (refused if the store holds that epic at another timeframe).

    With ``history_start`` (the universe file's), a file with bars before it is refused and
    nothing is stored.
    """
    get_epic(epic)
    candles = read_csv_candles(path, fmt, timestamp_column=timestamp_column)
    if history_start is not None:
        _check_history_start(candles, history_start, str(path))
    return store.write(epic, candles, source=str(path), timeframe=timeframe)


def _check_history_start(candles: Candles, history_start: dt.date, source: str) -> None:
    """Refuse bars before ``history_start``: backtest partitions never reach them."""
    start_ns = int(np.datetime64(history_start, "ns").astype(np.int64))
    early = int(np.searchsorted(candles.timestamp, start_ns, side="left"))
    if early:
        raise DataValidationError(
            source, None, f"{early} bar(s) from {iso_utc(int(candles.timestamp[0]))} are before "
            f"history_start {history_start} (universe file, key history_start); expected bars "
            f"on or after it",
            f"set `history_start: {_day(int(candles.timestamp[0])).replace(day=1)}` in the "
            "universe file (universe.yaml, or the file BTPIPELINE_UNIVERSE names), or drop the "
            "earlier rows from the file")
