"""``backtest/<variant>/<INSTRUMENT>``: one monthly-partitioned backtest asset per variant x
instrument of the universe file (``btpipeline/universe``).

Each asset runs its variant's strategy object (built-in or the user's ``module:Class``) with
the variant's params, costs, sizing, timeframe and account as defaults; the run config
(``config.py``) overrides any of them for one run. ``code_version`` is a hash of the variant's
settings, so changing them in the universe file marks the asset's partitions outdated.

A run covers a partition *range* (``BackfillPolicy.single_run``): the kernel reads the range's
candles plus the strategy's warm-up history before it, simulates once, and the results for
every month of the range are replaced in one transaction. Dagster records each month as
materialized. Results go to the results database, not through an IO manager, so a
multi-partition run needs no pickling.

Each month's materialization carries that month's own figures (trades, pnl, return,
max_drawdown, exposure; see strategies/month_figures.py), so the UI's per-partition plots
show the months; the whole run's metrics are there too, under names starting ``run_``.
"""

import datetime as dt
import time
from collections.abc import Mapping

import pandas as pd
from dagster import (
    AssetExecutionContext,
    AssetsDefinition,
    BackfillPolicy,
    MaterializeResult,
    MetadataValue,
    PartitionsDefinition,
    RetryPolicy,
    asset,
)

from btpipeline.assets.backtests.config import BacktestConfig
from btpipeline.assets.backtests.run_settings import RunSettings, resolve
from btpipeline.assets.failures import step_failure
from btpipeline.assets.keys import backtest_key, candles_key
from btpipeline.assets.run_fence import fence_for
from btpipeline.assets.time_windows import window_ns
from btpipeline.data.candles import Candles
from btpipeline.data.timeframes import check_derivable, resample, source_bars
from btpipeline.errors import BtPipelineError
from btpipeline.machine.naming import month_key
from btpipeline.machine.tags import BACKTEST_POOL
from btpipeline.resources.market_data_store import MarketDataStore
from btpipeline.resources.results_database import ResultsDatabase
from btpipeline.strategies import BacktestResult, month_figures, run_backtest
from btpipeline.universe import BacktestSpec

# A lost worker (killed, out of memory) and a results database that stayed unavailable past its
# retry budget are retried; results writes are idempotent, so a retry replaces whatever the
# failed attempt wrote. Bad input is never retried (see failures.py).
BACKTEST_RETRY_POLICY = RetryPolicy(max_retries=2, delay=1)


def _with_partition_keys(fills: pd.DataFrame, daily: pd.DataFrame
                         ) -> tuple[pd.DataFrame, pd.DataFrame]:
    fills = fills.assign(partition_key=month_key(fills["timestamp"]))
    daily = daily.assign(partition_key=month_key(daily["day"]))
    return fills, daily


def _read_candles(market_data: MarketDataStore, run: RunSettings, start_ns: int,
                  end_ns: int) -> Candles:
    """The range plus the strategy's warm-up (counted in bars of the run's timeframe), as bars
    of that timeframe resampled from the stored ones."""
    epic = run.epic.name
    stored = market_data.timeframe(epic=epic) or "M1"
    check_derivable(run.timeframe, stored, epic)
    warmup = run.strategy.warmup_bars(run.params)
    return resample(market_data.read_range(
        epic=epic, start_ns=start_ns, end_ns=end_ns,
        warmup_bars=source_bars(warmup, run.timeframe, stored)), run.timeframe)


