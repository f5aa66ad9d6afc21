"""The strategies btpipeline knows, by name."""

from __future__ import annotations

from btpipeline.errors import UnknownStrategyError
from btpipeline.strategies.base import Strategy
from btpipeline.strategies.bollinger_breakout import BOLLINGER_BREAKOUT
from btpipeline.strategies.ema_crossover import EMA_CROSSOVER
from btpipeline.strategies.macd_crossover import MACD_CROSSOVER
from btpipeline.strategies.rsi_mean_reversion import RSI_MEAN_REVERSION

STRATEGIES: dict[str, Strategy] = {
    s.name: s for s in (MACD_CROSSOVER, EMA_CROSSOVER, RSI_MEAN_REVERSION, BOLLINGER_BREAKOUT)
}


def get_strategy(name: str) -> Strategy:
    """The strategy called ``name``; ``UnknownStrategyError`` lists the known ones."""
    try:
        return STRATEGIES[name]
    except (KeyError, TypeError):
        raise UnknownStrategyError(str(name), list(STRATEGIES)) from None


def strategy_names() -> list[str]:
    return list(STRATEGIES)
