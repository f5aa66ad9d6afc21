"""Pure-numpy indicators, the four strategies, the trade simulator, metrics and the
``run_backtest`` entry point the backtest assets call."""

from btpipeline.strategies.account import Account
from btpipeline.strategies.backtest import (
    BacktestResult,
    SweepMetrics,
    backtest_metrics,
    run_backtest,
)
from btpipeline.strategies.base import Strategy, params_dict
from btpipeline.strategies.bollinger_breakout import BollingerParams
from btpipeline.strategies.costs import CostModel
from btpipeline.strategies.ema_crossover import EmaCrossoverParams
from btpipeline.strategies.indicators import ema, macd, rolling_mean, rolling_std, wilder_rsi
from btpipeline.strategies.macd_crossover import MacdParams
from btpipeline.strategies.metrics import compute_metrics
from btpipeline.strategies.month_figures import month_figures
from btpipeline.strategies.registry import STRATEGIES, get_strategy, strategy_names
from btpipeline.strategies.rsi_mean_reversion import RsiParams
from btpipeline.strategies.simulator import SimulationResult, simulate

__all__ = [
    "Account", "BacktestResult", "BollingerParams", "CostModel", "EmaCrossoverParams",
    "MacdParams", "RsiParams", "STRATEGIES", "SimulationResult", "Strategy", "SweepMetrics",
    "backtest_metrics", "compute_metrics", "ema", "get_strategy", "macd", "month_figures",
    "params_dict", "rolling_mean", "rolling_std", "run_backtest", "simulate", "strategy_names",
    "wilder_rsi",
]
