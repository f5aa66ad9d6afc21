"""Text for ``btpipeline status``: the scanner's heartbeat and Dagster's run queue."""

from __future__ import annotations

import os
from pathlib import Path

from btpipeline.machine.heartbeat import ScannerStatus


def _ms(value: float | None) -> str:
    return "-" if value is None else f"{value:.1f}"


def render_scanner(status: ScannerStatus | None, path: Path) -> str:
    """A few lines on the scanner, or how to start one when there is no heartbeat."""
    if status is None:
        return (f"scanner: not running (no heartbeat at {path}). "
                "Start it with `btpipeline scanner`.")
    if status.state == "stopped":
        head = (f"scanner: stopped (pid {status.pid}, last heartbeat {status.age_seconds:.1f} s "
                f"ago, {status.ticks} ticks)")
    elif status.state == "stale":
        head = (f"scanner: STALE (pid {status.pid}: last heartbeat {status.age_seconds:.1f} s "
                f"ago, over 3 cadences of {status.cadence_seconds:g} s; it died, hung or is "
                "starved of CPU)")
    else:
        head = (f"scanner: running (pid {status.pid}, heartbeat {status.age_seconds:.1f} s old, "
                f"{status.ticks} ticks every {status.cadence_seconds:g} s)")
    isolation = status.isolation
    lines = [
        head,
        f"  latency over the last {status.window} ticks: p50 {_ms(status.p50_ms)} ms, "
        f"p99 {_ms(status.p99_ms)} ms, max {_ms(status.max_ms)} ms; last "
        f"{_ms(status.last_latency_ms)} ms (budget {status.budget_ms:g} ms, "
        f"{status.missed_deadlines} missed, {status.skipped_ticks} skipped)",
        f"  epics {','.join(status.epics)}; strategies {','.join(status.strategies)}; "
        f"{status.signals_written} signals written",
        f"  isolation: nice {isolation.get('nice')}, cores {isolation.get('cores')}"
        + (f"; refused: {'; '.join(isolation['refused'])}" if isolation.get("refused") else ""),
    ]
    if status.last_error:
        lines.append(f"  last error ({status.errors} in all): {status.last_error}")
    return "\n".join(lines)


def render_dagster_runs() -> str:
    """Queued and running run counts of the instance at DAGSTER_HOME, or why there are none."""
    home = os.environ.get("DAGSTER_HOME")
    if not home or (not Path(home, "dagster.yaml").is_file()
                    and not Path(home, "history").is_dir()):
        return (f"dagster: no instance at DAGSTER_HOME={home or '(unset)'}; run counts not "
                "shown. Fix: export DAGSTER_HOME to the folder `dagster dev` uses.")
    try:
        from dagster import DagsterInstance, DagsterRunStatus, RunsFilter

        from btpipeline.monitor.queue_control import read_published_protection

        instance = DagsterInstance.get()
        try:
            queued = instance.get_runs_count(RunsFilter(statuses=[DagsterRunStatus.QUEUED]))
            running = instance.get_runs_count(RunsFilter(statuses=[
                DagsterRunStatus.STARTING, DagsterRunStatus.STARTED, DagsterRunStatus.CANCELING]))
            breaker = read_published_protection(instance)
        finally:
            instance.dispose()
    except Exception as error:  # any failure: say so, the scanner part is still useful
        first = (str(error).strip().splitlines() or [""])[0]
        return f"dagster ({home}): unreachable ({type(error).__name__}: {first})"
    reason = f" ({breaker.reason})" if breaker.reason else ""
    return (f"dagster ({home}): {queued} queued, {running} running runs; circuit breaker "
            f"{breaker.state.value}{reason}")
