"""Constraints between a sweep's parameters, written in the sweep config as rules such as
``fast < slow`` or ``signal <= 12``.

A rule is ``<parameter> <op> <parameter or number>`` with ``op`` one of ``< <= > >= != ==``:
a tiny grammar parsed by a regular expression and applied with ``operator`` functions (never
``eval``). Combinations that break a rule are dropped before the strategy validates them, so
the grid can be a plain product and the rule says which part of it is meaningful.
"""

from __future__ import annotations

import operator
import re
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass

from btpipeline.errors import InvalidParameterError

OPERATORS: dict[str, Callable[[float, float], bool]] = {
    "<=": operator.le, ">=": operator.ge, "!=": operator.ne, "==": operator.eq,
    "<": operator.lt, ">": operator.gt,
}
_NUMBER = r"[-+]?(?:\d+\.?\d*|\.\d+)(?:[eE][-+]?\d+)?"
_RULE = re.compile(rf"^\s*(?P<left>[A-Za-z_]\w*)\s*(?P<op><=|>=|!=|==|<|>)\s*"
                   rf"(?P<right>[A-Za-z_]\w*|{_NUMBER})\s*$")


@dataclass(frozen=True)
class Rule:
    """``left op right``; ``right`` is a parameter name or a number."""

    text: str
    left: str
    op: str
    right: str | float

    def holds(self, params: Mapping[str, object]) -> bool:
        right = params[self.right] if isinstance(self.right, str) else self.right
        return bool(OPERATORS[self.op](params[self.left], right))  # type: ignore[arg-type]


def parse_rule(text: str, known: Sequence[str], strategy: str) -> Rule:
    """``text`` as a ``Rule`` naming only parameters in ``known``; else an error with the fix."""
    match = _RULE.match(text) if isinstance(text, str) else None
    if match is None:
        raise InvalidParameterError(
            f"Invalid sweep rule {text!r}: expected '<parameter> <op> <parameter or number>' "
            "with op one of < <= > >= != ==. Fix: e.g. rules: [\"fast < slow\"].")
    right_text = match["right"]
    right: str | float = right_text if re.match(r"[A-Za-z_]", right_text) else float(right_text)
    for name in (match["left"], right):
        if isinstance(name, str) and name not in known:
            raise InvalidParameterError(
                f"Invalid sweep rule {text!r}: {name!r} is not a parameter of strategy "
                f"{strategy!r} (its parameters: {', '.join(known)}). Fix: name one of those "
                "parameters in the rule.")
    return Rule(text=text.strip(), left=match["left"], op=match["op"], right=right)


def parse_rules(texts: Sequence[str], known: Sequence[str], strategy: str) -> list[Rule]:
    if isinstance(texts, str):
        raise InvalidParameterError(
            f"Invalid sweep rules {texts!r}: expected a list of rules, got one string. "
            f"Fix: write rules: [\"{texts}\"].")
    return [parse_rule(text, known, strategy) for text in texts]


def violated(rules: Sequence[Rule], params: Mapping[str, object]) -> Rule | None:
    """The first rule ``params`` break, or None."""
    return next((rule for rule in rules if not rule.holds(params)), None)
