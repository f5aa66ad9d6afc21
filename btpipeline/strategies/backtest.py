"""The one entry point the backtest assets call: candles in, fills/daily/metrics out."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

import numpy as np
import pandas as pd

from btpipeline.data.candles import Candles
from btpipeline.epics import Epic
from btpipeline.errors import InvalidDateRangeError
from btpipeline.strategies.base import params_dict
from btpipeline.strategies.costs import CostModel
from btpipeline.strategies.metrics import compute_metrics
from btpipeline.strategies.registry import get_strategy
from btpipeline.strategies.simulator import SimulationResult, simulate


@dataclass(frozen=True)
class BacktestResult:
    """One strategy on one epic over ``[start_ns, end_ns)``. ``params`` is the JSON-able dict
    of the parameters used (defaults filled in); ``metrics`` use capital =
    ``size_units * epic.reference_price``."""

    strategy: str
    epic: str
    params: dict[str, Any]
    fills: pd.DataFrame
    daily: pd.DataFrame
    metrics: dict[str, float]
    end_position: int
    simulation: SimulationResult

    @property
    def trades(self) -> pd.DataFrame:
        """Closed trades: the CLOSE fills (timestamp, side, price, size, pnl)."""
        closes = self.fills[self.fills["action"] == "CLOSE"]
        return closes.drop(columns="action").reset_index(drop=True)

    @property
    def trade_pnls(self) -> np.ndarray:
        return self.trades["pnl"].to_numpy(dtype=np.float64)


def _check_range(start_ns: int, end_ns: int) -> None:
    if not int(start_ns) < int(end_ns):
        raise InvalidDateRangeError(
            f"Invalid backtest range: expected start_ns < end_ns, got start_ns={start_ns}, "
            f"end_ns={end_ns}. Fix: pass a start before the (exclusive) end.")


def run_backtest(candles: Candles, *, strategy: str, params: Mapping[str, object] | object | None,
                 epic: Epic, start_ns: int, end_ns: int, costs: CostModel | None = None,
                 size_units: float = 100_000) -> BacktestResult:
    """Run ``strategy`` over ``candles`` and report ``[start_ns, end_ns)``.

    ``candles`` should start ``warmup_bars(params)`` bars before ``start_ns`` so that
    indicators and any open position carry into the range (see simulator.py). ``params`` is a
    mapping of overrides, ``None`` for the defaults, or the strategy's params object.
    ``costs`` defaults to the epic's catalogue spread with no commission or slippage.
    """
    chosen = get_strategy(strategy)
    used = chosen.coerce_params(params)
    _check_range(start_ns, end_ns)
    costs = costs if costs is not None else CostModel.for_epic(epic)
    candles = candles.take(slice(0, int(np.searchsorted(candles.timestamp, end_ns, side="left"))))
    sim = simulate(candles, chosen.target_positions(candles, used), costs=costs,
                   size_units=size_units, start_ns=start_ns, end_ns=end_ns)
    closes = sim.fills["pnl"].to_numpy()[sim.fills["action"].to_numpy() == "CLOSE"]
    metrics = compute_metrics(sim.daily["pnl"].to_numpy(), closes,
                              capital=size_units * epic.reference_price,
                              bars=int(sim.timestamps.shape[0]),
                              bars_in_market=int(np.count_nonzero(sim.positions)))
    return BacktestResult(strategy=chosen.name, epic=epic.name, params=params_dict(used),
                          fills=sim.fills, daily=sim.daily, metrics=metrics,
                          end_position=sim.end_position, simulation=sim)
