"""The HTML report in a real browser (headless Chromium, Playwright), built from real
backtests written through ``ResultsDatabase``: the charts decode, the trade table has one row
per CLOSE fill in the database, headers sort it, nothing overflows at 1,600 px and the file
makes no request of its own. The asset-page markdown view is rendered at 1,600 px too.
Screenshots go to ``test-artifacts/report/``.
"""

from __future__ import annotations

import datetime as dt
import html
import re
from pathlib import Path

import pandas as pd
import pytest

from btpipeline.data.synthetic import generate_candles
from btpipeline.data.timestamps import date_ns
from btpipeline.epics import get_epic
from btpipeline.reports.build import write_variant_report
from btpipeline.reports.markdown import SHOWN_METRICS, asset_markdown
from btpipeline.resources.results_database import ResultsDatabase
from btpipeline.strategies import run_backtest
from tests.support import REPO
from tests.support import ui_pages as ui

STRATEGY = "ema_crossover"
PARAMS = {"fast": 60, "slow": 240}
ARTIFACTS = REPO / "test-artifacts" / "report"
VIEWPORT = {"width": 1600, "height": 1000}
# EURUSD over Jan-Feb, USDJPY over Feb only: the curves must share one calendar.
RUNS = {"EURUSD": (dt.date(2024, 1, 1), dt.date(2024, 3, 1)),
        "USDJPY": (dt.date(2024, 2, 1), dt.date(2024, 3, 1))}


def _store_backtest(db: ResultsDatabase, epic_name: str, start: dt.date, end: dt.date) -> None:
    epic = get_epic(epic_name)
    candles = generate_candles(epic, start - dt.timedelta(days=10), end - dt.timedelta(days=1))
    result = run_backtest(candles, strategy=STRATEGY, params=PARAMS, epic=epic,
                          start_ns=date_ns(start), end_ns=date_ns(end))
    fills = result.fills.assign(partition_key=result.fills["timestamp"].dt.strftime("%Y-%m-01"))
    daily = result.daily.assign(partition_key=result.daily["day"].astype(str).str[:7] + "-01")
    now = dt.datetime.now(dt.timezone.utc)
    db.write_backtest(strategy=STRATEGY, epic=epic_name,
                      partition_keys=sorted(set(daily["partition_key"])), run_id="browser-test",
                      params=result.params, started_at=now, finished_at=now,
                      metrics=result.metrics, fills=fills, daily=daily)


@pytest.fixture(scope="module")
def stored(tmp_path_factory: pytest.TempPathFactory) -> ResultsDatabase:
    db = ResultsDatabase(url=f"sqlite:///{tmp_path_factory.mktemp('report') / 'results.db'}")
    for epic, (start, end) in RUNS.items():
        _store_backtest(db, epic, start, end)
    yield db
    db.dispose()


def _close_fills(db: ResultsDatabase) -> int:
    signals = [db.read_signals(strategy=STRATEGY, epic=epic) for epic in RUNS]
    return sum(int((s["action"] == "CLOSE").sum()) for s in signals)


def _shoot(page, name: str, full_page: bool = False) -> Path:
    path = ARTIFACTS / f"report-{name}.png"
    page.screenshot(path=str(path), full_page=full_page, animations="disabled")
    return path


def _launch(pw):
    return pw.chromium.launch(executable_path=ui.require_browser(), args=ui.CHROMIUM_ARGS,
                              headless=True)


def _column_values(page, index: int) -> list[str]:
    return page.eval_on_selector_all(
        "#trades tbody tr", f"rows => rows.map(r => r.cells[{index}].dataset.sort)")


def test_html_report_in_chromium(stored: ResultsDatabase, tmp_path: Path) -> None:
    ui.require_browser()
    from playwright.sync_api import sync_playwright

    data, path = write_variant_report(stored, STRATEGY, [*RUNS, "GBPUSD"],
                                      path=tmp_path / f"{STRATEGY}.html", source="test")
    assert data.instruments == list(RUNS)
    assert data.equity.index[0] == pd.Timestamp("2023-12-31")  # one calendar for both pairs
    closes = _close_fills(stored)
    assert closes > 50
    _fresh_artifacts()
    with sync_playwright() as pw:
        browser = _launch(pw)
        try:
            page = browser.new_page(viewport=VIEWPORT)
            requests: list[str] = []
            page.on("request", lambda request: requests.append(request.url))
            page.goto(path.as_uri(), wait_until="load")
            _shoot(page, "01-top")
            images = page.eval_on_selector_all(
                "img", "imgs => imgs.map(i => [i.complete, i.naturalWidth, i.naturalHeight,"
                " i.getBoundingClientRect().right])")
            assert len(images) == 2, images
            assert all(done and w > 0 and h > 0 and right <= 1600
                       for done, w, h, right in images), images
            assert page.locator("#trades tbody tr").count() == closes
            assert page.locator("#drawdowns tbody tr").count() >= 1
            assert page.evaluate("document.documentElement.scrollWidth") <= 1600
            _check_sorting(page)
            _shoot(page, "03-full", full_page=True)
            assert [u for u in requests if not u.startswith(("file:", "data:"))] == []
        finally:
            browser.close()


