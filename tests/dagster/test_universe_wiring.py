"""The universe file drives the code location: a user universe (examples/universe_custom.yaml,
copied to tmp and named by BTPIPELINE_UNIVERSE) backtested through Dagster: instruments that
exist only in the file, a user strategy, two variants of one strategy side by side, history
before 2005 from an imported CSV, and a parameter change that marks partitions outdated. Results
on SQLite and PostgreSQL (the ``results_db`` fixture)."""

from __future__ import annotations

import shutil
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pytest
from dagster import AssetRecordsFilter, DagsterInstance, Definitions, instance_for_test
from dagster._core.definitions.data_version import (
    CachingStaleStatusResolver,
    StaleCauseCategory,
    StaleStatus,
)
from dagster._core.loader import LoadingContextForTest

from btpipeline import cli
from btpipeline.assets.keys import backtest_key, candles_key
from btpipeline.definitions import build_definitions
from btpipeline.errors import UniverseError
from btpipeline.machine.tags import RANGE_END_TAG, RANGE_START_TAG
from btpipeline.resources.market_data_store import MarketDataStore
from btpipeline.resources.results_database import ResultsDatabase
from tests.support.instances import shipped_storage

REPO = Path(__file__).parents[2]
MONTH = "2024-01-01"


@pytest.fixture
def instance(tmp_path: Path):
    """The storage btpipeline ships (batched event-log writes), as in a deployment."""
    home = tmp_path / "dagster_home"
    home.mkdir()
    with instance_for_test(temp_dir=str(home), overrides=shipped_storage(str(home))) as inst:
        yield inst


