"""What a sweep runs: the validated settings (``SweepSpec``), one task per grid combination
(``SweepTask``), and the function a mapped step calls to run one task.

Plain Python (no Dagster), so the job, the tests and the benchmark share it.
"""

from __future__ import annotations

import datetime as dt
import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any, Protocol

from btpipeline.data.candles import Candles
from btpipeline.data.timestamps import date_ns
from btpipeline.epics import get_epic
from btpipeline.errors import InvalidDateRangeError, InvalidParameterError
from btpipeline.strategies import Account, CostModel, run_backtest
from btpipeline.strategies.account import DEFAULT_CAPITAL
from btpipeline.sweeps.grid import Combination, expand, sweep_strategy
from btpipeline.validation import check_date_range

METRICS = ("total_return", "sharpe", "sortino", "max_drawdown", "win_rate", "profit_factor",
           "expectancy", "num_trades", "exposure", "pnl")
LOWER_IS_BETTER = frozenset({"max_drawdown"})


@dataclass(frozen=True)
class SweepTask:
    """One combination to backtest: everything a mapped step needs, picklable. ``strategy``
    is a built-in's name or a user strategy's ``module:Class``."""

    strategy: str
    epic: str
    start_ns: int
    end_ns: int
    combination: Combination
    costs: CostModel
    size_units: float
    initial_capital: float = DEFAULT_CAPITAL

    @property
    def mapping_key(self) -> str:
        return self.combination.mapping_key

    @property
    def params(self) -> dict[str, Any]:
        return self.combination.params


@dataclass(frozen=True)
class SweepSpec:
    """A validated sweep: the tasks to fan out and how to rank their results."""

    tasks: tuple[SweepTask, ...]
    grid_fields: tuple[str, ...]
    rank_by: str
    top_n: int
    rules: tuple[str, ...] = ()
    dropped_by_rules: int = 0

    @property
    def max_warmup_bars(self) -> int:
        strategy = sweep_strategy(self.tasks[0].strategy)
        return max(strategy.warmup_bars(strategy.make_params(t.params)) for t in self.tasks)


def parse_day(field: str, text: str) -> dt.date:
    """``YYYY-MM-DD`` (UTC day) or an error naming the field."""
    try:
        return dt.date.fromisoformat(str(text))
    except ValueError:
        raise InvalidDateRangeError(
            f"Invalid sweep {field}: expected a date YYYY-MM-DD, got {text!r}. "
            f"Fix: e.g. {field}: 2024-01-31.") from None


def window_ns(start_date: str, end_date: str) -> tuple[int, int]:
    """``[start, end)`` in epoch ns for the inclusive UTC days ``start_date``..``end_date``."""
    start, end = parse_day("start_date", start_date), parse_day("end_date", end_date)
    check_date_range(start, end)
    return date_ns(start), date_ns(end + dt.timedelta(days=1))


def check_rank(rank_by: str, top_n: int) -> None:
    if rank_by not in METRICS:
        raise InvalidParameterError(
            f"Invalid sweep rank_by: expected one of {', '.join(METRICS)}, got {rank_by!r}. "
            "Fix: rank by one of those metrics (max_drawdown ranks lowest first).")
    if isinstance(top_n, bool) or not isinstance(top_n, int) or top_n < 1:
        raise InvalidParameterError(
            f"Invalid sweep top_n: expected a whole number >= 1, got {top_n!r}. "
            "Fix: e.g. top_n: 10.")


def build_spec(*, strategy: str, epic: str, start_date: str, end_date: str,
               grid: Mapping[str, object], costs: Mapping[str, float | None],
               size_units: float = 100_000, rank_by: str = "sharpe", top_n: int = 10,
               skip_invalid: bool = False, initial_capital: float = DEFAULT_CAPITAL,
               rules: Sequence[str] = ()) -> SweepSpec:
    """Validate every setting and expand the grid; raises a ``BtPipelineError`` naming the bad
    field and the fix. ``costs``: ``spread_pips`` (None: the epic's), ``commission_per_lot``,
    ``slippage_pips``."""
    chosen = sweep_strategy(strategy)
    epic_def = get_epic(epic)
    start_ns, end_ns = window_ns(start_date, end_date)
    cost_model = CostModel.for_epic(epic_def, **costs)  # type: ignore[arg-type]
    check_rank(rank_by, top_n)
    Account(initial_capital=float(initial_capital)).check_pair(epic_def)
    expansion = expand(strategy, grid, skip_invalid=skip_invalid, rules=rules)
    combinations = expansion.combinations
    name = strategy if ":" in strategy else chosen.name  # a user's: how to load it again
    tasks = tuple(SweepTask(strategy=name, epic=epic_def.name, start_ns=start_ns,
                            end_ns=end_ns, combination=c, costs=cost_model,
                            size_units=float(size_units),
                            initial_capital=float(initial_capital)) for c in combinations)
    return SweepSpec(tasks=tasks, grid_fields=tuple(combinations[0].overrides),
                     rank_by=rank_by, top_n=top_n, rules=tuple(rules),
                     dropped_by_rules=expansion.dropped_by_rules)


class CandleReader(Protocol):
    """What a chunk reads candles from (the ``market_data`` resource, or a ``CandleStore``)."""

    def read_range(self, *, epic: str, start_ns: int, end_ns: int,
                   warmup_bars: int = 0) -> Candles: ...


def read_candles(task: SweepTask, market_data: CandleReader) -> Candles:
    """The task's range plus its strategy's warm-up history (memory-mapped month files)."""
    strategy = sweep_strategy(task.strategy)
    warmup = strategy.warmup_bars(strategy.make_params(task.params))
    return market_data.read_range(epic=task.epic, start_ns=task.start_ns, end_ns=task.end_ns,
                                  warmup_bars=warmup)


def run_task(task: SweepTask, market_data: CandleReader) -> dict[str, Any]:
    """Backtest one combination: a result row with the combination's key, its grid values,
    every metric, the number of fills and the read/compute times (ms)."""
    t0 = time.perf_counter()
    candles = read_candles(task, market_data)
    t1 = time.perf_counter()
    result = run_backtest(candles, strategy=sweep_strategy(task.strategy), params=task.params,
                          epic=get_epic(task.epic), start_ns=task.start_ns, end_ns=task.end_ns,
                          costs=task.costs, size_units=task.size_units,
                          account=Account(initial_capital=task.initial_capital))
    t2 = time.perf_counter()
    return result_row(task, result.metrics, len(result.fills), (t1 - t0) * 1e3, (t2 - t1) * 1e3)


def result_row(task: SweepTask, metrics: Mapping[str, float], fills: int,
               read_ms: float, compute_ms: float) -> dict[str, Any]:
    """One combination's row: key, grid values, every metric, fill count and timings (ms)."""
    return {"combination": task.mapping_key, **task.combination.overrides, **metrics,
            "fills": fills, "read_ms": read_ms, "compute_ms": compute_ms}
