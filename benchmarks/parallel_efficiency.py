"""Parallel efficiency and memory of a CPU-bound backtest backfill on backtest_executor.

Every strategy x epic over one year of 1-minute candles (24 steps, 12 monthly partitions each)
runs as one Dagster run on backtest_executor, first with one worker (sequential), then with one
worker per core. Efficiency = T(1 worker) / (workers x T(N workers)). Beside it, the same 24
backtests without Dagster or a database (kernel only, a multiprocessing pool), which says how
far this machine's cores scale at all. Memory: peak RSS and PSS (proportional set size: shared
memory-mapped pages divided among the processes that map them) of the workers.

Run: ``python benchmarks/parallel_efficiency.py [--results-url postgresql://postgres@127.0.0.1:5432/test]``
"""

import argparse
import datetime as dt
import multiprocessing
import os
import tempfile
import threading
import time
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
        while not self.stop.wait(0.2):
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


def _dagster_backfill(workers: int) -> tuple[float, MemorySampler]:
    from dagster import DagsterInstance, execute_job, reconstructable

    from btpipeline.assets.partitions import RANGE_END_TAG, RANGE_START_TAG
    from btpipeline.definitions import backtest_job_def

    config = {"execution": {"config": {"max_concurrent_backtests": workers,
                                       "execution_mode": "STANDALONE"}},
              "loggers": {"console": {"config": {"log_level": "WARNING"}}}}
    tags = {RANGE_START_TAG: f"{YEAR}-01-01", RANGE_END_TAG: f"{YEAR}-12-01"}
    sampler = MemorySampler()
    sampler.start()
    began = time.perf_counter()
    with execute_job(reconstructable(backtest_job_def), instance=DagsterInstance.get(),
                     run_config=config, tags=tags) as result:
        assert result.success, "the backfill run failed"
    elapsed = time.perf_counter() - began
    sampler.stop.set()
    sampler.join()
    return elapsed, sampler


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


def _mb(n: int) -> str:
    return f"{n / 2**20:,.0f}"


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--results-url", default=None)
    args = parser.parse_args()
    cores = len(os.sched_getaffinity(0))
    with tempfile.TemporaryDirectory() as tmp:
        os.environ["BTPIPELINE_HOME"] = str(Path(tmp) / "btp")
        os.environ["DAGSTER_HOME"] = str(Path(tmp) / "dagster_home")
        Path(os.environ["DAGSTER_HOME"]).mkdir()
        repo_yaml = Path(__file__).resolve().parent.parent / "dagster.yaml"
        (Path(os.environ["DAGSTER_HOME"]) / "dagster.yaml").write_text(repo_yaml.read_text())
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
        d1, m1 = _dagster_backfill(1)
        dn, mn = _dagster_backfill(cores)
    print(f"{len(jobs)} backtests x 12 months, {cores} cores, results DB: "
          f"{args.results_url or 'SQLite (default)'}\n")
    print("| what | 1 process | " + f"{cores} processes | speed-up | efficiency |")
    print("|---|---|---|---|---|")
    print(f"| kernel only (no Dagster, no DB), s | {k1:.2f} | {kn:.2f} | {k1 / kn:.2f}x | "
          f"{k1 / (cores * kn):.0%} |")
    print(f"| Dagster run on backtest_executor, s | {d1:.2f} | {dn:.2f} | {d1 / dn:.2f}x | "
          f"{d1 / (cores * dn):.0%} |")
    print(f"\n| memory, MiB | 1 worker | {cores} workers |\n|---|---|---|")
    print(f"| peak RSS, sum of workers | {_mb(m1.peak_rss)} | {_mb(mn.peak_rss)} |")
    print(f"| peak PSS, sum of workers | {_mb(m1.peak_pss)} | {_mb(mn.peak_pss)} |")
    print(f"| peak RSS, largest worker | {_mb(m1.peak_one_rss)} | {_mb(mn.peak_one_rss)} |")


if __name__ == "__main__":
    main()
