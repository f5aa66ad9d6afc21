"""The universe as the list of backtests to define: one ``BacktestSpec`` per (variant,
instrument), carrying everything an asset factory needs and nothing Dagster-specific."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from btpipeline.epics import Epic
from btpipeline.results.hashing import settings_hash
from btpipeline.strategies.base import Strategy, params_dict
from btpipeline.strategies.costs import CostModel
from btpipeline.universe.model import Instrument, Universe, Variant


@dataclass(frozen=True)
class BacktestSpec:
    """One backtest asset: ``backtest/<variant>/<instrument>``, grouped per variant."""

    variant: Variant
    instrument: Instrument

    @property
    def key_path(self) -> list[str]:
        return ["backtest", self.variant.name, self.instrument.name]

    @property
    def group_name(self) -> str:
        return f"backtest_{self.variant.name}"

    @property
    def strategy(self) -> Strategy:
        return self.variant.strategy_object

    @property
    def params(self) -> dict[str, Any]:
        """The variant's parameters with defaults filled in (JSON-able)."""
        return params_dict(self.variant.params_object)

    @property
    def epic(self) -> Epic:
        return self.instrument.to_epic()

    @property
    def costs(self) -> CostModel:
        return self.variant.costs.cost_model(self.instrument)

    @property
    def settings(self) -> dict[str, Any]:
        """Everything that decides this backtest's results, as JSON-able values: the strategy
        reference, its full parameters, timeframe, effective costs, sizing and account."""
        costs, variant = self.costs, self.variant
        return {"strategy": variant.strategy, "params": self.params,
                "timeframe": variant.timeframe,
                "costs": {"spread_pips": costs.spread_pips, "pip_size": costs.pip_size,
                          "commission_per_lot": costs.commission_per_lot,
                          "slippage_pips": costs.slippage_pips},
                "sizing": variant.sizing.model_dump(),
                "initial_capital": variant.initial_capital,
                "account_currency": variant.account_currency}

    @property
    def code_version(self) -> str:
        """A hash of ``settings``: changes exactly when a result-deciding setting changes."""
        return settings_hash(self.settings)


def backtest_specs(universe: Universe) -> list[BacktestSpec]:
    """Every backtest the universe declares, variant by variant, in file order."""
    return [BacktestSpec(universe.variants[v], universe.instruments[i])
            for v, i in universe.grid()]
