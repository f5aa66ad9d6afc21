"""The live scanner's latency beside a full backtest backfill, with and without protection;
how fast the executor's fast path pauses backtests when a CPU hog appears; what protection
costs in backtest throughput.

Scenarios, one after the other in one process (same machine state, same data):

* ``idle``: the scanner alone.
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

The scanner runs every ``--cadence`` s over 6 epics x 4 strategies with a 100 ms budget and
writes a CSV line per tick (``btpipeline scanner --latency-log``); the figures and the PNG
come from those lines.

Run: ``python benchmarks/scanner_latency.py`` (about 5 minutes; writes
benchmarks/scanner_latency.png and prints the markdown tables kept in scanner_latency.md).
"""

import argparse
import dataclasses
import datetime as dt
import os
import shlex
import signal
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

import numpy as np
import psutil

REPO = Path(__file__).resolve().parent.parent
EPICS = ["EURUSD", "GBPUSD", "USDJPY", "AUDUSD", "USDCHF", "USDCAD"]
YEAR = 2023
BUDGET_MS = 100.0


@dataclasses.dataclass
class Scenario:
    name: str
    latencies: np.ndarray  # ms per tick
    times: np.ndarray  # s since the scenario started
    backfill_s: float | None = None
    steps: int = 0
    hogs: list[tuple[float, float]] = dataclasses.field(default_factory=list)
    pauses: list[tuple[float, float]] = dataclasses.field(default_factory=list)
    reactions_ms: list[float] = dataclasses.field(default_factory=list)
    reasons: list[str] = dataclasses.field(default_factory=list)


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
    """``btpipeline scanner`` as a user runs it, with a per-tick latency log."""

    def __init__(self, home: Path, name: str, cadence: float, protected: bool) -> None:
        self.log = home / f"latency-{name}.csv"
        args = [sys.executable, "-m", "btpipeline", "scanner", "--cadence-seconds",
                str(cadence), "--budget-ms", str(BUDGET_MS), "--epics", ",".join(EPICS),
                "--latency-log", str(self.log), "--window", "100000"]
        if not protected:
            args += ["--nice", "0", "--cores", ""]
        self.proc = _detached(args, home / f"scanner-{name}.out")
        self.started = time.time()
        self._wait_for_first_tick()

    def _wait_for_first_tick(self) -> None:
        deadline = time.time() + 60
        while time.time() < deadline:
            if self.log.exists() and len(self.log.read_text().splitlines()) > 3:
                self.started = time.time()
                return
            time.sleep(0.1)
        raise RuntimeError("the scanner did not start ticking within 60 s")

    def stop(self) -> tuple[np.ndarray, np.ndarray]:
        """SIGTERM; returns (times since start, latency ms) of the ticks after warm-up."""
        _stop(self.proc)
        rows = [line.split(",") for line in self.log.read_text().splitlines()[1:]]
        stamps = np.array([float(r[1]) for r in rows])
        latency = np.array([float(r[2]) for r in rows])
        keep = stamps >= self.started
        return stamps[keep] - self.started, latency[keep]


def _executor_config(protected: bool | str) -> dict:
    if protected == "all cores":
        return {"execution_mode": "STANDALONE"}
    if protected:
        return {"execution_mode": "CONCURRENT"}
    return {"execution_mode": "STANDALONE", "worker_priority_enabled": False,
            "worker_affinity_enabled": False, "load_shedding_enabled": False}


def _backfill(protected: bool | str, months: int) -> tuple[float, int, str]:
    from dagster import DagsterInstance, execute_job, reconstructable

    from btpipeline.definitions import backtest_job_def
    from btpipeline.machine.tags import RANGE_END_TAG, RANGE_START_TAG

    config = {"execution": {"config": _executor_config(protected)},
              "loggers": {"console": {"config": {"log_level": "WARNING"}}}}
    tags = {RANGE_START_TAG: f"{YEAR}-01-01", RANGE_END_TAG: f"{YEAR}-{months:02d}-01",
            "btpipeline/priority": "NORMAL"}
    began = time.perf_counter()
    with execute_job(reconstructable(backtest_job_def), instance=DagsterInstance.get(),
                     run_config=config, tags=tags) as result:
        assert result.success, "the backfill run failed"
        steps = len(result.get_step_success_events())
        run_id = result.run_id
    return time.perf_counter() - began, steps, run_id