@pytest.fixture
def universe_file(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    path = tmp_path / "universe.yaml"
    shutil.copy(REPO / "examples" / "universe_custom.yaml", path)
    monkeypatch.setenv("BTPIPELINE_UNIVERSE", str(path))
    return path


@pytest.fixture
def resources(tmp_path: Path, results_db: ResultsDatabase) -> dict[str, Any]:
    return {"market_data": MarketDataStore(root=str(tmp_path / "data")), "results_db": results_db}


def _materialize(instance: DagsterInstance, defs: Definitions, epic: str, variants: list[str],
                 first: str = MONTH, last: str = MONTH, generate: bool = True) -> None:
    ops = {candles_key(epic).to_python_identifier(): {
        "config": {"generate_if_missing": generate}}}
    result = defs.resolve_job_def("market_data_job").execute_in_process(
        instance=instance, asset_selection=[candles_key(epic)] + [
            backtest_key(v, epic) for v in variants],
        tags={RANGE_START_TAG: first, RANGE_END_TAG: last}, run_config={"ops": ops},
        raise_on_error=False)
    assert result.success, [e.message for e in result.all_events if e.is_failure]


def test_the_user_universe_defines_its_grid(universe_file, resources) -> None:
    defs = build_definitions(resources)
    graph = defs.resolve_asset_graph()
    backtests = sorted(k.to_user_string() for k in graph.get_all_asset_keys()
                       if k.path[0] == "backtest")
    assert backtests == sorted(["backtest/macd_fast/EURUSD", "backtest/macd_fast/EURJPY",
                                "backtest/macd_slow/EURUSD", "backtest/macd_slow/EURJPY",
                                "backtest/donchian/EURUSD", "backtest/donchian/XAUUSD",
                                "backtest/donchian/US500"])
    node = graph.get(backtest_key("macd_slow", "EURJPY"))
    assert node.group_name == "backtest_macd_slow"
    assert node.partitions_def.get_first_partition_key() == "2005-01-01"
    assert graph.has(candles_key("US500")) and graph.has(candles_key("XAUUSD"))


def test_two_variants_of_one_strategy_on_an_instrument_only_in_the_file(
        instance, universe_file, resources) -> None:
    db: ResultsDatabase = resources["results_db"]
    _materialize(instance, build_definitions(resources), "EURJPY", ["macd_fast", "macd_slow"])
    runs = db.read_executions(epic="EURJPY").set_index("variant")
    assert sorted(runs.index) == ["macd_fast", "macd_slow"]
    assert set(runs["strategy"]) == {"macd_crossover"}
    assert runs.loc["macd_fast", "params_hash"] != runs.loc["macd_slow", "params_hash"]
    fast, slow = runs.loc["macd_fast", "params"], runs.loc["macd_slow", "params"]
    assert (fast["fast"], fast["slow"], fast["signal"]) == (8, 21, 5)
    assert (slow["fast"], slow["timeframe"]) == (24, "M15")
    assert slow["costs"] == {"spread_pips": 1.2, "pip_size": 0.01, "commission_per_lot": 3.5,
                             "slippage_pips": 0.2}
    assert fast["costs"]["spread_pips"] == 1.5  # the instrument's own spread
    assert fast["account"]["currency"] == "EUR"
    fills = {v: db.read_signals(variant=v, epic="EURJPY") for v in ("macd_fast", "macd_slow")}
    assert len(fills["macd_fast"]) > len(fills["macd_slow"]) > 0  # fast trades more often
    assert set(fills["macd_fast"]["params_hash"]) == {runs.loc["macd_fast", "params_hash"]}
    assert db.read_daily_pnl(variant="macd_slow", epic="EURJPY")["variant"].unique().tolist() \
        == ["macd_slow"]


def test_the_example_user_strategy_backtests_through_dagster(instance, universe_file,
                                                             resources) -> None:
    db: ResultsDatabase = resources["results_db"]
    _materialize(instance, build_definitions(resources), "US500", ["donchian"])
    run = db.read_executions(variant="donchian", epic="US500").iloc[0]
    assert run["strategy"] == "donchian_breakout" and run["status"] == "SUCCESS"
    assert run["params"]["window"] == 120
    assert run["params"]["account"]["initial_capital"] == 50_000
    assert run["params"]["account"]["sizing"] == "equity_fraction 0.5"
    assert run["num_trades"] > 0
    assert instance.get_materialized_partitions(backtest_key("donchian", "US500")) == {MONTH}


def test_a_parameter_change_marks_only_that_variants_partitions_outdated(
        instance, universe_file, resources) -> None:
    db: ResultsDatabase = resources["results_db"]
    before = build_definitions(resources)
    _materialize(instance, before, "EURUSD", ["macd_fast", "macd_slow"])
    slow_rows = db.read_signals(variant="macd_slow", epic="EURUSD")
    text = universe_file.read_text().replace("{fast: 8, slow: 21, signal: 5}",
                                             "{fast: 10, slow: 21, signal: 5}")
    universe_file.write_text(text)
    after = build_definitions(resources)
    fast, slow = backtest_key("macd_fast", "EURUSD"), backtest_key("macd_slow", "EURUSD")
    old_graph, new_graph = before.resolve_asset_graph(), after.resolve_asset_graph()
    assert new_graph.get(fast).code_version != old_graph.get(fast).code_version
    assert new_graph.get(slow).code_version == old_graph.get(slow).code_version
    record = instance.fetch_materializations(
        AssetRecordsFilter(asset_key=fast, asset_partitions=[MONTH]), limit=1).records[0]
    assert record.asset_materialization.tags["dagster/code_version"] == \
        old_graph.get(fast).code_version
    resolver = CachingStaleStatusResolver(instance, new_graph, LoadingContextForTest(instance))
    assert resolver.get_status(fast, MONTH) == StaleStatus.STALE
    cause = resolver.get_stale_causes(fast, MONTH)[0]
    assert cause.category == StaleCauseCategory.CODE and "code version" in cause.reason
    assert resolver.get_status(slow, MONTH) == StaleStatus.FRESH

    _materialize(instance, after, "EURUSD", ["macd_fast"])
    assert db.read_executions(variant="macd_fast", epic="EURUSD")["params"][0]["fast"] == 10
    pd.testing.assert_frame_equal(db.read_signals(variant="macd_slow", epic="EURUSD"),
                                  slow_rows)  # the other variant's rows untouched


def test_history_before_2005_from_an_imported_headed_csv(instance, universe_file, resources,
                                                         tmp_path, capsys) -> None:
    universe_file.write_text(universe_file.read_text().replace(
        "history_start: 2005-01-01", "history_start: 1999-01-01"))
    data_dir = resources["market_data"].root
    early = _write_csv(tmp_path / "early.csv", "1998-12-31 23:00", 120)
    assert cli.main(["import", str(early), "--epic", "EURJPY", "--data-dir", data_dir]) == 2
    assert "before history_start 1999-01-01" in capsys.readouterr().err
    good = _write_csv(tmp_path / "eurjpy_1999.csv", "1999-02-01 00:00", 28 * 1440)
    assert cli.main(["import", str(good), "--epic", "EURJPY", "--data-dir", data_dir]) == 0
    defs = build_definitions(resources)
    graph = defs.resolve_asset_graph()
    assert graph.get(backtest_key("macd_fast", "EURJPY")).partitions_def \
        .get_first_partition_key() == "1999-01-01"
    _materialize(instance, defs, "EURJPY", ["macd_fast"], "1999-02-01", "1999-02-01",
                 generate=False)
    daily = resources["results_db"].read_daily_pnl(variant="macd_fast", epic="EURJPY")
    assert set(daily["partition_key"]) == {"1999-02-01"} and len(daily) >= 20


def _write_csv(path: Path, start: str, bars: int) -> Path:
    """A headed CSV of 1-minute EURJPY-like bars (a seeded random walk)."""
    stamps = pd.date_range(start, periods=bars, freq="min")
    close = 130.0 + np.cumsum(np.random.default_rng(3).normal(0, 0.02, bars))
    frame = pd.DataFrame({"timestamp": stamps.strftime("%Y-%m-%d %H:%M:%S"), "open": close,
                          "high": close + 0.01, "low": close - 0.01, "close": close,
                          "volume": 1})
    frame.to_csv(path, index=False)
    return path


def test_a_look_ahead_user_strategy_fails_the_load_naming_the_variant(
        universe_file, resources, tmp_path, monkeypatch) -> None:
    package = tmp_path / "peeking"
    package.mkdir()
    (package / "__init__.py").write_text("")
    (package / "peek.py").write_text(PEEKING_STRATEGY)
    monkeypatch.syspath_prepend(str(tmp_path))
    universe_file.write_text(universe_file.read_text() + "  cheat:\n    strategy: "
                             "peeking.peek:Peek\n    instruments: [EURUSD]\n")
    with pytest.raises(UniverseError) as info:
        build_definitions(resources)
    assert "variants.cheat.strategy" in str(info.value) and "Fix:" in str(info.value)


PEEKING_STRATEGY = '''
from dataclasses import dataclass

import numpy as np

from btpipeline.strategies.base import Strategy


@dataclass(frozen=True)
class PeekParams:
    window: int = 5


class Peek(Strategy):
    name = "peek"
    params_type = PeekParams

    def validate(self, values):
        return dict(values)

    def indicator_warmup_bars(self, params):
        return params.window

    def target_positions(self, candles, params):
        close = np.asarray(candles.close, dtype=np.float64)
        ahead = np.append(close[1:], close[-1])  # tomorrow's close: look-ahead
        return np.sign(ahead - close).astype(np.int8)
'''


def test_the_run_config_overrides_only_what_it_sets(universe_file) -> None:
    from btpipeline.assets.backtests.config import BacktestConfig
    from btpipeline.assets.backtests.run_settings import resolve
    from btpipeline.universe import backtest_specs, default_universe

    specs = {(s.variant.name, s.instrument.name): s for s in backtest_specs(default_universe())}
    slow = specs[("macd_slow", "EURJPY")]
    declared = resolve(slow, BacktestConfig())
    assert (declared.params.fast, declared.params.slow, declared.timeframe) == (24, 52, "M15")
    assert (declared.costs.spread_pips, declared.costs.commission_per_lot) == (1.2, 3.5)
    assert declared.account.currency == "EUR" and declared.equity_fraction is None
    changed = resolve(slow, BacktestConfig(params={"fast": 12.0}, timeframe="H1",
                                           commission_per_lot=0.0, initial_capital=5000.0))
    assert (changed.params.fast, changed.params.slow, changed.timeframe) == (12, 52, "H1")
    assert (changed.costs.spread_pips, changed.costs.commission_per_lot) == (1.2, 0.0)
    assert changed.account.initial_capital == 5000.0 and changed.account.currency == "EUR"
    donchian = resolve(specs[("donchian", "US500")], BacktestConfig())
    assert donchian.equity_fraction == 0.5 and donchian.account.initial_capital == 50_000
    with pytest.raises(ValueError, match="timeframe is 'M2'.*Fix"):
        BacktestConfig(timeframe="M2")


def test_the_sensor_requests_only_used_instruments_from_history_start() -> None:
    from btpipeline.assets.market_data.sensors import _requests

    grid = [("macd_fast", "EURUSD"), ("macd_slow", "EURUSD"), ("donchian", "US500")]
    changed = {"EURUSD": ["2004-11", "2004-12", "2005-01", "2005-02"], "GBPUSD": ["2005-01"],
               "US500": ["2004-12"]}
    (request,) = _requests(changed, grid, "2005-01")
    assert request.tags == {RANGE_START_TAG: "2005-01-01", RANGE_END_TAG: "2005-02-01"}
    assert [k.to_user_string() for k in request.asset_selection] == [
        "candles/EURUSD", "backtest/macd_fast/EURUSD", "backtest/macd_slow/EURUSD"]
