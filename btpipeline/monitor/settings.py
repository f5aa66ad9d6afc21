"""The resource monitor's settings, as a Dagster resource (run config, env vars, UI).

The level settings keep their documented names; their meaning and bounds are declared once,
in :class:`~btpipeline.machine.protection.ProtectionLevels`, and checked when the levels are
built (:meth:`ResourceMonitorSettings.levels`).
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

from dagster import ConfigurableResource
from pydantic import Field

from btpipeline.machine.protection import ProtectionLevels, levels_for_mode, make_levels
from btpipeline.machine.tags import BACKTEST_POOL

#: setting name -> ProtectionLevels field
LEVEL_SETTINGS = {
    "cpu_threshold": "cpu_fraction",
    "memory_threshold": "memory_fraction",
    "cpu_pressure_threshold": "cpu_pressure_pct",
    "scanner_latency_budget_ms": "scanner_latency_budget_ms",
    "hysteresis": "hysteresis",
    "cooldown_seconds": "min_open_seconds",
    "probe_seconds": "probe_seconds",
}


def _level(setting: str, default: float) -> Any:
    """A setting whose description is the level's own."""
    return Field(default=default,
                 description=ProtectionLevels.model_fields[LEVEL_SETTINGS[setting]].description)


class ResourceMonitorSettings(ConfigurableResource):
    """Levels of the circuit breaker and what it controls."""

    cpu_threshold: float = _level("cpu_threshold", 0.85)
    memory_threshold: float = _level("memory_threshold", 0.90)
    cpu_pressure_threshold: float = _level("cpu_pressure_threshold", 40.0)
    scanner_latency_budget_ms: float = Field(
        default=1000.0, description="Trip when the live scanner's p99 latency exceeds this (ms).")
    hysteresis: float = _level("hysteresis", 0.10)
    cooldown_seconds: float = _level("cooldown_seconds", 30.0)
    probe_seconds: float = _level("probe_seconds", 30.0)
    backtest_pool: str = Field(default=BACKTEST_POOL, description="Concurrency pool to throttle.")
    normal_pool_limit: int = Field(default=2, description="Backtest pool slots when CLOSED.")
    scanner_status_file: str | None = Field(
        default=None, description="The live scanner's status JSON; unset: the scanner's "
        "default ($BTPIPELINE_SCANNER_STATUS or <BTPIPELINE_HOME>/scanner/status.json).")

    execution_mode: str = Field(
        default_factory=lambda: os.environ.get("BTPIPELINE_EXECUTION_MODE", "CONCURRENT"),
        description="STANDALONE (no scanner: CPU never trips), CONCURRENT (the levels above) "
        "or PRIORITY_LIVE (tighter: CPU x0.8, memory at most 0.80, pressure and latency budget "
        "x0.5). Default: $BTPIPELINE_EXECUTION_MODE, the executors' setting, else CONCURRENT.")

    def levels(self) -> ProtectionLevels:
        """The breaker's levels under ``execution_mode``. The breaker resumes on the first
        healthy sample after ``cooldown_seconds`` (no extra hold)."""
        values = {field: getattr(self, setting) for setting, field in LEVEL_SETTINGS.items()}
        configured = make_levels(
            "resource monitor settings", {f: s for s, f in LEVEL_SETTINGS.items()},
            resume_hold_seconds=0.0, **values)
        return levels_for_mode(configured, self.execution_mode)

    def status_path(self) -> Path | None:
        return Path(self.scanner_status_file) if self.scanner_status_file else None
