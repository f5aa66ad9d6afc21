"""btpipeline beside vectorbt and backtesting.py: same strategy, same data, same fills.

Work: MACD(12,26,9) crossover, always in the market (long while the MACD line is above its
signal line, short while below), a signal on bar t's close filled at bar t+1's open, a fixed
100,000 units, EURUSD's 0.8-pip spread (half paid on every fill), no commission or slippage; one
year (2023) of synthetic 1-minute EURUSD candles (btpipeline.data.synthetic, seed 7).
Return = P&L / (100,000 x EURUSD reference price 1.10), btpipeline's definition, for every engine.

1. One backtest per engine: trades and return must agree (table "Agreement"), then time.
2. A 100-combination sweep (fast x slow x signal = 5 x 5 x 4), each engine in its own process
   with the peak RSS of its process tree (benchmarks/sweep_report.py, sweep_runs.py):
   btpipeline's ``sweep_job`` end to end (Dagster's run start included; one step per chunk on
   backtest_executor, rows stored in a SQLite results database), the chunk kernel without
   Dagster, vectorbt's broadcast run (one ``MACD.run(param_product=True)`` and one 100-column
   ``Portfolio.from_orders``), and backtesting.py's ``Backtest.optimize`` (its own process
   pool; a few combinations, extrapolated).
3. A 10,000-combination grid through ``sweep_job`` and through vectorbt, hand-chunked by 100
   columns (the whole grid would need ~10,000 x 374,520 x 8 bytes per array).

Needs the peers: ``pip install -e '.[bench]'``. Run from the repository root:
``python benchmarks/peers.py [--bt-sweep-combos N] [--repeats 5] [--vbt-10k-max-chunks N]``;
prints markdown.
Everything it writes (candles, a Dagster instance) goes to a temporary folder.
"""

import argparse
import datetime as dt
import itertools
import os
import platform
import statistics
import sys
import tempfile
import time
import warnings
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import psutil

from btpipeline.data.candles import Candles
from btpipeline.data.store import CandleStore, generate_into_store
from btpipeline.epics import get_epic
from btpipeline.strategies import Account, CostModel, get_strategy, run_backtest

REPO = Path(__file__).resolve().parent.parent
YEAR, EPIC, SEED = 2023, "EURUSD", 7
SIZE = 100_000.0
PARAMS = {"fast": 12, "slow": 26, "signal": 9}
GRID = {"fast": [6, 8, 10, 12, 14], "slow": [20, 26, 32, 38, 44], "signal": [5, 7, 9, 11]}
EPIC_DEF = get_epic(EPIC)
COSTS = CostModel.for_epic(EPIC_DEF)  # 0.8 pip spread, no commission or slippage
HALF_SPREAD = COSTS.price_offset  # price units each fill pays against the trader
CAPITAL = SIZE * EPIC_DEF.reference_price
BIG_CASH = 10_000_000.0  # peers need cash; far above one position so it never binds
# Every engine's return is reported as P&L / CAPITAL (one position's notional). btpipeline runs
# in an account of BIG_CASH too, so its stop-out never ends a losing year early.


@dataclass(frozen=True)
class Outcome:
    """What every engine reports for one parameter set."""

    trades: int
    total_return: float


@dataclass(frozen=True)
class Timing:
    first_s: float
    median_s: float


def timed(fn: Callable[[], Any], repeats: int) -> tuple[Any, Timing]:
    """First call (JIT, caches) and the median of ``repeats`` further calls."""
    t0 = time.perf_counter()
    result = fn()
    first = time.perf_counter() - t0
    times = []
    for _ in range(repeats):
        t0 = time.perf_counter()
        result = fn()
        times.append(time.perf_counter() - t0)
    return result, Timing(first, statistics.median(times) if times else first)


def combinations() -> list[dict[str, int]]:
    return [dict(zip(GRID, values, strict=True)) for values in itertools.product(*GRID.values())]


# ---------------------------------------------------------------- data


def make_data(root: Path) -> Candles:
    """One year of 1-minute EURUSD in a candle store (as `btpipeline generate` writes it), read
    back through the store (memory-mapped month files)."""
    store = CandleStore(root)
    generate_into_store(store, [EPIC], dt.date(YEAR, 1, 1), dt.date(YEAR, 12, 31), SEED)
    return store.read_range(EPIC, *year_ns())


