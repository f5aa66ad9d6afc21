"""The README's UI path in a real browser (issue 5, item 2): in `dagster dev`, backfill
`backtest/macd_crossover/EURUSD` over 2024-01..2024-03 from its asset page, materialize
`report/macd_crossover`, and see its metrics table and equity-and-drawdown chart inline.

Headless Debian Chromium driven by Playwright; a screenshot of every step is written to the
test's tmp folder and copied to `test-artifacts/ui/` (kept by CI as files).
"""

from __future__ import annotations

import re
import subprocess
import sys

import pytest

from tests.support import (
    REPO,
    btpipeline,
    free_port,
    graphql,
    project_env,
    stop,
    wait_for_webserver,
)
from tests.support import ui_pages as ui

BACKTEST = "backtest/macd_crossover/EURUSD"
REPORT = "report/macd_crossover"
MONTHS = ["2024-01-01", "2024-02-01", "2024-03-01"]


def _log_tail(path, lines: int = 40) -> str:
    text = path.read_text(errors="replace") if path.exists() else ""
    return "\n--- dagster dev log (tail) ---\n" + "\n".join(text.splitlines()[-lines:])


@pytest.mark.slow
@pytest.mark.timeout(480)
def test_backfill_and_report_through_the_ui(tmp_path) -> None:
    chromium = ui.require_browser()
    from playwright.sync_api import expect, sync_playwright

    env = project_env(tmp_path)
    btpipeline("generate", "--epics", "EURUSD", "--start", "2023-12-01", "--end", "2024-03-31",
               env=env)
    port = free_port()
    base = f"http://127.0.0.1:{port}"
    log = tmp_path / "dagster-dev.log"
    with log.open("w") as out:
        proc = subprocess.Popen(
            [sys.executable, "-m", "dagster", "dev", "-w", "workspace.yaml",
             "-h", "127.0.0.1", "-p", str(port)],
            cwd=REPO, env=env, stdout=out, stderr=subprocess.STDOUT, start_new_session=True)
    try:
        wait_for_webserver(port, proc)
        ui.wait_until("the webserver lists the assets",
                      lambda: (graphql(port, "{ assetNodes { id } }").get("data") or {})
                      .get("assetNodes"), timeout_s=90, interval_s=1,
                      describe=lambda: _log_tail(log))
        with sync_playwright() as pw:
            browser = pw.chromium.launch(executable_path=chromium, args=ui.CHROMIUM_ARGS,
                                         headless=True)
            try:
                context = browser.new_context(viewport={"width": 1600, "height": 1000})
                context.add_init_script(ui.DISMISS_COMMUNITY_NUX)
                context.set_default_timeout(30_000)
                page = context.new_page()
                shots = ui.Screenshots(page, tmp_path / "screenshots", "backfill_report")
                try:
                    _drive(page, shots, base, port, log, expect)
                except BaseException:
                    shots.take("failure", full_page=True)
                    raise
            finally:
                browser.close()
    finally:
        stop(proc)


