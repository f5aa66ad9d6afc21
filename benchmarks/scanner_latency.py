"""The live scanner's latency beside a full backtest backfill and beside a 10,000-combination
sweep, with and without protection; how fast the executor's fast path pauses backtests when a
CPU hog appears; what protection costs in backtest throughput.

Scenarios, one after the other in one process (same machine state, same data):

* ``idle``: the scanner alone, exactly as shipped (nice -10, the reserved core: the same
  settings as the protected rows; each row checks them on the scanner process).
* ``unprotected``: scanner at nice 0 on any core; the backfill on backtest_executor with
  every protection off (STANDALONE: a worker per core, no nice / scheduling class, no
  pinning, no fast path).
* ``protected``: scanner as shipped (nice -10, the reserved core); the backfill as shipped
  (CONCURRENT, NORMAL priority: nice 5, pinned outside the scanner's core, fast path on).
* ``protected, all cores``: STANDALONE (a worker per core) with nice / scheduling class and
  the fast path (which pauses on the scanner's own latency and stall, not on busy cores).
* ``protected + hog``: as ``protected``, plus a CPU hog (two busy-looping processes at nice
  0, unpinned) switched on and off a few times: the fast path must pause the workers within
  250 ms of each start (read from the run's own engine events) and resume them after.
* ``protected + sweep``: scanner as shipped beside ``sweep_job`` on a ``--sweep-size`` grid
  (10,000 combinations of MACD on a year of EURUSD; 100 for quick runs) as shipped
  (CONCURRENT, NORMAL priority, fast path on). A 10,000 grid runs for many minutes: when the
  scanner has its ticks the sweep run is terminated (SIGINT to its run process, as Ctrl-C or
  a run termination does) and the benchmark checks with psutil that none of its processes
  is left. A sweep that ends earlier is started again.

The scanner runs every ``--cadence`` s over 6 epics x 4 strategies with a 100 ms budget and
writes a CSV line per tick (``btpipeline scanner --latency-log``); the figures and the PNG
come from those lines.

Ticks are the unit of a scenario. Every row starts its own scanner, drops its first
``--startup-ticks`` (start-up: the first tick opens the results database and writes every
signal, the next ones still pay lazy imports and cold caches), then starts its load and keeps
the scanner's ticks number ``startup`` to ``startup + --ticks - 1``: every row has the same
count, and since the replay feed moves one bar per tick from the same start, every row's
tick ``k`` scans the same bars. Loads run until the scanner has those ticks; the run then in
progress (backfill or sweep) is terminated with SIGINT, as Ctrl-C does.

Where the time went (each tick's line, ``btpipeline/scanner/tick_trace.py``): the wake-up
delay, the scanner thread's time on a CPU and waiting on a run queue (its schedstat), and
per row the machine's CPU pressure (``/proc/pressure/cpu``, share of time some task waited)
and the VM's steal time (``/proc/stat``).

Run: ``python benchmarks/scanner_latency.py`` (about 7-8 minutes: six rows of 60 s plus
start-ups; for a shorter run see ``--ticks``, ``--months``, ``--sweep-size``, ``--skip``; writes
benchmarks/scanner_latency.png and prints the markdown tables kept in scanner_latency.md).
"""

import argparse
import dataclasses
import datetime as dt
import json
import os
import shlex
import signal
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Callable
from pathlib import Path

import numpy as np
import psutil

REPO = Path(__file__).resolve().parent.parent
EPICS = ["EURUSD", "GBPUSD", "USDJPY", "AUDUSD", "USDCHF", "USDCAD"]
YEAR = 2023
BUDGET_MS = 100.0
GOAL_RATIO = 1.3  # p99 under load within 1.3x of the idle p99 of the same run
GOAL_MAX_MS = 1000.0


@dataclasses.dataclass
class Scenario:
    name: str
    latencies: np.ndarray  # ms per tick
    times: np.ndarray  # s since the scenario's load started
    backfill_s: float | None = None
    steps: int = 0
    hogs: list[tuple[float, float]] = dataclasses.field(default_factory=list)
    pauses: list[tuple[float, float]] = dataclasses.field(default_factory=list)
    reactions_ms: list[float] = dataclasses.field(default_factory=list)
    reasons: list[str] = dataclasses.field(default_factory=list)
    trace: dict[str, np.ndarray] = dataclasses.field(default_factory=dict)  # the counted ticks
    machine: dict[str, float] = dataclasses.field(default_factory=dict)
    isolation: str = ""  # the scanner's nice and cores, read from its process
    load_starts: list[float] = dataclasses.field(default_factory=list)  # s, runs launched
    notes: list[str] = dataclasses.field(default_factory=list)
    startup_ms: np.ndarray = dataclasses.field(default_factory=lambda: np.zeros(0))


