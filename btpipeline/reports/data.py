"""Gather one strategy variant's stored results into a ``VariantReportData``.

Reads only the results database's public reader methods (``read_daily_pnl``, ``read_signals``,
``read_executions``), so any object with those methods works (``ResultsReader``).

Conventions:

* **One calendar.** Every instrument's daily P&L is placed on the union of all stored days;
  a day an instrument has no row is a 0 P&L day (flat, or no data), so curves line up.
* **Account currency.** Backtests store P&L in the account currency with the account in the
  execution row's params; older rows (quote-currency P&L, no account) are converted at the
  pair's catalogue rate (see ``stored.py``). ``capital`` defaults to the stored
  ``initial_capital`` when every instrument's run agrees on it, else ``DEFAULT_CAPITAL``.
* **Account equity** = ``capital`` + cumulative P&L, starting at ``capital`` on the day before
  the first stored day. Each instrument's curve is that pair traded alone on the account; the
  **portfolio** is one account of ``capital`` trading every instrument at once (the sum of
  their daily P&L). Drawdown = equity / running peak - 1 (<= 0).
* **Monthly returns** = a month's P&L / ``capital`` (simple, not compounded), so the months of
  a column sum to its total return.
"""

from __future__ import annotations

import datetime as dt
import math
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any, Protocol

import pandas as pd

from btpipeline.epics import get_epic
from btpipeline.errors import InvalidParameterError, UnknownEpicError
from btpipeline.reports.stored import StoredRun, pnl_factor, shared, stored_run
from btpipeline.reports.trades import concat_trades, pair_trades
from btpipeline.strategies import CostModel, compute_metrics

DEFAULT_CAPITAL = 100_000.0
PORTFOLIO = "portfolio"


class ResultsReader(Protocol):
    """The reader methods of ``ResultsDatabase`` a report needs."""

    def read_daily_pnl(self, *, strategy: str | None = None, epic: str | None = None,
                       start_day: str | dt.date | None = None,
                       end_day: str | dt.date | None = None,
                       variant: str | None = None) -> pd.DataFrame: ...

    def read_signals(self, *, strategy: str | None = None, epic: str | None = None,
                     partition_keys: Sequence[str] | None = None,
                     variant: str | None = None) -> pd.DataFrame: ...

    def read_executions(self, *, strategy: str | None = None, epic: str | None = None,
                        variant: str | None = None) -> pd.DataFrame: ...


@dataclass(frozen=True)
class DataRange:
    """What an instrument's stored results cover."""

    first_day: str
    last_day: str
    first_month: str
    last_month: str
    months: int
    days: int


@dataclass(frozen=True)
class VariantReportData:
    strategy: str
    capital: float
    instruments: list[str]  # the ones with stored results, in the order asked
    daily_pnl: pd.DataFrame  # index: day (DatetimeIndex, one calendar); column per instrument
    equity: pd.DataFrame  # index: start day + calendar; instruments + PORTFOLIO
    drawdown: pd.DataFrame  # same shape as equity, fractions <= 0
    monthly_returns: pd.DataFrame  # index "YYYY-MM"; instruments + PORTFOLIO
    trades: pd.DataFrame  # see trades.TRADE_COLUMNS
    metrics: pd.DataFrame  # index: instruments + PORTFOLIO; months + compute_metrics columns
    params: dict[str, dict[str, Any]]  # instrument -> latest stored strategy params
    costs: dict[str, dict[str, Any]]  # instrument -> stored costs, else the catalogue's
    data_range: dict[str, DataRange]
    source: str = ""
    timeframe: str = "M1"
    currency: str = "USD"
    notes: list[str] = field(default_factory=list)

    @property
    def empty(self) -> bool:
        return not self.instruments

    def common_params(self) -> dict[str, Any] | None:
        """The params every instrument ran with, or None when they differ."""
        distinct = {repr(sorted(p.items())) for p in self.params.values()}
        return next(iter(self.params.values())) if len(distinct) == 1 else None


