"""Deterministic, month-stable synthetic 1-minute forex candles.

How the path is built (all in log price):

* **Month anchors**: the log price at the start of every month since ``ORIGIN`` (2000-01) is a
  mean-reverting monthly random walk (AR(1)) around ``log(epic.reference_price)``, with monthly
  steps of ``annual_volatility / sqrt(12)`` and a stationary spread of ``ANCHOR_SPREAD``, so any
  year starts near the reference price. It depends only on (seed, epic), never on the range
  asked for.
* **Within a month**: a Brownian bridge from the month's anchor to the next month's, over the
  month's session minutes, with per-minute volatility from ``annual_volatility`` shaped by an
  intraday profile (Asian session quiet, London/New York overlap busy). Its random numbers
  come from ``SeedSequence([seed, epic, year, month])``.

So a month's bars are a pure function of (seed, epic, year, month): generating Jan..Mar gives
February bit for bit as generating February alone, and the path is continuous across months
(the last close of a month is the next month's anchor, which is that month's first open).
Session: every minute from Sunday 22:00 UTC to Friday 22:00 UTC. Prices are integers of a
tenth of a pip, divided by an exact power of ten, so ``high >= max(open, close)`` and
``low <= min(open, close)`` survive the rounding.
"""

from __future__ import annotations

import datetime as dt
import functools

import numpy as np

from btpipeline.data.candles import Candles
from btpipeline.data.timestamps import NS_PER_MINUTE, date_ns, month_bounds_ns, months_between
from btpipeline.epics import Epic
from btpipeline.errors import InvalidDateRangeError, InvalidParameterError

ORIGIN = (2000, 1)
LAST_MONTH = (2199, 12)
SESSION_MINUTES_PER_YEAR = 365.25 / 7 * 5 * 1440  # Sunday 22:00 -> Friday 22:00, UTC
ANCHOR_SPREAD = 0.05  # stationary std of the monthly log-price anchors around the reference
WICK_SCALE = 0.5  # mean wick beyond the body, in per-minute standard deviations (x0.8)
BASE_VOLUME = 60.0  # mean ticks per minute at profile 1

# UTC hour -> relative volatility: Sydney/Tokyo quiet, London, the London/New York overlap
# (12-16 UTC) busiest, New York afternoon, the 21-22 lull before the daily roll.
_HOURLY = np.array([0.55, 0.6, 0.65, 0.65, 0.6, 0.6, 0.7, 1.0, 1.15, 1.1, 1.05, 1.05,
                    1.35, 1.55, 1.6, 1.45, 1.1, 0.9, 0.8, 0.7, 0.6, 0.45, 0.5, 0.55])


def _intraday_profile() -> np.ndarray:
    """Per minute of the UTC day, smoothed over an hour, with mean square 1."""
    minutes = np.repeat(_HOURLY, 60)
    kernel = np.ones(60) / 60
    smooth = np.convolve(np.concatenate((minutes[-30:], minutes, minutes[:29])), kernel, "valid")
    return smooth / np.sqrt(np.mean(smooth**2))


PROFILE = _intraday_profile()


def _epic_key(name: str) -> int:
    return int.from_bytes(name.encode(), "big")


def _month_index(year: int, month: int) -> int:
    return (year - ORIGIN[0]) * 12 + month - ORIGIN[1]


@functools.lru_cache(maxsize=64)
def _anchors(seed: int, name: str, reference_price: float, annual_volatility: float) -> np.ndarray:
    """Log price at the start of every month from ``ORIGIN`` to the month after LAST_MONTH."""
    count = _month_index(*LAST_MONTH) + 2
    step = annual_volatility / np.sqrt(12)
    phi = np.sqrt(max(0.0, 1.0 - (step / ANCHOR_SPREAD) ** 2))
    shocks = step * np.random.default_rng(
        np.random.SeedSequence([seed, _epic_key(name), 0, 0])).standard_normal(count)
    deviation = np.empty(count)
    deviation[0] = 0.0
    for i in range(1, count):
        deviation[i] = phi * deviation[i - 1] + shocks[i]
    anchors = np.log(reference_price) + deviation
    anchors.setflags(write=False)
    return anchors