def counted_ticks(ticks: np.ndarray, startup: int, count: int) -> np.ndarray:
    """Which logged ticks a row reports: the scanner's tick numbers ``startup`` to
    ``startup + count - 1`` (a mask over ``ticks``). Too few is an error naming the fix."""
    keep = (ticks >= startup) & (ticks < startup + count)
    if int(keep.sum()) != count:
        raise RuntimeError(
            f"the scanner logged {int(keep.sum())} of the {count} ticks after its {startup} "
            f"start-up ticks (last tick {int(ticks.max()) if len(ticks) else 'none'}): the "
            f"load ended before the scanner had them. Fix: fewer --ticks or a longer load.")
    return keep


def _read_trace(log: Path) -> dict[str, np.ndarray]:
    names = log.read_text().splitlines()[0].split(",")
    table = np.genfromtxt(log, delimiter=",", skip_header=1, ndmin=2)
    return {name: table[:, i] for i, name in enumerate(names)}


class MachineGauge:
    """The machine's CPU pressure and steal time, sampled every 0.25 s by a thread, so a row
    can report them over exactly its counted ticks."""

    def __init__(self) -> None:
        self.samples: list[tuple[float, float, float, float]] = []  # unix, psi us, steal, all
        self._done = threading.Event()
        self.thread = threading.Thread(target=self._run, daemon=True)
        self.thread.start()

    @staticmethod
    def _read() -> tuple[float, float, float, float]:
        psi = 0.0
        try:
            some = Path("/proc/pressure/cpu").read_text().splitlines()[0]
            psi = float(some.rsplit("total=", 1)[1])
        except (OSError, IndexError, ValueError):
            psi = float("nan")
        jiffies = [float(v) for v in Path("/proc/stat").read_text().split("\n")[0].split()[1:]]
        return time.time(), psi, jiffies[7] if len(jiffies) > 7 else 0.0, sum(jiffies[:8])

    def _run(self) -> None:
        while not self._done.wait(0.25):
            self.samples.append(self._read())

    def stop(self) -> None:
        self._done.set()
        self.thread.join()

    def over(self, start: float, end: float) -> dict[str, float]:
        """CPU pressure (% of wall time some task waited for a CPU) and steal (% of CPU time)
        between the samples nearest ``start`` and ``end``."""
        if len(self.samples) < 2:
            return {}
        stamps = np.array([s[0] for s in self.samples])
        a = self.samples[int(np.abs(stamps - start).argmin())]
        b = self.samples[int(np.abs(stamps - end).argmin())]
        if b[0] <= a[0]:
            return {}
        return {"psi_cpu_some_pct": (b[1] - a[1]) / 1e6 / (b[0] - a[0]) * 100,
                "steal_pct": (b[2] - a[2]) / max(b[3] - a[3], 1.0) * 100}


def _detached(command: list[str], log: Path) -> psutil.Process:
    """Start ``command`` outside this process's tree (reparented to init), as a service the
    machine runs beside Dagster would be: the executor counts its own run's descendants as the
    run's work, so the scanner and the hog must not be children of the run process."""
    line = " ".join(shlex.quote(part) for part in command)
    out = subprocess.run(["sh", "-c", f"{line} >{shlex.quote(str(log))} 2>&1 & echo $!"],
                         cwd=REPO, capture_output=True, text=True, check=True)
    return psutil.Process(int(out.stdout.strip()))


def _stop(process: psutil.Process, sig: int = signal.SIGTERM) -> None:
    try:
        process.send_signal(sig)
        process.wait(60)
    except psutil.NoSuchProcess:
        pass


