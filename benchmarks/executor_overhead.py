"""Per-step executor overhead: in-process vs stock multiprocess (spawn, forkserver) vs
backtest_executor.

The same job of N trivial ops (each returns an int) runs under each executor on a fresh SQLite
instance; every configuration runs in its own Python process (so each gets its own forkserver
with its own preload list). ``ms/step`` is the run's wall time (``execute_job`` call) over N.

backtest_executor rows run with its defaults (``max_steps_per_batch: 8``: up to 8 ready steps per
worker request) unless the row's name says ``unbatched`` (``max_steps_per_batch: 1``).

Run: ``python benchmarks/executor_overhead.py`` (storage on tmpfs /dev/shm, the executor's cost
without the disk's fsync per event), ``--storage disk`` for the instance under /tmp, ``--quick``
for 20 steps only. Spawn runs at 20 steps only (it takes ~1.7 s a step).
"""

import argparse
import json
import os
import signal
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from dagster import (
    DagsterEventType,
    RetryPolicy,
    execute_job,
    in_process_executor,
    instance_for_test,
    job,
    multiprocess_executor,
    op,
    reconstructable,
)

from btpipeline.executors import backtest_executor

EXECUTORS = {
    "in_process": (in_process_executor, {}),
    "multiprocess_spawn": (multiprocess_executor,
                           {"max_concurrent": 2, "start_method": {"spawn": {}}}),
    "multiprocess_forkserver": (multiprocess_executor, {"max_concurrent": 2, "start_method": {
        "forkserver": {"preload_modules": ["dagster", "dagster._core.storage.sqlite_storage"]}}}),
    "backtest_executor": (backtest_executor,
                          {"max_concurrent_backtests": 2, "execution_mode": "STANDALONE"}),
    "backtest_executor_no_timing_events": (backtest_executor, {
        "max_concurrent_backtests": 2, "execution_mode": "STANDALONE",
        "record_step_timings": False}),
    "backtest_executor_file_logs": (backtest_executor, {
        "max_concurrent_backtests": 2, "execution_mode": "STANDALONE"}),
    "backtest_executor_file_logs_unbatched": (backtest_executor, {
        "max_concurrent_backtests": 2, "execution_mode": "STANDALONE", "max_steps_per_batch": 1}),
}

# Instance settings per configuration: btpipeline's dagster.yaml uses FileComputeLogManager,
# which captures step output without Dagster's two `tail` processes per step. The other
# configurations use Dagster's default LocalComputeLogManager.
FILE_LOGS = {"compute_logs": {"module": "btpipeline.executors.compute_logs",
                              "class": "FileComputeLogManager", "config": {}}}
INSTANCE_OVERRIDES = {"backtest_executor_file_logs": FILE_LOGS,
                      "backtest_executor_file_logs_unbatched": FILE_LOGS}


def _noop_op(index: int):
    @op(name=f"noop_{index:03d}")
    def noop() -> int:
        return index

    return noop


@op(config_schema={"marker": str}, retry_policy=RetryPolicy(max_retries=1))
def dies_once(context) -> int:
    marker = Path(context.op_config["marker"])
    if not marker.exists():
        marker.write_text("x")
        os.kill(os.getpid(), signal.SIGKILL)
    return 1


def bench_job():
    """The job under test, chosen by BENCH_EXECUTOR / BENCH_STEPS (read in every process)."""
    name, steps = os.environ["BENCH_EXECUTOR"], int(os.environ["BENCH_STEPS"])
    executor_def = EXECUTORS[name.replace("recovery", "backtest_executor")][0]
    ops = [_noop_op(i) for i in range(steps)]

    @job(name=f"bench_{steps}", executor_def=executor_def)
    def bench():
        for noop in ops:
            noop()
        if name == "recovery":
            dies_once()

    return bench


def _summary_metadata(instance, run_id: str) -> dict:
    for record in instance.all_logs(run_id, of_type=DagsterEventType.ENGINE_EVENT):
        event = record.dagster_event
        if event.message.startswith("backtest_executor: finished"):
            return {k: v.value for k, v in event.engine_event_data.metadata.items()}
    return {}


def run_one(name: str, steps: int, repeats: int, storage_root: str | None) -> dict:
    """Child-process side: run the job ``repeats`` times, return wall times and summaries."""
    config_name = "backtest_executor" if name == "recovery" else name
    run_config: dict = {"execution": {"config": EXECUTORS[config_name][1]}} if \
        EXECUTORS[config_name][1] else {}
    walls, summaries = [], []
    with tempfile.TemporaryDirectory(dir=storage_root) as home, \
            instance_for_test(temp_dir=home,
                              overrides=INSTANCE_OVERRIDES.get(config_name)) as instance:
        for attempt in range(repeats):
            if name == "recovery":
                run_config["ops"] = {"dies_once": {"config": {"marker": f"{home}/m{attempt}"}}}
            start = time.perf_counter()
            with execute_job(reconstructable(bench_job), instance=instance,
                             run_config=run_config) as result:
                assert result.success, f"{name} run failed"
                walls.append(time.perf_counter() - start)
                summaries.append(_summary_metadata(instance, result.run_id))
    return {"name": name, "steps": steps, "walls": walls, "summaries": summaries}


