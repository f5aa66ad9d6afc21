"""The ops of ``sweep_job`` (see jobs.py) and their run config.

* ``plan_sweep`` validates the whole configuration (strategy, epic, dates, grid, costs, ranking)
  and that candles exist, then emits one ``DynamicOutput`` per grid combination. A bad grid
  fails here, once, before any mapped step starts.
* ``backtest_combination`` (one step per combination) reads the candles from the
  ``market_data`` resource (memory-mapped Arrow: the workers share the OS page cache) and runs
  ``run_backtest``; the executor hands these steps to its warm, pinned workers. Like the
  backtest assets the steps claim slots of the ``backtests`` pool, so the machine-wide limit
  and the circuit breaker throttle a sweep too.
* ``rank_sweep`` collects every result row, ranks them and returns the table; the top rows are
  logged and attached as markdown output metadata (the UI shows them on the step's output).

All configuration sits on ``plan_sweep`` (see ``SweepConfig``), so a launchpad or ``-c`` file
needs one ``ops: {plan_sweep: {config: ...}}`` block (``examples/sweep.yaml``).
"""

import json
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

import pandas as pd
from dagster import (
    Config,
    DynamicOut,
    DynamicOutput,
    MetadataValue,
    OpExecutionContext,
    Out,
    Output,
    op,
)
from pydantic import Field

from btpipeline.assets.backtests.assets import BACKTEST_RETRY_POLICY
from btpipeline.assets.failures import step_failure
from btpipeline.errors import BtPipelineError
from btpipeline.machine.tags import BACKTEST_POOL
from btpipeline.resources.market_data_store import MarketDataStore
from btpipeline.sweeps.ranking import markdown_top, rank_results
from btpipeline.sweeps.spec import SweepSpec, SweepTask, build_spec, run_task


class SweepConfig(Config):
    """Run config of ``plan_sweep``: what to sweep, over which data, at what cost."""

    strategy: str = Field(default="macd_crossover",
                          description="Strategy name, e.g. macd_crossover, ema_crossover.")
    epic: str = Field(default="EURUSD", description="Currency pair, e.g. EURUSD.")
    start_date: str = Field(description="First UTC day of the backtest, YYYY-MM-DD.")
    end_date: str = Field(description="Last UTC day of the backtest (inclusive), YYYY-MM-DD.")
    grid: dict[str, list[float]] = Field(
        description="Values per strategy parameter; every combination is backtested, e.g. "
        "{fast: [8, 12], slow: [21, 26], signal: [9]}. Unlisted parameters keep defaults.")
    skip_invalid: bool = Field(
        default=False, description="Drop combinations the strategy rejects (e.g. fast >= "
        "slow) instead of failing the run.")
    spread_pips: float | None = Field(
        default=None, description="Spread in pips; unset uses the epic's catalogue spread.")
    commission_per_lot: float = Field(
        default=0.0, description="Commission per 100,000 units per side, in quote currency.")
    slippage_pips: float = Field(default=0.0, description="Adverse slippage per fill, in pips.")
    size_units: float = Field(default=100_000, description="Fixed position size, base units.")
    initial_capital: float = Field(
        default=100_000, description="Account equity (USD) each combination starts with; "
        "returns and drawdown are on it, and trading stops if it is lost.")
    rank_by: str = Field(default="sharpe", description="Metric to rank by (max_drawdown ranks "
                         "lowest first): total_return, sharpe, sortino, max_drawdown, win_rate, "
                         "profit_factor, expectancy, num_trades, exposure.")
    top_n: int = Field(default=10, description="Rows of the markdown table of the best results.")


@dataclass(frozen=True)
class Ranking:
    """What ``rank_sweep`` needs from the plan besides the results."""

    rank_by: str
    top_n: int
    grid_fields: tuple[str, ...]
    strategy: str
    epic: str


def _spec(config: SweepConfig) -> SweepSpec:
    costs = {"spread_pips": config.spread_pips, "commission_per_lot": config.commission_per_lot,
             "slippage_pips": config.slippage_pips}
    return build_spec(strategy=config.strategy, epic=config.epic, start_date=config.start_date,
                      end_date=config.end_date, grid=config.grid, costs=costs,
                      size_units=config.size_units, initial_capital=config.initial_capital,
                      rank_by=config.rank_by, top_n=config.top_n,
                      skip_invalid=config.skip_invalid)


def _check_data(spec: SweepSpec, market_data: MarketDataStore) -> int:
    """Read the range once with the longest warm-up: missing candles fail before the fan-out
    (with the store's message naming the `btpipeline generate`/`import` command)."""
    task = spec.tasks[0]
    candles = market_data.read_range(epic=task.epic, start_ns=task.start_ns, end_ns=task.end_ns,
                                     warmup_bars=spec.max_warmup_bars)
    return len(candles)


@op(out={"combinations": DynamicOut(SweepTask), "ranking": Out(Ranking)},
    description="Validate the sweep config and emit one output per grid combination.")
def plan_sweep(context: OpExecutionContext, config: SweepConfig,
               market_data: MarketDataStore) -> Iterator[Output | DynamicOutput]:
    try:
        spec = _spec(config)
        bars = _check_data(spec, market_data)
    except BtPipelineError as error:
        raise step_failure(error) from error
    first = spec.tasks[0]
    context.log.info(f"Sweep of {first.strategy} on {first.epic}: {len(spec.tasks)} "
                     f"combinations of {', '.join(spec.grid_fields)} over {bars} bars "
                     f"(with warm-up), ranked by {spec.rank_by}.")
    yield Output(Ranking(rank_by=spec.rank_by, top_n=spec.top_n, grid_fields=spec.grid_fields,
                         strategy=first.strategy, epic=first.epic), output_name="ranking")
    for task in spec.tasks:
        yield DynamicOutput(task, mapping_key=task.mapping_key, output_name="combinations")


@op(pool=BACKTEST_POOL, retry_policy=BACKTEST_RETRY_POLICY,
    description="Backtest one grid combination on candles from the market_data resource.")
def backtest_combination(context: OpExecutionContext, task: SweepTask,
                         market_data: MarketDataStore) -> dict[str, Any]:
    try:
        row = run_task(task, market_data)
    except BtPipelineError as error:
        raise step_failure(error) from error
    context.log.debug(f"{task.mapping_key}: total_return {row['total_return']:.6f}, "
                      f"{row['num_trades']:.0f} trades, compute {row['compute_ms']:.1f} ms")
    return row


def _best(table: pd.DataFrame) -> dict[str, Any]:
    """The best row as JSON-safe values (infinite profit factors become null)."""
    return json.loads(table.head(1).to_json(orient="records"))[0]


@op(description="Rank every combination's metrics; the best ones as a markdown table.")
def rank_sweep(context: OpExecutionContext, results: list[dict[str, Any]],
               ranking: Ranking) -> Output[pd.DataFrame]:
    table = rank_results(results, ranking.rank_by)
    top = markdown_top(table, ranking.grid_fields, ranking.top_n)
    context.log.info(f"{ranking.strategy} on {ranking.epic}, {len(table)} combinations, "
                     f"best by {ranking.rank_by}:\n{top}")
    return Output(table, metadata={
        "top": MetadataValue.md(top),
        "best": MetadataValue.json(_best(table)),
        "combinations": MetadataValue.int(len(table)),
        "rank_by": MetadataValue.text(ranking.rank_by),
        "compute_ms_total": MetadataValue.float(float(table["compute_ms"].sum())),
    })