def year_ns() -> tuple[int, int]:
    start = pd.Timestamp(f"{YEAR}-01-01", tz="UTC").value
    return int(start), int(pd.Timestamp(f"{YEAR + 1}-01-01", tz="UTC").value)


def ohlc_frame(candles: Candles) -> pd.DataFrame:
    index = pd.DatetimeIndex(np.asarray(candles.timestamp, dtype=np.int64).view("datetime64[ns]"))
    return pd.DataFrame({"Open": np.asarray(candles.open), "High": np.asarray(candles.high),
                         "Low": np.asarray(candles.low), "Close": np.asarray(candles.close),
                         "Volume": np.asarray(candles.volume)}, index=index)


# ---------------------------------------------------------------- btpipeline


def btp_backtest(candles: Candles, params: dict[str, int]) -> Outcome:
    result = run_backtest(candles, strategy="macd_crossover", params=params, epic=EPIC_DEF,
                          start_ns=year_ns()[0], end_ns=year_ns()[1], costs=COSTS,
                          size_units=SIZE, account=Account(initial_capital=BIG_CASH))
    return Outcome(int(result.metrics["num_trades"]), result.metrics["pnl"] / CAPITAL)


# ---------------------------------------------------------------- vectorbt


def vbt_targets_own_macd(close: pd.Series, fast: Any, slow: Any, signal: Any,
                         product: bool = False) -> np.ndarray:
    """vectorbt's own MACD (EMA lines, adjust=False): sign(line - signal), 0 while NaN."""
    import vectorbt as vbt

    macd = vbt.MACD.run(close, fast_window=fast, slow_window=slow, signal_window=signal,
                        macd_ewm=True, signal_ewm=True, adjust=False, param_product=product)
    diff = np.asarray(macd.macd) - np.asarray(macd.signal)
    return np.nan_to_num(np.sign(diff)).astype(np.int8)


def vbt_run(frame: pd.DataFrame, targets: np.ndarray) -> list[Outcome]:
    """Target positions decided on each close, ordered as target amounts at the next open;
    the half spread as per-bar relative slippage (price x (1 +- h/open) = open +- h)."""
    import vectorbt as vbt

    targets = targets.reshape(len(frame), -1)
    size = np.zeros(targets.shape, dtype=np.float64)
    size[1:] = targets[:-1] * SIZE
    open_ = frame["Open"].to_numpy()
    pf = vbt.Portfolio.from_orders(
        frame["Close"], size=size, size_type="targetamount", direction="both",
        price=open_[:, None], slippage=(HALF_SPREAD / open_)[:, None], fees=0.0,
        init_cash=BIG_CASH, freq="1min")
    profit = np.atleast_1d(np.asarray(pf.total_profit()))
    trades = np.atleast_1d(np.asarray(pf.trades.closed.count()))
    return [Outcome(int(n), float(p) / CAPITAL) for n, p in zip(trades, profit, strict=True)]


def vbt_backtest(frame: pd.DataFrame, params: dict[str, int]) -> Outcome:
    targets = vbt_targets_own_macd(frame["Close"], params["fast"], params["slow"],
                                   params["signal"])
    return vbt_run(frame, targets)[0]


# ---------------------------------------------------------------- backtesting.py


def pandas_macd_diff(close: np.ndarray, fast: int, slow: int, signal: int) -> np.ndarray:
    """MACD line minus signal, as a backtesting.py user writes it: pandas EWMs, adjust=False."""
    series = pd.Series(close)
    line = (series.ewm(span=fast, adjust=False).mean()
            - series.ewm(span=slow, adjust=False).mean())
    return (line - line.ewm(span=signal, adjust=False).mean()).to_numpy()


def half_spread_commission(order_size: float, price: float) -> float:
    """The half spread in cash per fill (backtesting.py's ``spread`` is relative to price)."""
    return abs(order_size) * HALF_SPREAD


def _bt_strategy() -> type:
    from backtesting import Strategy

    class MacdCross(Strategy):
        fast, slow, signal = PARAMS["fast"], PARAMS["slow"], PARAMS["signal"]

        def init(self) -> None:
            self.diff = self.I(pandas_macd_diff, self.data.Close, self.fast, self.slow,
                               self.signal)

        def next(self) -> None:
            value, held = float(self.diff[-1]), self.position.size
            want = int(value > 0) - int(value < 0)
            have = int(held > 0) - int(held < 0)
            if want == have:
                return
            if have:
                self.position.close()
            if want > 0:
                self.buy(size=SIZE)
            elif want < 0:
                self.sell(size=SIZE)

    return MacdCross


