"""How fast the executor's fast path pauses backtest workers when a CPU hog starts, and how
often it trips without one: the real ``LoadGuard`` (real sampler, real signals, real
SIGSTOP), without a Dagster run around it, so each side gets many hog starts in minutes.

What stands in for what (each side builds its guard from its own ``ExecutorSettings``
defaults, as ``backtest_executor`` does for a CONCURRENT NORMAL run on 2 cores):

* the run process: this one, in its own session at autogroup nice -10 like the hog and the
  scanner (see below), so the neighbours' load starves none of the three;
* workers: ``--workers`` busy loops (``python -c``), each in its own session, pinned to the
  cores CONCURRENT gives backtests, at nice 5 (process and autogroup) and SCHED_BATCH (what
  NORMAL workers run at), registered with the guard; its own processes never count as load;
* the scanner: a process rewriting a heartbeat in the scanner's format every 250 ms (5 ms
  ticks, 100 ms budget) at nice -10 in its own session, as the scanner runs (the CPU signal
  counts only while a scanner is live);
* the hog: two ``sh`` busy loops on any core at ``--hog-nice`` (-10: on this shared machine a
  nice-0 hog gets a fraction of a core beside the neighbours' load and rightly trips nothing;
  at -10 it takes the cores it would take on a quiet machine), started outside this
  process's tree.

The machine this was written on is shared with other engineers' test suites and benchmarks
(load average 5-11 on 2 vCPUs): their processes are "other load" that rightly keeps the guard
paused nearly all the time, leaving no running workers for a hog to pause. So by default this
benchmark counts processes whose command line holds one of ``NEIGHBOUR_MARKS`` as backtest
machinery (added to ``FastSampler.MACHINERY_MARKS``, the guard's own exclusion list, on both
sides alike); the hog's ``sh`` loops match none. ``--count-neighbours`` counts everything.

Phases, per side: ``plain`` (``--plain-seconds`` of workers + scanner: every pause is a false
trip; other processes on the machine do count, see the load average) then ``hog``
(``--cycles`` times: wait for the guard to run its workers, 2 s more, start the hog, time from
just before the first busy loop is spawned to the guard's SIGSTOP (``applied_at`` of its
notice), stop the hog).

Both sides in one invocation, interleaved (this script on both, only the package differs)::

    python benchmarks/ab.py --base main --rounds 2 --same-script -- \\
        python benchmarks/fast_path_reaction.py

One side alone: ``python benchmarks/fast_path_reaction.py``. How soon the kernel's PSI
trigger would wake the guard instead (a fresh cgroup v2 group starting to stall; root):
``python benchmarks/fast_path_reaction.py --psi 5``. The guard's own CPU: ``--cost 20``.
Figures: fast_path_reaction.md.
"""

from __future__ import annotations

import argparse
import inspect
import os
import shlex
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import psutil

VERBOSE = bool(os.environ.get("FAST_PATH_REACTION_VERBOSE"))
BUSY = [sys.executable, "-c", "while True: pass"]
#: Command-line marks of the neighbours' processes on the shared benchmark machine: test
#: runners, benchmarks, linters, browsers and database servers (see the module docstring).
NEIGHBOUR_MARKS = ("pytest", "benchmarks/", "mypy", "ruff", "chrom", "postgres", "beam.smp",
                   "redis", "celery", "btpipeline", "python3 -c")


def _detached(command: list[str]) -> psutil.Process:
    """Start ``command`` outside this process's tree (reparented to init): the guard counts
    its own run's descendants as the run's work, so the hog must not be one."""
    line = " ".join(shlex.quote(part) for part in command)
    out = subprocess.run(["sh", "-c", f"{line} >/dev/null 2>&1 & echo $!"],
                         capture_output=True, text=True, check=True)
    return psutil.Process(int(out.stdout.strip()))


