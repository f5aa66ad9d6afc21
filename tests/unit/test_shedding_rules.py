"""The fast path's rules: what its samples trip under the one protection policy, per
execution mode, and resume hysteresis."""

from __future__ import annotations

import os
import subprocess
import time

import psutil

from btpipeline.executors.executor import levels_from_executor_config
from btpipeline.executors.shedding import fast_signals
from btpipeline.machine.cores import ExecutionMode
from btpipeline.machine.executor_settings import ExecutorSettings
from btpipeline.machine.protection import ProtectionLevels, levels_for_mode
from btpipeline.machine.protection import trip_reasons as level_reasons
from btpipeline.machine.protection_state import CircuitState, ProtectionMachine
from btpipeline.monitor.fast_signals import CpuMeter, FastSample, ProcessTable

LIMITS = levels_from_executor_config(ExecutorSettings())


def trip_reasons(sample: FastSample, levels: ProtectionLevels, free_cores: float,
                 ignore_latency_before: float | None = None) -> list[str]:
    return level_reasons(fast_signals(sample, free_cores,
                                      ignore_latency_before=ignore_latency_before), levels)


def _sample(**values: float | None) -> FastSample:
    base = {"at": 1000.0, "window_s": 0.2, "other_cpu_cores": 0.1, "memory_fraction": 0.3}
    return FastSample(**{**base, **values})


SCANNER = {"scanner_heartbeat_unix": 999.0, "scanner_budget_ms": 100.0,
           "scanner_last_latency_ms": 5.0}


def test_other_processes_filling_the_cores_left_to_them_trip_it():
    assert trip_reasons(_sample(other_cpu_cores=0.95, **SCANNER), LIMITS, free_cores=1) == [
        "cpu 95.0% > 85.0% of the 1 core(s) left beside the backtests, used by others"]
    assert trip_reasons(_sample(other_cpu_cores=1.8, **SCANNER), LIMITS, free_cores=2)
    assert not trip_reasons(_sample(other_cpu_cores=0.5, **SCANNER), LIMITS, free_cores=1)


def test_a_multi_core_burst_trips_before_the_full_window_fills_but_one_process_cannot():
    """Two cores' worth of others over the short burst window trips at once; one busy process
    (at most one core) never exceeds the burst level and must hold the full window."""
    burst = {"burst_window_s": 0.075, **SCANNER}
    assert trip_reasons(_sample(other_cpu_cores=0.5, other_cpu_burst_cores=1.6, **burst),
                        LIMITS, free_cores=1) == [
        "cpu burst 160.0% > 130.0% of the 1 core(s) left beside the backtests, used by others "
        "over 75 ms"]
    assert not trip_reasons(_sample(other_cpu_cores=0.5, other_cpu_burst_cores=1.0, **burst),
                            LIMITS, free_cores=1)
    assert not trip_reasons(_sample(other_cpu_burst_cores=1.9, **burst), LIMITS, free_cores=0)


def test_busy_cores_do_not_trip_it_without_a_live_scanner():
    assert not trip_reasons(_sample(other_cpu_cores=1.9), LIMITS, free_cores=1)


def test_standalone_leaves_no_core_so_cpu_never_trips():
    assert not trip_reasons(_sample(other_cpu_cores=1.9, **SCANNER), LIMITS, free_cores=0)


def test_memory_trips_in_every_mode():
    assert trip_reasons(_sample(memory_fraction=0.95), LIMITS, free_cores=0)


def test_the_scanner_over_its_published_budget_trips_it():
    scanner = {"scanner_heartbeat_unix": 999.0, "scanner_budget_ms": 100.0}
    assert trip_reasons(_sample(scanner_last_latency_ms=150.0, **scanner), LIMITS, 1)
    assert not trip_reasons(_sample(scanner_last_latency_ms=50.0, **scanner), LIMITS, 1)
    assert trip_reasons(_sample(scanner_last_latency_ms=5.0, scanner_overdue_ms=30.0,
                                **scanner), LIMITS, 1)
    assert trip_reasons(_sample(scanner_last_latency_ms=5.0, scanner_run_delay_fraction=0.5,
                                **scanner), LIMITS, 1)


def test_a_tick_from_before_the_pause_does_not_keep_it_paused():
    old_slow_tick = _sample(scanner_last_latency_ms=150.0, scanner_heartbeat_unix=990.0,
                            scanner_budget_ms=100.0)
    assert trip_reasons(old_slow_tick, LIMITS, 1)
    assert not trip_reasons(old_slow_tick, LIMITS, 1, ignore_latency_before=995.0)


