"""``backtest/<strategy>/<EPIC>``: one monthly-partitioned backtest asset per strategy x epic.

A run covers a partition *range* (``BackfillPolicy.single_run``): the kernel reads the range's
candles plus the strategy's warm-up history before it, simulates once, and the results for
every month of the range are replaced in one transaction. Dagster records each month as
materialized. Results go to the results database, not through an IO manager, so a
multi-partition run needs no pickling.
"""

import datetime as dt
import time
from collections.abc import Mapping

import pandas as pd
from dagster import (
    AssetExecutionContext,
    AssetsDefinition,
    BackfillPolicy,
    Config,
    MaterializeResult,
    MetadataValue,
    RetryPolicy,
    asset,
)
from pydantic import Field

from btpipeline.assets.failures import step_failure
from btpipeline.assets.keys import backtest_group, backtest_key, candles_key
from btpipeline.assets.partitions import monthly_partitions
from btpipeline.assets.run_fence import fence_for
from btpipeline.assets.time_windows import window_ns
from btpipeline.epics import Epic, get_epic
from btpipeline.errors import BtPipelineError
from btpipeline.executors.tags import BACKTEST_POOL
from btpipeline.resources.market_data_store import MarketDataStore
from btpipeline.resources.results_database import ResultsDatabase
from btpipeline.strategies import CostModel, get_strategy, run_backtest

# A lost worker (killed, out of memory) and a results database that stayed unavailable past its
# retry budget are retried; results writes are idempotent, so a retry replaces whatever the
# failed attempt wrote. Bad input is never retried (see failures.py).
BACKTEST_RETRY_POLICY = RetryPolicy(max_retries=2, delay=1)


class BacktestConfig(Config):
    params: dict[str, float] = Field(
        default_factory=dict,
        description="Strategy parameter overrides, e.g. {fast: 8, slow: 21}; unset ones keep "
        "the strategy's defaults.",
    )
    spread_pips: float | None = Field(
        default=None, description="Spread in pips; unset uses the epic's catalogue spread."
    )
    commission_per_lot: float = Field(
        default=0.0, description="Commission per 100,000 units per side, in quote currency."
    )
    slippage_pips: float = Field(default=0.0, description="Adverse slippage per fill, in pips.")
    size_units: float = Field(default=100_000, description="Fixed position size, base units.")


def _coerce_params(strategy: str, overrides: Mapping[str, float]) -> object:
    """Run config carries numbers as floats; integral ones become ints for period fields."""
    clean = {k: int(v) if float(v).is_integer() else v for k, v in overrides.items()}
    return get_strategy(strategy).make_params(clean)


def _month_of(days: pd.Series) -> pd.Series:
    return days.astype(str).str.slice(0, 7) + "-01"


def _with_partition_keys(fills: pd.DataFrame, daily: pd.DataFrame
                         ) -> tuple[pd.DataFrame, pd.DataFrame]:
    fills = fills.assign(partition_key=fills["timestamp"].dt.strftime("%Y-%m-01"))
    daily = daily.assign(partition_key=_month_of(daily["day"]))
    return fills, daily


def _costs(epic: Epic, config: BacktestConfig) -> CostModel:
    return CostModel.for_epic(epic, spread_pips=config.spread_pips,
                              commission_per_lot=config.commission_per_lot,
                              slippage_pips=config.slippage_pips)


def _run(context: AssetExecutionContext, strategy: str, epic_name: str, config: BacktestConfig,
         market_data: MarketDataStore, results_db: ResultsDatabase) -> MaterializeResult:
    started_at = dt.datetime.now(dt.timezone.utc)
    epic = get_epic(epic_name)
    params = _coerce_params(strategy, config.params)
    costs = _costs(epic, config)
    start_ns, end_ns = window_ns(context)
    t0 = time.perf_counter_ns()
    candles = market_data.read_range(epic=epic_name, start_ns=start_ns, end_ns=end_ns,
                                     warmup_bars=get_strategy(strategy).warmup_bars(params))
    t1 = time.perf_counter_ns()
    result = run_backtest(candles, strategy=strategy, params=params, epic=epic,
                          start_ns=start_ns, end_ns=end_ns, costs=costs,
                          size_units=config.size_units)
    t2 = time.perf_counter_ns()
    fills, daily = _with_partition_keys(result.fills, result.daily)
    results_db.write_backtest(
        strategy=strategy, epic=epic_name, partition_keys=context.partition_keys,
        run_id=context.run.run_id, params=result.params, started_at=started_at,
        finished_at=dt.datetime.now(dt.timezone.utc), metrics=result.metrics,
        fills=fills, daily=daily, fence=fence_for(context),
    )
    t3 = time.perf_counter_ns()
    timings = {"read_us": (t1 - t0) // 1000, "compute_us": (t2 - t1) // 1000,
               "write_us": (t3 - t2) // 1000}
    context.log.info(f"{strategy} {epic_name} {context.partition_keys[0]}.."
                     f"{context.partition_keys[-1]}: {result.metrics} timings {timings}")
    return MaterializeResult(metadata=_metadata(result.metrics, timings, len(fills)))


def _metadata(metrics: Mapping[str, float], timings: Mapping[str, int],
              fills: int) -> dict[str, MetadataValue]:
    meta: dict[str, MetadataValue] = {k: MetadataValue.float(float(v))
                                      for k, v in metrics.items() if v == v and abs(v) != float("inf")}
    meta.update({k: MetadataValue.int(int(v)) for k, v in timings.items()})
    meta["fills"] = MetadataValue.int(fills)
    return meta


def _record_failure(context: AssetExecutionContext, strategy: str, epic: str,
                    results_db: ResultsDatabase, started_at: dt.datetime, error: Exception) -> None:
    try:
        results_db.record_failure(
            strategy=strategy, epic=epic, partition_keys=context.partition_keys,
            run_id=context.run.run_id, started_at=started_at,
            finished_at=dt.datetime.now(dt.timezone.utc), error=f"{type(error).__name__}: {error}",
        )
    except Exception as db_error:  # the original error matters more; keep it visible
        context.log.warning(f"Could not record the failure in the results database: {db_error}")


def backtest_asset(strategy: str, epic: str) -> AssetsDefinition:
    get_strategy(strategy)
    get_epic(epic)

    @asset(
        key=backtest_key(strategy, epic),
        group_name=backtest_group(strategy),
        partitions_def=monthly_partitions,
        backfill_policy=BackfillPolicy.single_run(),
        deps=[candles_key(epic)],
        pool=BACKTEST_POOL,
        retry_policy=BACKTEST_RETRY_POLICY,
        description=f"{strategy} on {epic}: trades and daily P&L per month in the results DB.",
        tags={"btpipeline/strategy": strategy, "btpipeline/epic": epic},
        kinds={"numpy"},
    )
    def _backtest(context: AssetExecutionContext, config: BacktestConfig,
                  market_data: MarketDataStore, results_db: ResultsDatabase) -> MaterializeResult:
        started_at = dt.datetime.now(dt.timezone.utc)
        try:
            return _run(context, strategy, epic, config, market_data, results_db)
        except BtPipelineError as error:
            _record_failure(context, strategy, epic, results_db, started_at, error)
            raise step_failure(error) from error
        except Exception as error:
            _record_failure(context, strategy, epic, results_db, started_at, error)
            raise

    return _backtest
