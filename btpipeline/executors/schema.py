"""The backtest_executor's Dagster config schema, generated from :class:`ExecutorSettings`.

Each model field becomes an optional Dagster config field with the model's description and
default, so a setting is declared once (in ``btpipeline/machine/executor_settings.py``). Every
field can also be overridden by ``BTPIPELINE_<FIELD_NAME_IN_CAPS>`` in the run's environment.
"""

from __future__ import annotations

import enum
import types
import typing
from typing import Any

from dagster import (
    Array,
    Bool,
    Enum,
    EnumValue,
    Field,
    Float,
    Int,
    Noneable,
    Selector,
    String,
)
from pydantic.fields import FieldInfo

from btpipeline.machine.executor_settings import ExecutorSettings
from btpipeline.machine.settings import SettingsModel

_SCALARS: dict[Any, Any] = {bool: Bool, int: Int, float: Float, str: String}
#: Fields Dagster's own executors spell as a selector (``retries: {enabled: {}}``).
_SELECTOR_FIELDS = frozenset({"retries"})


def dagster_config_type(annotation: Any) -> Any:
    """The Dagster config type of a model field's annotation."""
    origin, args = typing.get_origin(annotation), typing.get_args(annotation)
    if origin in (typing.Union, types.UnionType) and type(None) in args:
        (inner,) = [a for a in args if a is not type(None)]
        return Noneable(dagster_config_type(inner))
    if origin in (tuple, list):
        return Array(dagster_config_type(args[0]))
    if origin is typing.Literal:
        return Enum(f"Literal{'_'.join(map(str, args))}", [EnumValue(str(a)) for a in args])
    if isinstance(annotation, type) and issubclass(annotation, enum.Enum):
        return Enum(annotation.__name__, [
            EnumValue(m.value, description=getattr(m, "description", None)) for m in annotation])
    if annotation in _SCALARS:
        return _SCALARS[annotation]
    raise TypeError(f"no Dagster config type for {annotation!r}. Fix: map it in "
                    "btpipeline/executors/schema.py.")


def dagster_default(value: Any) -> Any:
    """A model default as Dagster config (enum -> value, tuple -> list)."""
    if isinstance(value, enum.Enum):
        return value.value
    if isinstance(value, tuple):
        return list(value)
    return value


def dagster_field(name: str, info: FieldInfo) -> Field:
    if name in _SELECTOR_FIELDS:
        choices = typing.get_args(info.annotation)
        return Field(Selector({str(c): {} for c in choices}), default_value={info.default: {}},
                     is_required=False, description=info.description)
    return Field(dagster_config_type(info.annotation), default_value=dagster_default(info.default),
                 is_required=False, description=info.description)


def dagster_config_schema(model: type[SettingsModel]) -> dict[str, Field]:
    """One optional Dagster field per model field, in declaration order."""
    return {name: dagster_field(name, info) for name, info in model.model_fields.items()}


BACKTEST_EXECUTOR_CONFIG: dict[str, Field] = dagster_config_schema(ExecutorSettings)
