"""Parameter validation, the registry, cost models and run_backtest's argument checks."""

from __future__ import annotations

import dataclasses
import json
import math

import numpy as np
import pytest

from btpipeline.epics import get_epic
from btpipeline.errors import InvalidDateRangeError, InvalidParameterError, UnknownStrategyError
from btpipeline.strategies import (
    STRATEGIES,
    CostModel,
    MacdParams,
    ema,
    get_strategy,
    macd,
    params_dict,
    run_backtest,
    simulate,
    strategy_names,
    wilder_rsi,
)
from btpipeline.strategies.base import decay_bars, ema_alpha
from tests.unit.test_strategies_reference import random_walk_candles

DEFAULTS = {
    "macd_crossover": {"fast": 12, "slow": 26, "signal": 9},
    "ema_crossover": {"fast": 20, "slow": 50},
    "rsi_mean_reversion": {"period": 14, "lower": 30.0, "upper": 70.0, "exit": 50.0},
    "bollinger_breakout": {"window": 20, "k": 2.0},
}


def test_registry_lists_the_four_strategies() -> None:
    assert strategy_names() == list(DEFAULTS)
    assert set(STRATEGIES) == set(DEFAULTS)
    assert all(get_strategy(name).name == name for name in DEFAULTS)


def test_unknown_strategy_names_the_known_ones() -> None:
    with pytest.raises(UnknownStrategyError, match="macd_crossover") as info:
        get_strategy("macd_cross")
    assert "Fix" in str(info.value) and isinstance(info.value, LookupError)
    with pytest.raises(UnknownStrategyError):
        run_backtest(random_walk_candles(100), strategy="nope", params=None,
                     epic=get_epic("EURUSD"), start_ns=0, end_ns=1)


@pytest.mark.parametrize("name", list(DEFAULTS))
def test_defaults_are_frozen_and_json_able(name: str) -> None:
    params = get_strategy(name).make_params(None)
    assert params_dict(params) == DEFAULTS[name]
    assert json.loads(json.dumps(params_dict(params))) == DEFAULTS[name]
    with pytest.raises(dataclasses.FrozenInstanceError):
        params.fast = 3  # type: ignore[misc]


def test_overrides_apply_and_keep_the_other_defaults() -> None:
    params = get_strategy("rsi_mean_reversion").make_params({"period": 7, "lower": 25})
    assert params_dict(params) == {"period": 7, "lower": 25.0, "upper": 70.0, "exit": 50.0}


BAD = [
    ("macd_crossover", {"fsat": 3}, "fsat", "Unknown parameter"),
    ("macd_crossover", {"fast": 30}, "fast", "fast < slow"),
    ("macd_crossover", {"fast": 26}, "fast", "fast < slow"),
    ("macd_crossover", {"signal": 0}, "signal", ">= 1"),
    ("macd_crossover", {"slow": 26.5}, "slow", "whole number"),
    ("macd_crossover", {"fast": True}, "fast", "whole number"),
    ("macd_crossover", {"fast": "12"}, "fast", "whole number"),
    ("ema_crossover", {"fast": -5}, "fast", ">= 1"),
    ("ema_crossover", {"fast": 60}, "fast", "fast < slow"),
    ("rsi_mean_reversion", {"period": 0}, "period", ">= 1"),
    ("rsi_mean_reversion", {"lower": -1}, "lower", "[0.0, 100.0]"),
    ("rsi_mean_reversion", {"upper": 101}, "upper", "[0.0, 100.0]"),
    ("rsi_mean_reversion", {"lower": 70, "upper": 30}, "lower", "lower < upper"),
    ("rsi_mean_reversion", {"lower": 60}, "lower", "lower < exit"),
    ("rsi_mean_reversion", {"exit": 80}, "exit", "exit < upper"),
    ("rsi_mean_reversion", {"exit": math.nan}, "exit", "finite"),
    ("bollinger_breakout", {"k": 0}, "k", "(0.0"),
    ("bollinger_breakout", {"k": -1.5}, "k", "(0.0"),
    ("bollinger_breakout", {"k": math.inf}, "k", "finite"),
    ("bollinger_breakout", {"window": 2.5}, "window", "whole number"),
]


@pytest.mark.parametrize("name,overrides,field,expected", BAD)
def test_bad_parameters_name_the_field_the_expectation_and_the_fix(
        name: str, overrides: dict, field: str, expected: str) -> None:
    with pytest.raises(InvalidParameterError) as info:
        get_strategy(name).make_params(overrides)
    message = str(info.value)
    assert repr(field) in message and expected in message and "Fix:" in message
    assert "got" in message and isinstance(info.value, ValueError)


def test_run_backtest_validates_params_objects_and_mappings() -> None:
    candles, epic = random_walk_candles(500), get_epic("EURUSD")
    kwargs = dict(strategy="macd_crossover", epic=epic, start_ns=int(candles.timestamp[100]),
                  end_ns=int(candles.timestamp[-1]))
    assert run_backtest(candles, params=MacdParams(fast=5), **kwargs).params["fast"] == 5
    with pytest.raises(InvalidParameterError, match="'fast'"):
        run_backtest(candles, params=MacdParams(fast=40), **kwargs)
    with pytest.raises(InvalidParameterError, match="'fast'"):
        run_backtest(candles, params={"fast": 40}, **kwargs)
    with pytest.raises(InvalidParameterError, match="MacdParams"):
        run_backtest(candles, params=get_strategy("ema_crossover").make_params(None), **kwargs)