def _check_sorting(page) -> None:
    header = page.locator("#trades th", has_text="P&L")
    header.click()
    ascending = [float(v) for v in _column_values(page, 7)]
    assert ascending == sorted(ascending) and ascending != _unsorted(ascending)
    assert header.get_attribute("aria-sort") == "ascending"
    header.click()
    descending = [float(v) for v in _column_values(page, 7)]
    assert descending == sorted(ascending, reverse=True)
    page.locator("#trades").scroll_into_view_if_needed()
    _shoot(page, "02-trades-sorted-by-pnl")
    page.locator("#trades th", has_text="exit (UTC)").click()
    exits = _column_values(page, 2)
    assert exits == sorted(exits)


def _unsorted(values: list[float]) -> list[float]:
    """Guards the sort check against a column that was sorted before the click."""
    return [] if len(set(values)) > 1 else values


def _fresh_artifacts() -> None:
    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    for stale in ARTIFACTS.glob("report-*.png"):
        stale.unlink()


def _inline(text: str) -> str:
    text = html.escape(text)
    text = re.sub(r"\*\*(.+?)\*\*", r"<strong>\1</strong>", text)
    return re.sub(r"`(.+?)`", r"<code>\1</code>", text)


def _markdown_html(parts: dict[str, str]) -> str:
    """Just enough markdown (pipe tables, bullet lists, images) to lay the view out as the
    Dagster UI does: a table is as wide as its cells, a data-URI image scales to the column."""
    out = []
    for text in parts.values():
        rows = [line for line in text.splitlines() if line.startswith("|")]
        if rows:
            cells = [[c.strip() for c in r.strip("|").split("|")] for i, r in enumerate(rows)
                     if i != 1]
            body = "".join("<tr>" + "".join(f"<td>{_inline(c)}</td>" for c in row) + "</tr>"
                           for row in cells)
            out.append(f'<table id="metrics">{body}</table>')
        for line in text.splitlines():
            if line.startswith("- "):
                out.append(f"<li>{_inline(line[2:])}</li>")
            elif match := re.match(r"!\[(.*?)\]\((data:image/[^)]+)\)", line):
                out.append(f'<img alt="{html.escape(match[1])}" src="{match[2]}">')
    style = ("body{font:14px system-ui,sans-serif;margin:24px}td{padding:6px 12px;"
             "border:1px solid #ddd;white-space:nowrap}img{max-width:100%}")
    return f"<!DOCTYPE html><style>{style}</style><body>{''.join(out)}</body>"


def test_asset_page_markdown_fits_1600_px(stored: ResultsDatabase, tmp_path: Path) -> None:
    ui.require_browser()
    from playwright.sync_api import sync_playwright

    data, path = write_variant_report(stored, STRATEGY, list(RUNS), path=tmp_path / "r.html")
    view = tmp_path / "asset-page.html"
    view.write_text(_markdown_html(asset_markdown(data)), encoding="utf-8")
    with sync_playwright() as pw:
        browser = _launch(pw)
        try:
            page = browser.new_page(viewport=VIEWPORT)
            page.goto(view.as_uri(), wait_until="load")
            # Dagster shows metadata in a column beside its navigation: leave it half the window.
            assert page.eval_on_selector("#metrics", "t => t.getBoundingClientRect().width") <= 800
            assert page.locator("#metrics tr").count() == 1 + len(SHOWN_METRICS)
            assert page.eval_on_selector("img", "i => i.naturalWidth") > 0
            assert page.evaluate("document.documentElement.scrollWidth") <= 1600
            _fresh_markdown_shot(page)
        finally:
            browser.close()


def _fresh_markdown_shot(page) -> None:
    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    page.screenshot(path=str(ARTIFACTS / "asset-page-markdown.png"), full_page=True)
