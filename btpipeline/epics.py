"""Epics (tradable instruments) with their trading costs: the shipped defaults (``EPICS``)
and ``get_epic``, which answers from the universe file first.

The universe file (``btpipeline/universe``) declares the instruments a deployment backtests,
including ones that are not shipped (EURJPY, XAUUSD, US500); ``get_epic`` finds those through
``Instrument.to_epic()``, so the store, the synthetic generator and ``run_backtest`` accept
them. ``EPICS`` are the shipped defaults, found when the universe does not declare a name.

``annual_volatility`` and ``reference_price`` drive the synthetic data generator. A backtest's
returns are relative to its account (see ``btpipeline/strategies/account.py``), not to a
reference price.
"""

from __future__ import annotations

from dataclasses import dataclass

from btpipeline.errors import UnknownEpicError


@dataclass(frozen=True)
class Epic:
    """One tradable instrument. ``quote`` and ``base`` default to the halves of a six-letter
    name (EURJPY: EUR, JPY); an index CFD (US500) states its quote and has no base."""

    name: str
    pip_size: float
    spread_pips: float
    reference_price: float
    annual_volatility: float
    quote: str | None = None
    base: str | None = None

    def __post_init__(self) -> None:
        pair = len(self.name) == 6 and self.name.isalpha()
        if self.quote is None:
            object.__setattr__(self, "quote", self.name[3:])
        if self.base is None and pair:
            object.__setattr__(self, "base", self.name[:3])

    @property
    def base_currency(self) -> str | None:
        return self.base

    @property
    def quote_currency(self) -> str:
        """The currency a position's P&L is made in (JPY for USDJPY)."""
        return str(self.quote)


EPICS: dict[str, Epic] = {
    e.name: e
    for e in (
        Epic("EURUSD", pip_size=0.0001, spread_pips=0.8,
             reference_price=1.10, annual_volatility=0.07),
        Epic("GBPUSD", pip_size=0.0001, spread_pips=1.2,
             reference_price=1.27, annual_volatility=0.08),
        Epic("USDJPY", pip_size=0.01, spread_pips=1.0,
             reference_price=150.0, annual_volatility=0.09),
        Epic("AUDUSD", pip_size=0.0001, spread_pips=1.0,
             reference_price=0.66, annual_volatility=0.10),
        Epic("USDCHF", pip_size=0.0001, spread_pips=1.4,
             reference_price=0.88, annual_volatility=0.07),
        Epic("USDCAD", pip_size=0.0001, spread_pips=1.5,
             reference_price=1.36, annual_volatility=0.06),
    )
}


_known: tuple[object, dict[str, Epic]] = (None, {})


def known_epics() -> dict[str, Epic]:
    """Every epic by name: the universe file's instruments, then the shipped defaults (built
    once per loaded universe: the store asks on every call)."""
    global _known
    from btpipeline.universe.loader import default_universe  # the universe builds on this module

    universe = default_universe()
    if _known[0] is not universe:
        declared = {name: i.to_epic() for name, i in universe.instruments.items()}
        _known = (universe, {**declared, **{n: e for n, e in EPICS.items() if n not in declared}})
    return _known[1]


def get_epic(name: str) -> Epic:
    """The epic called ``name``: the universe file's instrument of that name, else the shipped
    default; ``UnknownEpicError`` lists the known ones."""
    epics = known_epics()
    try:
        return epics[name]
    except KeyError:
        raise UnknownEpicError(name, list(epics)) from None