MACD_CROSS: type | None = None  # built on first use: the class must be module-level to pickle


def bt_backtest_obj(frame: pd.DataFrame, relative_spread: bool = False) -> Any:
    global MACD_CROSS
    from backtesting import Backtest

    if MACD_CROSS is None:
        MACD_CROSS = _bt_strategy()
        MACD_CROSS.__qualname__ = MACD_CROSS.__name__ = "MACD_CROSS"
    if relative_spread:  # the built-in way: relative, and charged once, at entry (see report)
        costs = {"spread": 2 * HALF_SPREAD / float(frame["Open"].mean())}
    else:
        costs = {"commission": half_spread_commission}
    return Backtest(frame, MACD_CROSS, cash=BIG_CASH, trade_on_close=False, hedging=False,
                    exclusive_orders=False, finalize_trades=False, **costs)


def bt_outcome(stats: pd.Series) -> Outcome:
    return Outcome(int(stats["# Trades"]), (float(stats["Equity Final [$]"]) - BIG_CASH) / CAPITAL)


def bt_backtest(frame: pd.DataFrame, params: dict[str, int],
                relative_spread: bool = False) -> Outcome:
    return bt_outcome(bt_backtest_obj(frame, relative_spread).run(**params))


def bt_sweep(frame: pd.DataFrame, combos: Sequence[dict[str, int]]) -> dict[tuple, float]:
    """``Backtest.optimize`` over exactly ``combos`` (a constraint keeps a subset): returns per
    combination the total return (its heatmap holds the maximised statistic only)."""
    wanted = {tuple(c.values()) for c in combos}
    bt = bt_backtest_obj(frame)
    _, heatmap = bt.optimize(**GRID, maximize="Equity Final [$]", return_heatmap=True,
                             constraint=lambda p: (p.fast, p.slow, p.signal) in wanted)
    return {tuple(int(v) for v in k): (float(e) - BIG_CASH) / CAPITAL
            for k, e in heatmap.dropna().items()}


# ---------------------------------------------------------------- report


def machine() -> str:
    cpu = platform.processor() or platform.machine()
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    ram = psutil.virtual_memory().total / 2**30
    return f"{os.cpu_count()} vCPU ({cpu}), {ram:.0f} GiB RAM, Python {platform.python_version()}"


def versions() -> str:
    from importlib.metadata import version

    names = ["btpipeline", "dagster", "numpy", "pandas", "vectorbt", "numba", "backtesting"]
    return ", ".join(f"{n} {version(n)}" for n in names)


def agreement_row(name: str, got: Outcome, ref: Outcome, why: str) -> str:
    return (f"| {name} | {got.trades:,} | {got.trades - ref.trades:+d} | "
            f"{got.total_return * 100:.4f} % | {(got.total_return - ref.total_return) * 100:+.2e} "
            f"pp | {why} |")


def sweep_agreement(name: str, got: dict[tuple, float], ref: dict[tuple, Outcome],
                    trades: dict[tuple, int] | None, why: str) -> str:
    diffs = [abs(got[k] - ref[k].total_return) * 100 for k in got]
    if trades is None:
        same = worst = "n/a"
    else:
        same = f"{sum(trades[k] == ref[k].trades for k in trades)}/{len(trades)}"
        worst = str(max(abs(trades[k] - ref[k].trades) for k in trades))
    return f"| {name} | {len(got)} | {same} | {worst} | {max(diffs):.2e} pp | {why} |"


