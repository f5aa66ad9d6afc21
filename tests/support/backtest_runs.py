"""Run backtest assets in process, on synthetic candles, and read their materializations."""

from __future__ import annotations

from typing import Any

from dagster import AssetRecordsFilter, DagsterInstance, ExecuteInProcessResult

from btpipeline.assets.keys import backtest_key, candles_key
from btpipeline.definitions import build_definitions
from btpipeline.machine.tags import RANGE_END_TAG, RANGE_START_TAG


def run_range(instance: DagsterInstance, resources: dict, first: str, last: str,
              strategies: list[str], epic: str = "EURUSD",
              backtest_config: dict[str, Any] | None = None) -> ExecuteInProcessResult:
    """Materialize candles and the strategies' backtests of ``epic`` for months first..last
    (partition keys) in one run, with ``backtest_config`` for every backtest asset."""
    job = build_definitions(resources).resolve_job_def("market_data_job")
    ops: dict[str, Any] = {candles_key(epic).to_python_identifier(): {
        "config": {"generate_if_missing": True}}}
    for strategy in strategies:
        if backtest_config:
            ops[backtest_key(strategy, epic).to_python_identifier()] = {"config": backtest_config}
    return job.execute_in_process(
        instance=instance, asset_selection=[candles_key(epic)] + [
            backtest_key(s, epic) for s in strategies],
        tags={RANGE_START_TAG: first, RANGE_END_TAG: last}, run_config={"ops": ops},
        raise_on_error=False)


def partition_metadata(instance: DagsterInstance, strategy: str, epic: str,
                       key: str) -> dict[str, Any]:
    """The latest materialization's metadata of one partition, as plain values."""
    records = instance.fetch_materializations(
        AssetRecordsFilter(asset_key=backtest_key(strategy, epic), asset_partitions=[key]),
        limit=1).records
    assert records, f"no materialization of {strategy} {epic} {key}"
    metadata = records[0].asset_materialization.metadata
    return {name: value.value for name, value in metadata.items()}