class ScannerProcess:
    """``btpipeline scanner`` as a user runs it (shipped settings unless ``protected`` is
    False: then nice 0 on any core), with a per-tick latency log."""

    def __init__(self, home: Path, name: str, cadence: float, protected: bool) -> None:
        self.log = home / f"latency-{name}.csv"
        args = [sys.executable, "-m", "btpipeline", "scanner", "--cadence-seconds",
                str(cadence), "--budget-ms", str(BUDGET_MS), "--epics", ",".join(EPICS),
                "--latency-log", str(self.log), "--window", "100000"]
        # the default heartbeat path: the executor's fast path finds the scanner by it
        if not protected:
            args += ["--nice", "0", "--cores", ""]
        # its own session, as a service runs it: its autogroup then gets its nice too
        # (btpipeline/scanner/isolation.py); the unprotected row's stays at 0
        self.proc = _detached(["setsid", *args], home / f"scanner-{name}.out")
        self.started = time.time()

    def ticks_logged(self) -> int:
        if not self.log.exists():
            return 0
        with self.log.open("rb") as f:
            return max(0, sum(1 for _ in f) - 1)

    def wait_for_ticks(self, count: int, timeout: float = 120.0) -> None:
        deadline = time.time() + timeout
        while self.ticks_logged() < count:
            if time.time() > deadline or not self.proc.is_running():
                raise RuntimeError(f"the scanner did not log {count} ticks within {timeout:g} s "
                                   f"(see its output beside {self.log})")
            time.sleep(0.05)

    def isolation(self) -> str:
        """The nice value and cores the scanner process runs with, read from the kernel."""
        cores = self.proc.cpu_affinity()
        where = "any core" if len(cores) == os.cpu_count() else f"core {','.join(map(str, cores))}"
        return f"nice {self.proc.nice()}, {where}"

    def stop(self) -> dict[str, np.ndarray]:
        """SIGTERM; returns every logged tick's columns."""
        _stop(self.proc)
        return _read_trace(self.log)


def _executor_config(protected: bool | str) -> dict:
    if protected == "all cores":
        return {"execution_mode": "STANDALONE"}
    if protected:
        return {"execution_mode": "CONCURRENT"}
    return {"execution_mode": "STANDALONE", "worker_priority_enabled": False,
            "worker_affinity_enabled": False, "load_shedding_enabled": False}


def _backfill(protected: bool | str, months: int, stopped: threading.Event | None = None
              ) -> tuple[float, int, str]:
    """One backfill run in this process; ``stopped`` set: it was terminated on purpose."""
    from dagster import DagsterInstance, execute_job, reconstructable

    from btpipeline.definitions import backtest_job_def
    from btpipeline.machine.tags import RANGE_END_TAG, RANGE_START_TAG

    config = {"execution": {"config": _executor_config(protected)},
              "loggers": {"console": {"config": {"log_level": "WARNING"}}}}
    tags = {RANGE_START_TAG: f"{YEAR}-01-01", RANGE_END_TAG: f"{YEAR}-{months:02d}-01",
            "btpipeline/priority": "NORMAL"}
    began = time.perf_counter()
    with execute_job(reconstructable(backtest_job_def), instance=DagsterInstance.get(),
                     run_config=config, tags=tags, raise_on_error=stopped is None) as result:
        assert result.success or (stopped is not None and stopped.is_set()), \
            f"the backfill run {result.run_id} failed"
        steps = len(result.get_step_success_events())
        run_id = result.run_id
    return time.perf_counter() - began, steps, run_id


def _backfills(protected: bool | str, months: int, min_seconds: float,
               done: Callable[[], bool], starts: list[float]) -> tuple[float, int, list[str]]:
    """The backfill again and again (every run recomputes every month) until ``done()`` and
    for at least ``min_seconds``; ``starts`` gets each run's start (unix time). The run in
    progress then is terminated as a user would (SIGINT, which Dagster turns into a run
    termination: the executor resumes, interrupts and reaps its workers), so a row lasts its
    ticks, not its ticks plus the rest of a run the fast path may hold paused for minutes."""
    total_s, total_steps, run_ids = 0.0, 0, []
    in_run, stopped, finished = threading.Event(), threading.Event(), threading.Event()
    began = time.time()

    def watch() -> None:
        last = 0.0
        while not finished.wait(0.1):
            if in_run.is_set() and done() and time.time() - began >= min_seconds:
                stopped.set()
                if time.time() - last > 2.0:  # again while the run lasts: one sent before
                    os.kill(os.getpid(), signal.SIGINT)  # Dagster listens is dropped
                    last = time.time()

    previous = signal.signal(signal.SIGINT, lambda *_: None)  # our SIGINT after a run's end
    watcher = threading.Thread(target=watch, daemon=True)
    watcher.start()
    try:
        while not stopped.is_set() and (not done() or time.time() - began < min_seconds):
            starts.append(time.time())
            in_run.set()
            elapsed, steps, run_id = _backfill(protected, months, stopped)
            in_run.clear()
            total_s, total_steps = total_s + elapsed, total_steps + steps
            run_ids.append(run_id)
    finally:
        finished.set()
        watcher.join()
        signal.signal(signal.SIGINT, previous)
    return total_s, total_steps, run_ids


