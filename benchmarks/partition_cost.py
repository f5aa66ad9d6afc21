"""Dagster's own cost per run and per partition on this machine: daily vs monthly partitions.

A trivial partitioned asset (no work) with ``BackfillPolicy.single_run()`` is materialized in
one in-process run over ranges of 1..N partitions on a SQLite instance (the embedded default).
``per-run`` is the cost of a 1-partition run; ``per-partition`` is the slope of the extra
partitions. Run: ``python benchmarks/partition_cost.py``.
"""


import statistics
import tempfile
import time

from dagster import (
    AssetExecutionContext,
    BackfillPolicy,
    DagsterInstance,
    DailyPartitionsDefinition,
    Definitions,
    MaterializeResult,
    MonthlyPartitionsDefinition,
    PartitionsDefinition,
    asset,
    define_asset_job,
)

from btpipeline.machine.tags import RANGE_END_TAG, RANGE_START_TAG


def _job(partitions: PartitionsDefinition, name: str):
    @asset(name=name, partitions_def=partitions, backfill_policy=BackfillPolicy.single_run())
    def noop(context: AssetExecutionContext) -> MaterializeResult:
        return MaterializeResult()

    job = define_asset_job(f"{name}_job", selection=[noop], partitions_def=partitions)
    return Definitions(assets=[noop], jobs=[job]).resolve_job_def(f"{name}_job")


def _time_range(job, instance: DagsterInstance, keys: list[str], repeats: int) -> float:
    samples = []
    for _ in range(repeats):
        t0 = time.perf_counter()
        result = job.execute_in_process(
            instance=instance, tags={RANGE_START_TAG: keys[0], RANGE_END_TAG: keys[-1]}
        )
        samples.append(time.perf_counter() - t0)
        assert result.success
    return statistics.median(samples)


def main() -> None:
    daily = DailyPartitionsDefinition(start_date="2023-01-01")
    monthly = MonthlyPartitionsDefinition(start_date="2023-01-01")
    with tempfile.TemporaryDirectory() as home:
        instance = DagsterInstance.local_temp(home)
        rows = []
        for label, pdef, sizes in (("daily", daily, (1, 30, 365)), ("monthly", monthly, (1, 12))):
            job = _job(pdef, f"noop_{label}")
            keys = pdef.get_partition_keys()
            _time_range(job, instance, keys[:1], 1)  # warm-up
            for n in sizes:
                rows.append((label, n, _time_range(job, instance, keys[:n], 3)))
        print("| partitions | in one run | seconds (median of 3) "
              "| ms per partition beyond the first |")
        print("|---|---|---|---|")
        base = {label: s for label, n, s in rows if n == 1}
        for label, n, s in rows:
            slope = "" if n == 1 else f"{(s - base[label]) / (n - 1) * 1000:.2f}"
            print(f"| {label} | {n} | {s:.3f} | {slope} |")


if __name__ == "__main__":
    main()