def session_minutes(start_minute: int, end_minute: int) -> np.ndarray:
    """Epoch minutes in [start, end) inside the session (Sun 22:00 -> Fri 22:00 UTC)."""
    minutes = np.arange(start_minute, end_minute, dtype=np.int64)
    weekday = (minutes // 1440 + 3) % 7  # 1970-01-01 was a Thursday; Monday = 0
    of_day = minutes % 1440
    keep = (weekday < 4) | ((weekday == 4) & (of_day < 1320)) | ((weekday == 6) & (of_day >= 1320))
    return minutes[keep]


def _tick_scale(epic: Epic) -> int:
    """Ticks (tenths of a pip) per unit of price: 100000 for EURUSD, 1000 for USDJPY."""
    return int(round(10 / epic.pip_size))


def _bridge(start: float, end: float, sigma: np.ndarray, shocks: np.ndarray) -> np.ndarray:
    """Log closes of a Brownian bridge from ``start`` to ``end`` with per-bar std ``sigma``.

    The bridge clock is the cumulative variance, so quiet hours move less than busy ones.
    """
    walk = np.cumsum(sigma * shocks)
    clock = np.cumsum(sigma * sigma)
    clock /= clock[-1]
    return start + walk - clock * (walk[-1] - (end - start))


def month_candles(epic: Epic, year: int, month: int, seed: int) -> Candles:
    """All session bars of one month: a pure function of its arguments."""
    start_ns, end_ns = month_bounds_ns(year, month)
    minutes = session_minutes(start_ns // NS_PER_MINUTE, end_ns // NS_PER_MINUTE)
    k = _month_index(year, month)
    anchors = _anchors(seed, epic.name, epic.reference_price, epic.annual_volatility)[k:k + 2]
    scale = _tick_scale(epic)
    rng = np.random.default_rng(np.random.SeedSequence([seed, _epic_key(epic.name), year, month]))
    shocks = rng.standard_normal((4, len(minutes)))
    profile = PROFILE[minutes % 1440]
    sigma = epic.annual_volatility / np.sqrt(SESSION_MINUTES_PER_YEAR) * profile
    log_close = _bridge(anchors[0], anchors[1], sigma, shocks[0])
    anchor_ticks = np.rint(np.exp(anchors) * scale).astype(np.int64)
    close = np.rint(np.exp(log_close) * scale).astype(np.int64)
    close[-1] = anchor_ticks[1]  # exactly the next month's first open
    open_ = np.concatenate((anchor_ticks[:1], close[:-1]))
    wick = WICK_SCALE * sigma * close
    high = np.maximum(open_, close) + np.rint(np.abs(shocks[1]) * wick).astype(np.int64)
    low_wick = np.rint(np.abs(shocks[2]) * wick).astype(np.int64)
    low = np.maximum(np.minimum(open_, close) - low_wick, 1)
    activity = 0.6 + 0.4 * np.abs(shocks[0])  # bigger moves trade more
    volume = np.maximum(np.rint(BASE_VOLUME * profile * activity * np.exp(0.4 * shocks[3])), 1.0)
    o, h, lo, c = (t / float(scale) for t in (open_, high, low, close))  # exact decimal rounding
    return Candles(minutes * NS_PER_MINUTE, o, h, lo, c, volume)


def check_arguments(start: dt.date, end: dt.date, seed: int) -> None:
    """Raise for an inverted range, dates outside the generator's span, or a negative seed."""
    if start > end:
        raise InvalidDateRangeError(f"Start {start} is after end {end}. Fix: pass --start on or "
                                    "before --end (the end date is inclusive).")
    first, last = dt.date(*ORIGIN, 1), dt.date(*LAST_MONTH, 31)
    if start < first or end > last:
        raise InvalidDateRangeError(f"Synthetic candles cover {first} to {last}; got {start} to "
                                    f"{end}. Fix: choose dates in that span.")
    if seed < 0:
        raise InvalidParameterError(f"Seed {seed} is negative. Fix: use a seed >= 0.")


def generate_candles(epic: Epic, start: dt.date, end: dt.date, seed: int = 7) -> Candles:
    """Synthetic 1-minute candles of ``epic`` from ``start`` to ``end`` (inclusive), UTC days.

    Deterministic and month-stable (see the module docstring): a month's bars never depend on
    the range requested.
    """
    check_arguments(start, end, seed)
    start_ns, end_ns = date_ns(start), date_ns(end + dt.timedelta(days=1))
    parts = [month_candles(epic, year, month, seed).between(start_ns, end_ns)
             for year, month in months_between((start.year, start.month), (end.year, end.month))]
    return Candles.concat([p for p in parts if len(p)])