@dataclasses.dataclass
class SweepLoad:
    """``sweep_job`` on a ``size`` grid as shipped, in its own run process (so it can be
    terminated as a user would), started again whenever it ends until ``done()``."""

    home: Path
    size: int
    months: int
    runs: int = 0
    completed: int = 0
    terminated: bool = False
    chunk_steps: int = 0
    chunks_planned: int = 0
    seen_pids: set[int] = dataclasses.field(default_factory=set)
    leftover: list[str] = dataclasses.field(default_factory=list)
    exit_codes: list[int] = dataclasses.field(default_factory=list)
    stop_s: float = 0.0  # SIGINT -> run process gone

    def run(self, done: Callable[[], bool], starts: list[float]) -> None:
        config = self.home / "sweep-config.json"
        config.write_text(json.dumps({"size": self.size, "months": self.months}))
        while not done():
            starts.append(time.time())
            child = psutil.Popen([sys.executable, str(Path(__file__).resolve()),
                                  "--sweep-child", str(config)], cwd=REPO,
                                 stdout=(self.home / f"sweep-{self.runs}.out").open("w"),
                                 stderr=subprocess.STDOUT)
            self.runs += 1
            while child.poll() is None and not done():
                self._note_descendants(child)
                time.sleep(0.25)
            if child.poll() is None:
                self._terminate(child)
            else:
                self.completed += child.returncode == 0
            self.exit_codes.append(int(child.returncode))
        self._check_nothing_left()

    def _note_descendants(self, child: psutil.Process) -> None:
        try:
            self.seen_pids.update(p.pid for p in child.children(recursive=True))
        except psutil.NoSuchProcess:
            pass

    def _terminate(self, child: psutil.Popen) -> None:
        """SIGINT, as Ctrl-C or a run termination: the executor interrupts its workers and
        kills those still running after its grace period; SIGKILL only after 120 s."""
        self._note_descendants(child)
        self.terminated = True
        began = time.time()
        child.send_signal(signal.SIGINT)
        try:
            child.wait(120)
        except psutil.TimeoutExpired:
            child.kill()
            child.wait(30)
            self.leftover.append(f"run process {child.pid} ignored SIGINT for 120 s: killed")
        self.stop_s = time.time() - began

    def _check_nothing_left(self) -> None:
        deadline = time.time() + 30
        alive: list[psutil.Process] = []
        while time.time() < deadline:
            alive = []
            for pid in self.seen_pids:
                try:
                    proc = psutil.Process(pid)
                    if proc.status() != psutil.STATUS_ZOMBIE:
                        alive.append(proc)
                except psutil.NoSuchProcess:
                    continue
            if not alive:
                return
            time.sleep(0.5)
        for proc in alive:
            self.leftover.append(f"pid {proc.pid} ({' '.join(proc.cmdline()[:4])}) still "
                                 "running 30 s after its run process ended")
            proc.kill()

    def count_chunks(self) -> list[str]:
        """Chunk steps finished and planned over every sweep run (from the event log); returns
        the run ids."""
        from dagster import DagsterEventType, DagsterInstance, RunsFilter

        instance = DagsterInstance.get()
        run_ids = [r.dagster_run.run_id
                   for r in instance.get_run_records(RunsFilter(job_name="sweep_job"))]
        for run_id in run_ids:
            for event in instance.all_logs(run_id, of_type=DagsterEventType.STEP_SUCCESS):
                self.chunk_steps += (event.step_key or "").startswith("backtest_chunk")
            for event in instance.all_logs(run_id, of_type=DagsterEventType.STEP_OUTPUT):
                data = event.dagster_event.step_output_data if event.dagster_event else None
                self.chunks_planned += bool(data and event.step_key == "plan_sweep"
                                            and data.output_name == "chunks")
        return run_ids


def _sweep_child(config_path: Path) -> None:
    """The sweep's run process: ``sweep_job`` through execute_job, as shipped."""
    from dagster import DagsterInstance, execute_job, reconstructable

    from btpipeline.definitions import sweep_job_def

    sys.path.insert(0, str(REPO))
    from benchmarks.sweep_runs import grid_for

    settings = json.loads(config_path.read_text())
    config = {
        "ops": {"plan_sweep": {"config": {
            "strategy": "macd_crossover", "epic": "EURUSD", "start_date": f"{YEAR}-01-01",
            "end_date": f"{YEAR}-{settings['months']:02d}-28", "grid": grid_for(settings["size"]),
            "rank_by": "total_return", "sweep_id": f"latency-{settings['size']}"}}},
        "execution": {"config": {"execution_mode": "CONCURRENT"}},
        "loggers": {"console": {"config": {"log_level": "WARNING"}}},
    }
    with execute_job(reconstructable(sweep_job_def), instance=DagsterInstance.get(),
                     run_config=config, tags={"btpipeline/priority": "NORMAL"},
                     raise_on_error=False) as result:
        print(f"run {result.run_id}: success {result.success}")
        sys.exit(0 if result.success else 1)


