"""The universe file: the shipped one is today's grid; every mistake in a user's file is named
with the file, the key path, what was expected, what was found and the fix."""

from __future__ import annotations

import datetime as dt
import textwrap
from pathlib import Path

import pytest

from btpipeline import universe
from btpipeline.epics import EPICS
from btpipeline.errors import UniverseError
from btpipeline.strategies import STRATEGIES, params_dict, strategy_names
from btpipeline.universe import default_universe, default_universe_path, load_universe
from btpipeline.universe.loader import ENV_VAR, PACKAGED_DEFAULT

REPO = Path(__file__).resolve().parents[2]
SHIPPED = [REPO / "universe.yaml", PACKAGED_DEFAULT]

HEAD = """\
history_start: 2020-01-01
instruments:
  EURUSD: {pip_size: 0.0001, spread_pips: 0.8, reference_price: 1.10}
  USDJPY: {pip_size: 0.01, spread_pips: 1.0, reference_price: 150.0}
variants:
"""


def _write(tmp_path: Path, text: str) -> Path:
    path = tmp_path / "my_universe.yaml"
    path.write_text(text)
    return path


def _error(tmp_path: Path, text: str) -> str:
    path = _write(tmp_path, text)
    with pytest.raises(UniverseError) as info:
        load_universe(path)
    message = str(info.value)
    assert str(path) in message
    assert "Fix: " in message
    return message


@pytest.mark.parametrize("path", SHIPPED, ids=["repository", "packaged"])
def test_shipped_file_is_todays_grid(path: Path) -> None:
    grid = load_universe(path)
    assert grid.history_start == dt.date(2020, 1, 1)
    assert list(grid.variants) == strategy_names()
    assert list(grid.instruments) == list(EPICS)
    assert len(grid.grid()) == 24
    for name, instrument in grid.instruments.items():
        assert instrument.to_epic() == EPICS[name]
        assert instrument.quote_currency == name[3:]
        assert instrument.contract_size == 100_000
    for name, variant in grid.variants.items():
        assert variant.strategy == name and variant.strategy_object is STRATEGIES[name]
        assert params_dict(variant.params_object) == params_dict(STRATEGIES[name].make_params())
        assert variant.timeframe == "M1" and grid.instruments_of(name) == list(EPICS)
        assert variant.sizing.size_units == 100_000
        assert variant.costs.cost_model(grid.instruments["USDJPY"]).spread_pips == 1.0
        assert (variant.initial_capital, variant.account_currency) == (100_000, "USD")


def test_the_old_functions_answer_from_the_default_universe(monkeypatch) -> None:
    monkeypatch.delenv(ENV_VAR, raising=False)
    assert default_universe_path() == REPO / "universe.yaml"
    assert universe.strategies() == strategy_names()
    assert universe.epics() == list(EPICS)


def test_environment_variable_is_read_when_called_and_edits_are_seen(tmp_path,
                                                                     monkeypatch) -> None:
    path = _write(tmp_path, HEAD + "  fast: {strategy: ema_crossover, params: {fast: 5}}\n")
    monkeypatch.setenv(ENV_VAR, str(path))
    assert default_universe_path() == path
    assert default_universe().grid() == [("fast", "EURUSD"), ("fast", "USDJPY")]
    path.write_text(HEAD + "  fast: {strategy: ema_crossover, instruments: [USDJPY]}\n"
                    "  rsi: {strategy: rsi_mean_reversion, instruments: [EURUSD]}\n")
    assert default_universe().grid() == [("fast", "USDJPY"), ("rsi", "EURUSD")]
    assert universe.strategies() == ["fast", "rsi"]


@pytest.mark.parametrize("history_start", ["1999-01-01", "1999", "2005-01-01"])
def test_history_may_start_long_ago(tmp_path, history_start) -> None:
    text = HEAD.replace("2020-01-01", history_start) + "  m: {strategy: macd_crossover}\n"
    assert load_universe(_write(tmp_path, text)).history_start.year in (1999, 2005)


@pytest.mark.parametrize(("variant", "key_path", "found"), [
    ("  a: {strategy: macd_crossoverr}", "variants.a.strategy", "'macd_crossoverr'"),
    ("  a: {strategy: macd_crossover, instruments: [EURUSD, GBPUSD]}",
     "variants.a.instruments[1]", "'GBPUSD'"),
    ("  fast_macd: {strategy: macd_crossover, params: {fast: x}}",
     "variants.fast_macd.params.fast", "'x'"),
    ("  fast_macd: {strategy: macd_crossover, params: {fats: 3}}",
     "variants.fast_macd.params.fats", "'fats'"),
    ("  fast_macd: {strategy: macd_crossover, params: {fast: 30}}",
     "variants.fast_macd.params.fast", "{'fast': 30, 'slow': 26}"),
    ("  a: {strategy: macd_crossover, timeframe: M2}", "variants.a.timeframe", "'M2'"),
    ("  a: {strategy: macd_crossover, instruments: EURUSD}", "variants.a.instruments",
     "found a single word"),
    ("  a: {strategy: macd_crossover, instruments: [EUR-USD]}", "variants.a.instruments[0]",
     "'EUR-USD'"),
    ("  a: {strategy: macd_crossover, instruments: [USDJPY, USDJPY]}",
     "variants.a.instruments[1]", "found a repeat"),
    ("  a: {strategy: macd_crossover, instruments: []}", "variants.a.instruments", "found []"),
    ("  fast-macd: {strategy: macd_crossover}", "variants.fast-macd", "'fast-macd'"),
    ("  a: {strategy: macd_crossover, paramz: {}}", "variants.a.paramz", "'paramz'"),
    ("  a: {params: {}}", "variants.a.strategy", "no such key"),
    ("  a: {strategy: macd_crossover, costs: {spread_pips: -1}}",
     "variants.a.costs.spread_pips", "found -1"),
    ("  a: {strategy: macd_crossover, sizing: {units: 1, fraction_of_equity: 0.5}}",
     "variants.a.sizing", "both"),
])
def test_each_mistake_names_its_key_path(tmp_path, variant, key_path, found) -> None:
    message = _error(tmp_path, HEAD + variant + "\n")
    assert f"at {key_path}: " in message
    assert "expected" in message and found in message


