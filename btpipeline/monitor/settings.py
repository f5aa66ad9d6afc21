"""The resource monitor's settings, as a Dagster resource (run config, env vars, UI)."""

from __future__ import annotations

import os
from pathlib import Path

from dagster import ConfigurableResource
from pydantic import Field

from btpipeline.errors import InvalidParameterError
from btpipeline.machine.tags import BACKTEST_POOL
from btpipeline.monitor.breaker import BreakerThresholds


class ResourceMonitorSettings(ConfigurableResource):
    """Thresholds of the circuit breaker and what it controls."""

    cpu_threshold: float = Field(default=0.85,
                                 description="Trip when CPU use exceeds this fraction.")
    memory_threshold: float = Field(default=0.90,
                                    description="Trip when memory use exceeds this fraction.")
    cpu_pressure_threshold: float = Field(
        default=40.0, description="Trip when /proc/pressure/cpu 'some avg10' exceeds this (%).")
    scanner_latency_budget_ms: float = Field(
        default=1000.0, description="Trip when the live scanner's p99 latency exceeds this.")
    hysteresis: float = Field(
        default=0.10, description="Reset levels are the trip levels times (1 - hysteresis).")
    cooldown_seconds: float = Field(default=30.0, description="Minimum time OPEN before HALF_OPEN.")
    probe_seconds: float = Field(default=30.0, description="Healthy time HALF_OPEN before CLOSED.")
    backtest_pool: str = Field(default=BACKTEST_POOL, description="Concurrency pool to throttle.")
    normal_pool_limit: int = Field(default=2, description="Backtest pool slots when CLOSED.")
    scanner_status_file: str | None = Field(
        default=None, description="The live scanner's status JSON; unset: the scanner's "
        "default ($BTPIPELINE_SCANNER_STATUS or <BTPIPELINE_HOME>/scanner/status.json).")

    execution_mode: str = Field(
        default_factory=lambda: os.environ.get("BTPIPELINE_EXECUTION_MODE", "CONCURRENT"),
        description="STANDALONE (no scanner: CPU never trips), CONCURRENT (the levels above) "
        "or PRIORITY_LIVE (tighter: CPU x0.8, pressure and latency budget x0.5). Default: "
        "$BTPIPELINE_EXECUTION_MODE, the executors' setting, else CONCURRENT.")

    def thresholds(self) -> BreakerThresholds:
        mode = self.execution_mode.strip().upper()
        if mode not in ("STANDALONE", "CONCURRENT", "PRIORITY_LIVE"):
            raise InvalidParameterError(
                f"resource monitor execution_mode {self.execution_mode!r} is not a mode. Fix: "
                "STANDALONE, CONCURRENT or PRIORITY_LIVE (or unset BTPIPELINE_EXECUTION_MODE).")
        return self._configured().for_mode(mode)

    def _configured(self) -> BreakerThresholds:
        return BreakerThresholds(
            cpu_threshold=self.cpu_threshold, memory_threshold=self.memory_threshold,
            cpu_pressure_threshold=self.cpu_pressure_threshold,
            scanner_latency_budget_ms=self.scanner_latency_budget_ms,
            hysteresis=self.hysteresis, cooldown_seconds=self.cooldown_seconds,
            probe_seconds=self.probe_seconds)

    def status_path(self) -> Path | None:
        return Path(self.scanner_status_file) if self.scanner_status_file else None
