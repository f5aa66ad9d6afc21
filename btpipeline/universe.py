"""Which strategies and epics get backtest assets (the grid the UI shows).

Every registered strategy runs on every catalogued epic: 4 x 6 = 24 backtest assets. The
names are plain identifiers so they can be asset-key parts and tag values as they are.
"""

from btpipeline.epics import EPICS
from btpipeline.strategies.registry import strategy_names


def strategies() -> list[str]:
    return list(strategy_names())


def epics() -> list[str]:
    return list(EPICS)
