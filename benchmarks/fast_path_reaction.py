"""How fast the executor's fast path pauses backtest workers when a CPU hog starts, and how
often it trips without one: the real ``LoadGuard`` (real sampler, real signals, real
SIGSTOP), without a Dagster run around it, so each side gets many hog starts in minutes.

What stands in for what (each side builds its guard from its own ``ExecutorSettings``
defaults, as ``backtest_executor`` does for a CONCURRENT NORMAL run on 2 cores):

* workers: ``--workers`` busy loops (``python -c``), each in its own session, pinned to the
  cores CONCURRENT gives backtests, at nice 5 and SCHED_BATCH (what NORMAL workers run at),
  registered with the guard; its own processes never count as load;
* the scanner: a heartbeat in the scanner's format rewritten every 250 ms (5 ms ticks,
  100 ms budget) for a sleeping process's pid (the CPU signal counts only while a scanner is
  live);
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

One side alone: ``python benchmarks/fast_path_reaction.py``. Figures: fast_path_reaction.md.
"""

from __future__ import annotations

import argparse
import inspect
import os
import shlex
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

import numpy as np
import psutil

VERBOSE = bool(os.environ.get("FAST_PATH_REACTION_VERBOSE"))
BUSY = [sys.executable, "-c", "while True: pass"]
#: Command-line marks of the neighbours' processes on the shared benchmark machine: test
#: runners, benchmarks, linters, browsers and database servers (see the module docstring).
NEIGHBOUR_MARKS = ("pytest", "benchmarks/", "mypy", "ruff", "chrom", "postgres", "beam.smp",
                   "redis", "celery", "btpipeline", "python3 -c", "/work/")


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

    return subprocess.Popen(BUSY, start_new_session=True, preexec_fn=isolate)


class Heartbeat:
    """The scanner's status file, rewritten every 250 ms by a thread."""

    def __init__(self, path: Path) -> None:
        from btpipeline.machine.heartbeat import ScannerStatus, write_status

        self.path, self._write, self._status = path, write_status, ScannerStatus
        self.sleeper = subprocess.Popen(["sleep", "3600"])
        self._done = threading.Event()
        self._thread = threading.Thread(target=self._beat, daemon=True)
        self._beat_once()
        self._thread.start()

    def _beat_once(self) -> None:
        self._write(self.path, self._status(
            pid=self.sleeper.pid, started_at="2026-01-01T00:00:00Z", heartbeat_unix=time.time(),
            cadence_seconds=0.25, budget_ms=100.0, epics=["EURUSD"], strategies=["macd"],
            isolation={}, feed="bench", ticks=1, last_latency_ms=5.0))

    def _beat(self) -> None:
        while not self._done.wait(0.25):
            self._beat_once()

    def stop(self) -> None:
        self._done.set()
        self._thread.join()
        self.sleeper.kill()
        self.sleeper.wait()


def _guard(status: Path, free_cores: float):  # -> LoadGuard of this side's package
    from btpipeline.executors.executor import levels_from_executor_config
    from btpipeline.executors.load_guard import LoadGuard
    from btpipeline.machine.executor_settings import ExecutorSettings
    from btpipeline.monitor.fast_signals import FastSampler

    cfg = ExecutorSettings.from_env({})
    extra = ({"kernel_wakeups": cfg.shed_kernel_wakeups}
             if "kernel_wakeups" in inspect.signature(LoadGuard).parameters else {})
    guard = LoadGuard(levels_from_executor_config(cfg), free_cores,
                      interval_s=cfg.shed_interval_seconds,
                      sampler=FastSampler(status, cfg.shed_cpu_window_seconds), **extra)
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
    args = parser.parse_args()
    import btpipeline
    from btpipeline.monitor.fast_signals import FastSampler

    if not args.count_neighbours:
        FastSampler.MACHINERY_MARKS = (*FastSampler.MACHINERY_MARKS, *NEIGHBOUR_MARKS)
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
    print(f"package: {Path(btpipeline.__file__).parent.parent}; interval "
          f"{cfg.shed_interval_seconds * 1000:g} ms, CPU window "
          f"{cfg.shed_cpu_window_seconds * 1000:g} ms; {wakeups}; neighbours "
          f"{'counted' if args.count_neighbours else 'not counted'}")
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