def _guard_events(run_id: str) -> list[tuple[str, float, float, str]]:
    """(state, sampled_at, applied_at, reason) of the run's pause/resume engine events."""
    from dagster import DagsterEventType, DagsterInstance

    out = []
    for record in DagsterInstance.get().all_logs(run_id, of_type=DagsterEventType.ENGINE_EVENT):
        data = record.dagster_event.engine_event_data
        meta = {k: v.value for k, v in (data.metadata or {}).items()} if data else {}
        if "shed_state" in meta:
            out.append((meta["shed_state"], meta["sampled_at_unix"], meta["applied_at_unix"],
                        meta["reason"]))
    return out


class Hog:
    """Two busy loops at nice 0, unpinned, switched on ``cycles`` times for ``on_s``."""

    def __init__(self, start_after: float, on_s: float, off_s: float, cycles: int) -> None:
        self.starts: list[tuple[float, float]] = []
        self._plan = (start_after, on_s, off_s, cycles)
        self._done = threading.Event()
        self.thread = threading.Thread(target=self._run, daemon=True)

    def _run(self) -> None:
        start_after, on_s, off_s, cycles = self._plan
        if self._done.wait(start_after):
            return
        for _ in range(cycles):
            procs = [_detached(["sh", "-c", "while :; do :; done"], Path(os.devnull))
                     for _ in range(2)]
            began = time.time()
            self._done.wait(on_s)
            for proc in procs:
                _stop(proc, signal.SIGKILL)
            self.starts.append((began, time.time()))
            if self._done.wait(off_s):
                return

    def stop(self) -> None:
        self._done.set()
        self.thread.join()


@dataclasses.dataclass(frozen=True)
class TickPlan:
    """Every row: ``startup`` ticks dropped, then ``count`` ticks under its load."""

    cadence: float
    startup: int
    count: int
    gauge: MachineGauge


def _run_scenario(home: Path, name: str, plan: TickPlan, *, protected: bool | str,
                  backfill_months: int = 0, hog: Hog | None = None,
                  sweep: SweepLoad | None = None, min_seconds: float = 0.0) -> Scenario:
    label = "".join(c if c.isalnum() else "_" for c in name)
    scanner = ScannerProcess(home, label, plan.cadence, bool(protected))
    backfill_s = steps = None
    run_ids: list[str] = []
    load_starts: list[float] = []
    try:
        scanner.wait_for_ticks(plan.startup)
        isolation = scanner.isolation()
        t0 = time.time()
        load_before = os.getloadavg()[0]

        def done() -> bool:
            return scanner.ticks_logged() >= plan.startup + plan.count

        if hog is not None:
            hog.thread.start()
        if backfill_months:
            backfill_s, steps, run_ids = _backfills(protected, backfill_months, min_seconds,
                                                    done, load_starts)
        elif sweep is not None:
            sweep.run(done, load_starts)
            run_ids = sweep.count_chunks()
        else:
            scanner.wait_for_ticks(plan.startup + plan.count, timeout=plan.count * 60)
    finally:
        if hog is not None:
            hog.stop()
        trace = scanner.stop()
    keep = counted_ticks(trace["tick"], plan.startup, plan.count)
    startup_ms = trace["latency_ms"][trace["tick"] < plan.startup]
    trace = {k: v[keep] for k, v in trace.items()}
    scenario = Scenario(name, trace["latency_ms"], trace["tick_unix"] - t0, backfill_s,
                        steps or 0, trace=trace, isolation=isolation,
                        load_starts=[s - t0 for s in load_starts], startup_ms=startup_ms)
    first, last = trace["tick_unix"][0], trace["tick_unix"][-1]
    scenario.machine = {"load_before": load_before, "load_after": os.getloadavg()[0],
                        **plan.gauge.over(first, last)}
    if hog is not None:
        scenario.hogs = [(a - t0, b - t0) for a, b in hog.starts]
    if run_ids:
        _pauses(scenario, [e for run_id in run_ids for e in _guard_events(run_id)], t0, hog)
    return scenario