def _backfills(protected: bool | str, months: int, min_seconds: float
               ) -> tuple[float, int, list[str]]:
    """The backfill again and again (every run recomputes every month) for ``min_seconds``."""
    total_s, total_steps, run_ids = 0.0, 0, []
    while total_s < min_seconds:
        elapsed, steps, run_id = _backfill(protected, months)
        total_s, total_steps = total_s + elapsed, total_steps + steps
        run_ids.append(run_id)
    return total_s, total_steps, run_ids


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


def _run_scenario(home: Path, name: str, cadence: float, *, protected: bool | str,
                  backfill_months: int = 0, hog: Hog | None = None,
                  idle_seconds: float = 15.0, min_seconds: float = 50.0) -> Scenario:
    label = "".join(c if c.isalnum() else "_" for c in name)
    scanner = ScannerProcess(home, label, cadence, bool(protected))
    t0 = scanner.started
    backfill_s = steps = None
    run_ids: list[str] = []
    try:
        if hog is not None:
            hog.thread.start()
        if backfill_months:
            backfill_s, steps, run_ids = _backfills(protected, backfill_months, min_seconds)
        else:
            time.sleep(idle_seconds)
    finally:
        if hog is not None:
            hog.stop()
        times, latency = scanner.stop()
    scenario = Scenario(name, latency, times, backfill_s, steps or 0)
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


def _row(s: Scenario, idle: Scenario) -> str:
    p50, p99 = np.percentile(s.latencies, 50), np.percentile(s.latencies, 99)
    added = p99 - np.percentile(idle.latencies, 99)
    over = int((s.latencies > BUDGET_MS).sum())
    return (f"| {s.name} | {len(s.latencies)} | {p50:.1f} | {p99:.1f} | {s.latencies.max():.1f} "
            f"| {added:+.1f} | {over} |")


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
    axes[-1].set_xlabel("seconds since the scenario started")
    fig.suptitle(f"Live scanner tick latency (budget {BUDGET_MS:.0f} ms"
                 f"{', above every tick' if BUDGET_MS >= top else ''})", fontsize=10)
    fig.tight_layout()
    fig.savefig(path, dpi=110)


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--cadence", type=float, default=0.25)
    parser.add_argument("--months", type=int, default=12, help="backfill months of 2023")
    parser.add_argument("--min-seconds", type=float, default=50.0,
                        help="repeat each scenario's backfill until it has run this long")
    parser.add_argument("--png", default=str(REPO / "benchmarks" / "scanner_latency.png"))
    args = parser.parse_args()
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
        runs = [
            _run_scenario(home, "idle", args.cadence, protected=True),
            _run_scenario(home, "unprotected", args.cadence, protected=False,
                          backfill_months=args.months, min_seconds=args.min_seconds),
            _run_scenario(home, "protected", args.cadence, protected=True,
                          backfill_months=args.months, min_seconds=args.min_seconds),
            _run_scenario(home, "protected, all cores", args.cadence, protected="all cores",
                          backfill_months=args.months, min_seconds=args.min_seconds),
            _run_scenario(home, "protected + hog", args.cadence, protected=True,
                          backfill_months=args.months, min_seconds=args.min_seconds,
                          hog=Hog(start_after=5.0, on_s=4.0, off_s=6.0, cycles=4)),
        ]
    idle, unprotected, protected, all_cores, hogged = runs
    print(f"Scanner: {len(EPICS)} epics x 4 strategies every {args.cadence} s, budget "
          f"{BUDGET_MS:.0f} ms. Backfill: 24 backtest assets x {args.months} months of {YEAR} "
          f"as one run on backtest_executor, repeated for >= {args.min_seconds:g} s per "
          f"scenario. {os.cpu_count()} CPUs.\n")
    print("| scenario | ticks | p50 ms | p99 ms | max ms | p99 added vs idle | over budget |")
    print("|---|---|---|---|---|---|---|")
    for s in runs:
        print(_row(s, idle))
    print("\n| backfill beside the scanner | wall s | steps | steps/min | throughput vs "
          "unprotected |\n|---|---|---|---|---|")
    base = unprotected.steps / unprotected.backfill_s
    for s in (unprotected, protected, all_cores, hogged):
        rate = s.steps / s.backfill_s
        print(f"| {s.name} | {s.backfill_s:.1f} | {s.steps} | {60 * rate:.1f} | "
              f"{rate / base:.2f}x |")
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


if __name__ == "__main__":
    main()
