"""Checks that turn a bad strategy parameter into an ``InvalidParameterError`` that names the
parameter, what was expected, what was got, and the fix."""

from __future__ import annotations

import math
import numbers

from btpipeline.errors import InvalidParameterError


def bad_parameter(strategy: str, field: str, expected: str, got: object,
                  fix: str) -> InvalidParameterError:
    return InvalidParameterError(
        f"Invalid parameter {field!r} for strategy {strategy!r}: expected {expected}, "
        f"got {got!r}. Fix: {fix}"
    )


def require_period(strategy: str, field: str, value: object, default: int) -> int:
    """A whole number of bars >= 1 (bools and non-integral floats are rejected)."""
    if isinstance(value, bool) or not isinstance(value, numbers.Integral) or int(value) < 1:
        raise bad_parameter(strategy, field, "a whole number of bars >= 1", value,
                            f"pass a positive integer, e.g. {field}={default}.")
    return int(value)


def require_number(strategy: str, field: str, value: object, default: float,
                   low: float = -math.inf, high: float = math.inf, low_open: bool = False) -> float:
    """A finite real in ``[low, high]`` (``(low, high]`` when ``low_open``)."""
    number = math.nan  # not a number at all: refused below like a non-finite one
    if isinstance(value, numbers.Real) and not isinstance(value, bool):
        number = float(value)
    above = number > low if low_open else number >= low
    if not (math.isfinite(number) and above and number <= high):
        bracket = "(" if low_open else "["
        raise bad_parameter(strategy, field, f"a finite number in {bracket}{low}, {high}]", value,
                            f"pass a number in that range, e.g. {field}={default}.")
    return number


def require_less(strategy: str, small: str, small_value: float, big: str, big_value: float) -> None:
    """``small_value < big_value``, e.g. a fast EMA span below the slow one."""
    if not small_value < big_value:
        raise bad_parameter(
            strategy, small, f"{small} < {big}", {small: small_value, big: big_value},
            f"choose {small} smaller than {big} (or {big} larger than {small}).")