def _pauses(scenario: Scenario, events: list[tuple[str, float, float, str]], t0: float,
            hog: Hog | None) -> None:
    paused_at = None
    for state, _sampled, applied, reason in events:
        if state == "PAUSED" and paused_at is None:
            paused_at = applied
            scenario.reasons.append(f"{applied - t0:.1f} s: {reason}")
        elif state == "RUNNING" and paused_at is not None:
            scenario.pauses.append((paused_at - t0, applied - t0))
            paused_at = None
    if hog is None:
        return
    for began, _ended in hog.starts:
        if any(a <= began - t0 < b for a, b in scenario.pauses):
            continue  # still paused from the previous hog: nothing to react to
        after = [applied for state, _s, applied, _r in events if state == "PAUSED"
                 and applied >= began - 0.05]
        if after:
            scenario.reactions_ms.append((after[0] - began) * 1000.0)


def _p99(latencies: np.ndarray) -> float:
    return float(np.percentile(latencies, 99))


def _row(s: Scenario, idle: Scenario) -> str:
    p50, p95, p99 = np.percentile(s.latencies, [50, 95, 99])
    over = int((s.latencies > BUDGET_MS).sum())
    m = s.machine
    return (f"| {s.name} | {s.isolation} | {len(s.latencies)} | {m['load_before']:.2f} -> "
            f"{m['load_after']:.2f} | {p50:.1f} | {p95:.1f} | {p99:.1f} | "
            f"{s.latencies.max():.1f} | {p99 / _p99(idle.latencies):.2f}x | {over} |")


