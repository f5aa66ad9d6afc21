"""The core split: which CPUs backtest workers may use, and which the live scanner keeps.

Execution modes decide which cores backtest workers may use:

* ``STANDALONE``: every core (no live scanner on this machine).
* ``CONCURRENT``: every core except the scanner's (``scanner_cores`` or
  ``live_scanner_cpu_reserve``).
* ``PRIORITY_LIVE``: as CONCURRENT, and at most half the machine's cores.

The reserve never takes the last core: backtests always keep at least one. The executor pins
its workers with :func:`backtest_cores` and the scanner pins itself with
:func:`scanner_reserved_cores`, from the same settings, so they never overlap.
"""

from __future__ import annotations

import enum
import math
from collections.abc import Sequence
from typing import Protocol


class ExecutionMode(enum.Enum):
    """How many cores backtests may take while a live scanner may run."""

    STANDALONE = "STANDALONE"
    CONCURRENT = "CONCURRENT"
    PRIORITY_LIVE = "PRIORITY_LIVE"

    @property
    def description(self) -> str:
        return _MODE_DESCRIPTIONS[self]

    @classmethod
    def _missing_(cls, value: object) -> ExecutionMode | None:
        """Accept any case and surrounding blanks (``priority_live``)."""
        if isinstance(value, str) and value.strip().upper() in cls.__members__:
            return cls[value.strip().upper()]
        return None


_MODE_DESCRIPTIONS = {
    ExecutionMode.STANDALONE: "Backtests may use every core.",
    ExecutionMode.CONCURRENT: "Every core except the live scanner's reserve.",
    ExecutionMode.PRIORITY_LIVE: "Every core except the reserve, and at most half the machine.",
}


class CoreSplitSettings(Protocol):
    """The settings the split reads (:class:`~btpipeline.machine.executor_settings.ExecutorSettings`
    has them all)."""

    @property
    def execution_mode(self) -> ExecutionMode: ...
    @property
    def scanner_cores(self) -> tuple[int, ...] | None: ...
    @property
    def live_scanner_cpu_reserve(self) -> float: ...
    @property
    def max_concurrent_backtests(self) -> int | None: ...


def scanner_reserved_cores(cfg: CoreSplitSettings, cores: Sequence[int]) -> tuple[int, ...]:
    """Cores kept for the live scanner (never all of them)."""
    ordered = sorted(cores)
    if cfg.scanner_cores is not None:
        reserved = [c for c in ordered if c in set(cfg.scanner_cores)]
    else:
        reserved = ordered[: math.ceil(len(ordered) * cfg.live_scanner_cpu_reserve)]
    return tuple(reserved[: max(0, len(ordered) - 1)])


def backtest_cores(cfg: CoreSplitSettings, cores: Sequence[int]) -> tuple[int, ...]:
    """Cores backtest workers may use under ``cfg.execution_mode`` (at least one)."""
    ordered = sorted(cores)
    if cfg.execution_mode is ExecutionMode.STANDALONE:
        return tuple(ordered)
    reserved = set(scanner_reserved_cores(cfg, ordered))
    free = [c for c in ordered if c not in reserved]
    if cfg.execution_mode is ExecutionMode.PRIORITY_LIVE:
        free = free[: max(1, len(ordered) // 2)]
    return tuple(free)


def worker_count(cfg: CoreSplitSettings, cores: Sequence[int]) -> int:
    """Workers per run: ``max_concurrent_backtests``, else one per backtest core."""
    return cfg.max_concurrent_backtests or len(backtest_cores(cfg, cores))
