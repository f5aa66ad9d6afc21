"""Parameter grids: parse, validate and expand ``{"fast": [8, 12], "slow": [21, 26]}`` into
the list of parameter combinations a sweep fans out over.

Everything here runs before the fan-out, so a bad grid fails once, in the planning step, with a
message that names the field and the fix, instead of failing in a hundred mapped steps.
"""

from __future__ import annotations

import dataclasses
import itertools
import math
import numbers
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from btpipeline.errors import InvalidParameterError
from btpipeline.strategies import get_strategy, params_dict
from btpipeline.strategies.base import Strategy
from btpipeline.sweeps.rules import parse_rules, violated
from btpipeline.universe.strategy_loader import resolve_strategy

MAX_COMBINATIONS = 100_000
"""Combinations run in chunks (a step per chunk, not per combination), so the limit is only
the plan's memory (a task per combination) and the size of the ranked table."""

MAX_BAD_SHOWN = 5

Number = int | float


@dataclass(frozen=True)
class Combination:
    """One point of the grid: ``overrides`` are the grid's values, ``params`` the strategy's
    full, validated parameters (defaults filled in)."""

    index: int
    overrides: dict[str, Number]
    params: dict[str, Any]

    @property
    def mapping_key(self) -> str:
        """A Dagster mapping key (``[A-Za-z0-9_]+``) that sorts in grid order and reads as the
        combination, e.g. ``c0003_fast8_slow21_signal9``."""
        parts = "_".join(f"{name}{_key_text(value)}" for name, value in self.overrides.items())
        return f"c{self.index:04d}_{parts}"


def _key_text(value: Number) -> str:
    text = repr(value).replace("-", "m").replace(".", "p").replace("+", "")
    return re.sub(r"[^A-Za-z0-9_]", "_", text)


def sweep_strategy(spec: str) -> Strategy:
    """A built-in strategy name, or a user strategy as ``module:Class`` (loaded like a
    universe file's: ``btpipeline.universe.resolve_strategy``)."""
    if isinstance(spec, str) and ":" in spec:
        return resolve_strategy(spec)
    return get_strategy(spec)


@dataclass(frozen=True)
class Expansion:
    """The valid combinations of a grid and how many the rules dropped."""

    combinations: list[Combination]
    dropped_by_rules: int


def _grid_error(strategy: str, field: str, problem: str, fix: str) -> InvalidParameterError:
    return InvalidParameterError(
        f"Invalid sweep grid for strategy {strategy!r}, field {field!r}: {problem}. Fix: {fix}")


def _example(strategy: Strategy) -> str:
    defaults = params_dict(strategy.params_type())
    return "{" + ", ".join(f"{k}: [{v}]" for k, v in defaults.items()) + "}"


def _known_fields(strategy: Strategy) -> list[str]:
    return [f.name for f in dataclasses.fields(strategy.params_type)]


def _normalise(value: object) -> Number:
    """Run config carries numbers as floats: integral ones become ints (period fields)."""
    if isinstance(value, float) and value.is_integer():
        return int(value)
    return value  # type: ignore[return-value]


def _check_values(strategy: Strategy, field: str, values: object) -> list[Number]:
    if isinstance(values, str | bytes) or not isinstance(values, Sequence) or not values:
        raise _grid_error(strategy.name, field, f"expected a non-empty list of numbers, got "
                          f"{values!r}", f"give a list, e.g. {field}: [8, 12, 16].")
    for value in values:
        if (isinstance(value, bool) or not isinstance(value, numbers.Real)
                or not math.isfinite(value)):
            raise _grid_error(strategy.name, field, f"expected numbers, got {value!r} in "
                              f"{list(values)!r}", "use finite numbers only.")
    clean = [_normalise(v) for v in values]
    repeated = sorted({v for v in clean if clean.count(v) > 1})
    if repeated:
        raise _grid_error(strategy.name, field, f"values {repeated} appear more than once",
                          "list each value once (a repeat would run the same backtest twice).")
    return clean