def _drive(page, shots: ui.Screenshots, base: str, port: int, log, expect) -> None:
    # 1. The asset catalog lists the backtest assets.
    page.goto(f"{base}/assets")
    backtest_links = page.locator('a[href^="/assets/backtest/"]')
    expect(backtest_links.first).to_be_visible()
    target = page.locator(f'a[href="/assets/{BACKTEST}"]')
    for _ in range(10):  # the catalog is a virtualised list: scroll until the row exists
        if target.count():
            break
        page.mouse.move(700, 600)
        page.mouse.wheel(0, 600)
        page.wait_for_timeout(300)
    target.evaluate("link => link.scrollIntoView({block: 'center'})")
    expect(target).to_be_visible()
    # The status column fills in after the first load ("- partitions" until then).
    expect(page.get_by_text(re.compile(r"^\d+ partitions$")).first).to_be_visible()
    expect(page.get_by_text("- partitions", exact=True)).to_have_count(0)
    shots.take("catalog")

    # 2. Its asset page: Materialize -> partition dialog -> range -> Launch backfill.
    target.click()
    page.wait_for_url(f"**/assets/{BACKTEST}")
    expect(page.get_by_role("button", name=ui.MATERIALIZE)).to_be_enabled()
    shots.take("backtest-asset")
    ui.click_materialize(page)
    dialog = ui.choose_partition_range(page, f"[{MONTHS[0]}...{MONTHS[-1]}]")
    expect(dialog.get_by_text("3 partitions", exact=True)).to_be_visible()
    launch = dialog.get_by_role("button", name="Launch backfill")
    expect(launch).to_be_enabled()
    shots.take("partition-dialog")
    launch.click()
    created = ui.toast_text(page, r"^Created backfill ")
    backfill_id = created.split()[-1]
    shots.take("backfill-created")

    backfill = graphql(port, ui.BACKFILL, {"id": backfill_id})["data"]["partitionBackfillOrError"]
    assert backfill["__typename"] == "PartitionBackfill", backfill
    assert backfill["isAssetBackfill"] and backfill["numPartitions"] == 3, backfill
    assert backfill["assetSelection"] == [ui.asset_key(BACKTEST)], backfill

    # 3. The daemon (~30 s loop) launches one run for the range; wait for the 3 months.
    def months_materialized() -> bool:
        status = graphql(port, ui.BACKFILL, {"id": backfill_id})["data"][
            "partitionBackfillOrError"]["status"]
        assert status not in ("FAILED", "CANCELED", "COMPLETED_FAILED"), f"backfill {status}"
        ui.fail_on_failed_runs(port)
        node = ui.asset_node(port, ui.PARTITION_STATUS, BACKTEST)
        return node["assetPartitionStatuses"]["ranges"] == [
            {"status": "MATERIALIZED", "startKey": MONTHS[0], "endKey": MONTHS[-1]}]

    ui.wait_until(f"backfill {backfill_id} materializes {MONTHS}", months_materialized,
                  timeout_s=240, interval_s=3,
                  describe=lambda: f"{ui.asset_node(port, ui.PARTITION_STATUS, BACKTEST)}"
                                   f"{_log_tail(log)}")
    assert ui.asset_node(port, ui.PARTITION_STATUS, BACKTEST)["partitionStats"][
        "numMaterialized"] == 3
    page.reload()
    page.get_by_role("tab", name="Partitions").click()
    expect(page.get_by_text("Materialized (3)", exact=True)).to_be_visible()
    shots.take("backtest-partitions")

    # 4. Materialize the report from its page, wait for its run, then read its metadata.
    page.goto(f"{base}/assets/{REPORT}")
    expect(page.get_by_role("button", name=ui.MATERIALIZE)).to_be_enabled()
    ui.click_materialize(page)
    launched = ui.toast_text(page, r"^Launched run ")
    shots.take("report-launched")

    def report_materialized() -> bool:
        ui.fail_on_failed_runs(port)
        return bool(ui.asset_node(port, ui.LATEST_MATERIALIZATION, REPORT)
                    ["assetMaterializations"])

    ui.wait_until(f"{REPORT} is materialized ({launched})", report_materialized,
                  timeout_s=120, interval_s=2, describe=lambda: _log_tail(log))

    page.goto(f"{base}/assets/{REPORT}")
    metadata = page.get_by_role("table").filter(
        has=page.get_by_role("cell", name="equity_drawdown", exact=True)).first
    expect(metadata).to_be_visible()
    expect(metadata.get_by_text("EURUSD").first).to_be_visible()
    expect(metadata.get_by_text("Sharpe").first).to_be_visible()
    metadata.scroll_into_view_if_needed()
    shots.take("report-metadata", full_page=True)
    # Nothing of the asset page overflows horizontally at the browser's width.
    overflow = page.evaluate("document.documentElement.scrollWidth - window.innerWidth")
    assert overflow <= 0, f"the report's asset page is {overflow}px wider than the window"

    # The equity-and-drawdown chart is inline (no "[Show Markdown]" click): an image whose
    # data URI decodes to a non-zero size.
    image = metadata.get_by_role("img", name="macd_crossover portfolio equity (black) and "
                                 "drawdown (red)")
    expect(image).to_be_visible()
    assert image.get_attribute("src").startswith("data:image/")
    page.wait_for_function("img => img.complete && img.naturalWidth > 0",
                           arg=image.element_handle())
    width, height = image.evaluate("img => [img.naturalWidth, img.naturalHeight]")
    assert width > 0 and height > 0, (width, height)
    shots.take("equity-curve")

    # 5. The backfill itself ends as a success (the daemon marks it on its next loop).
    def backfill_status() -> str:
        return graphql(port, ui.BACKFILL, {"id": backfill_id})["data"][
            "partitionBackfillOrError"]["status"]

    ui.wait_until(f"backfill {backfill_id} completes",
                  lambda: backfill_status() == "COMPLETED_SUCCESS", timeout_s=120, interval_s=3,
                  describe=lambda: f"status {backfill_status()}{_log_tail(log)}")
    page.goto(f"{base}/runs/b/{backfill_id}")
    expect(page.get_by_text(backfill_id).first).to_be_visible()
    expect(page.get_by_role("link", name="backtest / macd_crossover / EURUSD")).to_be_visible()
    expect(page.get_by_text("100% completed", exact=True)).to_be_visible()
    shots.take("backfill-page")
