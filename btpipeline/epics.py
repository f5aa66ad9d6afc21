"""The catalogue of epics (currency pairs) btpipeline knows, with their trading costs.

``annual_volatility`` and ``reference_price`` drive the synthetic data generator. A backtest's
returns are relative to its account (see ``btpipeline/strategies/account.py``), not to a
reference price.
"""

from __future__ import annotations

from dataclasses import dataclass

from btpipeline.errors import UnknownEpicError


@dataclass(frozen=True)
class Epic:
    """One tradable currency pair."""

    name: str
    pip_size: float
    spread_pips: float
    reference_price: float
    annual_volatility: float

    @property
    def base_currency(self) -> str:
        return self.name[:3]

    @property
    def quote_currency(self) -> str:
        """The currency a position's P&L is made in (JPY for USDJPY)."""
        return self.name[3:]


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


def get_epic(name: str) -> Epic:
    """Return the epic called ``name``; raise ``UnknownEpicError`` listing the known ones."""
    try:
        return EPICS[name]
    except KeyError:
        raise UnknownEpicError(name, list(EPICS)) from None