def _run(context: AssetExecutionContext, spec: BacktestSpec, config: BacktestConfig,
         market_data: MarketDataStore, results_db: ResultsDatabase) -> MaterializeResult:
    started_at = dt.datetime.now(dt.timezone.utc)
    run = resolve(spec, config)
    start_ns, end_ns = window_ns(context)
    t0 = time.perf_counter_ns()
    candles = _read_candles(market_data, run, start_ns, end_ns)
    t1 = time.perf_counter_ns()
    result = run_backtest(candles, strategy=run.strategy, params=run.params, epic=run.epic,
                          start_ns=start_ns, end_ns=end_ns, costs=run.costs,
                          size_units=run.size_units, account=run.account,
                          max_gap_hours=run.max_gap_hours, equity_fraction=run.equity_fraction)
    t2 = time.perf_counter_ns()
    fills, daily = _with_partition_keys(result.fills, result.daily)
    stopped = result.stopped_out_at
    results_db.write_backtest(
        strategy=spec.strategy.name, variant=spec.variant.name, epic=run.epic.name,
        partition_keys=context.partition_keys,
        run_id=context.run.run_id,
        params=run.stored(result.params, result.sizing,
                          None if stopped is None else stopped.isoformat()),
        started_at=started_at, finished_at=dt.datetime.now(dt.timezone.utc),
        metrics=result.metrics, fills=fills, daily=daily, fence=fence_for(context),
    )
    t3 = time.perf_counter_ns()
    timings = {"read_us": (t1 - t0) // 1000, "compute_us": (t2 - t1) // 1000,
               "write_us": (t3 - t2) // 1000}
    _log_run(context, spec, result, timings, run.max_gap_hours)
    run_meta = _run_metadata(result, timings, context.partition_keys)
    months = month_figures(fills, daily, context.partition_keys, run.account.initial_capital)
    for key, figures in months.items():
        context.add_asset_metadata({**_month_metadata(figures, fills, key), **run_meta},
                                   partition_key=key)
    return MaterializeResult()


def _log_run(context: AssetExecutionContext, spec: BacktestSpec, result: BacktestResult,
             timings: Mapping[str, int], max_gap_hours: float) -> None:
    """The run's metrics, and a warning for each gap restart and for a stop-out."""
    name = f"{spec.variant.name} ({result.strategy}) {result.epic}"
    months = sorted({key[:7] for key in context.partition_keys})
    rounded = {k: round(float(v), 4) for k, v in result.metrics.items()}
    ms = {k.removesuffix("_us"): round(v / 1000, 1) for k, v in timings.items()}
    context.log.info(f"{name}, months {months[0]}..{months[-1]} ({len(months)}): {rounded}; "
                     f"time in ms {ms}")
    for gap in result.gaps:
        context.log.warning(f"{name}: gap in the stored data {gap.describe()}, longer than "
                            f"{max_gap_hours:g} h; indicators and positions restarted after it "
                            "(nothing carried across).")
    if result.stopped_out_at is not None:
        context.log.warning(f"{name}: equity reached the stop-out level at "
                            f"{result.stopped_out_at}; the strategy stopped trading there.")


def _month_metadata(figures: Mapping[str, float], fills: pd.DataFrame,
                    key: str) -> dict[str, MetadataValue]:
    """This month's own figures, under plain names (the UI plots them across partitions)."""
    meta: dict[str, MetadataValue] = {  # rounded for people; the database keeps raw values
        k: MetadataValue.float(round(float(v), 2 if k == "pnl" else 6)) for k, v in figures.items()}
    meta["month"] = MetadataValue.text(key[:7])
    meta["trades"] = MetadataValue.int(int(figures["trades"]))
    meta["fills"] = MetadataValue.int(int((fills["partition_key"] == key).sum()))
    return meta


def _run_metadata(result: BacktestResult, timings: Mapping[str, int],
                  keys: list[str]) -> dict[str, MetadataValue]:
    """The whole run's figures, every name starting ``run_`` so none passes for a month's."""
    meta: dict[str, MetadataValue] = {
        f"run_{k}": MetadataValue.float(float(v))
        for k, v in result.metrics.items() if v == v and abs(v) != float("inf")}
    meta.update({f"run_{k}": MetadataValue.int(int(v)) for k, v in timings.items()})
    meta["run_range"] = MetadataValue.text(f"{keys[0]}..{keys[-1]} (whole-run figures: run_*)")
    meta["run_stopped_out_at"] = MetadataValue.text(
        "" if result.stopped_out_at is None else result.stopped_out_at.isoformat())
    meta["account"] = MetadataValue.text(
        f"{result.account.initial_capital:,.2f} {result.account.currency}")
    return meta


def _record_failure(context: AssetExecutionContext, spec: BacktestSpec,
                    results_db: ResultsDatabase, started_at: dt.datetime, error: Exception) -> None:
    try:
        results_db.record_failure(
            strategy=spec.strategy.name, variant=spec.variant.name, epic=spec.instrument.name,
            partition_keys=context.partition_keys,
            run_id=context.run.run_id, started_at=started_at,
            finished_at=dt.datetime.now(dt.timezone.utc),
            error=f"{type(error).__name__}: {error}",
        )
    except Exception as db_error:  # the original error matters more; keep it visible
        context.log.warning(f"Could not record the failure in the results database: {db_error}")


def backtest_asset(spec: BacktestSpec, partitions: PartitionsDefinition) -> AssetsDefinition:
    """``backtest/<variant>/<INSTRUMENT>`` running ``spec``'s variant on its instrument."""
    variant, epic = spec.variant.name, spec.instrument.name

    @asset(
        key=backtest_key(variant, epic),
        group_name=spec.group_name,
        partitions_def=partitions,
        backfill_policy=BackfillPolicy.single_run(),
        deps=[candles_key(epic)],
        pool=BACKTEST_POOL,
        retry_policy=BACKTEST_RETRY_POLICY,
        code_version=spec.code_version,
        description=f"{variant} ({spec.variant.strategy}) on {epic}: trades and daily P&L per "
        "month in the results DB.",
        tags={"btpipeline/strategy": spec.strategy.name, "btpipeline/variant": variant,
              "btpipeline/epic": epic},
        kinds={"numpy"},
    )
    def _backtest(context: AssetExecutionContext, config: BacktestConfig,
                  market_data: MarketDataStore, results_db: ResultsDatabase) -> MaterializeResult:
        started_at = dt.datetime.now(dt.timezone.utc)
        try:
            return _run(context, spec, config, market_data, results_db)
        except BtPipelineError as error:
            _record_failure(context, spec, results_db, started_at, error)
            raise step_failure(error) from error
        except Exception as error:
            _record_failure(context, spec, results_db, started_at, error)
            raise

    return _backtest
