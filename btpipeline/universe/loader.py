"""Read and validate a universe file: ``load_universe(path)`` and where the default one is.

Every failure (no file, not YAML, a duplicate key, a schema violation) becomes ONE
``UniverseError`` naming the file and, per problem, the key path (``variants.fast_macd.params.
fast``), what was expected, what was found and the fix.
"""

from __future__ import annotations

import functools
import os
from pathlib import Path
from typing import Any

import yaml
from pydantic import BaseModel, ValidationError

from btpipeline.errors import UniverseError
from btpipeline.settings import project_root
from btpipeline.universe.model import CostSettings, Instrument, Sizing, Universe, Variant

ENV_VAR = "BTPIPELINE_UNIVERSE"
FILE_NAME = "universe.yaml"
PACKAGED_DEFAULT = Path(__file__).resolve().parent / "default.yaml"

_FIELD_FIXES = {
    "timeframe": "use one of M1, M5, M15, M30, H1, H4, D1",
    "history_start": "write a date such as 2005-01-01 (partitions begin that month)",
    "quote_currency": "add the currency P&L is made in, e.g. `quote_currency: USD` (implied "
                      "only by a six-letter name such as EURJPY)",
    "instruments": "write a list of declared instrument names, or `all`",
}


def default_universe_path() -> Path:
    """``$BTPIPELINE_UNIVERSE`` (read now, not at import), else ``universe.yaml`` at the project
    root, else the packaged default (today's grid)."""
    explicit = os.environ.get(ENV_VAR)
    if explicit:
        return Path(explicit)
    in_project = project_root() / FILE_NAME
    return in_project if in_project.is_file() else PACKAGED_DEFAULT


def load_universe(path: Path | str) -> Universe:
    """The validated universe in ``path``; ``UniverseError`` says what to fix where."""
    path = Path(path)
    data = _read_yaml(path)
    if not isinstance(data, dict):
        raise UniverseError(
            f"Invalid universe file {path}: expected a mapping with history_start, instruments "
            f"and variants, found {type(data).__name__} {_short(data)}. Fix: start from the "
            f"repository's {FILE_NAME}.")
    try:
        return Universe.model_validate(data)
    except ValidationError as error:
        raise UniverseError(_describe(path, error)) from None


def default_universe() -> Universe:
    """The universe at ``default_universe_path()``, re-read when the file changes."""
    path = default_universe_path()
    try:
        stat = path.stat()
    except OSError:
        return load_universe(path)  # reports the missing file
    return _cached(os.path.abspath(path), stat.st_mtime_ns, stat.st_size)  # no realpath: cheap


@functools.lru_cache(maxsize=8)
def _cached(path: str, mtime_ns: int, size: int) -> Universe:
    return load_universe(path)


class _UniqueKeyLoader(yaml.SafeLoader):
    """SafeLoader that refuses a key given twice in one mapping (YAML would keep the last)."""

    def construct_mapping(self, node: yaml.MappingNode, deep: bool = False) -> dict[Any, Any]:
        seen: set[Any] = set()
        for key_node, _ in node.value:
            key = self.construct_object(key_node, deep=deep)
            if key in seen:
                raise yaml.constructor.ConstructorError(
                    None, None, f"the key {key!r} appears twice in one mapping",
                    key_node.start_mark)
            seen.add(key)
        return super().construct_mapping(node, deep=deep)


def _read_yaml(path: Path) -> Any:
    try:
        text = path.read_text(encoding="utf-8")
    except FileNotFoundError:
        raise UniverseError(
            f"Universe file {path} does not exist: expected a YAML file, found nothing there. "
            f"Fix: create it (copy {FILE_NAME} from the repository or {PACKAGED_DEFAULT}), or "
            f"set {ENV_VAR} to an existing file.") from None
    except (OSError, UnicodeDecodeError) as error:
        raise UniverseError(f"Universe file {path} cannot be read: expected a UTF-8 text file, "
                            f"found {error}. Fix: save it as plain UTF-8 YAML.") from None
    try:
        return yaml.load(text, Loader=_UniqueKeyLoader)  # noqa: S506 - a SafeLoader subclass
    except yaml.YAMLError as error:
        raise UniverseError(_describe_yaml(path, error)) from None


