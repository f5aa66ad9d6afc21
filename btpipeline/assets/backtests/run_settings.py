"""What one backtest run uses: its variant's settings from the universe file, with the run
config's overrides on top (a field left unset in the run config keeps the variant's value)."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from btpipeline.assets.backtests.config import BacktestConfig
from btpipeline.epics import Epic
from btpipeline.strategies import Account, CostModel
from btpipeline.strategies.base import Strategy, params_dict
from btpipeline.universe import BacktestSpec
from btpipeline.universe.model import DEFAULT_SIZE_UNITS


@dataclass(frozen=True)
class RunSettings:
    """The resolved inputs of ``run_backtest`` for one asset and one run config."""

    strategy: Strategy
    params: Any
    epic: Epic
    timeframe: str
    costs: CostModel
    size_units: float
    equity_fraction: float | None
    account: Account
    max_gap_hours: float

    def stored(self, result_params: Mapping[str, Any], sizing: str,
               stopped_out_at: str | None) -> dict[str, Any]:
        """The ``params`` JSON of the results rows: the strategy's parameters, the timeframe,
        the costs and the account the figures are relative to."""
        costs, account = self.costs, self.account
        return {**result_params, "timeframe": self.timeframe,
                "costs": {"spread_pips": costs.spread_pips, "pip_size": costs.pip_size,
                          "commission_per_lot": costs.commission_per_lot,
                          "slippage_pips": costs.slippage_pips},
                "account": {"initial_capital": account.initial_capital,
                            "currency": account.currency,
                            "stop_out_level": account.stop_out_level, "sizing": sizing,
                            "stopped_out_at": stopped_out_at}}


def _params(spec: BacktestSpec, overrides: Mapping[str, float]) -> Any:
    """The variant's parameters with the run config's on top; run config carries numbers as
    floats, so integral ones become ints for period fields."""
    clean = {k: int(v) if float(v).is_integer() else v for k, v in overrides.items()}
    return spec.strategy.make_params({**params_dict(spec.variant.params_object), **clean})


def _sizing(spec: BacktestSpec, config: BacktestConfig) -> tuple[float, float | None]:
    """(size_units, equity_fraction or None): the run config's choice, else the variant's."""
    declared = spec.variant.sizing
    mode = config.sizing or ("equity_fraction" if declared.fraction_of_equity is not None
                             else "units")
    units = config.size_units or declared.units or DEFAULT_SIZE_UNITS
    if mode == "units":
        return float(units), None
    return float(units), float(config.equity_fraction or declared.fraction_of_equity or 1.0)


def resolve(spec: BacktestSpec, config: BacktestConfig) -> RunSettings:
    """``spec``'s variant settings, overridden by whatever ``config`` sets."""
    variant, declared = spec.variant, spec.costs
    costs = CostModel(
        spread_pips=declared.spread_pips if config.spread_pips is None else config.spread_pips,
        pip_size=declared.pip_size,
        commission_per_lot=(declared.commission_per_lot if config.commission_per_lot is None
                            else config.commission_per_lot),
        slippage_pips=(declared.slippage_pips if config.slippage_pips is None
                       else config.slippage_pips))
    size_units, fraction = _sizing(spec, config)
    account = Account(
        initial_capital=config.initial_capital or variant.initial_capital,
        currency=config.account_currency or variant.account_currency,
        stop_out_level=config.stop_out_level)
    return RunSettings(strategy=spec.strategy, params=_params(spec, config.params),
                       epic=spec.epic, timeframe=config.timeframe or variant.timeframe,
                       costs=costs, size_units=size_units, equity_fraction=fraction,
                       account=account, max_gap_hours=config.max_gap_hours)
