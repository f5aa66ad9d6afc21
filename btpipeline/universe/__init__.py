"""The backtest universe: which instruments and strategy variants get backtest assets, and
from when. Declared in a YAML file (see ``loader.default_universe_path``), validated on load.

``strategies()`` and ``epics()`` answer from the default universe for callers written before
the file existed: the variant names (asset-key parts; in the shipped file each variant is
named as its built-in strategy) and the instrument names.
"""

from btpipeline.universe.grid import BacktestSpec, backtest_specs
from btpipeline.universe.loader import default_universe, default_universe_path, load_universe
from btpipeline.universe.model import CostSettings, Instrument, Sizing, Universe, Variant
from btpipeline.universe.strategy_check import check_strategy
from btpipeline.universe.strategy_loader import resolve_strategy

__all__ = [
    "BacktestSpec", "CostSettings", "Instrument", "Sizing", "Universe", "Variant",
    "backtest_specs", "check_strategy", "default_universe", "default_universe_path", "epics",
    "load_universe", "resolve_strategy", "strategies",
]


def strategies() -> list[str]:
    """Variant names of the default universe, in file order."""
    return list(default_universe().variants)


def epics() -> list[str]:
    """Instrument names of the default universe, in file order."""
    return list(default_universe().instruments)
