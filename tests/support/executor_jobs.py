"""Module-level jobs for the backtest_executor tests and benchmark (reconstructable targets)."""


import os
import signal
import time
from contextlib import ExitStack
from pathlib import Path

from dagster import (
    AssetMaterialization,
    Definitions,
    Field,
    In,
    JobDefinition,
    Nothing,
    OpExecutionContext,
    Output,
    RetryPolicy,
    asset,
    define_asset_job,
    job,
    op,
)

from btpipeline.executors import backtest_executor
from btpipeline.machine.isolation import current_isolation
from btpipeline.machine.pause_points import critical_section

N_STEPS = 20


def _report(context: OpExecutionContext) -> dict:
    context.log.info(f"step {context.op.name} running in pid {os.getpid()}")
    return {"pid": os.getpid(), **current_isolation()}


def _make_report_op(index: int):
    @op(name=f"report_{index:03d}")
    def report_op(context: OpExecutionContext) -> dict:
        return _report(context)

    return report_op


@op
def materialize_op(context: OpExecutionContext):
    yield AssetMaterialization(asset_key="executor_test_asset", metadata={"rows": 42})
    yield Output(_report(context))


def _fan_out_job(name: str, n: int) -> JobDefinition:
    ops = [_make_report_op(i) for i in range(n - 1)]

    @job(name=name, executor_def=backtest_executor)
    def fan_out():
        for report_op in ops:
            report_op()
        materialize_op()

    return fan_out


def twenty_step_job() -> JobDefinition:
    return _fan_out_job("twenty_step_job", N_STEPS)


def _make_trivial_op(index: int):
    @op(name=f"noop_{index:03d}")
    def noop() -> int:
        return index

    return noop


def trivial_job_factory(n: int, executor_def=backtest_executor):
    ops = [_make_trivial_op(i) for i in range(n)]

    @job(name=f"trivial_{n}", executor_def=executor_def)
    def trivial():
        for noop in ops:
            noop()

    return trivial


def trivial_20() -> JobDefinition:
    return trivial_job_factory(20)


def trivial_200() -> JobDefinition:
    return trivial_job_factory(200)


# ---------------------------------------------------------------- priority


def _make_priority_op(priority: int):
    @op(name=f"prio_{priority + 50:03d}", tags={"dagster/priority": str(priority)})
    def prio_op() -> int:
        time.sleep(0.05)
        return priority

    return prio_op


PRIORITIES = [-20, 5, 0, 30, -5, 10]


def priority_job() -> JobDefinition:
    ops = [_make_priority_op(p) for p in PRIORITIES]

    @job(executor_def=backtest_executor)
    def priority_ordering():
        for prio_op in ops:
            prio_op()

    return priority_ordering


# ---------------------------------------------------------------- limits and recovery