def ratio(seconds: float, base: float) -> str:
    return f"{seconds / base:,.1f}x" if seconds >= base else f"{base / seconds:,.1f}x faster"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--repeats", type=int, default=10, help="timed runs after the first")
    parser.add_argument("--bt-repeats", type=int, default=2,
                        help="timed backtesting.py runs after the first (each takes seconds)")
    parser.add_argument("--bt-sweep-combos", type=int, default=8,
                        help="combinations backtesting.py's optimize really runs; fewer than "
                        "100 are extrapolated to 100 (and said so)")
    parser.add_argument("--workers", type=int, default=2,
                        help="backtest_executor workers (STANDALONE mode) for sweep_job")
    parser.add_argument("--vbt-10k-max-chunks", type=int, default=0,
                        help="vectorbt's 10,000 grid runs in chunks of 100 columns; > 0 stops "
                        "after that many and extrapolates the time (and says so)")
    parser.add_argument("--skip-single", action="store_true",
                        help="skip the one-backtest agreement and timing")
    parser.add_argument("--skip-10k", action="store_true",
                        help="skip the 10,000-combination grids")
    args = parser.parse_args()
    warnings.filterwarnings("ignore")

    with tempfile.TemporaryDirectory(prefix="btp_peers_") as tmp:
        t0 = time.perf_counter()
        candles = make_data(Path(tmp, "data"))
        gen_s = time.perf_counter() - t0
        frame = ohlc_frame(candles)
        if not args.skip_single:
            report(args, candles, frame, Path(tmp), gen_s)
        sys.path.insert(0, str(REPO))  # run as a script: the repository root for benchmarks/
        from benchmarks.sweep_report import sweep_report

        sweep_report(args, Path(tmp, "data"))


def report(args: argparse.Namespace, candles: Candles, frame: pd.DataFrame, tmp: Path,
           gen_s: float) -> None:
    import backtesting  # noqa: F401 - imported before timing: import time is excluded
    import vectorbt  # noqa: F401

    print(f"Machine: {machine()}\nVersions: {versions()}")
    print(f"Data: {len(candles):,} 1-minute {EPIC} bars of {YEAR} (generated and stored in "
          f"{gen_s:.1f} s); MACD{tuple(PARAMS.values())}, {COSTS.spread_pips} pip spread, "
          f"{SIZE:,.0f} units, return on {CAPITAL:,.0f}.\n")

    # -- one backtest: agreement first, then time
    ref, t_btp = timed(lambda: btp_backtest(candles, PARAMS), args.repeats)
    vbt_own, t_vbt = timed(lambda: vbt_backtest(frame, PARAMS), args.repeats)
    same_targets = get_strategy("macd_crossover").target_positions(
        candles, get_strategy("macd_crossover").make_params(PARAMS))
    vbt_same = vbt_run(frame, same_targets)[0]
    bt_own, t_bt = timed(lambda: bt_backtest(frame, PARAMS), args.bt_repeats)
    bt_rel = bt_backtest(frame, PARAMS, relative_spread=True)

    print("### Agreement, one backtest (reference: btpipeline)\n")
    print("| engine | closed trades | Δ trades | total return | Δ return | fill/cost model |")
    print("|---|---|---|---|---|---|")
    print(agreement_row("btpipeline run_backtest", ref, ref, "next open ± half spread"))
    print(agreement_row("vectorbt, own MACD", vbt_own, ref,
                        "from_orders target amount at next open, slippage h/open"))
    print(agreement_row("vectorbt, btpipeline's signals", vbt_same, ref, "same fills, same "
                        "signals: the fill engine alone"))
    print(agreement_row("backtesting.py, pandas MACD", bt_own, ref,
                        "market orders fill at next open; half spread as commission"))
    print(agreement_row("backtesting.py, `spread=` (built-in)", bt_rel, ref,
                        "spread = 0.8 pip / mean price, all paid at entry: cost drifts with "
                        "the price level"))

    print("\n### Time, one backtest (median of repeats; first call in brackets)\n")
    print("| engine | time | ratio to btpipeline |")
    print("|---|---|---|")
    print(f"| btpipeline run_backtest | {t_btp.median_s * 1e3:.0f} ms ({t_btp.first_s * 1e3:.0f} "
          "ms) | 1.0x |")
    print(f"| vectorbt {vectorbt.__version__} | {t_vbt.median_s * 1e3:.0f} ms "
          f"({t_vbt.first_s * 1e3:.0f} ms) | {ratio(t_vbt.median_s, t_btp.median_s)} |")
    print(f"| backtesting.py {backtesting.__version__} | {t_bt.median_s:.2f} s "
          f"({t_bt.first_s:.2f} s) | {ratio(t_bt.median_s, t_btp.median_s)} |")


if __name__ == "__main__":
    main()