def _spawn_config(name: str, steps: int, repeats: int, storage_root: str | None) -> dict:
    env = dict(os.environ, BENCH_EXECUTOR=name, BENCH_STEPS=str(steps),
               PYTHONPATH=os.pathsep.join([str(Path(__file__).resolve().parent.parent),
                                           os.environ.get("PYTHONPATH", "")]))
    args = [sys.executable, __file__, "--child", name, str(steps), str(repeats),
            storage_root or ""]
    proc = subprocess.run(args, env=env, capture_output=True, text=True, timeout=3600)
    if proc.returncode != 0:
        raise RuntimeError(f"{name} x{steps} failed:\n{proc.stderr[-4000:]}")
    return json.loads(proc.stdout.strip().splitlines()[-1])


def _plan(quick: bool, only: list[str] | None = None) -> list[tuple[str, int, int]]:
    if only:
        rows = ["in_process", *only]
        return [(name, steps, 3) for steps in ((20,) if quick else (20, 200)) for name in rows]
    plan = [(name, 20, 3) for name in EXECUTORS if name != "multiprocess_spawn"]
    plan.insert(1, ("multiprocess_spawn", 20, 1))
    if not quick:
        plan += [("in_process", 200, 1), ("multiprocess_forkserver", 200, 1),
                 ("backtest_executor", 200, 2), ("backtest_executor_no_timing_events", 200, 2),
                 ("backtest_executor_file_logs", 200, 2),
                 ("backtest_executor_file_logs_unbatched", 200, 2)]
    return plan + [("recovery", 4, 3)]


def _report(results: list[dict], storage: str) -> str:
    base = {r["steps"]: statistics.median(r["walls"]) for r in results if r["name"] == "in_process"}
    fork = {r["steps"]: statistics.median(r["walls"])
            for r in results if r["name"] == "multiprocess_forkserver"}
    lines = [f"storage: {storage}", "",
             "| executor | steps | runs | wall s (median) | ms/step | x in-process | "
             "forkserver / this |", "|---|---|---|---|---|---|---|"]
    for r in results:
        if r["name"] == "recovery":
            continue
        wall = statistics.median(r["walls"])
        steps = r["steps"]
        ratio = f"{wall / base[steps]:.1f}" if steps in base else "-"
        vs_fork = f"{fork[steps] / wall:.1f}" if steps in fork else "-"
        lines.append(f"| {r['name']} | {steps} | {len(r['walls'])} | {wall:.2f} | "
                     f"{1000 * wall / steps:.0f} | {ratio} | {vs_fork} |")
    lines += ["", "backtest_executor per-phase p50 / p99 (µs), last run of each:"]
    for r in results:
        if r["name"].startswith("backtest") and r["summaries"][-1]:
            s = r["summaries"][-1]
            phases = ", ".join(f"{p} {s[f'{p}_p50_us']}/{s[f'{p}_p99_us']}" for p in (
                "queue_wait", "dispatch", "compute", "event_write", "event_send", "result",
                "total"))
            lines.append(f"- {r['name']} x{r['steps']}: {phases}; worker startup ms "
                         f"{s['worker_startup_ms']}")
    for r in results:
        if r["name"] == "recovery":
            ready = [s["replacement_time_to_ready_ms"] for s in r["summaries"]]
            lines.append(f"- SIGKILL recovery, replacement worker time to ready (ms), "
                         f"{len(ready)} runs: {', '.join(ready)}")
    return "\n".join(lines)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--storage", choices=["tmpfs", "disk"], default="tmpfs")
    parser.add_argument("--quick", action="store_true")
    parser.add_argument("--only", nargs="+", choices=[n for n in EXECUTORS if n != "in_process"],
                        help="just these rows (and in_process, the ratio's base), 3 runs each")
    parser.add_argument("--child", nargs=4, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child:
        name, steps, repeats, root = args.child
        print(json.dumps(run_one(name, int(steps), int(repeats), root or None)))
        return
    root = "/dev/shm" if args.storage == "tmpfs" else None
    results = []
    for name, steps, repeats in _plan(args.quick, args.only):
        print(f"running {name} x{steps} ({repeats} run(s))...", file=sys.stderr, flush=True)
        results.append(_spawn_config(name, steps, repeats, root))
    print(_report(results, f"{args.storage} ({root or tempfile.gettempdir()})"))


if __name__ == "__main__":
    main()
