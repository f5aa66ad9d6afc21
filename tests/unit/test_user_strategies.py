"""Users' own strategies: the public API, the worked example loaded by module path and
backtested, and a clear error naming the strategy for each way one can be wrong."""

from __future__ import annotations

import datetime as dt
import textwrap
import uuid
from pathlib import Path

import numpy as np
import pytest

from btpipeline import cli
from btpipeline.data.synthetic import generate_candles
from btpipeline.errors import StrategyError, UniverseError
from btpipeline.strategies import api, simulate
from btpipeline.universe import check_strategy, load_universe, resolve_strategy
from examples.strategies.donchian_breakout import DonchianBreakout, DonchianParams

REPO = Path(__file__).resolve().parents[2]
EXAMPLE = "examples.strategies.donchian_breakout:DonchianBreakout"

PUBLIC_API = {
    "Candles", "InvalidParameterError", "Strategy", "above_below", "crossover", "crossunder",
    "decay_bars", "ema", "ema_alpha", "events_to_state", "macd", "params_dict", "require_less",
    "require_number", "require_period", "rolling_mean", "rolling_std", "sign_targets",
    "wilder_rsi",
}


def test_public_api_surface_is_pinned() -> None:
    assert set(api.__all__) == PUBLIC_API
    assert all(getattr(api, name) is not None for name in PUBLIC_API)


def _cross_loop(a: list[float], b: list[float]) -> list[bool]:
    """backtesting.py's lib.crossover, asked at every bar of growing series."""
    return [t > 0 and a[t - 1] < b[t - 1] and a[t] > b[t] for t in range(len(a))]


def test_crossover_and_crossunder_match_the_bar_by_bar_definition() -> None:
    nan = float("nan")
    a = [1.0, 3.0, 2.0, 2.0, 3.0, 1.0, nan, 3.0, 1.0, 0.5, 2.5]
    b = [2.0, 2.0, 2.0, 2.0, 2.0, 2.0, 2.0, 2.0, 2.0, 2.0, 2.0]
    assert api.crossover(np.array(a), np.array(b)).tolist() == _cross_loop(a, b)
    assert api.crossunder(np.array(a), np.array(b)).tolist() == _cross_loop(b, a)
    # a touch (2.0 == 2.0) and a NaN gap are not crosses; a scalar level works as b
    assert np.flatnonzero(api.crossover(np.array(a), 2.0)).tolist() == [1, 10]
    assert np.flatnonzero(api.crossunder(np.array(a), 2.0)).tolist() == [5, 8]
    assert api.above_below(np.array(a), 2.0).dtype == np.int8


def test_the_example_loads_by_module_path_and_keeps_the_contract() -> None:
    strategy = resolve_strategy(EXAMPLE)
    assert isinstance(strategy, DonchianBreakout) and strategy.name == "donchian_breakout"
    params = strategy.make_params({"window": 30})
    assert params == DonchianParams(window=30, exit_fraction=0.5)
    check_strategy(strategy, params, variant="donchian")


def _donchian_loop(high, low, close, window: int, fraction: float) -> list[int]:
    """The example's rule bar by bar: enter on a cross of the previous window's channel,
    leave on a cross of the exit line (a cross of the other side reverses)."""
    state, out, prev = 0, [], None
    for t in range(len(close)):
        if t < window:
            out.append(0)
            prev = None
            continue
        upper, lower = max(high[t - window:t]), min(low[t - window:t])
        line = lower + fraction * (upper - lower)
        now = (close[t], upper, lower, line)
        if prev is not None:
            (pc, pu, pl, pline), c = prev, close[t]
            if pc < pu and c > upper:
                state = 1
            elif pc > pl and c < lower:
                state = -1
            elif state == 1 and pc > pline and c < line:
                state = 0
            elif state == -1 and pc < pline and c > line:
                state = 0
        out.append(state)
        prev = now
    return out