def parse_grid(strategy_name: str, grid: Mapping[str, object]) -> dict[str, list[Number]]:
    """Check ``grid``'s fields against the strategy's parameters and its values; keeps order."""
    strategy = sweep_strategy(strategy_name)
    known = _known_fields(strategy)
    if not isinstance(grid, Mapping) or not grid:
        raise InvalidParameterError(
            f"Invalid sweep grid for strategy {strategy.name!r}: expected a mapping of parameter "
            f"name to a list of values, got {grid!r}. Fix: e.g. grid: {_example(strategy)} "
            f"(fields: {', '.join(known)}).")
    for field in grid:
        if field not in known:
            raise _grid_error(strategy.name, str(field), f"not a parameter of {strategy.name!r} "
                              f"(its parameters: {', '.join(known)})",
                              "remove it or rename it to one of those.")
    return {str(field): _check_values(strategy, str(field), values)
            for field, values in grid.items()}


def _count(grid: Mapping[str, Sequence[Number]]) -> int:
    return math.prod(len(values) for values in grid.values())


def _check_size(strategy: str, grid: Mapping[str, Sequence[Number]]) -> None:
    count = _count(grid)
    if count > MAX_COMBINATIONS:
        sizes = " x ".join(f"{len(v)} {k}" for k, v in grid.items())
        raise InvalidParameterError(
            f"Invalid sweep grid for strategy {strategy!r}: {sizes} = {count} combinations, "
            f"more than the limit of {MAX_COMBINATIONS}. Fix: use fewer values, or split the "
            "grid over several runs.")


def _invalid_error(strategy: str, bad: list[tuple[dict[str, Number], str]],
                   total: int) -> InvalidParameterError:
    shown = "; ".join(f"{combo}: {reason}" for combo, reason in bad[:MAX_BAD_SHOWN])
    more = f" (and {len(bad) - MAX_BAD_SHOWN} more)" if len(bad) > MAX_BAD_SHOWN else ""
    return InvalidParameterError(
        f"Invalid sweep grid for strategy {strategy!r}: {len(bad)} of {total} combinations are "
        f"invalid: {shown}{more}. Fix: change the values that make them invalid, or set "
        "skip_invalid: true to drop those combinations and run the rest.")


def expand_grid(strategy_name: str, grid: Mapping[str, object], *,
                skip_invalid: bool = False, rules: Sequence[str] = ()) -> list[Combination]:
    """Every combination of ``grid`` (see ``expand``)."""
    return expand(strategy_name, grid, skip_invalid=skip_invalid, rules=rules).combinations


def expand(strategy_name: str, grid: Mapping[str, object], *, skip_invalid: bool = False,
           rules: Sequence[str] = ()) -> Expansion:
    """Every combination of ``grid`` (the cartesian product, first field varying slowest)
    that keeps every rule (rules.py), each validated by the strategy (e.g. MACD's
    ``fast < slow``).

    An invalid combination raises ``InvalidParameterError`` listing the first few and why,
    unless ``skip_invalid``: then they are dropped (an all-invalid grid still raises).
    """
    strategy = sweep_strategy(strategy_name)
    clean = parse_grid(strategy_name, grid)
    _check_size(strategy.name, clean)
    defaults = params_dict(strategy.params_type())
    checks = parse_rules(rules, list(defaults), strategy.name)
    fields = list(clean)
    good: list[Combination] = []
    bad: list[tuple[dict[str, Number], str]] = []
    dropped = 0
    for values in itertools.product(*clean.values()):
        overrides = dict(zip(fields, values, strict=True))
        if checks and violated(checks, {**defaults, **overrides}) is not None:
            dropped += 1
            continue
        try:
            params = params_dict(strategy.make_params(overrides))
        except InvalidParameterError as error:
            bad.append((overrides, str(error).split(" Fix:")[0].rstrip(".")))
            continue
        good.append(Combination(index=len(good), overrides=overrides, params=params))
    if not good and not bad:
        raise InvalidParameterError(
            f"Invalid sweep for strategy {strategy.name!r}: the rules {list(rules)} drop all "
            f"{_count(clean)} combinations of the grid. Fix: loosen a rule or widen the grid.")
    if bad and (not skip_invalid or not good):
        raise _invalid_error(strategy.name, bad, _count(clean))
    return Expansion(combinations=good, dropped_by_rules=dropped)
