"""What a universe file declares, as pydantic models: instruments, strategy variants and the
history start. Validation is complete at ``Universe.model_validate``: identifiers, numbers,
cross-references (a variant's instruments exist), each variant's parameters (by its strategy's
own ``make_params``) and the strategy's contract (``check_strategy``: shape, dtype, no
look-ahead). The loader turns the errors into one message with file and key paths.

Errors this module raises itself are ``PydanticCustomError("universe", ...)`` whose context
carries the full message and ``at``, the key path below the error's own location.
"""

from __future__ import annotations

import datetime as dt
import re
from typing import Annotated, Any, Literal

from pydantic import BaseModel, ConfigDict, Field, PrivateAttr, field_validator, model_validator
from pydantic_core import PydanticCustomError

from btpipeline.epics import Epic
from btpipeline.errors import InvalidParameterError, StrategyError
from btpipeline.strategies.base import Strategy
from btpipeline.strategies.costs import CostModel
from btpipeline.universe.strategy_check import check_strategy
from btpipeline.universe.strategy_loader import resolve_strategy

IDENTIFIER = re.compile(r"^[A-Za-z0-9_]+$")
TIMEFRAMES = ("M1", "M5", "M15", "M30", "H1", "H4", "D1")
DEFAULT_SIZE_UNITS = 100_000.0

Name = Annotated[str, Field(pattern=IDENTIFIER.pattern)]
Currency = Annotated[str, Field(pattern=r"^[A-Z]{3}$")]
Positive = Annotated[float, Field(gt=0, allow_inf_nan=False)]
NonNegative = Annotated[float, Field(ge=0, allow_inf_nan=False)]
Timeframe = Literal["M1", "M5", "M15", "M30", "H1", "H4", "D1"]


def universe_error(message: str, at: str = "") -> PydanticCustomError:
    """An error the loader reports at (the error's location +) ``at`` with ``message``."""
    return PydanticCustomError("universe", "{message}", {"message": message, "at": at})


