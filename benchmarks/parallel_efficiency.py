"""Parallel efficiency and memory of a CPU-bound backtest backfill on backtest_executor.

Every strategy x epic over one year of 1-minute candles (24 steps, 12 monthly partitions each)
runs as one Dagster run on backtest_executor, sequentially (one worker) and with one worker per
core. Efficiency = T(sequential) / (cores x T(all cores)). "Sequential" is measured two ways:
the whole run confined to one core (the textbook T(1 processor): the run's own process, its
worker and, on SQLite, every database write share that core), and one worker with every core
available (stricter: the run process's event writes and the database server overlap with the
worker on the idle core). Beside it, the same 24 backtests without Dagster or a database (kernel
only, a multiprocessing pool), which says how far this machine's cores scale at all. Memory:
peak RSS and PSS (proportional set size: shared memory-mapped pages divided among the processes
that map them) of the workers.

Run: ``python benchmarks/parallel_efficiency.py [--results-url URL] [--dagster-postgres-db NAME]``
"""

import argparse
import contextlib
import dataclasses
import datetime as dt
import multiprocessing
import os
import tempfile
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import psutil

YEAR = 2023


def _workers() -> list[psutil.Process]:
    """Worker processes: the children of this process's forkserver."""
    found = []
    for child in psutil.Process().children(recursive=True):
        try:
            if "forkserver" in " ".join(child.cmdline()):
                found.extend(child.children())
        except psutil.Error:
            continue
    return found


class MemorySampler(threading.Thread):
    def __init__(self) -> None:
        super().__init__(daemon=True)
        self.stop = threading.Event()
        self.peak_rss = self.peak_pss = self.peak_one_rss = self.peak_one_pss = 0

    def run(self) -> None:
        while not self.stop.wait(1.0):  # sparse: it runs in the measured process
            rss = pss = 0
            for proc in _workers():
                try:
                    info = proc.memory_full_info()
                except psutil.Error:
                    continue
                rss, pss = rss + info.rss, pss + info.pss
                self.peak_one_rss = max(self.peak_one_rss, info.rss)
                self.peak_one_pss = max(self.peak_one_pss, info.pss)
            self.peak_rss, self.peak_pss = max(self.peak_rss, rss), max(self.peak_pss, pss)


@dataclasses.dataclass
class RunTiming:
    """One Dagster run: wall time, and where it went (from its event log)."""

    seconds: float
    memory: MemorySampler
    run_creation: float  # Dagster writes one planned-materialization event per partition
    execution: float  # RUN_START to RUN_SUCCESS: what the executor runs
    before_first_step: float  # run creation and worker start
    steps_phase: float  # first STEP_START to last STEP_SUCCESS
    step_seconds: float  # sum of the steps' own durations


@contextlib.contextmanager
def _on_cores(count: int | None) -> Iterator[None]:
    """Confine this process, every process it starts and the local PostgreSQL server (its
    postmaster's children inherit it) to the first ``count`` cores; restored afterwards."""
    if count is None:
        yield
        return
    allowed = sorted(os.sched_getaffinity(0))
    _set_affinity(allowed[:count])
    try:
        yield
    finally:
        _set_affinity(allowed)  # also the server backends started meanwhile


def _set_affinity(cores: list[int]) -> None:
    os.sched_setaffinity(0, cores)
    for proc in _postgres_processes():
        with contextlib.suppress(psutil.Error):
            proc.cpu_affinity(cores)


def _postgres_processes() -> list[psutil.Process]:
    found = []
    for proc in psutil.process_iter(["name"]):
        if (proc.info["name"] or "").startswith("postgres"):
            found.append(proc)
    return found


def _dagster_backfill(workers: int, cores: int | None = None) -> RunTiming:
    from dagster import DagsterInstance, execute_job, reconstructable

    from btpipeline.definitions import backtest_job_def
    from btpipeline.machine.tags import RANGE_END_TAG, RANGE_START_TAG

    config = {"execution": {"config": {"max_concurrent_backtests": workers,
                                       "execution_mode": "STANDALONE"}},
              "loggers": {"console": {"config": {"log_level": "WARNING"}}}}
    tags = {RANGE_START_TAG: f"{YEAR}-01-01", RANGE_END_TAG: f"{YEAR}-12-01"}
    sampler = MemorySampler()
    sampler.start()
    instance = DagsterInstance.get()
    with _on_cores(cores):
        began = time.perf_counter()
        with execute_job(reconstructable(backtest_job_def), instance=instance,
                         run_config=config, tags=tags) as result:
            assert result.success, "the backfill run failed"
            run_id = result.run_id
        elapsed = time.perf_counter() - began
    sampler.stop.set()
    sampler.join()
    return _timing(instance, run_id, elapsed, sampler)


