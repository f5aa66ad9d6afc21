"""Typed executor settings: the run config turned into a frozen :class:`ExecutionConfig`.

Precedence: a ``BTPIPELINE_<FIELD>`` environment variable (e.g.
``BTPIPELINE_MAX_CONCURRENT_BACKTESTS=1``) overrides the run config, which overrides the
defaults below. The environment wins so an operator can throttle backtests on one machine
without touching job definitions.

Execution modes decide which cores backtest workers may use:

* ``STANDALONE``: every core (no live scanner on this machine).
* ``CONCURRENT``: every core except the scanner's (``scanner_cores`` or
  ``live_scanner_cpu_reserve``).
* ``PRIORITY_LIVE``: as CONCURRENT, and at most half the machine's cores.

The reserve never takes the last core: backtests always keep at least one.
"""

from __future__ import annotations

import dataclasses
import enum
import math
import os
from collections.abc import Mapping, Sequence
from typing import Any

from btpipeline.executors.errors import ExecutorConfigError
from btpipeline.executors.tags import BACKTEST_POOL

ENV_PREFIX = "BTPIPELINE_"
_PRIORITY_NAMES = ("CRITICAL", "HIGH", "NORMAL", "LOW", "BULK")

DEFAULT_PRELOAD: tuple[str, ...] = (
    "dagster",
    "dagster._core.storage.sqlite_storage",
    "dagster._core.execution.api",
    "dagster._core.execution.plan.execute_plan",
    "sqlalchemy",
    "numpy",
    "pandas",
    "pyarrow",
    "psutil",
    "btpipeline.executors.worker",
)

PRELOAD_ENV = "BTPIPELINE_FORKSERVER_PRELOAD"


def forkserver_preload(environ: Mapping[str, str] | None = None) -> tuple[str, ...]:
    """Modules the executor's forkserver imports once, so workers start warm.

    A deployment setting, not run config: whoever may launch a run must not choose modules
    to import into the run process. ``BTPIPELINE_FORKSERVER_PRELOAD`` (comma-separated, set in
    the environment of the code server / run processes) replaces the default list."""
    raw = (os.environ if environ is None else environ).get(PRELOAD_ENV)
    if raw is None:
        return DEFAULT_PRELOAD
    return tuple(part.strip() for part in raw.split(",") if part.strip())


class ExecutionMode(enum.Enum):
    STANDALONE = "STANDALONE"
    CONCURRENT = "CONCURRENT"
    PRIORITY_LIVE = "PRIORITY_LIVE"


@dataclasses.dataclass(frozen=True)
class ExecutionConfig:
    """Every backtest_executor setting, typed. See ``schema.py`` for each field's meaning."""

    max_concurrent_backtests: int | None = None
    live_scanner_cpu_reserve: float = 0.25
    scanner_cores: tuple[int, ...] | None = None
    worker_affinity_enabled: bool = True
    worker_priority_enabled: bool = True
    backtest_worker_memory_limit_mb: int = 4096
    worker_recycle_rss_mb: int | None = None
    worker_rlimit_as_mb: int = 0
    max_steps_per_worker: int = 1000
    max_steps_per_batch: int = 8
    max_batch_seconds: float = 0.25
    execution_mode: ExecutionMode = ExecutionMode.CONCURRENT
    retries: str = "enabled"
    backtest_pool: str = BACKTEST_POOL
    sync_pool_limit: bool = True
    default_step_timeout_seconds: float | None = None
    worker_shutdown_grace_seconds: float = 5.0
    memory_poll_interval_seconds: float = 0.1
    record_step_timings: bool = True
    event_batch_size: int = 64
    load_shedding_enabled: bool = True
    shed_max_priority: str = "NORMAL"
    shed_interval_seconds: float = 0.05
    shed_cpu_window_seconds: float = 0.2
    shed_cpu_threshold: float = 0.85
    shed_memory_threshold: float = 0.90
    shed_scanner_run_delay_threshold: float = 0.25
    shed_scanner_latency_budget_ms: float | None = None
    shed_hysteresis: float = 0.10
    shed_resume_hold_seconds: float = 1.0
    follow_breaker: bool = True
    preemption_enabled: bool = True
    queue_check_interval_seconds: float = 1.0
    scanner_status_file: str | None = None

    def __post_init__(self) -> None:
        _validate(self)

    @property
    def recycle_rss_mb(self) -> int | None:
        """RSS after a step above which a worker is retired (default 80 % of the limit)."""
        if self.worker_recycle_rss_mb is not None:
            return self.worker_recycle_rss_mb or None
        return int(self.backtest_worker_memory_limit_mb * 0.8) or None

    @classmethod
    def from_executor_config(
        cls, config: Mapping[str, Any], environ: Mapping[str, str] | None = None
    ) -> ExecutionConfig:
        """Build from the executor's run config, then apply ``BTPIPELINE_*`` overrides."""
        values = {f.name: config[f.name] for f in dataclasses.fields(cls) if f.name in config}
        if isinstance(values.get("retries"), Mapping):
            values["retries"] = next(iter(values["retries"]))
        values.update(env_overrides(os.environ if environ is None else environ))
        return cls(**_coerce(values))


