"""Playwright helpers for driving the Dagster UI (dagster-webserver 1.13) in tests.

Selectors were taken from this version's real DOM (accessibility tree and screenshots), not
guessed; where the UI has version-specific quirks the helper says so. Chromium is Debian's
(`/usr/bin/chromium`): Playwright's own browser download is never used.
"""

from __future__ import annotations

import os
import re
import shutil
import time
from collections.abc import Callable
from pathlib import Path

import pytest

from tests.support import REPO, graphql

CHROMIUM = "/usr/bin/chromium"
CHROMIUM_ARGS = ["--no-sandbox", "--disable-gpu", "--disable-background-networking",
                 "--disable-component-update", "--disable-sync", "--no-first-run"]
ARTIFACTS = REPO / "test-artifacts" / "ui"

# The "Join the Dagster community" dialog (ui-core CommunityNux) covers the page on localhost
# until dismissed; it remembers the dismissal in localStorage under this key.
DISMISS_COMMUNITY_NUX = "window.localStorage.setItem('communityNux', JSON.stringify('1'));"

# The Materialize button's accessible name includes its icon's label ("materialization
# Materialize"); a partitioned asset shows "Materialize…" (it opens the launch dialog).
MATERIALIZE = re.compile(r"Materialize(…)?$")


def require_browser() -> str:
    """Chromium's path; skip when it (or playwright) is missing, unless CI is set: then fail."""
    problems = []
    try:
        import playwright.sync_api  # noqa: F401
    except ImportError:
        problems.append("the `playwright` Python package is not installed "
                        "(pip install -e '.[dev]')")
    chromium = CHROMIUM if os.access(CHROMIUM, os.X_OK) else shutil.which("chromium")
    if not chromium:
        problems.append(f"Chromium is not installed at {CHROMIUM} (apt-get install -y chromium)")
    if not problems:
        return chromium
    message = "; ".join(problems)
    if os.environ.get("CI"):
        pytest.fail(f"{message}; CI is set, so the browser test must run.", pytrace=False)
    pytest.skip(f"{message} (CI unset, so skipping the browser test).")


class Screenshots:
    """Numbered screenshots in ``folder``, each also copied to ``<repo>/test-artifacts/ui/``."""

    def __init__(self, page, folder: Path, prefix: str) -> None:
        self.page, self.folder, self.prefix = page, folder, prefix
        self.count = 0
        self.saved: list[Path] = []
        folder.mkdir(parents=True, exist_ok=True)
        ARTIFACTS.mkdir(parents=True, exist_ok=True)
        for stale in ARTIFACTS.glob(f"{prefix}-*.png"):  # keep only this run's pictures
            stale.unlink()

    def take(self, name: str, full_page: bool = False) -> Path:
        self.count += 1
        path = self.folder / f"{self.prefix}-{self.count:02d}-{name}.png"
        # animations="disabled" finishes dialog fade-ins and toast slides before the picture.
        self.page.screenshot(path=str(path), full_page=full_page, animations="disabled")
        shutil.copy2(path, ARTIFACTS / path.name)
        self.saved.append(ARTIFACTS / path.name)
        return path


def click_materialize(page) -> None:
    """Click the asset page's Materialize button and accept the "Are you sure?" warning that
    this version shows when upstream assets were never materialized (here: the candles)."""
    page.get_by_role("button", name=MATERIALIZE).click()
    sure = page.get_by_role("dialog").filter(has_text="Are you sure?")
    launch = page.get_by_role("dialog").filter(has_text="Launch runs to materialize")
    toast = page.get_by_text(re.compile(r"^(Launched run|Created backfill) "))
    sure.or_(launch).or_(toast).first.wait_for(timeout=30_000)
    if sure.count():
        sure.get_by_role("button", name="Confirm").click()


def choose_partition_range(page, selection: str):
    """In the "Launch runs to materialize" dialog, select partitions by typing ``selection``
    into its partition input; returns the dialog.

    This version parses the input with a grammar in which a range is bracketed:
    ``[2024-01-01...2024-03-01]`` (the bare ``2024-01-01...2024-03-01`` is a syntax error).
    By default the dialog only offers the last 90 days (of the machine's clock), so older
    partitions are first made selectable with "Show all partitions" (range: "All time").
    """
    from playwright.sync_api import expect

    dialog = page.get_by_role("dialog").filter(has_text="Launch runs to materialize")
    # The time-range button ("Last 90 days" / "All time") appears once the partitions loaded;
    # the "Show all partitions" banner comes with the limited range.
    time_range = dialog.get_by_role("button", name=re.compile(r"^(Last \d+ days|All time)"))
    expect(time_range).to_be_visible()
    if not time_range.inner_text().startswith("All time"):
        dialog.get_by_role("button", name="Show all partitions").click()
    expect(time_range).to_have_text(re.compile(r"^All time"))
    box = dialog.locator("input[type=text]").first
    box.fill(selection)
    box.press("Enter")
    return dialog


def toast_text(page, pattern: str, timeout_ms: float = 30_000) -> str:
    toast = page.get_by_text(re.compile(pattern)).first
    toast.wait_for(timeout=timeout_ms)
    return toast.inner_text()


def wait_until(what: str, check: Callable[[], object], timeout_s: float,
               interval_s: float = 2.0, describe: Callable[[], str] = lambda: "") -> object:
    """Poll ``check`` until it returns something truthy; fail with ``describe()`` after
    ``timeout_s``. ``check`` may raise AssertionError to fail at once (e.g. a failed run)."""
    end = time.monotonic() + timeout_s
    while True:
        result = check()
        if result:
            return result
        if time.monotonic() > end:
            raise AssertionError(f"{what}: not done within {timeout_s:.0f} s. {describe()}")
        time.sleep(interval_s)


# ---- GraphQL probes used to know when the daemon / runs have finished ----------------------

PARTITION_STATUS = """query ($k: [AssetKeyInput!]) { assetNodes(assetKeys: $k) {
  assetPartitionStatuses { ... on TimePartitionStatuses { ranges { status startKey endKey } } }
  partitionStats { numMaterialized numFailed numMaterializing } } }"""
LATEST_MATERIALIZATION = """query ($k: [AssetKeyInput!]) { assetNodes(assetKeys: $k) {
  assetMaterializations(limit: 1) { runId timestamp } } }"""
BACKFILL = """query ($id: String!) { partitionBackfillOrError(backfillId: $id) {
  __typename ... on PartitionBackfill { status numPartitions isAssetBackfill
    assetSelection { path } }
  ... on PythonError { message } } }"""
RUNS = """{ runsOrError(limit: 20) { ... on Runs { results { runId status
  tags { key value } } } } }"""


def asset_key(key: str) -> dict:
    return {"path": key.split("/")}


def asset_node(port: int, query: str, key: str) -> dict:
    data = graphql(port, query, {"k": [asset_key(key)]})
    assert "errors" not in data, data
    nodes = data["data"]["assetNodes"]
    assert nodes, f"the webserver does not know asset {key}"
    return nodes[0]


def runs(port: int) -> list[dict]:
    return graphql(port, RUNS)["data"]["runsOrError"]["results"]


def fail_on_failed_runs(port: int) -> None:
    bad = [r for r in runs(port) if r["status"] in ("FAILURE", "CANCELED")]
    assert not bad, f"runs failed: {[(r['runId'], r['status']) for r in bad]}"