def _worker(cores: list[int]) -> subprocess.Popen[bytes]:
    def isolate() -> None:
        os.sched_setaffinity(0, cores)
        os.setpriority(os.PRIO_PROCESS, 0, 5)
        os.sched_setscheduler(0, os.SCHED_BATCH, os.sched_param(0))
        _autogroup_nice(5)

    return subprocess.Popen(BUSY, start_new_session=True, preexec_fn=isolate)


HEARTBEAT = """
import sys, time
from pathlib import Path
from btpipeline.machine.heartbeat import ScannerStatus, write_status
import os
path, start = Path(sys.argv[1]), time.monotonic()
for tick in range(10**9):
    write_status(path, ScannerStatus(
        pid=os.getpid(), started_at="2026-01-01T00:00:00Z", heartbeat_unix=time.time(),
        cadence_seconds=0.25, budget_ms=100.0, epics=["EURUSD"], strategies=["macd"],
        isolation={}, feed="bench", ticks=tick + 1, last_latency_ms=5.0))
    time.sleep(max(0.0, start + (tick + 1) * 0.25 - time.monotonic()))
"""


def _autogroup_nice(nice: int) -> None:
    """Set the calling process's session's autogroup nice (where autogroup is on)."""
    try:
        Path("/proc/self/autogroup").write_text(str(nice))
    except OSError:
        pass


def _outrank_neighbours() -> str:
    """This process (the guard's, standing for the run process) in its own session at
    autogroup nice -10, the hog's and the scanner's rank: on a quiet machine they would all be
    peers; here all three outrank the neighbours alike."""
    try:
        os.setsid()
    except OSError:
        return "the guard's process ranks with the neighbours (not a new session: run it via ab.py)"
    _autogroup_nice(-10)
    os.setpriority(os.PRIO_PROCESS, 0, -10)
    return "the guard's process at autogroup nice -10"


class Heartbeat:
    """The scanner's status file, rewritten every 250 ms on a fixed schedule by a process
    protected as ``btpipeline scanner`` protects itself (nice -10, its own session with the
    autogroup's nice -10): its pid is the scanner's, whose run delay the guard reads."""

    def __init__(self, path: Path) -> None:
        def protect() -> None:
            _autogroup_nice(-10)
            os.setpriority(os.PRIO_PROCESS, 0, -10)

        self.path = path
        self.proc = subprocess.Popen([sys.executable, "-c", HEARTBEAT, str(path)],
                                     start_new_session=True, preexec_fn=protect)
        if not _wait(path.exists, 30.0):
            raise SystemExit("the heartbeat process wrote no status within 30 s")

    def stop(self) -> None:
        self.proc.kill()
        self.proc.wait()


def _guard(status: Path, free_cores: float):  # -> LoadGuard of this side's package
    from btpipeline.executors.executor import levels_from_executor_config
    from btpipeline.executors.load_guard import LoadGuard
    from btpipeline.machine.executor_settings import ExecutorSettings
    from btpipeline.monitor.fast_signals import FastSampler

    cfg = ExecutorSettings.from_env({})
    extra = ({"kernel_wakeups": cfg.shed_kernel_wakeups}
             if "kernel_wakeups" in inspect.signature(LoadGuard).parameters else {})
    burst = getattr(cfg, "shed_cpu_burst_window_seconds", None)
    sampler = FastSampler(status, cfg.shed_cpu_window_seconds,
                          **({"burst_window_s": burst} if burst else {}))
    guard = LoadGuard(levels_from_executor_config(cfg), free_cores,
                      interval_s=cfg.shed_interval_seconds, sampler=sampler, **extra)
    return guard, cfg


def _wait(predicate, timeout: float) -> bool:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if predicate():
            return True
        time.sleep(0.005)
    return False