def _coerce(values: dict[str, Any]) -> dict[str, Any]:
    out = dict(values)
    if "execution_mode" in out and not isinstance(out["execution_mode"], ExecutionMode):
        raw = str(out["execution_mode"]).upper()
        try:
            out["execution_mode"] = ExecutionMode(raw)
        except ValueError:
            raise ExecutorConfigError(
                "execution_mode", f"one of {[m.value for m in ExecutionMode]}", raw,
                "use STANDALONE, CONCURRENT or PRIORITY_LIVE.",
            ) from None
    for name in ("scanner_cores",):
        if out.get(name) is not None:
            out[name] = tuple(out[name])
    return out


def env_overrides(environ: Mapping[str, str]) -> dict[str, Any]:
    """Field values from ``BTPIPELINE_<FIELD>`` variables, parsed by the field's type."""
    found: dict[str, Any] = {}
    for field in dataclasses.fields(ExecutionConfig):
        raw = environ.get(ENV_PREFIX + field.name.upper())
        if raw is not None:
            found[field.name] = _parse_env(field.name, str(field.type), raw.strip())
    return found


def _parse_env(name: str, type_name: str, raw: str) -> Any:
    var = ENV_PREFIX + name.upper()
    try:
        if raw.lower() in ("", "none") and "None" in type_name:
            return None
        if type_name.startswith("bool"):
            if raw.lower() not in ("1", "0", "true", "false", "yes", "no"):
                raise ValueError(raw)
            return raw.lower() in ("1", "true", "yes")
        if type_name.startswith("int"):
            return int(raw)
        if type_name.startswith("float"):
            return float(raw)
        if type_name.startswith("tuple[int"):
            return tuple(int(part) for part in raw.split(",") if part.strip())
        if type_name.startswith("tuple[str"):
            return tuple(part.strip() for part in raw.split(",") if part.strip())
        return raw
    except ValueError:
        raise ExecutorConfigError(
            var, f"a value of type {type_name}", raw, f"set {var} to a valid value or unset it."
        ) from None