def _timing(instance, run_id: str, elapsed: float, sampler: MemorySampler) -> RunTiming:
    records = instance.all_logs(run_id)
    first = records[0].timestamp
    starts, ends, run_start = {}, {}, first
    for record in records:
        kind = record.dagster_event.event_type_value if record.dagster_event else ""
        if kind == "PIPELINE_START":
            run_start = record.timestamp
        elif kind == "STEP_START":
            starts[record.step_key] = record.timestamp
        elif kind == "STEP_SUCCESS":
            ends[record.step_key] = record.timestamp
    return RunTiming(elapsed, sampler, run_start - first, records[-1].timestamp - run_start,
                     min(starts.values()) - first,
                     max(ends.values()) - min(starts.values()),
                     sum(ends[key] - starts[key] for key in ends))


def _kernel_one(job: tuple[str, str]) -> int:
    from btpipeline.data.store import CandleStore
    from btpipeline.epics import get_epic
    from btpipeline.settings import default_data_dir
    from btpipeline.strategies import get_strategy, run_backtest

    strategy, epic = job
    start = int(dt.datetime(YEAR, 1, 1, tzinfo=dt.timezone.utc).timestamp() * 1e9)
    end = int(dt.datetime(YEAR + 1, 1, 1, tzinfo=dt.timezone.utc).timestamp() * 1e9)
    params = get_strategy(strategy).make_params(None)
    candles = CandleStore(default_data_dir()).read_range(
        epic, start, end, warmup_bars=get_strategy(strategy).warmup_bars(params))
    result = run_backtest(candles, strategy=strategy, params=params, epic=get_epic(epic),
                          start_ns=start, end_ns=end)
    return len(result.fills)


def _kernel(jobs: list[tuple[str, str]], processes: int) -> float:
    context = multiprocessing.get_context("fork")
    with context.Pool(processes) as pool:
        pool.map(_kernel_one, jobs[:2])  # warm imports and page cache
        began = time.perf_counter()
        pool.map(_kernel_one, jobs, chunksize=1)
        return time.perf_counter() - began


