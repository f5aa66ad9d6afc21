"""What a backtest stored about its run in ``backtest_executions.params``, in either layout.

Rows written since backtests run in an account hold the strategy's parameters plus
``timeframe`` and ``account`` (``initial_capital``, ``currency``, ``stop_out_level``, ``sizing``,
``stopped_out_at``), and their P&L is already in the account currency. Older rows hold only the
strategy's parameters and quote-currency P&L, which ``pnl_factor`` converts to USD at the
pair's catalogue reference rate (USDJPY P&L / 150).
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Any

from btpipeline.epics import get_epic
from btpipeline.errors import UnknownEpicError

RUN_KEYS = frozenset({"timeframe", "account", "costs"})
DEFAULT_TIMEFRAME = "M1"
DEFAULT_CURRENCY = "USD"


@dataclass(frozen=True)
class StoredRun:
    strategy_params: dict[str, Any]
    timeframe: str
    account: dict[str, Any] | None  # None: an older row, P&L in the quote currency
    costs: dict[str, Any] | None  # None: not stored


def stored_run(params: Mapping[str, Any] | None) -> StoredRun:
    params = dict(params or {})
    account, costs = params.get("account"), params.get("costs")
    return StoredRun(
        strategy_params={k: v for k, v in params.items() if k not in RUN_KEYS},
        timeframe=str(params.get("timeframe") or DEFAULT_TIMEFRAME),
        account=dict(account) if isinstance(account, Mapping) else None,
        costs=dict(costs) if isinstance(costs, Mapping) else None)


def pnl_factor(epic: str, run: StoredRun) -> float:
    """Multiply stored P&L by this to get the account currency (1 for account-era rows)."""
    if run.account is not None or epic.endswith(DEFAULT_CURRENCY):
        return 1.0
    try:
        return 1.0 / get_epic(epic).reference_price if epic.startswith(DEFAULT_CURRENCY) else 1.0
    except UnknownEpicError:
        return 1.0


def shared(runs: Iterable[StoredRun], key: str) -> Any | None:
    """The account field ``key`` every run agrees on, else None."""
    values = {repr(r.account.get(key)) if r.account else None for r in runs}
    if len(values) != 1 or None in values:
        return None
    return next(r.account.get(key) for r in runs if r.account)
