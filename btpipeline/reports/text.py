"""A strategy's metrics per epic as plain text, for the terminal: ``btpipeline report --text``
and ``btpipeline demo`` (the asset page and the HTML report are built by the rest of this
package). Metrics are recomputed over every stored month, so a report
always reflects the latest run of each partition. The stored P&L is in the account currency;
the metrics treat the stored months as one account opened with ``initial_capital`` (the
backtests' default unless told otherwise), with metrics.py's conventions.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Protocol

import pandas as pd

from btpipeline.strategies import compute_metrics
from btpipeline.strategies.account import DEFAULT_CAPITAL


class TextReportReader(Protocol):
    """The reader methods of ``ResultsDatabase`` the text report needs."""

    def read_daily_pnl(self, *, epic: str | None = None,
                       variant: str | None = None) -> pd.DataFrame: ...

    def read_closed_trade_pnls(self, *, epic: str,
                               variant: str | None = None) -> pd.Series: ...

COLUMNS = ["epic", "months", "num_trades", "total_return", "sharpe", "sortino",
           "max_drawdown", "win_rate", "profit_factor", "expectancy", "exposure"]


@dataclass(frozen=True)
class Report:
    strategy: str
    table: pd.DataFrame  # one row per epic, COLUMNS


def build_report(results_db: TextReportReader, strategy: str, epics: list[str],
                 initial_capital: float = DEFAULT_CAPITAL) -> Report:
    rows = []
    for epic in epics:
        daily = results_db.read_daily_pnl(variant=strategy, epic=epic)
        if daily.empty:
            continue
        daily = daily.sort_values("day")
        capital = initial_capital
        trades = results_db.read_closed_trade_pnls(variant=strategy, epic=epic)
        metrics = compute_metrics(daily["pnl"].to_numpy(), list(trades), capital=capital,
                                  bars=int(daily["bars"].sum()),
                                  bars_in_market=int(daily["bars_in_market"].sum()),
                                  days=daily["day"].to_numpy())
        rows.append({"epic": epic, "months": daily["partition_key"].nunique(), **metrics})
    return Report(strategy, pd.DataFrame(rows, columns=COLUMNS))


def _fmt(value: object, column: str) -> str:
    if column in ("num_trades", "months"):
        return f"{int(value):,}"  # type: ignore[call-overload]
    if isinstance(value, float):
        if column in ("total_return", "max_drawdown", "win_rate", "exposure"):
            return f"{value:.2%}"
        return f"{value:,.2f}" if abs(value) != float("inf") else "inf"
    return str(value)


def render_text(report: Report) -> str:
    if report.table.empty:
        return f"No stored results for {report.strategy} yet: materialize its backtests first."
    shown = report.table.copy()
    for column in COLUMNS[1:]:
        shown[column] = [_fmt(v, column) for v in shown[column]]
    return f"{report.strategy}\n{shown.to_string(index=False)}"