def _hog_phase(guard, seconds: float, processes: int, nice: int
               ) -> tuple[list[float], int, int]:
    """Hog starts for ``seconds``: (reaction ms of each, starts skipped because outside load
    had the guard paused when the hog was due, hogs that never tripped it within 10 s)."""
    reactions: list[float] = []
    held_by_others = unnoticed = 0
    # its own session, so its autogroup (which the scheduler ranks against the neighbours'
    # sessions before nice counts) can take the nice too
    loop = (f"echo {nice} >/proc/self/autogroup 2>/dev/null; renice -n {nice} -p $$ >/dev/null;"
            " while :; do :; done")
    end = time.monotonic() + seconds
    while time.monotonic() < end:
        if not _wait(lambda: not guard.holding, end - time.monotonic()):
            break
        time.sleep(0.5)
        guard.drain_notices()
        if guard.holding:  # outside load paused it meanwhile: nothing to react to
            held_by_others += 1
            continue
        began = time.time()
        hogs = [_detached(["setsid", "sh", "-c", loop]) for _ in range(processes)]
        paused = _wait(lambda: guard.holding, 10.0)
        for hog in hogs:
            hog.kill()
        notices = [n for n in guard.drain_notices() if n.paused]
        if paused and notices:
            reactions.append((notices[0].applied_at - began) * 1000.0)
            if VERBOSE:
                n = notices[0]
                print(f"  sampled +{(n.at - began) * 1000:.0f} ms, applied "
                      f"+{(n.applied_at - began) * 1000:.0f} ms, window "
                      f"{n.sample.window_s * 1000 if n.sample else 0:.0f} ms: {n.reason}")
        else:
            unnoticed += 1
    return reactions, held_by_others, unnoticed


def _guard_cost(seconds: float) -> None:
    """The guard's own CPU (this process's, whose main thread only sleeps) while it samples
    beside a live scanner stand-in and nothing trips."""
    with tempfile.TemporaryDirectory() as tmp:
        heartbeat = Heartbeat(Path(tmp) / "scanner" / "status.json")
        guard, cfg = _guard(heartbeat.path, 1)
        guard.start()
        time.sleep(1.0)
        began, cpu = time.monotonic(), time.process_time()
        time.sleep(seconds)
        used, wall = time.process_time() - cpu, time.monotonic() - began
        guard.stop()
        heartbeat.stop()
    print(f"guard every {cfg.shed_interval_seconds * 1000:g} ms: {100 * used / wall:.2f} % of "
          f"a core over {wall:.0f} s; load average {os.getloadavg()[0]:.2f}")


