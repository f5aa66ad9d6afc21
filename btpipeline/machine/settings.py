"""Settings models: each setting declared once, as a pydantic field, with typed env overrides.

A model subclasses :class:`SettingsModel`. Every field ``name`` can be overridden by the
environment variable ``BTPIPELINE_<NAME>`` (upper case), parsed by pydantic for the field's own
annotation and bounds. Variables are read only when a caller asks (:meth:`SettingsModel.from_env`
at a run's start, when definitions are built, when the scanner starts), never at import time.

Environment text is shaped before pydantic validates it: ``""`` or ``none`` is None for an
optional field, and a tuple or list field takes comma-separated items (``0,1``); everything else
is pydantic's own lax parsing (``true``/``1``/``yes`` for a bool, ``0.5`` for a float, an enum's
value). Errors raise :class:`~btpipeline.errors.SettingsError` (or the model's ``error`` class)
naming the variable or field, what was expected, what was found, and the fix.
"""

from __future__ import annotations

import enum
import functools
import operator
import os
import types
import typing
from collections.abc import Mapping
from pathlib import Path
from typing import Annotated, Any, ClassVar, Self

from pydantic import BaseModel, ConfigDict, Field, TypeAdapter, ValidationError
from pydantic.fields import FieldInfo

from btpipeline.errors import SettingsError

ENV_PREFIX = "BTPIPELINE_"


def env_var(name: str) -> str:
    """The environment variable that overrides setting ``name``."""
    return ENV_PREFIX + name.upper()


class SettingsModel(BaseModel):
    """Base of the settings models: frozen, no unknown fields, readable errors."""

    model_config = ConfigDict(frozen=True, extra="forbid")
    #: Raised for an invalid value (a subclass of SettingsError).
    error: ClassVar[type[SettingsError]] = SettingsError

    def __init__(self, **values: Any) -> None:
        try:
            super().__init__(**values)
        except ValidationError as exc:
            raise _settings_error(type(self), exc) from None

    @classmethod
    def from_env(cls, values: Mapping[str, Any] | None = None,
                 environ: Mapping[str, str] | None = None) -> Self:
        """``values`` (e.g. a run config) with ``BTPIPELINE_*`` overrides applied on top."""
        known = {k: v for k, v in (values or {}).items() if k in cls.model_fields}
        known.update(env_overrides(cls, _environ(environ)))
        return cls(**known)


def env_overrides(model: type[SettingsModel], environ: Mapping[str, str]) -> dict[str, Any]:
    """Field values from the ``BTPIPELINE_<FIELD>`` variables set in ``environ``."""
    found: dict[str, Any] = {}
    for name in model.model_fields:
        raw = environ.get(env_var(name))
        if raw is not None:
            found[name] = parse_env_value(model, name, raw)
    return found


def parse_env_value(model: type[SettingsModel], name: str, raw: str) -> Any:
    """``raw`` parsed and checked as field ``name`` of ``model`` (annotation and bounds)."""
    info = model.model_fields[name]
    try:
        return _adapter(model, name).validate_python(_shape(info.annotation, raw.strip()))
    except ValidationError as exc:
        var = env_var(name)
        raise model.error(var, expected_text(info, exc), raw,
                          f"set {var} to {expected_text(info)} or unset it.") from None


def expected_text(info: FieldInfo, exc: ValidationError | None = None) -> str:
    """What a field accepts, for error messages: type, bounds, and pydantic's complaint."""
    optional, inner = _optional(info.annotation)
    text = _type_text(inner)
    bounds = [b for b in (_bound_text(m) for m in info.metadata) if b]
    text += (" " + " and ".join(bounds)) if bounds else ""
    text += " (or none)" if optional else ""
    if exc is not None:
        text += f" ({exc.errors()[0]['msg']})"
    return text


@functools.cache
def _adapter(model: type[SettingsModel], name: str) -> TypeAdapter[Any]:
    info = model.model_fields[name]
    annotation = Annotated[(info.annotation, *info.metadata)] if info.metadata else info.annotation
    return TypeAdapter(annotation)


def _environ(environ: Mapping[str, str] | None) -> Mapping[str, str]:
    return os.environ if environ is None else environ


def _optional(annotation: Any) -> tuple[bool, Any]:
    """(whether None is allowed, the annotation without None)."""
    if typing.get_origin(annotation) in (typing.Union, types.UnionType):
        args = typing.get_args(annotation)
        rest = [a for a in args if a is not type(None)]
        if len(rest) < len(args):
            return True, functools.reduce(operator.or_, rest)
    return False, annotation


def _shape(annotation: Any, raw: str) -> Any:
    optional, inner = _optional(annotation)
    if optional and raw.lower() in ("", "none", "null"):
        return None
    if typing.get_origin(inner) in (tuple, list):
        return [part.strip() for part in raw.split(",") if part.strip()]
    return raw


def _type_text(inner: Any) -> str:
    if typing.get_origin(inner) is typing.Literal:
        text = "one of " + ", ".join(str(v) for v in typing.get_args(inner))
    elif typing.get_origin(inner) in (tuple, list):
        item = typing.get_args(inner)[0]
        text = f"comma-separated {getattr(item, '__name__', str(item))} values"
    elif isinstance(inner, type) and issubclass(inner, enum.Enum):
        text = "one of " + ", ".join(str(m.value) for m in inner)
    else:
        text = f"{'an' if getattr(inner, '__name__', 'x')[0] in 'aeiou' else 'a'} "
        text += getattr(inner, "__name__", str(inner))
    return text


def _bound_text(meta: Any) -> str:
    for attr, sign in (("ge", ">="), ("gt", ">"), ("le", "<="), ("lt", "<")):
        if getattr(meta, attr, None) is not None:
            return f"{sign} {getattr(meta, attr)}"
    pattern = getattr(meta, "pattern", None)
    return f"matching {pattern}" if pattern else ""


def _settings_error(model: type[SettingsModel], exc: ValidationError) -> SettingsError:
    first = exc.errors()[0]
    name = str(first["loc"][0]) if first["loc"] else model.__name__
    info = model.model_fields.get(name)
    if info is None:
        return model.error(name, f"one of the fields of {model.__name__}", first.get("input"),
                           f"remove {name!r} or correct its spelling.")
    return model.error(name, expected_text(info, exc), first.get("input"),
                       f"set {name} to {expected_text(info)} (or correct or unset "
                       f"{env_var(name)}).")


class PathSettings(SettingsModel):
    """Where btpipeline keeps its local state (see :mod:`btpipeline.settings` for the defaults
    used when a field is unset)."""

    home: Path | None = Field(
        default=None, description="Folder for market data, the default SQLite results "
        "database and the scanner heartbeat. Default: .btpipeline at the project root.")
    data_dir: Path | None = Field(
        default=None, description="Market data (Arrow files). Default: <home>/data.")
    results_url: str | None = Field(
        default=None, description="SQLAlchemy URL of the results database. Default: "
        "sqlite:///<home>/results.db.")
    live_results_url: str | None = Field(
        default=None, description="Where the live scanner writes live_signals. Default: the "
        "results database when it is a server, else sqlite:///<home>/live.db.")
    scanner_status: Path | None = Field(
        default=None, description="The live scanner's heartbeat JSON. Default: "
        "<home>/scanner/status.json.")
    results_retry_seconds: float = Field(
        default=90.0, ge=0, description="How long results-database calls are retried through "
        "transient faults (connection lost, server restarting, lock timeouts) before they fail; "
        "long enough for a PostgreSQL restart of a minute, with margin. 0: no retry.")