def _aligned_daily(frames: dict[str, pd.DataFrame], factors: dict[str, float]) -> pd.DataFrame:
    """Daily P&L in account currency, one column per instrument, on the union of days."""
    series = {epic: pd.Series(f["pnl"].to_numpy() * factors[epic],
                              index=pd.to_datetime(f["day"])) for epic, f in frames.items()}
    table = pd.DataFrame(series).sort_index().fillna(0.0)
    table.index.name = "day"
    return table


def _with_portfolio(daily: pd.DataFrame) -> pd.DataFrame:
    return daily.assign(**{PORTFOLIO: daily.sum(axis=1)})


def equity_curves(daily: pd.DataFrame, capital: float) -> pd.DataFrame:
    """``capital`` + cumulative P&L, with a first row at ``capital`` the day before."""
    equity = capital + daily.cumsum()
    start = pd.DataFrame(capital, index=[daily.index[0] - pd.Timedelta(days=1)],
                         columns=daily.columns)
    return pd.concat([start, equity])


def drawdowns(equity: pd.DataFrame) -> pd.DataFrame:
    return equity / equity.cummax() - 1.0


def monthly_returns(daily: pd.DataFrame, capital: float) -> pd.DataFrame:
    months = daily.groupby(daily.index.strftime("%Y-%m")).sum() / capital
    months.index.name = "month"
    return months


def year_by_month(monthly: pd.Series) -> pd.DataFrame:
    """quantstats-style table: one row per year, columns Jan..Dec, NaN for missing months."""
    index = pd.to_datetime(monthly.index + "-01")
    table = pd.DataFrame({"year": index.year, "month": index.month, "value": monthly.to_numpy()})
    pivot = table.pivot(index="year", columns="month", values="value")
    pivot = pivot.reindex(columns=range(1, 13))
    pivot.columns = [dt.date(2000, m, 1).strftime("%b") for m in range(1, 13)]
    return pivot


def _metrics_row(daily: pd.Series, trade_pnls: pd.Series, capital: float, bars: int,
                 bars_in_market: int, months: int) -> dict[str, float]:
    days = pd.to_datetime(daily.index).strftime("%Y-%m-%d").to_numpy()
    values = compute_metrics(daily.to_numpy(), trade_pnls.dropna().to_numpy(), capital=capital,
                             bars=bars, bars_in_market=bars_in_market, days=days)
    return {"months": float(months), **values}


def metrics_table(daily: pd.DataFrame, trades: pd.DataFrame, frames: dict[str, pd.DataFrame],
                  capital: float) -> pd.DataFrame:
    """compute_metrics per instrument on the account, and for the portfolio (its exposure is
    the instruments' average)."""
    rows = {}
    for epic, frame in frames.items():
        rows[epic] = _metrics_row(daily[epic], trades.loc[trades["instrument"] == epic, "pnl"],
                                  capital, int(frame["bars"].sum()),
                                  int(frame["bars_in_market"].sum()),
                                  frame["partition_key"].nunique())
    every = pd.concat(frames.values())
    rows[PORTFOLIO] = _metrics_row(daily.sum(axis=1), trades["pnl"], capital,
                                   int(every["bars"].sum()), int(every["bars_in_market"].sum()),
                                   every["partition_key"].nunique())
    return pd.DataFrame.from_dict(rows, orient="index")


def _data_range(frame: pd.DataFrame) -> DataRange:
    days = frame["day"].astype(str)
    keys = frame["partition_key"].astype(str)
    return DataRange(first_day=days.min(), last_day=days.max(), first_month=keys.min()[:7],
                     last_month=keys.max()[:7], months=keys.nunique(), days=int(days.nunique()))


def _latest_params(executions: pd.DataFrame) -> dict[str, Any]:
    ok = executions[executions["status"] == "SUCCESS"]
    if ok.empty:
        return {}
    latest = ok.sort_values("finished_at").iloc[-1]["params"]
    return dict(latest) if isinstance(latest, dict) else {}