def test_bad_instrument_and_history_start_are_reported_together(tmp_path) -> None:
    text = textwrap.dedent("""\
        history_start: 2020-01-15
        instruments:
          US500: {pip_size: 0.1, spread_pips: 5, reference_price: 5000}
          EUR/USD: {pip_size: 0.0001, spread_pips: 1, reference_price: 1.1}
        variants:
          m: {strategy: macd_crossover}
        """)
    message = _error(tmp_path, text)
    assert "at instruments.EUR/USD: " in message and "'EUR_USD'" in message
    text = text.replace("  EUR/USD", "  EURUSD")
    message = _error(tmp_path, text)
    assert "2 problems" in message
    assert "at history_start: " in message and "Fix: use 2020-01-01" in message
    assert "at instruments.US500.quote_currency: " in message and "quote_currency: USD" in message


def test_yaml_syntax_error_names_the_line(tmp_path) -> None:
    message = _error(tmp_path, HEAD + "  a: {strategy: macd_crossover\n  b: {strategy: x}\n")
    assert "line 7" in message and "expected valid YAML" in message


def test_a_key_given_twice_is_refused_not_silently_overridden(tmp_path) -> None:
    message = _error(tmp_path, HEAD + "  a: {strategy: macd_crossover}\n"
                                      "  a: {strategy: ema_crossover}\n")
    assert "line 7" in message and "'a' appears twice" in message


def test_missing_file_names_the_setting(tmp_path, monkeypatch) -> None:
    missing = tmp_path / "nowhere.yaml"
    monkeypatch.setenv(ENV_VAR, str(missing))
    with pytest.raises(UniverseError) as info:
        universe.strategies()
    message = str(info.value)
    assert str(missing) in message and "does not exist" in message and ENV_VAR in message


@pytest.mark.parametrize("text", ["", "- a\n- b\n", "just words\n"])
def test_a_file_that_is_not_a_mapping(tmp_path, text) -> None:
    assert "expected a mapping with history_start" in _error(tmp_path, text)


def test_cli_validates_a_file_and_prints_its_grid(tmp_path, monkeypatch, capsys) -> None:
    from btpipeline import cli

    monkeypatch.setenv("DAGSTER_HOME", str(tmp_path / "dagster"))
    assert cli.main(["universe", str(REPO / "examples" / "universe_custom.yaml")]) == 0
    out = capsys.readouterr().out
    assert "partitions from 2005-01, 7 backtest assets" in out
    assert "backtest/donchian/{EURUSD,XAUUSD,US500}" in out
    broken = _write(tmp_path, HEAD + "  a: {strategy: macd_crossover, timeframe: M2}\n")
    assert cli.main(["universe", str(broken)]) == 2
    assert "at variants.a.timeframe: " in capsys.readouterr().err


def test_backtest_specs_carry_what_an_asset_needs() -> None:
    from btpipeline.universe import backtest_specs

    specs = backtest_specs(load_universe(REPO / "examples" / "universe_custom.yaml"))
    assert [s.key_path for s in specs[:2]] == [["backtest", "macd_fast", "EURUSD"],
                                               ["backtest", "macd_fast", "EURJPY"]]
    slow_jpy = specs[3]
    assert slow_jpy.group_name == "backtest_macd_slow"
    assert slow_jpy.params == {"fast": 24, "slow": 52, "signal": 18}
    assert (slow_jpy.costs.spread_pips, slow_jpy.costs.pip_size) == (1.2, 0.01)
    assert slow_jpy.costs.commission_per_lot == 3.5 and slow_jpy.epic.name == "EURJPY"
    assert specs[4].costs.spread_pips == 0.8  # no override: the instrument's own spread


def test_an_account_currency_the_instrument_cannot_convert_into_is_refused(tmp_path) -> None:
    text = ("history_start: 2020-01-01\ninstruments:\n  EURJPY: {pip_size: 0.01, spread_pips: 1,"
            " reference_price: 160}\nvariants:\n  a: {strategy: macd_crossover}\n")
    message = _error(tmp_path, text)
    assert "at variants.a.account_currency: " in message
    assert "USD account but runs on EURJPY" in message and "Fix: " in message