def test_the_example_backtests_and_matches_its_rule_bar_by_bar() -> None:
    strategy = resolve_strategy(EXAMPLE)
    params = strategy.make_params({"window": 60})
    universe = load_universe(REPO / "examples" / "universe_custom.yaml")
    eurjpy = universe.instruments["EURJPY"].to_epic()  # declared only in the file
    candles = generate_candles(eurjpy, dt.date(2024, 1, 1), dt.date(2024, 1, 31))
    targets = strategy.target_positions(candles, params)
    head = slice(0, 4000)
    expected = _donchian_loop(candles.high[head].tolist(), candles.low[head].tolist(),
                              candles.close[head].tolist(), 60, 0.5)
    assert targets[head].tolist() == expected
    start, end = int(candles.timestamp[0]), int(candles.timestamp[-1]) + 1
    sim = simulate(candles, targets, costs=universe.variants["donchian"].costs.cost_model(
        universe.instruments["EURJPY"]), size_units=100_000, start_ns=start, end_ns=end)
    assert {1, -1} <= set(np.unique(sim.positions).tolist())
    closes = sim.fills[sim.fills["action"] == "CLOSE"]
    assert len(closes) > 10 and np.isfinite(closes["pnl"]).all()
    assert sim.daily["pnl"].sum() == pytest.approx(sim.bar_pnl.sum())


def test_the_example_universe_declares_new_instruments_and_side_by_side_variants() -> None:
    grid = load_universe(REPO / "examples" / "universe_custom.yaml")
    assert grid.history_start == dt.date(2005, 1, 1)
    eurjpy, gold = grid.instruments["EURJPY"], grid.instruments["XAUUSD"]
    assert (eurjpy.pip_size, eurjpy.quote_currency) == (0.01, "JPY")
    assert (gold.quote_currency, gold.base_currency, gold.contract_size) == ("USD", "XAU", 100)
    fast, slow = grid.variants["macd_fast"], grid.variants["macd_slow"]
    assert fast.strategy == slow.strategy == "macd_crossover"
    assert (fast.params_object.fast, slow.params_object.fast) == (8, 24)
    assert isinstance(grid.variants["donchian"].strategy_object, DonchianBreakout)
    assert ("donchian", "US500") in grid.grid() and ("macd_fast", "XAUUSD") not in grid.grid()


STRATEGY_HEAD = """\
import numpy as np
from dataclasses import dataclass
from btpipeline.strategies.api import Strategy, sign_targets


@dataclass(frozen=True)
class P:
    window: int = 5


class Base(Strategy):
    name = "user_rule"
    params_type = P

    def validate(self, values):
        return values

    def indicator_warmup_bars(self, params):
        return params.window

"""

BODIES = {
    "wrong_length": ("return sign_targets(np.diff(candles.close))",
                     "wrong length: expected shape"),
    "wrong_dtype": ("return np.sign(np.diff(candles.close, prepend=candles.close[0]))",
                    "dtype float64; expected an integer dtype"),
    "wrong_values": ("return np.full(len(candles), 2, dtype=np.int8)",
                     "returned 2 at bar 0; expected values in {-1, 0, 1}"),
    "looks_ahead": ("nxt = np.append(candles.close[1:], candles.close[-1])\n"
                    "        return sign_targets(nxt - candles.close)", "looks ahead"),
    "raises": ("raise KeyError('volume2')", "raised KeyError"),
}


def _module(tmp_path: Path, monkeypatch, source: str) -> str:
    name = f"user_strategies_{uuid.uuid4().hex[:8]}"
    (tmp_path / f"{name}.py").write_text(source)
    monkeypatch.syspath_prepend(str(tmp_path))
    return name


def _rule(body: str) -> str:
    return STRATEGY_HEAD + ("class Rule(Base):\n    def target_positions(self, candles, params):\n"
                            f"        {body}\n")