def test_priority_live_trips_earlier_than_concurrent():
    live = levels_for_mode(LIMITS, ExecutionMode.PRIORITY_LIVE)
    busy = _sample(other_cpu_cores=0.7, **SCANNER)
    assert trip_reasons(busy, live, 1) and not trip_reasons(busy, LIMITS, 1)
    slow = _sample(scanner_last_latency_ms=70.0, scanner_heartbeat_unix=999.0,
                   scanner_budget_ms=100.0)
    assert trip_reasons(slow, live, 1) and not trip_reasons(slow, LIMITS, 1)
    assert levels_for_mode(LIMITS, ExecutionMode.CONCURRENT) == LIMITS


def test_executor_config_reaches_the_levels():
    cfg = ExecutorSettings(shed_cpu_threshold=0.5, shed_memory_threshold=0.7,
                          shed_scanner_run_delay_threshold=0.3,
                          shed_scanner_latency_budget_ms=80.0, shed_hysteresis=0.2,
                          shed_resume_hold_seconds=3.0)
    levels = levels_from_executor_config(cfg)
    assert (levels.cpu_fraction, levels.memory_fraction, levels.scanner_run_delay_fraction,
            levels.scanner_latency_budget_ms, levels.hysteresis, levels.resume_hold_seconds
            ) == (0.5, 0.7, 0.3, 80.0, 0.2, 3.0)
    live = levels_from_executor_config(ExecutorSettings(
        shed_cpu_threshold=0.5, execution_mode=ExecutionMode.PRIORITY_LIVE))
    assert live == levels_for_mode(levels_from_executor_config(ExecutorSettings(
        shed_cpu_threshold=0.5)), "PRIORITY_LIVE")


def test_resume_waits_for_healthy_hold_and_repeated_trips_double_it():
    machine = ProtectionMachine(LIMITS)  # the fast path: 1 s hold, 5 s probe
    assert machine.update(0.0, [], True) is None
    assert machine.update(0.1, ["cpu"], False).state is CircuitState.OPEN  # paused
    assert machine.update(0.5, [], False) is None  # below trip, above reset: stay paused
    assert machine.update(0.6, [], True) is None  # healthy from here...
    assert machine.update(1.5, [], True) is None
    assert machine.update(1.7, [], True).state is CircuitState.HALF_OPEN  # ...for 1 s: resumed
    assert machine.update(2.0, ["cpu"], False).state is CircuitState.OPEN  # flapping
    assert machine.state.hold_seconds == 2.0
    machine.update(2.1, [], True)
    assert machine.update(3.5, [], True) is None
    assert machine.update(4.2, [], True).state is CircuitState.HALF_OPEN
    assert machine.update(20.0, ["cpu"], False).state is CircuitState.OPEN  # long after
    assert machine.state.hold_seconds == 1.0


def test_cpu_meter_does_not_count_the_given_pids():
    """This process's own CPU shows as the difference between a meter that excludes it and
    one that does not. Compared with what this process really used over the window, not with
    a fixed share of a core: under outside load it gets less than a core."""
    excluding_me, counting_me = CpuMeter(window_s=0.2), CpuMeter(window_s=0.2)
    cpu_before = time.process_time()
    assert excluding_me.other_cores([os.getpid()]) == (0.0, 0.0)  # the first call: baseline
    counting_me.other_cores([])
    end = time.process_time() + 0.3
    while time.process_time() < end:  # this process burns ~0.3 s of CPU
        pass
    others, window = excluding_me.other_cores([os.getpid()])
    everyone, _ = counting_me.other_cores([])
    own_cores = (time.process_time() - cpu_before) / window
    assert everyone - others > 0.5 * own_cores, (everyone, others, own_cores)


def test_machinery_is_this_process_tree_and_processes_with_a_mark():
    """A grandchild of this process and a detached process whose command line holds a mark
    are machinery; a detached process without one is load, also when listed again (each
    process is read once, when first seen)."""
    table = ProcessTable()
    child = subprocess.Popen(["sh", "-c", "sleep 600 & wait"])
    marked = _detached("exec -a btpipeline.executors.worker sleep 600")
    other = _detached("sleep 600")
    grandchild = None
    try:
        _wait_for_child_of(child.pid)
        grandchild = psutil.Process(child.pid).children()[0].pid
        machinery = table.machinery(("btpipeline.executors.worker",))
        assert {child.pid, grandchild, marked} <= set(machinery)
        assert other not in machinery
        assert table.machinery(("btpipeline.executors.worker",)) == machinery
    finally:
        for pid in (marked, other, grandchild):
            if pid is not None:
                os.kill(pid, 9)
        child.kill()
        child.wait()


def _detached(script: str) -> int:
    """A process outside this one's tree (its parent exits at once): the pid."""
    out = subprocess.run(["sh", "-c", f"bash -c '{script}' >/dev/null 2>&1 & echo $!"],
                         capture_output=True, text=True, check=True)
    return int(out.stdout)


def _wait_for_child_of(pid: int) -> None:
    for _ in range(500):
        if psutil.Process(pid).children():
            return
        time.sleep(0.01)
    raise AssertionError(f"process {pid} started no child")