def _describe_yaml(path: Path, error: yaml.YAMLError) -> str:
    mark = getattr(error, "problem_mark", None)
    where = f", line {mark.line + 1}, column {mark.column + 1}" if mark is not None else ""
    problem = getattr(error, "problem", None) or str(error)
    context = getattr(error, "context", None)
    found = f"{problem} ({context})" if context else problem
    return (f"Invalid universe file {path}{where}: expected valid YAML, found {found}. Fix: "
            "correct that line (indent with spaces, `key: value`, quote values containing ': '"
            " or '#').")


def _describe(path: Path, error: ValidationError) -> str:
    problems = _problems([dict(e) for e in error.errors(include_url=False)])
    if len(problems) == 1:
        return f"Invalid universe file {path}: at {problems[0]}"
    return f"Invalid universe file {path} ({len(problems)} problems):\n" + "\n".join(
        f"- at {p}" for p in problems)


def _problems(errors: list[dict[str, Any]]) -> list[str]:
    """One line per key path; the alternatives of a union (a list or `all`) are joined."""
    by_path: dict[tuple[Any, ...], list[dict[str, Any]]] = {}
    for error in errors:
        loc = tuple(p for p in error["loc"] if not _is_type_tag(p))
        ctx = error.get("ctx") or {}
        if error["type"] == "universe":
            loc += tuple(p for p in str(ctx.get("at", "")).split(".") if p)
        by_path.setdefault(loc, []).append(error)
    return [_problem(loc, group) for loc, group in by_path.items()]


def _is_type_tag(part: Any) -> bool:
    """pydantic's union-member labels in a location (``list[constrained-str]``)."""
    return isinstance(part, str) and ("[" in part or "-" in part)


def _problem(loc: tuple[Any, ...], errors: list[dict[str, Any]]) -> str:
    """``key.path: expected ..., found .... Fix: ...`` for the errors at one key path."""
    first = errors[0]
    if first["type"] == "universe":
        return f"{key_path(loc)}: {first['ctx']['message']}"
    field = str(loc[-1]) if loc else ""
    parent = key_path(loc[:-1]) or "the top level"
    if first["type"] == "missing":
        hint = f": {_FIELD_FIXES[field]}" if field in _FIELD_FIXES else ""
        return (f"{key_path(loc)}: expected a value for {field!r}, found no such key. Fix: add "
                f"`{field}: ...` under {parent}{hint}.")
    if first["type"] == "extra_forbidden":
        known = ", ".join(_keys_at(loc[:-1]))
        return (f"{key_path(loc)}: expected one of the keys {known}, found the unknown key "
                f"{field!r}. Fix: remove it or correct its spelling.")
    expected = " or ".join(dict.fromkeys(_expected(e) for e in errors))
    if first["type"] == "too_short" and len(loc) == 1:
        fix = f"declare at least one entry under `{field}`"
    else:
        fix = _FIELD_FIXES.get(field, f"set {key_path(loc)} to {expected}")
    return f"{key_path(loc)}: expected {expected}, found {_short(first.get('input'))}. Fix: {fix}."


def _expected(error: dict[str, Any]) -> str:
    ctx = error.get("ctx") or {}
    if error["type"] == "string_pattern_mismatch":
        return ("a three-letter currency code in capitals, such as USD" if "{3}" in str(
            ctx.get("pattern")) else "a name of letters, digits and '_' only")
    if error["type"] == "too_short":
        return f"at least {ctx.get('min_length', 1)} entry"
    expected = str(error["msg"]).removeprefix("Input should be ").removeprefix("Value error, ")
    return f"a number {expected}" if expected.startswith(("greater", "less")) else expected


def _keys_at(loc: tuple[Any, ...]) -> list[str]:
    """The keys allowed in the mapping at ``loc``."""
    model: type[BaseModel] = Universe
    if len(loc) >= 2 and loc[0] == "instruments":
        model = Instrument
    elif len(loc) >= 2 and loc[0] == "variants":
        nested: dict[str, type[BaseModel]] = {"costs": CostSettings, "sizing": Sizing}
        model = nested.get(str(loc[2]), Variant) if len(loc) >= 3 else Variant
    return [name for name in model.model_fields if name != "name"]


def key_path(loc: tuple[Any, ...]) -> str:
    """``("variants", "fast", "instruments", 1)`` -> ``variants.fast.instruments[1]``."""
    text = ""
    for part in loc:
        if isinstance(part, int):
            text += f"[{part}]"
        else:
            text += f".{part}" if text else str(part)
    return text


def _short(value: Any, limit: int = 80) -> str:
    text = repr(value)
    return text if len(text) <= limit else text[: limit - 3] + "..."
