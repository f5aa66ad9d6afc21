"""The shipped event log (``BatchingSqliteStorage``): a single-run backfill's asset events
(planned materializations, per-month materializations) are stored in a few transactions, and
what the UI, the backfill daemon and staleness read from them is what Dagster's own SQLite
storage gives for the same run."""

from __future__ import annotations

import os
from collections import Counter
from collections.abc import Iterator
from typing import Any

import pytest
from dagster import (
    AssetKey,
    BackfillPolicy,
    DagsterInstance,
    MaterializeResult,
    MonthlyPartitionsDefinition,
    asset,
    instance_for_test,
    materialize,
)

from btpipeline.errors import StorageFolderMismatchError
from btpipeline.executors import event_storage
from btpipeline.machine.tags import RANGE_END_TAG, RANGE_START_TAG
from tests.support import REPO
from tests.support.instances import shipped_storage

pytestmark = pytest.mark.dagster

MONTHS = MonthlyPartitionsDefinition(start_date="2024-01-01", end_offset=1, timezone="UTC")
RANGE = {RANGE_START_TAG: "2024-01-01", RANGE_END_TAG: "2024-04-01"}  # 4 months


def _backtest_like(name: str, version: str) -> Any:
    @asset(name=name, partitions_def=MONTHS, backfill_policy=BackfillPolicy.single_run(),
           code_version=version)
    def _asset(context) -> MaterializeResult:
        for key in context.partition_keys:
            context.add_asset_metadata({"month": key[:7]}, partition_key=key)
        return MaterializeResult()

    return _asset


ASSETS = [_backtest_like("alpha", "v1"), _backtest_like("beta", "v1")]
KEYS = [AssetKey("alpha"), AssetKey("beta")]


@pytest.fixture
def batch_size_env(monkeypatch: pytest.MonkeyPatch) -> None:
    """DAGSTER_EVENT_BATCH_SIZE unset now and restored afterwards (the storage sets it)."""
    monkeypatch.setenv("DAGSTER_EVENT_BATCH_SIZE", "0")
    monkeypatch.delenv("DAGSTER_EVENT_BATCH_SIZE")


def _count_shard_writes(instance: DagsterInstance, monkeypatch: pytest.MonkeyPatch) -> Counter:
    """Connections opened per shard ('run' or 'index') by this instance's event log."""
    storage = instance.event_log_storage
    opened: Counter = Counter()
    original = storage._connect  # noqa: SLF001 - the one place SQLite opens a shard

    def counting(shard: str) -> Any:
        opened["index" if shard == "index" else "run"] += 1
        return original(shard)

    monkeypatch.setattr(storage, "_connect", counting)
    return opened


def _asset_history(instance: DagsterInstance, run_id: str) -> dict[str, Any]:
    """What readers of the event log see of a run, without ids and timestamps."""
    seen: dict[str, Any] = {"events": Counter(
        r.dagster_event.event_type_value for r in instance.all_logs(run_id) if r.dagster_event)}
    for key in KEYS:
        planned = instance.fetch_planned_materializations(key, limit=100).records
        records = instance.fetch_materializations(key, limit=100).records
        latest = instance.get_latest_materialization_event(key)
        seen[key.to_user_string()] = {
            "planned": sorted(r.event_log_entry.dagster_event.event_specific_data.partition
                              for r in planned),
            "materialized": sorted(instance.get_materialized_partitions(key)),
            "metadata": sorted((r.partition_key, r.asset_materialization.metadata["month"].value)
                               for r in records),
            "code_versions": sorted({r.asset_materialization.tags["dagster/code_version"]
                                     for r in records}),
            "latest": latest and latest.dagster_event.partition,
            "status": instance.get_status_by_partition(key, MONTHS.get_partition_keys()[:4],
                                                       MONTHS),
        }
    return seen


def _backfill(instance: DagsterInstance) -> str:
    result = materialize(ASSETS, instance=instance, tags=RANGE)
    assert result.success
    return result.run_id


@pytest.fixture
def two_instances(tmp_path, batch_size_env) -> Iterator[tuple[DagsterInstance, DagsterInstance]]:
    (tmp_path / "dagster").mkdir()
    (tmp_path / "shipped").mkdir()
    with instance_for_test(temp_dir=str(tmp_path / "dagster")) as dagster_default, \
            instance_for_test(temp_dir=str(tmp_path / "shipped"),
                              overrides=shipped_storage(str(tmp_path / "shipped"))) as shipped:
        yield dagster_default, shipped


def test_a_backfill_stores_its_asset_events_in_few_transactions_and_reads_back_the_same(
        two_instances, monkeypatch: pytest.MonkeyPatch) -> None:
    dagster_default, shipped = two_instances
    assert isinstance(shipped.event_log_storage, event_storage.BatchingSqliteEventLogStorage)
    assert os.environ["DAGSTER_EVENT_BATCH_SIZE"] == str(event_storage.DEFAULT_EVENT_BATCH_SIZE)
    plain_writes = _count_shard_writes(dagster_default, monkeypatch)
    batched_writes = _count_shard_writes(shipped, monkeypatch)

    plain, batched = _backfill(dagster_default), _backfill(shipped)

    # 2 assets x 4 months: 8 planned + 8 materialized asset events, each two transactions
    # (run shard + index) on Dagster's storage; two per batch on the shipped one.
    assert plain_writes["index"] >= 16
    assert batched_writes["index"] <= plain_writes["index"] - 12
    assert batched_writes["run"] <= plain_writes["run"] - 12
    assert _asset_history(shipped, batched) == _asset_history(dagster_default, plain)
    history = _asset_history(shipped, batched)
    assert history["alpha"]["materialized"] == MONTHS.get_partition_keys()[:4]
    assert history["events"]["ASSET_MATERIALIZATION_PLANNED"] == 8


def test_a_failed_backfill_marks_every_month_failed_on_the_shipped_event_log(
        two_instances) -> None:
    """The per-month planned events stay per month, so a failed run still fails each month
    (what the UI's partition status and the backfill daemon read)."""
    _, shipped = two_instances

    @asset(name="alpha", partitions_def=MONTHS, backfill_policy=BackfillPolicy.single_run())
    def broken(context) -> MaterializeResult:
        raise RuntimeError("boom")

    result = materialize([broken], instance=shipped, tags=RANGE, raise_on_error=False)
    assert not result.success
    status = shipped.get_status_by_partition(AssetKey("alpha"), MONTHS.get_partition_keys()[:4],
                                             MONTHS)
    assert {str(s) for s in (status or {}).values()} == {"AssetPartitionStatus.FAILED"}


def test_an_instance_opened_by_path_while_dagster_home_names_another_folder_is_refused(
        tmp_path, monkeypatch: pytest.MonkeyPatch, batch_size_env) -> None:
    """dagster.yaml reads the storage folder from DAGSTER_HOME: opening another folder's
    instance by path must not read its runs from one folder and its events from another."""
    home = tmp_path / "home"
    home.mkdir()
    (home / "dagster.yaml").write_text((REPO / "dagster.yaml").read_text())
    monkeypatch.setenv("DAGSTER_HOME", str(tmp_path))
    with pytest.raises(StorageFolderMismatchError, match="Fix: set DAGSTER_HOME="):
        DagsterInstance.from_config(str(home))
    monkeypatch.setenv("DAGSTER_HOME", str(home))
    with DagsterInstance.from_config(str(home)) as instance:
        assert isinstance(instance.event_log_storage, event_storage.BatchingSqliteEventLogStorage)