def _psi_wake_latencies(starts: int) -> None:
    """How soon a PSI trigger wakes a poll() after a group starts stalling: a fresh cgroup v2
    group, two busy loops pinned to one CPU moved into it, time from the first spawn to
    POLLPRI; the trigger is the one the guard would arm (``Wakeups``)."""
    from btpipeline.monitor.wakeups import Wakeups, cgroup_v2_mount

    mount = cgroup_v2_mount()
    if mount is None:
        raise SystemExit("no cgroup v2 hierarchy mounted: no PSI trigger to measure")
    group = mount / f"btpipeline-bench-{os.getpid()}"
    group.mkdir()
    cpu = min(os.sched_getaffinity(0))
    waits, spec = [], ""
    try:
        for _ in range(starts):
            wakeups = Wakeups(None, psi_stall_fraction=0.05)
            if not wakeups.watch_pressure(group / "cpu.pressure"):
                raise SystemExit(wakeups.describe())
            spec = wakeups.describe()
            while wakeups.wait(0.0):  # an event left from the last start
                pass
            began = time.monotonic()
            hogs = [subprocess.Popen(["sh", "-c", "while :; do :; done"],
                                     preexec_fn=lambda: os.sched_setaffinity(0, {cpu}))
                    for _ in range(2)]
            for hog in hogs:
                (group / "cgroup.procs").write_text(str(hog.pid))
            fired = wakeups.wait(10.0)
            waits.append((time.monotonic() - began) * 1000.0 if fired else float("nan"))
            for hog in hogs:
                hog.kill()
                hog.wait()
            wakeups.close()
            time.sleep(3.0)  # let the group's stall window empty
    finally:
        group.rmdir()
    print(f"PSI trigger ({spec}): stall start -> poll() woken, ms: "
          f"{', '.join(f'{w:.0f}' for w in waits)}; median {np.nanmedian(waits):.0f}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--plain-seconds", type=float, default=60.0)
    parser.add_argument("--hog-seconds", type=float, default=120.0,
                        help="start a hog whenever the guard runs its workers, for this long")
    parser.add_argument("--hog-processes", type=int, default=2)
    parser.add_argument("--hog-nice", type=int, default=-10,
                        help="the hog's nice: below 0 so it gets the cores it would get on a "
                        "quiet machine despite the neighbours' load (0 in scanner_latency.py)")
    parser.add_argument("--workers", type=int, default=1)
    parser.add_argument("--count-neighbours", action="store_true",
                        help="count every other process as load (see the docstring)")
    parser.add_argument("--cost", type=float, default=0.0, metavar="SECONDS",
                        help="only measure the guard's own CPU beside the scanner stand-in")
    parser.add_argument("--psi", type=int, default=0, metavar="N",
                        help="only measure how soon a PSI trigger wakes a poll, N times")
    args = parser.parse_args()
    if args.psi:
        _psi_wake_latencies(args.psi)
        return
    import btpipeline
    from btpipeline.monitor.fast_signals import FastSampler

    if not args.count_neighbours:
        FastSampler.MACHINERY_MARKS = (*FastSampler.MACHINERY_MARKS, *NEIGHBOUR_MARKS)
    rank = _outrank_neighbours()
    if args.cost:
        _guard_cost(args.cost)
        return
    from btpipeline.machine.cores import backtest_cores
    from btpipeline.machine.executor_settings import ExecutorSettings

    available = sorted(os.sched_getaffinity(0))
    cores = backtest_cores(ExecutorSettings.from_env({}), available)
    free = len(available) - len(set(cores))
    with tempfile.TemporaryDirectory() as tmp:
        heartbeat = Heartbeat(Path(tmp) / "scanner" / "status.json")
        workers = [_worker(list(cores)) for _ in range(args.workers)]
        guard, cfg = _guard(heartbeat.path, free)
        for worker in workers:
            guard.register(worker.pid)
        load_before = os.getloadavg()
        guard.start()
        describe = getattr(guard, "wakeup_description", None)
        wakeups = describe() if describe else "polling only"
        try:
            time.sleep(args.plain_seconds)
            trips = [n for n in guard.drain_notices() if n.paused]
            reactions, held_by_others, unnoticed = _hog_phase(
                guard, args.hog_seconds, args.hog_processes, args.hog_nice)
        finally:
            guard.stop()
            for worker in workers:
                worker.kill()
                worker.wait()
            heartbeat.stop()
        load_after = os.getloadavg()
    burst = getattr(cfg, "shed_cpu_burst_window_seconds", None)
    print(f"package: {Path(btpipeline.__file__).parent.parent}; interval "
          f"{cfg.shed_interval_seconds * 1000:g} ms, CPU window "
          f"{cfg.shed_cpu_window_seconds * 1000:g} ms"
          f"{f', burst window {burst * 1000:g} ms' if burst else ''}; {wakeups}; neighbours "
          f"{'counted' if args.count_neighbours else 'not counted'}; {rank}")
    print(f"load average before / after: {' '.join(f'{x:.2f}' for x in load_before)} / "
          f"{' '.join(f'{x:.2f}' for x in load_after)}")
    print(f"plain ({args.plain_seconds:g} s, {args.workers} worker(s) on cores {list(cores)}, "
          f"{free} free): {len(trips)} trip(s)")
    for notice in trips:
        print(f"- trip: {notice.reason}")
    if reactions:
        print(f"hog start -> SIGSTOP, ms: {', '.join(f'{r:.0f}' for r in reactions)}")
        print(f"median {np.median(reactions):.0f} ms, max {max(reactions):.0f} ms over "
              f"{len(reactions)} hog starts ({held_by_others} more were due while outside "
              f"load had the workers paused; {unnoticed} hog(s) did not pause them in 10 s)")
    else:
        print(f"no reaction measured ({held_by_others} hog starts found the workers paused, "
              f"{unnoticed} hog(s) did not pause them in 10 s)")


if __name__ == "__main__":
    main()
