"""The live signal scanner (``btpipeline scanner``) and its latency heartbeat.

Public API (pinned by tests/unit/test_scanner_unit.py)::

    from btpipeline.scanner import (CandleFeed, ReplayFeed, ScanPlan, Scanner, ScannerConfig,
                                    ScannerStatus, read_scanner_status, default_status_path)

Names load on first use (PEP 562), so a monitor that only reads the heartbeat
(``from btpipeline.scanner import read_scanner_status``) imports neither numpy, pandas nor
Dagster; the scanner itself pulls in the strategies, the results DB and the executor's
isolation back-ends.
"""

from __future__ import annotations

import importlib
from typing import Any

_EXPORTS = {
    "BAR_NS": "feed", "CandleFeed": "feed", "ReplayFeed": "feed",
    "LatencySummary": "latency", "LatencyWindow": "latency",
    "Scanner": "runner", "ScannerConfig": "runner", "SignalSink": "runner",
    "ScanPlan": "scan", "Signal": "scan", "SignalTracker": "scan",
    "ScannerStatus": "status", "default_status_path": "status",
    "read_scanner_status": "status", "write_status": "status",
}

__all__ = sorted(_EXPORTS)


def __getattr__(name: str) -> Any:
    module = _EXPORTS.get(name)
    if module is None:
        raise AttributeError(f"module 'btpipeline.scanner' has no attribute {name!r}")
    value = getattr(importlib.import_module(f"btpipeline.scanner.{module}"), name)
    globals()[name] = value
    return value


def __dir__() -> list[str]:
    return sorted(set(globals()) | set(__all__))
