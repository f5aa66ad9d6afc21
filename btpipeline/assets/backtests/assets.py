"""``backtest/<strategy>/<EPIC>``: one monthly-partitioned backtest asset per strategy x epic.

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
from typing import Literal

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
from btpipeline.assets.keys import backtest_key, candles_key
from btpipeline.assets.partitions import monthly_partitions
from btpipeline.assets.run_fence import fence_for
from btpipeline.assets.time_windows import window_ns
from btpipeline.data.candles import Candles
from btpipeline.data.timeframes import Timeframe, check_derivable, resample, source_bars
from btpipeline.epics import Epic, get_epic
from btpipeline.errors import BtPipelineError
from btpipeline.machine.naming import backtest_group, month_key
from btpipeline.machine.tags import BACKTEST_POOL
from btpipeline.resources.market_data_store import MarketDataStore
from btpipeline.resources.results_database import ResultsDatabase
from btpipeline.strategies import (
    Account,
    BacktestResult,
    CostModel,
    get_strategy,
    month_figures,
    run_backtest,
)
from btpipeline.strategies.account import DEFAULT_CAPITAL, DEFAULT_CURRENCY
from btpipeline.strategies.gaps import DEFAULT_MAX_GAP_HOURS

# A lost worker (killed, out of memory) and a results database that stayed unavailable past its
# retry budget are retried; results writes are idempotent, so a retry replaces whatever the
# failed attempt wrote. Bad input is never retried (see failures.py).
BACKTEST_RETRY_POLICY = RetryPolicy(max_retries=2, delay=1)


class BacktestConfig(Config):
    timeframe: Timeframe = Field(
        default="M1", description="Bar timeframe the strategy runs on (M1 M5 M15 M30 H1 H4 "
        "D1): bars resampled from the stored 1-minute data, labelled by open time (UTC). "
        "Warm-up lengths and strategy periods count bars of this timeframe.")
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
    sizing: Literal["units", "equity_fraction"] = Field(
        default="units", description="'units': every position is size_units; "
        "'equity_fraction': each new position's notional is equity_fraction x the account's "
        "equity at its entry (in the account currency).")
    size_units: float = Field(default=100_000, description="Fixed position size, base units "
                              "(sizing: units).")
    equity_fraction: float = Field(
        default=1.0, description="Notional of each new position as a multiple of equity "
        "(sizing: equity_fraction); 1.0 = unlevered, 5.0 = 5x.")
    initial_capital: float = Field(
        default=DEFAULT_CAPITAL, description="The account's equity at the start of the run's "
        "range, in account_currency; returns, Sharpe, Sortino and drawdown are on this equity.")
    account_currency: str = Field(
        default=DEFAULT_CURRENCY, description="Currency of the account and of every reported "
        "P&L; must be one of the pair's two currencies (quote-currency P&L is converted at the "
        "pair's own rate).")
    stop_out_level: float = Field(
        default=0.0, description="Fraction of initial_capital in [0, 1): when equity at a bar's "
        "close is at or below it, the strategy stops trading (0: when the account is empty).")
    max_gap_hours: float = Field(
        default=DEFAULT_MAX_GAP_HOURS, description="A hole in the stored data longer than this "
        "(hours) restarts the strategy: no indicator or open position carries across it "
        "(default 72: longer than a weekend with a holiday).")


def _coerce_params(strategy: str, overrides: Mapping[str, float]) -> object:
    """Run config carries numbers as floats; integral ones become ints for period fields."""
    clean = {k: int(v) if float(v).is_integer() else v for k, v in overrides.items()}
    return get_strategy(strategy).make_params(clean)


def _with_partition_keys(fills: pd.DataFrame, daily: pd.DataFrame
                         ) -> tuple[pd.DataFrame, pd.DataFrame]:
    fills = fills.assign(partition_key=month_key(fills["timestamp"]))
    daily = daily.assign(partition_key=month_key(daily["day"]))
    return fills, daily


def _costs(epic: Epic, config: BacktestConfig) -> CostModel:
    return CostModel.for_epic(epic, spread_pips=config.spread_pips,
                              commission_per_lot=config.commission_per_lot,
                              slippage_pips=config.slippage_pips)


def _account(config: BacktestConfig) -> Account:
    return Account(initial_capital=config.initial_capital, currency=config.account_currency,
                   stop_out_level=config.stop_out_level)


def _read_candles(market_data: MarketDataStore, strategy: str, params: object, epic: str,
                  start_ns: int, end_ns: int, timeframe: str) -> Candles:
    """The range plus the strategy's warm-up (counted in bars of ``timeframe``), as bars of
    ``timeframe`` resampled from the stored ones."""
    stored = market_data.timeframe(epic=epic) or "M1"
    check_derivable(timeframe, stored, epic)
    warmup = get_strategy(strategy).warmup_bars(params)
    return resample(market_data.read_range(
        epic=epic, start_ns=start_ns, end_ns=end_ns,
        warmup_bars=source_bars(warmup, timeframe, stored)), timeframe)


def _run(context: AssetExecutionContext, strategy: str, epic_name: str, config: BacktestConfig,
         market_data: MarketDataStore, results_db: ResultsDatabase) -> MaterializeResult:
    started_at = dt.datetime.now(dt.timezone.utc)
    epic = get_epic(epic_name)
    params = _coerce_params(strategy, config.params)
    start_ns, end_ns = window_ns(context)
    t0 = time.perf_counter_ns()
    candles = _read_candles(market_data, strategy, params, epic_name, start_ns, end_ns,
                            config.timeframe)
    t1 = time.perf_counter_ns()
    result = run_backtest(candles, strategy=strategy, params=params, epic=epic,
                          start_ns=start_ns, end_ns=end_ns, costs=_costs(epic, config),
                          size_units=config.size_units, account=_account(config),
                          max_gap_hours=config.max_gap_hours,
                          equity_fraction=(config.equity_fraction
                                           if config.sizing == "equity_fraction" else None))
    t2 = time.perf_counter_ns()
    fills, daily = _with_partition_keys(result.fills, result.daily)
    results_db.write_backtest(
        strategy=strategy, epic=epic_name, partition_keys=context.partition_keys,
        run_id=context.run.run_id, params=_stored_params(result, config.timeframe),
        started_at=started_at, finished_at=dt.datetime.now(dt.timezone.utc),
        metrics=result.metrics, fills=fills, daily=daily, fence=fence_for(context),
    )
    t3 = time.perf_counter_ns()
    timings = {"read_us": (t1 - t0) // 1000, "compute_us": (t2 - t1) // 1000,
               "write_us": (t3 - t2) // 1000}
    _log_run(context, result, timings, config.max_gap_hours)
    run_meta = _run_metadata(result, timings, context.partition_keys)
    months = month_figures(fills, daily, context.partition_keys, config.initial_capital)
    for key, figures in months.items():
        context.add_asset_metadata({**_month_metadata(figures, fills, key), **run_meta},
                                   partition_key=key)
    return MaterializeResult()


def _log_run(context: AssetExecutionContext, result: BacktestResult,
             timings: Mapping[str, int], max_gap_hours: float) -> None:
    """The run's metrics, and a warning for each gap restart and for a stop-out."""
    name = f"{result.strategy} {result.epic}"
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


def _stored_params(result: BacktestResult, timeframe: str) -> dict[str, object]:
    """The strategy's parameters, the bar timeframe, and the account the figures are
    relative to."""
    account = result.account
    stopped = result.stopped_out_at
    return {**result.params, "timeframe": timeframe, "account": {
        "initial_capital": account.initial_capital, "currency": account.currency,
        "stop_out_level": account.stop_out_level, "sizing": result.sizing,
        "stopped_out_at": None if stopped is None else stopped.isoformat()}}


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
