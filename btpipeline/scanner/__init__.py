"""The live signal scanner (``btpipeline scanner``) and its latency heartbeat.

Public API (pinned by tests/unit/test_scanner_unit.py)::

    from btpipeline.scanner import (CandleFeed, ReplayFeed, ScanPlan, Scanner, ScannerConfig,
                                    ScannerStatus, read_scanner_status, default_status_path)

Names load on first use (PEP 562), so a monitor that only reads the heartbeat
(``from btpipeline.scanner import read_scanner_status``) imports neither numpy, pandas nor
Dagster; the scanner itself pulls in the strategies, the results DB and the machine layer's
isolation back-ends (never Dagster). The heartbeat lives in :mod:`btpipeline.machine.heartbeat`.
"""

from __future__ import annotations

import importlib
from typing import Any

_EXPORTS = {
    "BAR_NS": "feed", "CandleFeed": "feed", "ReplayFeed": "feed",
    "LatencySummary": "latency", "LatencyWindow": "latency",
    "Scanner": "runner", "ScannerConfig": "runner", "SignalSink": "runner",
    "ScanPlan": "scan", "Signal": "scan", "SignalTracker": "scan",
    "ScannerStatus": "btpipeline.machine.heartbeat",
    "default_status_path": "btpipeline.machine.heartbeat",
    "read_scanner_status": "btpipeline.machine.heartbeat",
    "write_status": "btpipeline.machine.heartbeat",
}

__all__ = sorted(_EXPORTS)


def __getattr__(name: str) -> Any:
    module = _EXPORTS.get(name)
    if module is None:
        raise AttributeError(f"module 'btpipeline.scanner' has no attribute {name!r}")
    qualified = module if "." in module else f"btpipeline.scanner.{module}"
    value = getattr(importlib.import_module(qualified), name)
    globals()[name] = value
    return value


def __dir__() -> list[str]:
    return sorted(set(globals()) | set(__all__))