def _costs(epic: str, run: StoredRun) -> dict[str, Any]:
    """The run's stored costs, else the epic's catalogue cost model (empty if unknown)."""
    if run.costs is not None:
        return run.costs
    try:
        model = CostModel.for_epic(get_epic(epic))
    except UnknownEpicError:
        return {}
    return {"spread_pips": model.spread_pips, "commission_per_lot": model.commission_per_lot,
            "slippage_pips": model.slippage_pips}


def _notes(runs: dict[str, StoredRun], factors: dict[str, float]) -> list[str]:
    notes = [f"{epic}: P&L stored in the quote currency, converted at the catalogue rate"
             for epic, factor in factors.items() if factor != 1.0]
    notes += [f"{epic}: stopped out at {run.account['stopped_out_at']}"
              for epic, run in runs.items() if run.account and run.account.get("stopped_out_at")]
    return notes


def _check_capital(capital: float) -> None:
    if not (isinstance(capital, int | float) and math.isfinite(capital) and capital > 0):
        raise InvalidParameterError(
            f"Invalid report capital: expected a finite number > 0, got {capital!r}. "
            "Fix: pass the account's starting capital, e.g. 100000 (--capital 100000).")


def _read(reader: ResultsReader, strategy: str, instruments: Sequence[str]
          ) -> tuple[dict[str, pd.DataFrame], dict[str, StoredRun]]:
    frames, runs = {}, {}
    for epic in instruments:
        frame = reader.read_daily_pnl(variant=strategy, epic=epic)
        if not frame.empty:
            frames[epic] = frame.sort_values("day")
            executions = reader.read_executions(variant=strategy, epic=epic)
            runs[epic] = stored_run(_latest_params(executions))
    return frames, runs


def gather_report_data(reader: ResultsReader, strategy: str, instruments: Sequence[str], *,
                       capital: float | None = None, source: str = "") -> VariantReportData:
    """Everything a report shows for ``strategy`` on ``instruments`` (those with no stored
    daily P&L are left out; with none at all the result is ``empty``). ``capital`` None: the
    stored initial capital (see the module docstring)."""
    if capital is not None:
        _check_capital(capital)
    frames, runs = _read(reader, strategy, instruments)
    capital = capital or float(shared(list(runs.values()), "initial_capital") or DEFAULT_CAPITAL)
    if not frames:
        return _empty(strategy, capital, source)
    factors = {epic: pnl_factor(epic, run) for epic, run in runs.items()}
    daily = _aligned_daily(frames, factors)
    trades = concat_trades([
        pair_trades(epic, reader.read_signals(variant=strategy, epic=epic), factors[epic])
        for epic in frames])
    equity = equity_curves(_with_portfolio(daily), capital)
    return VariantReportData(
        strategy=strategy, capital=capital, instruments=list(frames), daily_pnl=daily,
        equity=equity, drawdown=drawdowns(equity),
        monthly_returns=monthly_returns(_with_portfolio(daily), capital), trades=trades,
        metrics=metrics_table(daily, trades, frames, capital),
        params={epic: run.strategy_params for epic, run in runs.items()},
        costs={epic: _costs(epic, run) for epic, run in runs.items()},
        data_range={epic: _data_range(frame) for epic, frame in frames.items()}, source=source,
        timeframe=", ".join(sorted({run.timeframe for run in runs.values()})),
        currency=str(shared(list(runs.values()), "currency") or "USD"),
        notes=_notes(runs, factors))


def _empty(strategy: str, capital: float, source: str) -> VariantReportData:
    none = pd.DataFrame()
    return VariantReportData(strategy=strategy, capital=capital, instruments=[], daily_pnl=none,
                             equity=none, drawdown=none, monthly_returns=none,
                             trades=concat_trades([]), metrics=none, params={}, costs={},
                             data_range={}, source=source)
