"""A plain bar-by-bar reference (loops, recursions, explicit state machines, a fill loop) and
the tests that the vectorised package reproduces it: indicators, targets, fills and P&L.

Other ``test_strategies_*`` modules import ``random_walk_candles`` and ``reference_*`` from here.
"""

from __future__ import annotations

import math

import numpy as np
import pytest

from btpipeline.data.candles import Candles
from btpipeline.epics import get_epic
from btpipeline.strategies import (
    CostModel,
    ema,
    get_strategy,
    macd,
    rolling_mean,
    rolling_std,
    run_backtest,
    wilder_rsi,
)

MINUTE_NS = 60 * 1_000_000_000
MONDAY_2024_01_01_NS = int(np.datetime64("2024-01-01T00:00", "ns").astype(np.int64))


def random_walk_candles(n: int = 20_000, seed: int = 7, start_ns: int = MONDAY_2024_01_01_NS,
                        sigma: float = 2e-4) -> Candles:
    """Seeded 1-minute random-walk candles around 1.10 with weekend gaps (no Saturday or
    Sunday bars), opens that gap slightly from the previous close, read-only arrays."""
    rng = np.random.default_rng(seed)
    minutes = start_ns + np.arange(n * 2, dtype=np.int64) * MINUTE_NS
    weekday = (minutes // (86_400 * 10**9) + 3) % 7  # 1970-01-01 was a Thursday (3)
    timestamp = minutes[weekday < 5][:n]
    close = 1.10 * np.exp(np.cumsum(rng.normal(0.0, sigma, n)))
    open_ = np.concatenate([[1.10], close[:-1]]) + rng.normal(0.0, sigma * 0.2, n)
    high = np.maximum(open_, close) + np.abs(rng.normal(0.0, sigma * 0.5, n))
    low = np.minimum(open_, close) - np.abs(rng.normal(0.0, sigma * 0.5, n))
    arrays = [timestamp, open_, high, low, close, rng.integers(1, 100, n).astype(np.float64)]
    for a in arrays:
        a.flags.writeable = False
    return Candles(*arrays)


# ---------------------------------------------------------------- reference indicators

def reference_ema(x: np.ndarray, span: float) -> np.ndarray:
    a = 2.0 / (span + 1.0)
    out = np.empty(len(x))
    out[0] = x[0]
    for t in range(1, len(x)):
        out[t] = a * x[t] + (1.0 - a) * out[t - 1]
    return out


def reference_rsi(close: np.ndarray, period: int) -> np.ndarray:
    out = np.full(len(close), np.nan)
    if len(close) <= period:
        return out
    gains = [max(close[i] - close[i - 1], 0.0) for i in range(1, len(close))]
    losses = [max(close[i - 1] - close[i], 0.0) for i in range(1, len(close))]
    avg_gain = sum(gains[:period]) / period
    avg_loss = sum(losses[:period]) / period
    for t in range(period, len(close)):
        if t > period:
            avg_gain = (avg_gain * (period - 1) + gains[t - 1]) / period
            avg_loss = (avg_loss * (period - 1) + losses[t - 1]) / period
        if avg_loss > 0:
            out[t] = 100.0 - 100.0 / (1.0 + avg_gain / avg_loss)
        else:
            out[t] = 100.0 if avg_gain > 0 else 50.0
    return out


def reference_bands(close: np.ndarray, window: int, k: float) -> tuple[np.ndarray, ...]:
    mid, up, lo = (np.full(len(close), np.nan) for _ in range(3))
    for t in range(window - 1, len(close)):
        values = close[t - window + 1: t + 1]
        mean = math.fsum(values) / window
        std = math.sqrt(math.fsum((v - mean) ** 2 for v in values) / window)
        mid[t], up[t], lo[t] = mean, mean + k * std, mean - k * std
    return mid, up, lo


# ---------------------------------------------------------------- reference strategies

def _sign(value: float) -> int:
    return 1 if value > 0 else -1 if value < 0 else 0


def reference_targets(strategy: str, close: np.ndarray, params: dict) -> np.ndarray:
    close = np.asarray(close, dtype=float)
    if strategy == "macd_crossover":
        line = reference_ema(close, params["fast"]) - reference_ema(close, params["slow"])
        signal = reference_ema(line, params["signal"])
        return np.array([_sign(m - s) for m, s in zip(line, signal, strict=True)], dtype=np.int8)
    if strategy == "ema_crossover":
        diff = reference_ema(close, params["fast"]) - reference_ema(close, params["slow"])
        return np.array([_sign(d) for d in diff], dtype=np.int8)
    if strategy == "rsi_mean_reversion":
        return _reference_rsi_machine(reference_rsi(close, params["period"]), params)
    if strategy == "bollinger_breakout":
        bands = reference_bands(close, params["window"], params["k"])
        return _reference_band_machine(close, *bands)
    raise AssertionError(strategy)


def _reference_rsi_machine(rsi: np.ndarray, p: dict) -> np.ndarray:
    state, out = 0, []
    for value in rsi:
        if not np.isnan(value):
            if (state == 1 and value >= p["exit"]) or (state == -1 and value <= p["exit"]):
                state = 0
            if value < p["lower"]:
                state = 1
            elif value > p["upper"]:
                state = -1
        out.append(state)
    return np.array(out, dtype=np.int8)


def _reference_band_machine(close, mid, up, lo) -> np.ndarray:
    state, out = 0, []
    for c, m, u, low in zip(close, mid, up, lo, strict=True):
        if not np.isnan(m):
            if (state == 1 and c <= m) or (state == -1 and c >= m):
                state = 0
            if c > u:
                state = 1
            elif c < low:
                state = -1
        out.append(state)
    return np.array(out, dtype=np.int8)


# ---------------------------------------------------------------- reference simulator

def reference_simulate(candles: Candles, targets, costs: CostModel, size: float,
                       start_ns: int, end_ns: int) -> tuple[list[tuple], list[float]]:
    """Fill loop: returns (fills as (ts, side, action, price, pnl), in-range bar P&L)."""
    offset = (costs.spread_pips / 2 + costs.slippage_pips) * costs.pip_size
    commission = costs.commission_per_lot * size / 100_000
    pos, entry_price, prev_close = 0, 0.0, None
    fills, bar_pnl = [], []
    for t in range(len(candles)):
        ts = int(candles.timestamp[t])
        if ts >= end_ns:
            break
        o, c = float(candles.open[t]), float(candles.close[t])
        new = int(targets[t - 1]) if t > 0 else 0
        pnl = pos * size * (o - prev_close) if prev_close is not None else 0.0
        bar_fills = []
        if new != pos:
            if pos != 0:
                side = "SELL" if pos > 0 else "BUY"
                price = o - offset if pos > 0 else o + offset
                trade = pos * size * (price - entry_price) - 2 * commission
                bar_fills.append((ts, side, "CLOSE", price, trade))
            if new != 0:
                price = o + offset if new > 0 else o - offset
                entry_price = price
                bar_fills.append((ts, "BUY" if new > 0 else "SELL", "OPEN", price, 0.0))
        pnl += new * size * (c - o) - len(bar_fills) * (size * offset + commission)
        pos, prev_close = new, c
        if ts >= start_ns:
            fills.extend(bar_fills)
            bar_pnl.append(pnl)
    return fills, bar_pnl


# ---------------------------------------------------------------- tests

@pytest.fixture(scope="module")
def candles() -> Candles:
    return random_walk_candles()


@pytest.mark.parametrize("span", [1, 2, 3, 9, 12, 26, 200, 2000, 20000])
def test_ema_matches_the_plain_recursion_on_long_series(span: float) -> None:
    x = 1.10 * np.exp(np.cumsum(np.random.default_rng(3).normal(0, 3e-4, 100_000)))
    expected = reference_ema(x, span)
    np.testing.assert_allclose(ema(x, span), expected, rtol=1e-12, atol=0)


@pytest.mark.parametrize("span", [2, 9, 500])
def test_ema_of_a_signed_series_is_accurate_relative_to_its_scale(span: float) -> None:
    x = np.random.default_rng(4).normal(0, 1e-4, 50_000)
    err = np.max(np.abs(ema(x, span) - reference_ema(x, span)))
    assert err <= 1e-12 * np.max(np.abs(x))


def test_ema_does_not_write_into_a_read_only_input_and_handles_tiny_inputs() -> None:
    x = np.array([1.0, 2.0, 3.0])
    x.flags.writeable = False
    np.testing.assert_allclose(ema(x, 3), reference_ema(x, 3), rtol=1e-15)
    assert ema(np.array([5.0]), 9).tolist() == [5.0]
    assert ema(np.array([]), 9).size == 0


def test_rsi_bands_and_macd_match_the_reference(candles: Candles) -> None:
    close = np.asarray(candles.close[:5000])
    np.testing.assert_allclose(wilder_rsi(close, 14), reference_rsi(close, 14), rtol=1e-10,
                               atol=1e-9, equal_nan=True)
    mid, up, _ = reference_bands(close, 20, 2.0)
    np.testing.assert_allclose(rolling_mean(close, 20), mid, rtol=1e-14, equal_nan=True)
    np.testing.assert_allclose(rolling_mean(close, 20) + 2 * rolling_std(close, 20), up,
                               rtol=1e-13, equal_nan=True)
    line, signal = macd(close, 12, 26, 9)
    ref_line = reference_ema(close, 12) - reference_ema(close, 26)
    np.testing.assert_allclose(line, ref_line, rtol=0, atol=1e-14)
    np.testing.assert_allclose(signal, reference_ema(ref_line, 9), rtol=0, atol=1e-14)


def test_rsi_is_nan_until_its_first_average_and_50_on_a_flat_series() -> None:
    rsi = wilder_rsi(np.ones(30), 14)
    assert np.isnan(rsi[:14]).all() and (rsi[14:] == 50.0).all()
    assert np.isnan(wilder_rsi(np.arange(10.0), 14)).all()
    assert (wilder_rsi(np.arange(30.0), 14)[14:] == 100.0).all()


def test_rolling_window_starts_with_window_minus_one_nans() -> None:
    x = np.arange(10.0)
    assert np.isnan(rolling_mean(x, 4)[:3]).all() and rolling_mean(x, 4)[3] == 1.5
    np.testing.assert_allclose(rolling_std(x, 4)[3:], np.std([0, 1, 2, 3.0]))


@pytest.mark.parametrize("strategy", ["macd_crossover", "ema_crossover", "rsi_mean_reversion",
                                      "bollinger_breakout"])
def test_targets_match_the_reference_state_machines(candles: Candles, strategy: str) -> None:
    chosen = get_strategy(strategy)
    params = chosen.make_params(None)
    got = chosen.target_positions(candles, params)
    assert got.dtype == np.int8 and set(np.unique(got)) <= {-1, 0, 1}
    expected = reference_targets(strategy, candles.close, vars(params))
    assert np.array_equal(got, expected)
    assert len(set(got.tolist())) == 3  # every state is exercised


@pytest.mark.parametrize("strategy", ["macd_crossover", "ema_crossover", "rsi_mean_reversion",
                                      "bollinger_breakout"])
def test_fills_and_pnl_match_the_reference_fill_loop_with_costs(candles: Candles,
                                                                 strategy: str) -> None:
    epic = get_epic("EURUSD")
    costs = CostModel.for_epic(epic, spread_pips=1.3, commission_per_lot=3.5, slippage_pips=0.2)
    start_ns, end_ns = int(candles.timestamp[4000]), int(candles.timestamp[-1000])
    result = run_backtest(candles, strategy=strategy, params=None, epic=epic, start_ns=start_ns,
                          end_ns=end_ns, costs=costs, size_units=50_000)
    targets = reference_targets(strategy, candles.close, result.params)
    fills, bar_pnl = reference_simulate(candles, targets, costs, 50_000, start_ns, end_ns)
    got = result.fills
    assert len(got) == len(fills) > 50
    assert got["timestamp"].astype("int64").tolist() == [f[0] for f in fills]
    assert got["side"].tolist() == [f[1] for f in fills]
    assert got["action"].tolist() == [f[2] for f in fills]
    np.testing.assert_allclose(got["price"], [f[3] for f in fills], rtol=0, atol=1e-12)
    np.testing.assert_allclose(got["pnl"], [f[4] for f in fills], rtol=0, atol=1e-9)
    np.testing.assert_allclose(result.simulation.bar_pnl, bar_pnl, rtol=0, atol=1e-9)
    assert result.daily["pnl"].sum() == pytest.approx(sum(bar_pnl), abs=1e-9)
