"""One cheap sample of what the breaker watches: CPU, memory, pressure stall, scanner latency.

psutil ``cpu_percent`` (~26 µs), ``virtual_memory`` (~32 µs) and a read of
``/proc/pressure/cpu`` (~15 µs) — measured in ISOLATION_NOTES — so sampling at 10 Hz costs
well under 1% of a core. PSI is the better overload signal: a machine at 100% CPU whose
workers are idle-class is not overloaded for the scanner; its stall time says so.
"""

from __future__ import annotations

from pathlib import Path
from typing import NamedTuple

import psutil

from btpipeline.machine.heartbeat import read_scanner_status

PRESSURE_DIR = Path("/proc/pressure")


class ResourceSample(NamedTuple):
    cpu_fraction: float
    memory_fraction: float
    cpu_pressure_avg10: float | None  # "some" avg10, % of time stalled; None without PSI
    memory_pressure_avg10: float | None
    scanner_p99_ms: float | None  # None when no live scanner publishes its latency

    def as_metadata(self) -> dict[str, float]:
        return {k: float(v) for k, v in self._asdict().items() if v is not None}


def read_pressure(resource: str, root: Path = PRESSURE_DIR) -> float | None:
    """The ``some avg10`` figure of /proc/pressure/<resource>, or None where PSI is absent."""
    try:
        line = (root / resource).read_text().splitlines()[0]
    except (OSError, IndexError):
        return None
    fields = dict(part.split("=", 1) for part in line.split()[1:])
    return float(fields["avg10"])


def read_scanner_p99(status_file: Path | None = None) -> float | None:
    """The live scanner's published p99 latency (ms), or None if absent, stopped or stale
    (older than three cadences). ``None`` path: the scanner's default status file."""
    status = read_scanner_status(status_file)
    if status is None or status.state != "running" or status.p99_ms is None:
        return None
    return float(status.p99_ms)


def sample_resources(status_file: Path | None = None, cpu_interval: float | None = None
                     ) -> ResourceSample:
    """``cpu_interval`` None measures CPU since the previous call (non-blocking)."""
    return ResourceSample(
        cpu_fraction=psutil.cpu_percent(interval=cpu_interval) / 100.0,
        memory_fraction=psutil.virtual_memory().percent / 100.0,
        cpu_pressure_avg10=read_pressure("cpu"),
        memory_pressure_avg10=read_pressure("memory"),
        scanner_p99_ms=read_scanner_p99(status_file),
    )
