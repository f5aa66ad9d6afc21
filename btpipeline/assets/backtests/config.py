"""``BacktestConfig``: the backtest assets' run config (overrides of the variant's settings)."""

from typing import get_args

from dagster import Config
from pydantic import Field, field_validator

from btpipeline.data.timeframes import Timeframe
from btpipeline.strategies.gaps import DEFAULT_MAX_GAP_HOURS


class BacktestConfig(Config):
    """Run-time overrides. Every field left unset (None, or empty params) takes the asset's
    variant settings from the universe file, so a run without config backtests the variant
    as declared."""

    timeframe: str | None = Field(
        default=None, description="Bar timeframe the strategy runs on (M1 M5 M15 M30 H1 H4 "
        "D1): bars resampled from the stored 1-minute data, labelled by open time (UTC). "
        "Warm-up lengths and strategy periods count bars of this timeframe. Unset: the "
        "variant's timeframe.")
    params: dict[str, float] = Field(
        default_factory=dict,
        description="Strategy parameter overrides on top of the variant's params, e.g. "
        "{fast: 8, slow: 21}; unset ones keep the variant's values.",
    )
    spread_pips: float | None = Field(
        default=None, description="Spread in pips; unset uses the variant's costs.spread_pips, "
        "else the instrument's spread_pips.")
    commission_per_lot: float | None = Field(
        default=None, description="Commission per 100,000 units per side, in quote currency. "
        "Unset: the variant's costs.commission_per_lot.")
    slippage_pips: float | None = Field(
        default=None, description="Adverse slippage per fill, in pips. Unset: the variant's "
        "costs.slippage_pips.")
    sizing: str | None = Field(
        default=None, description="'units': every position is size_units; "
        "'equity_fraction': each new position's notional is equity_fraction x the account's "
        "equity at its entry (in the account currency). Unset: the variant's sizing.")
    size_units: float | None = Field(default=None, description="Fixed position size, base "
                                     "units (sizing: units). Unset: the variant's units.")
    equity_fraction: float | None = Field(
        default=None, description="Notional of each new position as a multiple of equity "
        "(sizing: equity_fraction); 1.0 = unlevered, 5.0 = 5x. Unset: the variant's "
        "fraction_of_equity (1.0 when it has none).")
    initial_capital: float | None = Field(
        default=None, description="The account's equity at the start of the run's "
        "range, in account_currency; returns, Sharpe, Sortino and drawdown are on this equity. "
        "Unset: the variant's initial_capital.")
    account_currency: str | None = Field(
        default=None, description="Currency of the account and of every reported "
        "P&L; must be one of the pair's two currencies (quote-currency P&L is converted at the "
        "pair's own rate). Unset: the variant's account_currency.")
    stop_out_level: float = Field(
        default=0.0, description="Fraction of initial_capital in [0, 1): when equity at a bar's "
        "close is at or below it, the strategy stops trading (0: when the account is empty).")
    max_gap_hours: float = Field(
        default=DEFAULT_MAX_GAP_HOURS, description="A hole in the stored data longer than this "
        "(hours) restarts the strategy: no indicator or open position carries across it "
        "(default 72: longer than a weekend with a holiday).")

    @field_validator("timeframe")
    @classmethod
    def _known_timeframe(cls, value: str | None) -> str | None:
        return _one_of("timeframe", value, get_args(Timeframe))

    @field_validator("sizing")
    @classmethod
    def _known_sizing(cls, value: str | None) -> str | None:
        return _one_of("sizing", value, ("units", "equity_fraction"))


def _one_of(field: str, value: str | None, allowed: tuple[str, ...]) -> str | None:
    """(Dagster's config types have no optional Literal, so the choice is checked here.)"""
    if value is not None and value not in allowed:
        raise ValueError(f"{field} is {value!r}: expected one of {', '.join(allowed)} or unset "
                         f"(the variant's). Fix: use one of those.")
    return value
