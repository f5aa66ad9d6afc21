"""Parameter sweeps without Dagster: grid expansion and validation, sweep settings. The
fan-out job run for real: tests/dagster/test_sweep_job.py."""

import os
from typing import Any

import pytest

from btpipeline.errors import InvalidDateRangeError, InvalidParameterError, UnknownStrategyError
from btpipeline.sweeps import MAX_COMBINATIONS, build_spec, expand_grid

# tmpfs when there is one: Dagster's SQLite event log fsyncs every event.
SCRATCH = "/dev/shm" if os.path.isdir("/dev/shm") else None
GRID = {"fast": [8, 12, 16], "slow": [21, 26], "signal": [9]}  # 6 combinations
START, END = "2024-01-01", "2024-01-31"
SPREAD_PIPS, COMMISSION = 1.0, 3.5


# ---------------------------------------------------------------- grid validation (no Dagster)


def test_a_grid_expands_to_every_combination_in_order() -> None:
    combos = expand_grid("macd_crossover", {"fast": [8.0, 12], "slow": [21, 26]})
    assert [c.overrides for c in combos] == [
        {"fast": 8, "slow": 21}, {"fast": 8, "slow": 26},
        {"fast": 12, "slow": 21}, {"fast": 12, "slow": 26}]
    assert combos[0].params == {"fast": 8, "slow": 21, "signal": 9}  # defaults filled in
    assert isinstance(combos[0].overrides["fast"], int)  # run config floats become ints
    assert [c.mapping_key for c in combos][:2] == ["c0000_fast8_slow21", "c0001_fast8_slow26"]
    bollinger = expand_grid("bollinger_breakout", {"k": [1.5, 2]})
    assert bollinger[0].mapping_key == "c0000_k1p5"


@pytest.mark.parametrize(("grid", "expected"), [
    ({"fastt": [8]}, ["'fastt'", "fast, slow, signal", "Fix:"]),
    ({"fast": []}, ["'fast'", "non-empty list", "Fix:"]),
    ({"fast": "8"}, ["'fast'", "non-empty list"]),
    ({"fast": [8, True]}, ["'fast'", "expected numbers"]),
    ({"fast": [8, 8.0]}, ["'fast'", "more than once"]),
    ({}, ["expected a mapping", "grid:"]),
    ({"fast": [30, 8], "slow": [26]}, ["1 of 2 combinations are invalid", "'fast': 30",
                                       "fast < slow", "skip_invalid"]),
    ({"fast": [2.5], "slow": [26]}, ["'fast'", "whole number"]),
])
def test_a_bad_grid_names_the_field_and_the_fix(grid: dict[str, Any],
                                                expected: list[str]) -> None:
    with pytest.raises(InvalidParameterError) as error:
        expand_grid("macd_crossover", grid)
    for text in expected:
        assert text in str(error.value), str(error.value)


def test_skip_invalid_drops_only_the_invalid_combinations() -> None:
    combos = expand_grid("macd_crossover", {"fast": [8, 30], "slow": [26]}, skip_invalid=True)
    assert [c.overrides for c in combos] == [{"fast": 8, "slow": 26}]
    with pytest.raises(InvalidParameterError, match="2 of 2 combinations are invalid"):
        expand_grid("macd_crossover", {"fast": [30, 40], "slow": [26]}, skip_invalid=True)


def test_a_grid_over_the_limit_is_refused_before_it_is_expanded() -> None:
    side = int(MAX_COMBINATIONS ** 0.5) + 1
    grid = {"fast": list(range(1, side + 1)), "slow": list(range(1000, 1000 + side))}
    with pytest.raises(InvalidParameterError, match=f"limit of {MAX_COMBINATIONS}"):
        expand_grid("macd_crossover", grid)


@pytest.mark.parametrize(("changes", "error", "text"), [
    ({"strategy": "macd"}, UnknownStrategyError, "macd_crossover"),
    ({"start_date": "2024-13-01"}, InvalidDateRangeError, "start_date"),
    ({"start_date": "2024-02-01"}, InvalidDateRangeError, "inverted"),
    ({"rank_by": "profit"}, InvalidParameterError, "rank_by"),
    ({"top_n": 0}, InvalidParameterError, "top_n"),
    ({"costs": {"spread_pips": -1.0}}, InvalidParameterError, "spread_pips"),
])
def test_bad_sweep_settings_name_the_field(changes: dict[str, Any], error: type[Exception],
                                           text: str) -> None:
    settings: dict[str, Any] = {"strategy": "macd_crossover", "epic": "EURUSD",
                                "start_date": START, "end_date": END, "grid": GRID, "costs": {}}
    with pytest.raises(error, match=text):
        build_spec(**{**settings, **changes})


# ---------------------------------------------------------------- rules between parameters


def test_a_rule_drops_combinations_before_validation_and_counts_them() -> None:
    from btpipeline.sweeps.grid import expand

    grid = {"fast": [8, 12, 26], "slow": [12, 26], "signal": [9]}
    expansion = expand("macd_crossover", grid, rules=["fast < slow"])
    assert [c.overrides for c in expansion.combinations] == [
        {"fast": 8, "slow": 12, "signal": 9}, {"fast": 8, "slow": 26, "signal": 9},
        {"fast": 12, "slow": 26, "signal": 9}]
    assert expansion.dropped_by_rules == 3
    assert [c.index for c in expansion.combinations] == [0, 1, 2]


@pytest.mark.parametrize(("rule", "kept"), [
    ("signal <= 9", 2), ("signal != 9", 2), ("signal == 12", 1), ("fast >= 1e1", 0),
    ("signal > slow", 0)])
def test_rule_operators_and_numbers(rule: str, kept: int) -> None:
    from btpipeline.sweeps.grid import expand

    grid = {"fast": [8], "slow": [26], "signal": [5, 9, 12]}
    if kept == 0:
        with pytest.raises(InvalidParameterError, match=r"drop all 3 combinations.*Fix"):
            expand("macd_crossover", grid, rules=[rule])
    else:
        assert len(expand("macd_crossover", grid, rules=[rule]).combinations) == kept


@pytest.mark.parametrize(("rule", "expected"), [
    ("fast < slowest", r"'slowest' is not a parameter of strategy 'macd_crossover'.*Fix"),
    ("__import__('os') < 1", r"expected '<parameter> <op> <parameter or number>'.*Fix"),
    ("fast << slow", r"expected '<parameter> <op>.*Fix"),
])
def test_a_bad_rule_names_the_problem_and_the_fix(rule: str, expected: str) -> None:
    from btpipeline.sweeps.grid import expand

    with pytest.raises(InvalidParameterError, match=expected):
        expand("macd_crossover", {"fast": [8], "slow": [26]}, rules=[rule])


def test_a_user_strategy_is_swept_by_module_and_class() -> None:
    from btpipeline.sweeps.grid import expand

    expansion = expand("examples.strategies.donchian_breakout:DonchianBreakout",
                       {"window": [20, 55]})
    assert [c.params["window"] for c in expansion.combinations] == [20, 55]
