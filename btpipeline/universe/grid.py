"""The universe as the list of backtests to define: one ``BacktestSpec`` per (variant,
instrument), carrying everything an asset factory needs and nothing Dagster-specific."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from btpipeline.epics import Epic
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


def backtest_specs(universe: Universe) -> list[BacktestSpec]:
    """Every backtest the universe declares, variant by variant, in file order."""
    return [BacktestSpec(universe.variants[v], universe.instruments[i])
            for v, i in universe.grid()]