def _where_row(s: Scenario) -> str:
    """Means over all counted ticks, then over the slowest 1 % (at least 3 ticks)."""
    t = s.trace
    slow = np.argsort(t["latency_ms"])[-max(3, len(t["latency_ms"]) // 100):]

    def parts(idx: np.ndarray) -> str:
        lat, wake = t["latency_ms"][idx].mean(), t["wake_ms"][idx].mean()
        cpu, runq = t["cpu_ms"][idx].mean(), t["runq_ms"][idx].mean()
        return (f"{lat:.1f} | {wake:.1f} | {cpu:.1f} | {runq:.1f} | "
                f"{lat - wake - cpu - runq:.1f}")

    everything = np.arange(len(t["latency_ms"]))
    m = s.machine
    return (f"| {s.name} | {parts(everything)} | {parts(slow)} | "
            f"{m.get('psi_cpu_some_pct', float('nan')):.0f} | "
            f"{m.get('steal_pct', float('nan')):.1f} |")


def _slowest(s: Scenario, count: int = 3) -> str:
    """When the slowest ticks came: seconds after the load began and after the last run
    (re)started, with what the tick spent where."""
    t = s.trace
    out = []
    for i in np.argsort(t["latency_ms"])[::-1][:count]:
        at = float(s.times[i])
        since = [at - x for x in s.load_starts if x <= at]
        run = f", {min(since):.1f} s after its run started" if since else ""
        out.append(f"{t['latency_ms'][i]:.1f} ms at {at:.1f} s{run} (wake {t['wake_ms'][i]:.1f}, "
                   f"cpu {t['cpu_ms'][i]:.1f}, run queue {t['runq_ms'][i]:.1f})")
    return f"- {s.name}: " + "; ".join(out)


def _verdict(runs: list[Scenario], idle: Scenario) -> list[str]:
    lines = []
    for s in runs:
        if s.name in ("protected", "protected + sweep"):
            ratio = _p99(s.latencies) / _p99(idle.latencies)
            held = "holds" if ratio <= GOAL_RATIO else "NOT met"
            lines.append(f"- {s.name}: p99 {ratio:.2f}x idle (goal <= {GOAL_RATIO}x): {held}")
    worst = max(runs, key=lambda r: float(r.latencies.max()))
    held = "holds" if worst.latencies.max() < GOAL_MAX_MS else "NOT met"
    lines.append(f"- max < {GOAL_MAX_MS:.0f} ms in every row: {held} (largest "
                 f"{worst.latencies.max():.1f} ms, {worst.name})")
    return lines


def _plot(scenarios: list[Scenario], path: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, axes = plt.subplots(len(scenarios), 1, figsize=(11, 2.4 * len(scenarios)),
                             sharey=True)
    top = max(float(s.latencies.max()) for s in scenarios) * 1.1
    for ax, s in zip(axes, scenarios, strict=True):
        ax.plot(s.times, s.latencies, lw=0.8, color="tab:blue", label="tick latency")
        if BUDGET_MS < top:
            ax.axhline(BUDGET_MS, color="tab:red", ls="--", lw=0.8, label="budget")
        for a, b in s.hogs:
            ax.axvspan(a, b, color="tab:orange", alpha=0.25, label="CPU hog on")
        for a, b in s.pauses:
            ax.axvspan(a, b, ymin=0, ymax=0.08, color="tab:green", alpha=0.8,
                       label="backtests paused")
        ax.set_title(f"{s.name}: p50 {np.percentile(s.latencies, 50):.1f} ms, p99 "
                     f"{np.percentile(s.latencies, 99):.1f} ms, max {s.latencies.max():.1f} ms",
                     fontsize=9)
        ax.set_ylabel("ms")
        ax.set_ylim(0, top)
        handles, labels = ax.get_legend_handles_labels()
        unique = dict(zip(labels, handles, strict=True))
        ax.legend(unique.values(), unique.keys(), fontsize=7, loc="upper right")
    axes[-1].set_xlabel("seconds since the scenario's load started (start-up ticks dropped)")
    fig.suptitle(f"Live scanner tick latency (budget {BUDGET_MS:.0f} ms"
                 f"{', above every tick' if BUDGET_MS >= top else ''})", fontsize=10)
    fig.tight_layout()
    fig.savefig(path, dpi=110)


SCENARIOS = ("idle", "unprotected", "protected", "all-cores", "hog", "sweep")


def _arguments() -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--cadence", type=float, default=0.25)
    parser.add_argument("--ticks", type=int, default=240,
                        help="ticks every row counts, after its start-up ticks (default "
                        "%(default)s: 60 s at the default cadence)")
    parser.add_argument("--startup-ticks", type=int, default=8,
                        help="first ticks of every row's scanner dropped (default %(default)s)")
    parser.add_argument("--months", type=int, default=12, help="backfill months of 2023")
    parser.add_argument("--min-seconds", type=float, default=0.0,
                        help="also repeat each scenario's backfill until it has run this long")
    parser.add_argument("--sweep-size", type=int, choices=[100, 10_000], default=10_000,
                        help="combinations of the sweep row's grid (default %(default)s)")
    parser.add_argument("--skip", default="",
                        help=f"comma-separated rows to leave out, of {', '.join(SCENARIOS[1:])}")
    parser.add_argument("--png", default=str(REPO / "benchmarks" / "scanner_latency.png"))
    parser.add_argument("--sweep-child", type=Path, help=argparse.SUPPRESS)
    args = parser.parse_args()
    unknown = set(filter(None, args.skip.split(","))) - set(SCENARIOS[1:])
    if unknown:
        parser.error(f"--skip {','.join(sorted(unknown))}: not a row; rows: "
                     f"{', '.join(SCENARIOS[1:])}")
    return args


def _scenarios(home: Path, args: argparse.Namespace, plan: TickPlan) -> list[Scenario]:
    skip = set(args.skip.split(","))
    months, floor = args.months, args.min_seconds
    runs = [_run_scenario(home, "idle", plan, protected=True)]
    if "unprotected" not in skip:
        runs.append(_run_scenario(home, "unprotected", plan, protected=False,
                                  backfill_months=months, min_seconds=floor))
    if "protected" not in skip:
        runs.append(_run_scenario(home, "protected", plan, protected=True,
                                  backfill_months=months, min_seconds=floor))
    if "all-cores" not in skip:
        runs.append(_run_scenario(home, "protected, all cores", plan, protected="all cores",
                                  backfill_months=months, min_seconds=floor))
    if "hog" not in skip:
        runs.append(_run_scenario(home, "protected + hog", plan, protected=True,
                                  backfill_months=months, min_seconds=floor,
                                  hog=Hog(start_after=5.0, on_s=4.0, off_s=6.0, cycles=4)))
    if "sweep" not in skip:
        sweep = SweepLoad(home, args.sweep_size, months)
        runs.append(_run_scenario(home, "protected + sweep", plan, protected=True, sweep=sweep))
        runs[-1].notes.append(
            f"sweep_job, {args.sweep_size:,} combinations: {sweep.runs} run(s), "
            f"{sweep.completed} completed, {sweep.chunk_steps} of {sweep.chunks_planned} "
            f"chunk steps planned finished; terminated: {sweep.terminated} (SIGINT -> run "
            f"process gone in {sweep.stop_s:.1f} s, exit codes {sweep.exit_codes}); "
            f"{len(sweep.seen_pids)} processes of its runs seen, left running afterwards: "
            f"{'; '.join(sweep.leftover) or 'none'}")
    return runs


def _report(args: argparse.Namespace, runs: list[Scenario]) -> None:
    idle = runs[0]
    named = {s.name: s for s in runs}
    print(f"Scanner: {len(EPICS)} epics x 4 strategies every {args.cadence} s, budget "
          f"{BUDGET_MS:.0f} ms; every row {args.ticks} ticks after {args.startup_ticks} "
          f"start-up ticks (the same replayed bars). Backfill: 24 backtest assets x "
          f"{args.months} months of {YEAR} as one run on backtest_executor, repeated until the "
          f"scanner has its ticks. Sweep: sweep_job, {args.sweep_size:,} combinations of "
          f"macd_crossover on EURUSD, {args.months} months of {YEAR}, terminated when the "
          f"scanner has its ticks. {os.cpu_count()} CPUs.\n")
    print("| scenario | scanner | ticks | load avg 1 min (start -> end) | p50 ms | p95 ms | "
          "p99 ms | max ms | p99 / idle p99 | over budget |")
    print("|---|---|---|---|---|---|---|---|---|---|")
    for s in runs:
        print(_row(s, idle))
    print("\nGoals:")
    print("\n".join(_verdict(runs, idle)))
    print("\nWhere the ticks' time went, ms per tick (wake = woke after the scheduled time; cpu "
          "and run queue from the scanner thread's schedstat; blocked = the rest: I/O, locks); "
          "CPU pressure = % of the row's wall time some task waited for a CPU "
          "(/proc/pressure/cpu), steal = % of CPU time the hypervisor took:\n")
    print("| scenario | all: latency | wake | cpu | run queue | blocked | slowest 1 %: latency "
          "| wake | cpu | run queue | blocked | CPU pressure % | steal % |")
    print("|---|---|---|---|---|---|---|---|---|---|---|---|---|")
    for s in runs:
        print(_where_row(s))
    print("\nStart-up ticks dropped, ms (the load starts after them):")
    for s in runs:
        print(f"- {s.name}: {', '.join(f'{x:.1f}' for x in s.startup_ms)} (counted ticks' "
              f"median {np.median(s.latencies):.1f})")
    print("\nThe three slowest ticks of each row:")
    for s in runs:
        print(_slowest(s))
    for s in runs:
        for note in s.notes:
            print(f"- {s.name}: {note}")
    backfilled = [s for s in runs if s.backfill_s]
    if backfilled:
        print("\n| backfill beside the scanner | wall s | steps | steps/min | throughput vs "
              f"{backfilled[0].name} |\n|---|---|---|---|---|")
        base = max(backfilled[0].steps, 1) / (backfilled[0].backfill_s or 1.0)
        for s in backfilled:
            rate = s.steps / (s.backfill_s or 1.0)
            print(f"| {s.name} | {s.backfill_s or 0.0:.1f} | {s.steps} | {60 * rate:.1f} | "
                  f"{rate / base:.2f}x |")
    if "protected + hog" in named:
        hogged = named["protected + hog"]
        reactions = hogged.reactions_ms
        print(f"\nFast path, hog start -> workers SIGSTOPped: "
              f"{', '.join(f'{r:.0f}' for r in reactions) or 'none'} ms "
              f"({len(reactions)} hog starts found the workers running; the others found them "
              f"still paused); pauses: "
              f"{', '.join(f'{b - a:.1f}' for a, b in hogged.pauses)} s")
    for s in runs:
        for reason in s.reasons:
            print(f"- {s.name}, paused at {reason}")
    _plot(runs, Path(args.png))
    print(f"\nPNG: {args.png}")


def main() -> None:
    args = _arguments()
    if args.sweep_child:
        _sweep_child(args.sweep_child)
        return
    began = time.time()
    with tempfile.TemporaryDirectory() as tmp:
        home = Path(tmp)
        os.environ["BTPIPELINE_HOME"] = str(home / "btp")
        os.environ["DAGSTER_HOME"] = str(home / "dagster_home")
        Path(os.environ["DAGSTER_HOME"]).mkdir()
        (Path(os.environ["DAGSTER_HOME"]) / "dagster.yaml").write_text(
            (REPO / "dagster.yaml").read_text())
        from btpipeline.data.store import CandleStore, generate_into_store
        from btpipeline.settings import default_data_dir

        generate_into_store(CandleStore(default_data_dir()), EPICS, dt.date(YEAR - 1, 12, 1),
                            dt.date(YEAR, args.months, 28), 7)
        _backfill(True, 1)  # warm: tables, page cache, forkserver imports
        gauge = MachineGauge()
        try:
            runs = _scenarios(home, args, TickPlan(args.cadence, args.startup_ticks,
                                                   args.ticks, gauge))
        finally:
            gauge.stop()
        _report(args, runs)
    print(f"\nWhole benchmark: {time.time() - began:.0f} s")


if __name__ == "__main__":
    main()
