"""Per-strategy reports built from the results database: a metrics table and equity curves.

Used by the ``report/<strategy>`` assets (markdown + PNG in the UI) and by the CLI's
``btpipeline report`` (plain text). Metrics are recomputed over every stored month, so a report
always reflects the latest run of each partition. The stored P&L is in the account currency;
the metrics treat the stored months as one account opened with ``initial_capital`` (the
backtests' default unless told otherwise), with metrics.py's conventions.
"""

from __future__ import annotations

import base64
import io
from dataclasses import dataclass
from pathlib import Path

import matplotlib

matplotlib.use("Agg")  # no display on servers and in CI
import matplotlib.pyplot as plt  # noqa: E402
import pandas as pd  # noqa: E402

from btpipeline.resources.results_database import ResultsDatabase  # noqa: E402
from btpipeline.strategies import compute_metrics  # noqa: E402
from btpipeline.strategies.account import DEFAULT_CAPITAL  # noqa: E402

COLUMNS = ["epic", "months", "num_trades", "total_return", "sharpe", "sortino",
           "max_drawdown", "win_rate", "profit_factor", "expectancy", "exposure"]


@dataclass(frozen=True)
class Report:
    strategy: str
    table: pd.DataFrame  # one row per epic, COLUMNS
    equity: pd.DataFrame  # index: day, one column per epic, cumulative return


def build_report(results_db: ResultsDatabase, strategy: str, epics: list[str],
                 initial_capital: float = DEFAULT_CAPITAL) -> Report:
    rows, curves = [], {}
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
        curves[epic] = pd.Series(daily["pnl"].cumsum().to_numpy() / capital,
                                 index=pd.to_datetime(daily["day"]))
    table = pd.DataFrame(rows, columns=COLUMNS)
    return Report(strategy, table, pd.DataFrame(curves))


def _fmt(value: object, column: str) -> str:
    if column in ("num_trades", "months"):
        return f"{int(value):,}"  # type: ignore[call-overload]
    if isinstance(value, float):
        if column in ("total_return", "max_drawdown", "win_rate", "exposure"):
            return f"{value:.2%}"
        return f"{value:,.2f}" if abs(value) != float("inf") else "inf"
    return str(value)


def render_markdown(report: Report) -> str:
    if report.table.empty:
        return f"No stored results for {report.strategy} yet: materialize its backtests first."
    head = "| " + " | ".join(COLUMNS) + " |\n|" + "---|" * len(COLUMNS) + "\n"
    body = "".join("| " + " | ".join(_fmt(row[c], c) for c in COLUMNS) + " |\n"
                   for _, row in report.table.iterrows())
    return head + body


def render_text(report: Report) -> str:
    if report.table.empty:
        return render_markdown(report)
    shown = report.table.copy()
    for column in COLUMNS[1:]:
        shown[column] = [_fmt(v, column) for v in shown[column]]
    return f"{report.strategy}\n{shown.to_string(index=False)}"


def plot_equity(report: Report, path: Path) -> bytes:
    """Write the equity curves as a PNG at ``path`` and return its bytes."""
    fig, ax = plt.subplots(figsize=(8, 3.5), dpi=100)
    for epic in report.equity.columns:
        ax.plot(report.equity.index, report.equity[epic] * 100, label=epic, linewidth=1.2)
    ax.set_title(f"{report.strategy}: cumulative return (% of initial capital)")
    ax.set_ylabel("%")
    ax.grid(alpha=0.3)
    if len(report.equity.columns):
        ax.legend(loc="best", fontsize=8)
    fig.autofmt_xdate()
    buffer = io.BytesIO()
    fig.savefig(buffer, format="png", bbox_inches="tight")
    plt.close(fig)
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(buffer.getvalue())
    return buffer.getvalue()


def png_markdown(png: bytes, alt: str) -> str:
    """An inline image the Dagster UI's markdown metadata renders."""
    return f"![{alt}](data:image/png;base64,{base64.b64encode(png).decode()})"