def _validate(cfg: ExecutionConfig) -> None:
    checks = [
        ("max_concurrent_backtests", cfg.max_concurrent_backtests is None
         or cfg.max_concurrent_backtests >= 1, "an integer >= 1 (or null for the core count)"),
        ("live_scanner_cpu_reserve", 0.0 <= cfg.live_scanner_cpu_reserve < 1.0,
         "a fraction in [0, 1)"),
        ("backtest_worker_memory_limit_mb", cfg.backtest_worker_memory_limit_mb >= 0,
         "MiB >= 0 (0 disables the limit)"),
        ("max_steps_per_worker", cfg.max_steps_per_worker >= 1, "an integer >= 1"),
        ("max_steps_per_batch", cfg.max_steps_per_batch >= 1, "an integer >= 1"),
        ("max_batch_seconds", cfg.max_batch_seconds > 0, "seconds > 0"),
        ("event_batch_size", cfg.event_batch_size >= 0, "an integer >= 0 (0: no batching)"),
        ("retries", cfg.retries in ("enabled", "disabled"), "enabled or disabled"),
        ("memory_poll_interval_seconds", cfg.memory_poll_interval_seconds > 0, "seconds > 0"),
        ("default_step_timeout_seconds", cfg.default_step_timeout_seconds is None
         or cfg.default_step_timeout_seconds > 0, "seconds > 0 (or null)"),
        ("shed_max_priority", cfg.shed_max_priority in _PRIORITY_NAMES,
         f"one of {list(_PRIORITY_NAMES)}"),
        ("shed_interval_seconds", 0 < cfg.shed_interval_seconds <= 1.0, "seconds in (0, 1]"),
        ("shed_cpu_window_seconds", cfg.shed_cpu_window_seconds >= cfg.shed_interval_seconds,
         "seconds >= shed_interval_seconds"),
        ("shed_cpu_threshold", 0 < cfg.shed_cpu_threshold <= 1.0, "a fraction in (0, 1]"),
        ("shed_memory_threshold", 0 < cfg.shed_memory_threshold <= 1.0, "a fraction in (0, 1]"),
        ("shed_scanner_run_delay_threshold", 0 < cfg.shed_scanner_run_delay_threshold <= 1.0,
         "a fraction in (0, 1]"),
        ("shed_scanner_latency_budget_ms", cfg.shed_scanner_latency_budget_ms is None
         or cfg.shed_scanner_latency_budget_ms > 0, "milliseconds > 0 (or null)"),
        ("shed_hysteresis", 0 <= cfg.shed_hysteresis < 1.0, "a fraction in [0, 1)"),
        ("shed_resume_hold_seconds", cfg.shed_resume_hold_seconds >= 0, "seconds >= 0"),
        ("queue_check_interval_seconds", cfg.queue_check_interval_seconds > 0, "seconds > 0"),
    ]
    for name, ok, expected in checks:
        if not ok:
            raise ExecutorConfigError(
                name, expected, getattr(cfg, name),
                f"fix {name} in the executor config or {ENV_PREFIX}{name.upper()}.",
            )


def scanner_reserved_cores(cfg: ExecutionConfig, cores: Sequence[int]) -> tuple[int, ...]:
    """Cores kept for the live scanner (never all of them)."""
    ordered = sorted(cores)
    if cfg.scanner_cores is not None:
        reserved = [c for c in ordered if c in set(cfg.scanner_cores)]
    else:
        reserved = ordered[: math.ceil(len(ordered) * cfg.live_scanner_cpu_reserve)]
    return tuple(reserved[: max(0, len(ordered) - 1)])


def backtest_cores(cfg: ExecutionConfig, cores: Sequence[int]) -> tuple[int, ...]:
    """Cores backtest workers may use under ``cfg.execution_mode`` (at least one)."""
    ordered = sorted(cores)
    if cfg.execution_mode is ExecutionMode.STANDALONE:
        return tuple(ordered)
    reserved = set(scanner_reserved_cores(cfg, ordered))
    free = [c for c in ordered if c not in reserved]
    if cfg.execution_mode is ExecutionMode.PRIORITY_LIVE:
        free = free[: max(1, len(ordered) // 2)]
    return tuple(free)


def worker_count(cfg: ExecutionConfig, cores: Sequence[int]) -> int:
    """Workers per run: ``max_concurrent_backtests``, else one per backtest core."""
    return cfg.max_concurrent_backtests or len(backtest_cores(cfg, cores))