def test_an_inverted_or_empty_range_is_an_invalid_date_range() -> None:
    candles = random_walk_candles(100)
    for start, end in ((10, 10), (11, 10)):
        with pytest.raises(InvalidDateRangeError, match="start_ns < end_ns"):
            run_backtest(candles, strategy="ema_crossover", params=None,
                         epic=get_epic("EURUSD"), start_ns=start, end_ns=end)


@pytest.mark.parametrize("field", ["spread_pips", "commission_per_lot", "slippage_pips"])
def test_negative_costs_are_rejected_by_name(field: str) -> None:
    values = dict(spread_pips=1.0, pip_size=0.0001, commission_per_lot=0.0, slippage_pips=0.0)
    values[field] = -0.1
    with pytest.raises(InvalidParameterError, match=f"'{field}'.*>= 0.*Fix"):
        CostModel(**values)


@pytest.mark.parametrize("pip_size", [0.0, -0.0001, math.nan])
def test_pip_size_must_be_positive(pip_size: float) -> None:
    with pytest.raises(InvalidParameterError, match="'pip_size'.*> 0"):
        CostModel(spread_pips=1.0, pip_size=pip_size)


def test_cost_model_for_epic_uses_its_catalogue_spread_unless_overridden() -> None:
    epic = get_epic("USDJPY")
    assert CostModel.for_epic(epic) == CostModel(spread_pips=1.0, pip_size=0.01)
    costs = CostModel.for_epic(epic, spread_pips=2.0, commission_per_lot=5.0, slippage_pips=0.5)
    assert costs.price_offset == pytest.approx((1.0 + 0.5) * 0.01)
    assert costs.commission(250_000) == pytest.approx(12.5)


def test_simulate_rejects_bad_targets_and_sizes() -> None:
    candles = random_walk_candles(10)
    costs = CostModel(spread_pips=1.0, pip_size=0.0001)
    kwargs = dict(costs=costs, start_ns=0, end_ns=2**62)
    with pytest.raises(InvalidParameterError, match="one per candle"):
        simulate(candles, np.zeros(9, np.int8), size_units=1.0, **kwargs)
    with pytest.raises(InvalidParameterError, match="-1..\\+1"):
        simulate(candles, np.full(10, 2), size_units=1.0, **kwargs)
    with pytest.raises(InvalidParameterError, match="'size_units'"):
        simulate(candles, np.zeros(10, np.int8), size_units=0.0, **kwargs)


def test_warmup_covers_indicator_convergence() -> None:
    macd = get_strategy("macd_crossover")
    params = macd.make_params(None)
    assert macd.indicator_warmup_bars(params) >= decay_bars(ema_alpha(26)) + 9
    assert (1 - ema_alpha(26)) ** decay_bars(ema_alpha(26)) <= 1e-13
    assert get_strategy("bollinger_breakout").indicator_warmup_bars(
        get_strategy("bollinger_breakout").make_params({"window": 55})) == 55
    for name in DEFAULTS:
        s = get_strategy(name)
        p = s.make_params(None)
        assert s.warmup_bars(p) > s.indicator_warmup_bars(p) > 0


def _indicator_lines(name: str, close: np.ndarray, params: object) -> list[np.ndarray]:
    p = params_dict(params)
    if name == "macd_crossover":
        return list(macd(close, p["fast"], p["slow"], p["signal"]))
    if name == "ema_crossover":
        return [ema(close, p["fast"]), ema(close, p["slow"])]
    return [wilder_rsi(close, p["period"])]


@pytest.mark.parametrize("name", ["macd_crossover", "ema_crossover", "rsi_mean_reversion"])
def test_indicators_after_the_warm_up_match_an_unbounded_history(name: str) -> None:
    """From the range start on, indicators computed from only ``indicator_warmup_bars`` of
    history equal those of the full history to ~1e-12 of the price (or RSI) scale, and so do
    the crossover targets."""
    candles = random_walk_candles(15_000, seed=9)
    s = get_strategy(name)
    p = s.make_params(None)
    start, warm = 10_000, s.indicator_warmup_bars(p)
    close = np.asarray(candles.close)
    scale = 100.0 if name == "rsi_mean_reversion" else float(close[start])
    for full, part in zip(_indicator_lines(name, close, p),
                          _indicator_lines(name, close[start - warm:], p), strict=True):
        np.testing.assert_allclose(part[warm:], full[start:], rtol=0, atol=1e-12 * scale)
    if name != "rsi_mean_reversion":  # the RSI state machine needs HISTORY_MARGIN_BARS too
        targets = s.target_positions(candles.take(slice(start - warm, None)), p)
        assert np.array_equal(targets[warm:], s.target_positions(candles, p)[start:])
