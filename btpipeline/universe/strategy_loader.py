"""Turn a universe file's ``strategy:`` value into a ``Strategy`` instance.

The value is either a built-in name (``macd_crossover``) or ``package.module:ClassName`` of
the user's own code, importable on the Python path. Each way it can fail raises a
``StrategyError`` that names the spec, what was expected, what was found, and the fix.
"""

from __future__ import annotations

import importlib
import inspect
import re
import sys

from btpipeline.errors import StrategyError
from btpipeline.strategies.base import Strategy
from btpipeline.strategies.registry import STRATEGIES

_SPEC = re.compile(r"^(?P<module>[A-Za-z_][\w.]*):(?P<attr>[A-Za-z_]\w*)$")
_SPEC_FORM = ("a built-in strategy name (" + ", ".join(STRATEGIES) + ") or "
              "'package.module:ClassName' of a Strategy subclass importable on the Python path")


def resolve_strategy(spec: str) -> Strategy:
    """The strategy ``spec`` names: a built-in, or a class (or instance) found by import."""
    if spec in STRATEGIES:
        return STRATEGIES[spec]
    match = _SPEC.match(spec) if isinstance(spec, str) else None
    if match is None:
        raise StrategyError(
            f"Unknown strategy {spec!r}: expected {_SPEC_FORM}, found {spec!r}. Fix: use one of "
            "the built-in names, or write 'my_package.my_module:MyStrategy'.")
    found = _import_attribute(spec, match["module"], match["attr"])
    return _as_strategy(spec, found)


def _import_attribute(spec: str, module_name: str, attr: str) -> object:
    try:
        module = importlib.import_module(module_name)
    except ModuleNotFoundError as error:
        raise StrategyError(
            f"Strategy {spec!r}: module {module_name!r} cannot be imported ({error}); expected a "
            f"module on the Python path, found none (sys.path starts {sys.path[:3]}). Fix: run "
            "from the folder that contains the package, or add that folder to PYTHONPATH (e.g. "
            "`export PYTHONPATH=$PWD`), or `pip install` the package.") from error
    except Exception as error:  # the user's module itself raised while importing
        raise StrategyError(
            f"Strategy {spec!r}: importing module {module_name!r} raised "
            f"{type(error).__name__}: {error}; expected it to import cleanly. Fix: correct the "
            "module (run `python -c 'import " + module_name + "'` to see the traceback).") \
            from error
    try:
        return getattr(module, attr)
    except AttributeError:
        names = sorted(n for n, v in vars(module).items() if inspect.isclass(v)
                       and issubclass(v, Strategy) and v is not Strategy)
        raise StrategyError(
            f"Strategy {spec!r}: module {module_name!r} has no attribute {attr!r}; expected a "
            f"Strategy subclass, found these in it: {names or 'none'}. Fix: correct the name "
            "after the ':'.") from None


def _as_strategy(spec: str, found: object) -> Strategy:
    if isinstance(found, Strategy):
        return found
    if not (inspect.isclass(found) and issubclass(found, Strategy)):
        raise StrategyError(
            f"Strategy {spec!r} is not a Strategy: expected a subclass of "
            "btpipeline.strategies.api.Strategy, found "
            f"{found!r} ({type(found).__name__}). Fix: subclass Strategy and set name, "
            "params_type, validate, indicator_warmup_bars and target_positions.")
    missing = [a for a in ("name", "params_type") if not hasattr(found, a)]
    if missing or inspect.isabstract(found):
        abstract = sorted(getattr(found, "__abstractmethods__", ()))
        raise StrategyError(
            f"Strategy {spec!r} cannot be instantiated: expected a concrete Strategy subclass "
            f"with name and params_type set, found missing attributes {missing} and "
            f"unimplemented methods {abstract}. Fix: define them on {found.__name__}.")
    try:
        return found()
    except Exception as error:
        raise StrategyError(
            f"Strategy {spec!r} cannot be instantiated: {found.__name__}() raised "
            f"{type(error).__name__}: {error}; expected a constructor without arguments. "
            "Fix: give every __init__ argument a default (parameters belong in params_type).") \
            from error
