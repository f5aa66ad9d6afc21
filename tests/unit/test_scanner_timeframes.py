"""The live scanner evaluates a strategy when a bar of its timeframe closes, never on an
unfinished bar: an H1 strategy on the bar-by-bar replay feed signals only at hour boundaries,
and its signal equals the strategy's target on the closed hours built straight from the store."""

from __future__ import annotations

import datetime as dt

import pytest

from btpipeline.data.store import CandleStore, generate_into_store
from btpipeline.data.timeframes import resample
from btpipeline.scanner import ReplayFeed, ScanPlan
from btpipeline.scanner.scan import LastSignals, scan
from btpipeline.strategies import get_strategy

HOUR_NS = 3600 * 10**9
STRATEGY = "ema_crossover"


def _ns(text: str) -> int:
    return int(dt.datetime.fromisoformat(text).replace(tzinfo=dt.timezone.utc).timestamp()) * 10**9


@pytest.fixture(scope="module")
def store(tmp_path_factory: pytest.TempPathFactory) -> CandleStore:
    """Half a year of EURUSD: the H1 warm-up of the default EMA crossover is ~3,600 hours."""
    candle_store = CandleStore(tmp_path_factory.mktemp("candles"))
    generate_into_store(candle_store, ["EURUSD"], dt.date(2023, 6, 1), dt.date(2024, 1, 10),
                        seed=5)
    return candle_store


def test_the_plan_takes_each_strategys_timeframe() -> None:
    plan = ScanPlan.build(["EURUSD"], [STRATEGY, "macd_crossover"], {STRATEGY: "H1"})
    h1, m1 = plan.strategies
    assert (h1.timeframe, m1.timeframe) == ("H1", "M1")
    assert h1.minute_bars == (h1.bars + 2) * 60 and plan.max_bars == h1.minute_bars
    default = ScanPlan.build(["EURUSD"], [STRATEGY])  # the shipped universe: M1
    assert default.strategies[0].timeframe == "M1"


def test_an_h1_strategy_signals_only_when_an_hour_closes(store: CandleStore) -> None:
    plan = ScanPlan.build(["EURUSD"], [STRATEGY], {STRATEGY: "H1"})
    feed = ReplayFeed(store, ["EURUSD"], start_ns=_ns("2024-01-09T09:30:00"))
    last: LastSignals = {}
    evaluated_at, previous = [], None
    for _ in range(150):  # 09:31 .. 12:00
        feed.advance()
        [signal] = scan(feed, plan, scheduled_ns=0, last=last)
        assert signal.bar_timestamp_ns % HOUR_NS == 0
        assert signal.bar_timestamp_ns + HOUR_NS <= feed.now_ns, "an unfinished hour was used"
        assert signal.bar_timestamp_ns + 2 * HOUR_NS > feed.now_ns, "a closed hour was missed"
        if last[("EURUSD", STRATEGY)] is not previous:
            evaluated_at.append(feed.now_ns)
            previous = last[("EURUSD", STRATEGY)]
            _assert_equals_the_kernel(store, signal.bar_timestamp_ns, signal.position)
    assert evaluated_at[0] == _ns("2024-01-09T09:31:00")  # the first tick: hour 08:00
    assert evaluated_at[1:] == [_ns(f"2024-01-09T{h}:00:00") for h in ("10", "11", "12")]


def _assert_equals_the_kernel(store: CandleStore, bar_ns: int, position: int) -> None:
    strategy = get_strategy(STRATEGY)
    params = strategy.make_params()
    minutes = store.read_range("EURUSD", _ns("2023-06-01T00:00:00"), bar_ns + HOUR_NS)
    hours = resample(minutes, "H1")
    assert int(hours.timestamp[-1]) == bar_ns
    window = hours.take(slice(len(hours) - strategy.warmup_bars(params), len(hours)))
    assert position == int(strategy.target_positions(window, params)[-1])