@op(config_schema={"megabytes": int, "hold_seconds": float})
def memory_hog(context: OpExecutionContext) -> int:
    import numpy as np

    block = np.ones(context.op_config["megabytes"] * 1024 * 1024 // 8)
    time.sleep(context.op_config["hold_seconds"])
    return int(block[0])


@op
def small_step(context: OpExecutionContext) -> int:
    return os.getpid()


@op(tags={"btpipeline/timeout_seconds": "1"})
def sleepy_step(context: OpExecutionContext) -> None:
    time.sleep(60)


@job(executor_def=backtest_executor)
def limits_job_def():
    memory_hog()
    sleepy_step()
    small_step()


def limits_job() -> JobDefinition:
    return limits_job_def


@op(config_schema={"marker": str}, retry_policy=RetryPolicy(max_retries=2))
def dies_once(context: OpExecutionContext) -> int:
    marker = Path(context.op_config["marker"])
    if not marker.exists():
        marker.write_text(str(os.getpid()))
        os.kill(os.getpid(), signal.SIGKILL)
    return os.getpid()


@op(ins={"after": In(Nothing)})
def after_death(context: OpExecutionContext) -> int:
    return os.getpid()


@job(executor_def=backtest_executor)
def sigkill_job_def():
    after_death(after=dies_once())
    small_step()


def sigkill_job() -> JobDefinition:
    return sigkill_job_def


@op(config_schema={"pid_dir": str})
def long_step(context: OpExecutionContext) -> None:
    Path(context.op_config["pid_dir"], f"{context.op.name}.pid").write_text(str(os.getpid()))
    time.sleep(120)


@job(executor_def=backtest_executor)
def long_job_def():
    long_step.alias("long_a")()
    long_step.alias("long_b")()


def long_job() -> JobDefinition:
    return long_job_def


# ---------------------------------------------------------------- assets in a pool


@asset(pool="backtests")
def pooled_backtest_a() -> int:
    return os.getpid()


@asset(pool="backtests")
def pooled_backtest_b() -> int:
    return os.getpid()


def pooled_asset_job() -> JobDefinition:
    defs = Definitions(
        assets=[pooled_backtest_a, pooled_backtest_b],
        jobs=[define_asset_job("pooled_assets")],
        executor=backtest_executor,
    )
    return defs.resolve_job_def("pooled_assets")


def run_long_job_until_terminated(home: str, pid_dir: str) -> None:
    """Entry point of the run-termination test's subprocess (interrupted with SIGINT)."""
    from dagster import execute_job, instance_for_test, reconstructable

    run_config = {
        "execution": {"config": {"max_concurrent_backtests": 2, "execution_mode": "STANDALONE",
                                 "worker_shutdown_grace_seconds": 2.0}},
        "ops": {"long_a": {"config": {"pid_dir": pid_dir}},
                "long_b": {"config": {"pid_dir": pid_dir}}},
    }
    with instance_for_test(temp_dir=home) as instance:
        with execute_job(reconstructable(long_job), instance=instance, run_config=run_config,
                         raise_on_error=False) as result:
            Path(pid_dir, "run_id").write_text(result.run_id)


# ---------------------------------------------------------------- batches


def _make_tagged_noop(name: str, priority: int):
    @op(name=name, tags={"dagster/priority": str(priority)})
    def tagged_noop(context: OpExecutionContext) -> int:
        print(f"stdout of {name}")
        return os.getpid()

    return tagged_noop


@op(config_schema={"marker": str}, retry_policy=RetryPolicy(max_retries=1),
    tags={"dagster/priority": "5"})
def dies_mid_batch(context: OpExecutionContext) -> int:
    marker = Path(context.op_config["marker"])
    if not marker.exists():
        marker.write_text(str(os.getpid()))
        os.kill(os.getpid(), signal.SIGKILL)
    return os.getpid()


def batch_death_job() -> JobDefinition:
    """One worker: warm_up (20) runs alone (no step time known yet), then one batch ordered
    first_in_batch (10), dies_mid_batch (5), later_* (0)."""
    warm_up = _make_tagged_noop("warm_up", 20)
    first = _make_tagged_noop("first_in_batch", 10)
    later = [_make_tagged_noop(f"later_{i}", 0) for i in range(3)]

    @job(executor_def=backtest_executor)
    def batch_death():
        warm_up()
        first()
        dies_mid_batch()
        for op_def in later:
            op_def()

    return batch_death


# ---------------------------------------------------------------- the fast path (pause/resume)

PROGRESS_ITERATIONS = 60


@op(config_schema={"progress_file": str, "iterations": int,
                   "critical_from": Field(int, default_value=-1),
                   "critical_to": Field(int, default_value=-1)})
def progress_step(context: OpExecutionContext) -> int:
    """CPU-bound work in fixed ~40 ms CPU slices; logs a wall-clock stamp per slice, so a test
    sees the step stop while SIGSTOPped and finish with the same result after SIGCONT.
    Slices ``critical_from`` up to ``critical_to`` run inside one critical section (as a
    database write does): the step must not be stopped there."""
    path = Path(context.op_config["progress_file"])
    first, last = context.op_config["critical_from"], context.op_config["critical_to"]
    total = 0
    with path.open("w") as out, ExitStack() as section:
        out.write(f"{os.getpid()}\n")
        out.flush()
        for i in range(context.op_config["iterations"]):
            if i == first:
                section.enter_context(critical_section())
            if i == last:
                section.close()
            until = time.thread_time() + 0.04
            while time.thread_time() < until:
                pass
            total += i * i
            out.write(f"{time.time()}\n")
            out.flush()
    return total


@job(executor_def=backtest_executor)
def progress_job_def():
    progress_step()


def progress_job() -> JobDefinition:
    return progress_job_def