class _Model(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class Instrument(_Model):
    """One tradable symbol: a forex pair, a metal, an index CFD."""

    name: Name
    pip_size: Positive
    spread_pips: NonNegative
    contract_size: Positive = DEFAULT_SIZE_UNITS
    quote_currency: Currency
    base_currency: Currency | None = None
    reference_price: Positive
    annual_volatility: Positive = 0.08

    @model_validator(mode="before")
    @classmethod
    def _currencies_of_a_pair(cls, data: Any) -> Any:
        """A six-letter name (EURJPY, XAUUSD) implies its base and quote currencies."""
        name = data.get("name") if isinstance(data, dict) else None
        if isinstance(name, str) and re.fullmatch(r"[A-Z]{6}", name):
            data = {"base_currency": name[:3], "quote_currency": name[3:], **data}
        return data

    def to_epic(self) -> Epic:
        """The ``Epic`` the data store, synthetic generator and ``run_backtest`` take."""
        return Epic(self.name, pip_size=self.pip_size, spread_pips=self.spread_pips,
                    reference_price=self.reference_price,
                    annual_volatility=self.annual_volatility, quote=self.quote_currency,
                    base=self.base_currency)


class CostSettings(_Model):
    """A variant's trading costs; ``spread_pips`` None means each instrument's own spread."""

    spread_pips: NonNegative | None = None
    commission_per_lot: NonNegative = 0.0
    slippage_pips: NonNegative = 0.0

    def cost_model(self, instrument: Instrument) -> CostModel:
        spread = instrument.spread_pips if self.spread_pips is None else self.spread_pips
        return CostModel(spread_pips=spread, pip_size=instrument.pip_size,
                         commission_per_lot=self.commission_per_lot,
                         slippage_pips=self.slippage_pips)


class Sizing(_Model):
    """Position size: fixed ``units`` (default 100,000) or a ``fraction_of_equity``."""

    units: Positive | None = None
    fraction_of_equity: Annotated[float, Field(gt=0, le=100, allow_inf_nan=False)] | None = None

    @model_validator(mode="after")
    def _one_of(self) -> Sizing:
        if self.units is not None and self.fraction_of_equity is not None:
            raise universe_error(
                f"sizing sets both units ({self.units}) and fraction_of_equity "
                f"({self.fraction_of_equity}): expected one of them. Fix: delete one.")
        return self

    @property
    def size_units(self) -> float | None:
        """Fixed units, or None when sized by equity."""
        if self.fraction_of_equity is not None:
            return None
        return DEFAULT_SIZE_UNITS if self.units is None else self.units


class Variant(_Model):
    """One strategy with its parameters, timeframe, instruments, costs, sizing and capital.
    ``name`` is the asset-key part: ``backtest/<name>/<INSTRUMENT>``."""

    name: Name
    strategy: str
    params: dict[str, Any] = Field(default_factory=dict)
    timeframe: Timeframe = "M1"
    instruments: Annotated[list[Name], Field(min_length=1)] | None = None
    """The instrument names to run on; None (``all`` in the file) means every instrument."""
    costs: CostSettings = CostSettings()
    sizing: Sizing = Sizing()
    initial_capital: Positive = 100_000.0
    account_currency: Currency = "USD"
    _strategy: Strategy = PrivateAttr()
    _params: Any = PrivateAttr()

    @field_validator("instruments", mode="before")
    @classmethod
    def _all_or_a_list(cls, value: Any) -> Any:
        if value is None or value == "all":
            return None
        if isinstance(value, str):
            raise universe_error(
                f"instruments is {value!r}: expected a list of instrument names or `all`, found "
                f"a single word. Fix: write `instruments: [{value}]` or `instruments: all`.")
        return value

    @model_validator(mode="after")
    def _strategy_and_params(self) -> Variant:
        try:
            strategy = resolve_strategy(self.strategy)
        except StrategyError as error:
            raise universe_error(str(error), "strategy") from None
        self._params = _make_params(self.name, strategy, self.params)
        try:
            check_strategy(strategy, self._params, variant=self.name)
        except StrategyError as error:
            raise universe_error(str(error), "strategy") from None
        self._strategy = strategy
        return self

    @property
    def strategy_object(self) -> Strategy:
        """The resolved strategy (a built-in or the user's class, instantiated)."""
        return self._strategy

    @property
    def params_object(self) -> Any:
        """The strategy's params dataclass with this variant's overrides applied."""
        return self._params


def _make_params(variant: str, strategy: Strategy, params: dict[str, Any]) -> Any:
    try:
        return strategy.make_params(params)
    except InvalidParameterError as error:
        named = re.search(r"parameter '(\w+)'", str(error))
        raise universe_error(str(error), f"params.{named[1]}" if named else "params") from None
    except Exception as error:  # a user's validate() may raise anything
        raise universe_error(
            f"variant {variant!r}: {type(strategy).__name__}.make_params({params!r}) raised "
            f"{type(error).__name__}: {error}; expected the strategy's params object. Fix: "
            "make params_type a dataclass with defaults and validate() return its fields, "
            "raising InvalidParameterError for a bad value.", "params") from None


class Universe(_Model):
    """The whole backtest grid: every variant on each of its instruments, monthly partitions
    from ``history_start`` (the first of a month)."""

    history_start: dt.date
    instruments: Annotated[dict[str, Instrument], Field(min_length=1)]
    variants: Annotated[dict[str, Variant], Field(min_length=1)]

    @model_validator(mode="before")
    @classmethod
    def _names_from_keys(cls, data: Any) -> Any:
        if not isinstance(data, dict):
            return data
        data = dict(data)
        for section in ("instruments", "variants"):
            if isinstance(data.get(section), dict):
                data[section] = _named_entries(section, data[section])
        if isinstance(data.get("history_start"), int) and not isinstance(
                data["history_start"], bool):  # a bare year: its first of January
            data["history_start"] = f"{data['history_start']:04d}-01-01"
        return data

    @field_validator("history_start")
    @classmethod
    def _first_of_a_month(cls, value: dt.date) -> dt.date:
        if value.day != 1:
            raise universe_error(
                f"history_start is {value}: expected the first day of a month (partitions are "
                f"calendar months). Fix: use {value.replace(day=1)}.")
        return value

    @model_validator(mode="after")
    def _known_instruments(self) -> Universe:
        for variant in self.variants.values():
            names = list(variant.instruments or ())
            for i, name in enumerate(names):
                if name in names[:i]:
                    raise universe_error(
                        f"variant {variant.name!r} names instrument {name!r} twice: expected "
                        "each once (one asset each), found a repeat. Fix: delete the repeat.",
                        f"variants.{variant.name}.instruments[{i}]")
                if name not in self.instruments:
                    raise universe_error(
                        f"variant {variant.name!r} names instrument {name!r}, which is not "
                        f"declared: expected one of {', '.join(self.instruments)} (or 'all'), "
                        f"found {name!r}. Fix: add {name} under instruments: (pip_size, "
                        "spread_pips, reference_price, ...) or correct the name.",
                        f"variants.{variant.name}.instruments[{i}]")
            self._check_accounts(variant)
        return self

    def _check_accounts(self, variant: Variant) -> None:
        """P&L converts into the account currency at the instrument's own rate only."""
        for name in self.instruments_of(variant.name):
            instrument = self.instruments[name]
            pair = (instrument.base_currency, instrument.quote_currency)
            if variant.account_currency not in pair:
                raise universe_error(
                    f"variant {variant.name!r} has a {variant.account_currency} account but "
                    f"runs on {name}, whose P&L converts only into "
                    f"{' or '.join(c for c in pair if c)}: expected the account currency to be "
                    f"one of the instrument's currencies, found {variant.account_currency}. "
                    f"Fix: leave {name} out of this variant's instruments, or give the variant "
                    f"account_currency: {instrument.quote_currency}.",
                    f"variants.{variant.name}.account_currency")

    def instruments_of(self, variant: str) -> list[str]:
        """The instrument names ``variant`` runs on, in file order."""
        chosen = self.variants[variant].instruments
        return list(self.instruments) if chosen is None else list(chosen)

    def grid(self) -> list[tuple[str, str]]:
        """Every (variant, instrument) pair: one backtest asset each."""
        return [(v, i) for v in self.variants for i in self.instruments_of(v)]


def _named_entries(section: str, entries: dict[Any, Any]) -> dict[str, Any]:
    """``{key: {...}}`` with ``name: key`` filled in; keys must be asset-key-safe."""
    out: dict[str, Any] = {}
    for key, value in entries.items():
        key = str(key)
        if not IDENTIFIER.match(key):
            raise universe_error(
                f"{section[:-1]} name {key!r} is not a plain identifier: expected letters, "
                f"digits and '_' only (it becomes an asset key part), found {key!r}. Fix: "
                f"rename it to {re.sub(r'[^A-Za-z0-9_]', '_', key)!r}.", f"{section}.{key}")
        if isinstance(value, dict):
            if value.get("name", key) != key:
                raise universe_error(
                    f"{section[:-1]} {key!r} has name {value['name']!r}: expected the key and "
                    f"the name to agree, found two names. Fix: delete the name: line (the key "
                    "is the name).", f"{section}.{key}.name")
            value = {**value, "name": key}
        out[key] = value
    return out
