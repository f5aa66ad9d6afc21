"""What the executor's fast path measures, as protection signals.

The levels, their scaling per execution mode and the CLOSED / OPEN / HALF_OPEN machine with
its hysteresis are the one policy in :mod:`btpipeline.machine.protection`;
:class:`~btpipeline.executors.load_guard.LoadGuard` feeds it a
:class:`~btpipeline.monitor.fast_signals.FastSample` every ~25 ms (and whenever the kernel
wakes it), turned into signals here:

* CPU: cores' worth used by other processes, as a fraction of the cores this run's workers
  leave free (``free_cores``; 0 in STANDALONE turns the signal off), over the CPU window and
  over the short burst window (its own, higher level). It also needs a live
  scanner: busy cores hurt no one latency-critical when none runs (memory, the breaker and
  preemption still apply).
* memory, and the scanner's last tick latency, overdue tick and run delay.
"""

from __future__ import annotations

from btpipeline.machine.protection import ProtectionSignals
from btpipeline.monitor.fast_signals import FastSample


def fast_signals(sample: FastSample, free_cores: float, *,
                 ignore_latency_before: float | None = None) -> ProtectionSignals:
    """``ignore_latency_before``: a scanner heartbeat older than this (epoch s) reports a tick
    from before the pause; it says nothing about now, so its latency is left out."""
    heartbeat = sample.scanner_heartbeat_unix
    scanner_live = heartbeat is not None
    counts = free_cores > 0 and scanner_live
    cpu = sample.other_cpu_cores / free_cores if counts else None
    burst = (sample.other_cpu_burst_cores / free_cores
             if counts and sample.burst_window_s > 0 else None)
    fresh = heartbeat is not None and (ignore_latency_before is None
                                       or heartbeat >= ignore_latency_before)
    return ProtectionSignals(
        cpu_fraction=cpu,
        cpu_scope=f"the {free_cores:g} core(s) left beside the backtests, used by others",
        cpu_burst_fraction=burst, burst_window_s=sample.burst_window_s,
        memory_fraction=sample.memory_fraction,
        scanner_latency_ms=sample.scanner_last_latency_ms if fresh else None,
        scanner_budget_ms=sample.scanner_budget_ms if scanner_live else None,
        scanner_overdue_ms=sample.scanner_overdue_ms if scanner_live else None,
        scanner_run_delay_fraction=sample.scanner_run_delay_fraction if scanner_live else None,
        window_s=sample.window_s)