@pytest.mark.parametrize("case", list(BODIES))
def test_a_broken_contract_is_named(tmp_path, monkeypatch, case) -> None:
    body, problem = BODIES[case]
    spec = f"{_module(tmp_path, monkeypatch, _rule(body))}:Rule"
    strategy = resolve_strategy(spec)
    with pytest.raises(StrategyError) as info:
        check_strategy(strategy, strategy.make_params(), variant="mine")
    message = str(info.value)
    assert "variant 'mine'" in message and "'user_rule'" in message and ".Rule)" in message
    assert problem in message and "Fix: " in message


@pytest.mark.parametrize(("source", "attr", "problem"), [
    ("raise RuntimeError('broken on purpose')\n", "Rule", "raised RuntimeError: broken on purpose"),
    ("import not_a_module_anywhere\n", "Rule", "No module named 'not_a_module_anywhere'"),
    (STRATEGY_HEAD, "Missing", "has no attribute 'Missing'"),
    (STRATEGY_HEAD + "class Rule:\n    pass\n", "Rule", "is not a Strategy"),
    (STRATEGY_HEAD, "Base", "unimplemented methods ['target_positions']"),
])
def test_a_strategy_that_cannot_be_loaded_is_named(tmp_path, monkeypatch, source, attr,
                                                   problem) -> None:
    spec = f"{_module(tmp_path, monkeypatch, source)}:{attr}"
    with pytest.raises(StrategyError) as info:
        resolve_strategy(spec)
    assert repr(spec) in str(info.value) and problem in str(info.value)


def test_missing_module_names_the_python_path_fix() -> None:
    with pytest.raises(StrategyError) as info:
        resolve_strategy("no_such_package.rules:Rule")
    message = str(info.value)
    assert "'no_such_package.rules'" in message and "PYTHONPATH" in message


def test_a_look_ahead_strategy_in_the_universe_stops_the_import_before_anything_is_stored(
        tmp_path, monkeypatch) -> None:
    module = _module(tmp_path, monkeypatch, _rule(BODIES["looks_ahead"][0]))
    path = tmp_path / "universe.yaml"
    path.write_text(textwrap.dedent(f"""\
        history_start: 2024-01-01
        instruments:
          EURUSD: {{pip_size: 0.0001, spread_pips: 0.8, reference_price: 1.1}}
        variants:
          peek: {{strategy: "{module}:Rule"}}
        """))
    with pytest.raises(UniverseError) as info:
        load_universe(path)
    assert "at variants.peek.strategy: variant 'peek'" in str(info.value)
    assert "looks ahead" in str(info.value)
    csv = tmp_path / "bars.csv"
    csv.write_text("timestamp,open,high,low,close\n2024-01-02T22:00:00Z,1.1,1.2,1.0,1.1\n")
    data = tmp_path / "data"
    monkeypatch.setenv("BTPIPELINE_UNIVERSE", str(path))
    monkeypatch.setenv("DAGSTER_HOME", str(tmp_path / "dagster"))
    assert cli.main(["import", str(csv), "--epic", "EURUSD", "--data-dir", str(data)]) == 2
    assert not data.exists() or not any(data.rglob("*.arrow"))


def test_the_console_script_resolves_strategies_from_the_working_directory(tmp_path) -> None:
    """Like the installed `btpipeline` script: sys.path[0] is the script's folder and the
    package comes from site-packages (here a link to it), so only the working directory can
    make `examples` importable."""
    import os
    import subprocess
    import sys

    site = tmp_path / "site"
    site.mkdir()
    (site / "btpipeline").symlink_to(REPO / "btpipeline")
    code = (f"import sys; sys.path[0] = {str(tmp_path)!r}; sys.path.insert(1, {str(site)!r}); "
            "from btpipeline.cli import main; "
            "sys.exit(main(['universe', 'examples/universe_custom.yaml']))")
    env = {k: v for k, v in os.environ.items() if k != "PYTHONPATH"}
    env["DAGSTER_HOME"] = str(tmp_path / "dagster")
    proc = subprocess.run([sys.executable, "-c", code], cwd=REPO, env=env, capture_output=True,
                          text=True, timeout=120)
    assert proc.returncode == 0, proc.stderr
    assert "examples.strategies.donchian_breakout:DonchianBreakout" in proc.stdout
