"""The scanner's heartbeat: a small JSON file rewritten atomically after every tick.

Default path ``<BTPIPELINE_HOME>/scanner/status.json`` (``BTPIPELINE_SCANNER_STATUS``
overrides it). Readers (the resource monitor, the executor, ``btpipeline status``) call
:func:`read_scanner_status`, which costs one small file read (tens of microseconds) and never
sees a half-written file (the writer replaces it with ``os.replace``).

A heartbeat older than ``stale_after_cadences`` cadences (default 3, at least
``MIN_STALE_SECONDS``) is *stale*: the scanner died, hung, or is starved of CPU.
"""

from __future__ import annotations

import dataclasses
import json
import os
import time
from pathlib import Path
from typing import Any, Literal

from btpipeline import settings
from btpipeline.folders import make_dirs

SCHEMA_VERSION = 1
STALE_AFTER_CADENCES = 3.0
MIN_STALE_SECONDS = 1.0
ScannerState = Literal["running", "stale", "stopped"]


def default_status_path() -> Path:
    """``$BTPIPELINE_SCANNER_STATUS``, else ``<BTPIPELINE_HOME>/scanner/status.json``."""
    return settings.default_scanner_status()


@dataclasses.dataclass(frozen=True)
class ScannerStatus:
    """One heartbeat. Times are ISO-8601 UTC strings plus ``heartbeat_unix`` (epoch seconds of
    the write); latencies are milliseconds from a tick's scheduled time to its work done."""

    pid: int
    started_at: str
    heartbeat_unix: float
    cadence_seconds: float
    budget_ms: float
    epics: list[str]
    strategies: list[str]
    isolation: dict[str, Any]
    feed: str
    last_tick_at: str | None = None
    feed_time: str | None = None
    ticks: int = 0
    last_latency_ms: float | None = None
    last_scan_ms: float | None = None
    last_write_ms: float | None = None
    p50_ms: float | None = None
    p99_ms: float | None = None
    max_ms: float | None = None
    window: int = 0
    missed_deadlines: int = 0
    skipped_ticks: int = 0
    signals_written: int = 0
    errors: int = 0
    last_error: str | None = None
    stopped: bool = False
    version: int = SCHEMA_VERSION
    # Set by the reader, not stored:
    age_seconds: float = dataclasses.field(default=0.0, compare=False)
    stale: bool = dataclasses.field(default=False, compare=False)

    @property
    def state(self) -> ScannerState:
        return "stopped" if self.stopped else "stale" if self.stale else "running"

    def to_json(self) -> str:
        data = dataclasses.asdict(self)
        data.pop("age_seconds")
        data.pop("stale")
        return json.dumps(data, separators=(",", ":"))


_STORED = {f.name for f in dataclasses.fields(ScannerStatus)} - {"age_seconds", "stale"}


def write_status(path: Path | str, status: ScannerStatus) -> None:
    """Replace ``path`` with ``status`` atomically (same-folder temp file + ``os.replace``)."""
    path = Path(path)
    temp = path.with_name(f".{path.name}.{os.getpid()}.tmp")  # one writer per pid: no clash
    try:
        handle = os.open(temp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o644)
    except FileNotFoundError:
        make_dirs(path.parent)
        handle = os.open(temp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o644)
    try:
        with os.fdopen(handle, "w") as out:
            out.write(status.to_json())
        os.replace(temp, path)
    except BaseException:
        temp.unlink(missing_ok=True)
        raise


def read_scanner_status(path: Path | str | None = None, *, now: float | None = None,
                        stale_after_cadences: float = STALE_AFTER_CADENCES
                        ) -> ScannerStatus | None:
    """The latest heartbeat with ``age_seconds`` and ``stale`` filled in, or None when there is
    no readable heartbeat (no scanner has run with this path, or the file is not one)."""
    path = default_status_path() if path is None else Path(path)
    try:
        data = json.loads(path.read_bytes())
    except (OSError, ValueError):
        return None
    if not isinstance(data, dict) or data.get("version") != SCHEMA_VERSION:
        return None
    try:
        status = ScannerStatus(**{k: v for k, v in data.items() if k in _STORED})
    except TypeError:
        return None
    age = (time.time() if now is None else now) - status.heartbeat_unix
    limit = max(stale_after_cadences * status.cadence_seconds, MIN_STALE_SECONDS)
    return dataclasses.replace(status, age_seconds=age,
                               stale=not status.stopped and age > limit)