def _fresh_postgres_db(name: str) -> None:
    """Drop and create ``name`` on 127.0.0.1 and point deploy/postgres/dagster.yaml at it."""
    from sqlalchemy import create_engine, text

    engine = create_engine("postgresql://postgres@127.0.0.1:5432/postgres",
                           isolation_level="AUTOCOMMIT")
    with engine.connect() as conn:
        conn.execute(text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
        conn.execute(text(f'CREATE DATABASE "{name}"'))
    engine.dispose()
    os.environ.update(DAGSTER_PG_USERNAME="postgres", DAGSTER_PG_PASSWORD="",
                      DAGSTER_PG_HOST="127.0.0.1", DAGSTER_PG_PORT="5432", DAGSTER_PG_DB=name)


def _mb(n: int) -> str:
    return f"{n / 2**20:,.0f}"


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--results-url", default=None,
                        help="results database URL (default: SQLite under BTPIPELINE_HOME)")
    parser.add_argument("--dagster-postgres-db", default=None, metavar="NAME",
                        help="store Dagster's runs and event logs in this (fresh) PostgreSQL "
                        "database on 127.0.0.1 with deploy/postgres/dagster.yaml, as in "
                        "production (default: the embedded SQLite instance)")
    parser.add_argument("--rounds", type=int, default=2,
                        help="measure every configuration this many times, interleaved, and "
                        "keep each one's fastest (default 2)")
    args = parser.parse_args()
    cores = len(os.sched_getaffinity(0))
    with tempfile.TemporaryDirectory() as tmp:
        os.environ["BTPIPELINE_HOME"] = str(Path(tmp) / "btp")
        os.environ["DAGSTER_HOME"] = str(Path(tmp) / "dagster_home")
        Path(os.environ["DAGSTER_HOME"]).mkdir()
        repo = Path(__file__).resolve().parent.parent
        instance_yaml = repo / "dagster.yaml"
        if args.dagster_postgres_db:
            instance_yaml = repo / "deploy" / "postgres" / "dagster.yaml"
            _fresh_postgres_db(args.dagster_postgres_db)
        (Path(os.environ["DAGSTER_HOME"]) / "dagster.yaml").write_text(instance_yaml.read_text())
        if args.results_url:
            os.environ["BTPIPELINE_RESULTS_URL"] = args.results_url
        from btpipeline import universe
        from btpipeline.data.store import CandleStore, generate_into_store
        from btpipeline.settings import default_data_dir

        generate_into_store(CandleStore(default_data_dir()), universe.epics(),
                            dt.date(YEAR - 1, 12, 1), dt.date(YEAR, 12, 31), 7)
        jobs = [(s, e) for s in universe.strategies() for e in universe.epics()]
        k1, kn = _kernel(jobs, 1), _kernel(jobs, cores)
        _dagster_backfill(1)  # warm-up: tables, page cache
        runs: dict[str, list[RunTiming]] = {"one core": [], "one worker": [], "all": []}
        for _ in range(args.rounds):
            runs["one core"].append(_dagster_backfill(1, cores=1))
            runs["one worker"].append(_dagster_backfill(1))
            runs["all"].append(_dagster_backfill(cores))
        c1, w1, dn = (min(found, key=lambda r: r.seconds) for found in runs.values())
    print(f"{len(jobs)} backtests x 12 months, {cores} cores, results DB: "
          f"{args.results_url or 'SQLite (default)'}, Dagster storage: "
          f"{'PostgreSQL ' + args.dagster_postgres_db if args.dagster_postgres_db else 'SQLite'}\n")
    print(f"| what | sequential | {cores} processes | speed-up | efficiency |")
    print("|---|---|---|---|---|")
    print(f"| kernel only (no Dagster, no DB), s | {k1:.2f} | {kn:.2f} | {k1 / kn:.2f}x | "
          f"{k1 / (cores * kn):.0%} |")
    for label, one in (("1 worker, run confined to 1 core", c1),
                       (f"1 worker, {cores} cores available", w1)):
        print(f"| Dagster run, {label}, s | {one.seconds:.2f} | {dn.seconds:.2f} | "
              f"{one.seconds / dn.seconds:.2f}x | {one.seconds / (cores * dn.seconds):.0%} |")
    for label, one in (("1 worker, run confined to 1 core", c1),
                       (f"1 worker, {cores} cores available", w1)):
        print(f"| Dagster run execution only (RUN_START to RUN_SUCCESS), {label}, s | "
              f"{one.execution:.2f} | {dn.execution:.2f} | {one.execution / dn.execution:.2f}x | "
              f"{one.execution / (cores * dn.execution):.0%} |")
    print(f"\nFastest of {args.rounds} interleaved rounds each. Where a run's time went "
          "(from its event log), s:\n")
    print("| run | wall | run creation | execution | before the first step | steps phase | "
          "sum of step durations |")
    print("|---|---|---|---|---|---|---|")
    for label, run in (("1 worker on 1 core", c1), (f"1 worker, {cores} cores", w1),
                       (f"{cores} workers", dn)):
        print(f"| {label} | {run.seconds:.2f} | {run.run_creation:.2f} | {run.execution:.2f} | "
              f"{run.before_first_step:.2f} | "
              f"{run.steps_phase:.2f} | {run.step_seconds:.2f} |")
    m1, mn = w1.memory, dn.memory
    print(f"\n| memory, MiB | 1 worker | {cores} workers |\n|---|---|---|")
    print(f"| peak RSS, sum of workers | {_mb(m1.peak_rss)} | {_mb(mn.peak_rss)} |")
    print(f"| peak PSS, sum of workers | {_mb(m1.peak_pss)} | {_mb(mn.peak_pss)} |")
    print(f"| peak RSS, largest worker | {_mb(m1.peak_one_rss)} | {_mb(mn.peak_one_rss)} |")


if __name__ == "__main__":
    main()
