"""Dagster's SQLite storage with batched event-log writes: ``BatchingSqliteStorage``.

Dagster's SQLite event log stores every event on its own: a new SQLAlchemy engine, a
connection and a commit for the run's shard, and for an asset event (materialization,
planned materialization, observation) the same again for the cross-run index shard. That is
10-25 ms per asset event on this machine, and a single-run backfill of ``A`` assets over ``M``
months writes ``A x M`` planned events before the run starts plus ``A x M`` materializations
in its steps: 8,064 asset events for a year of 336 backtests (``benchmarks/universe_scale.md``,
"One year as one backfill").

Dagster already hands these events over in batches when ``DAGSTER_EVENT_BATCH_SIZE`` is set
(the planned events of a run; a multi-partition step's materializations), but its SQLite
storage then loops over ``store_event``. Here a batch of asset events of one run is written
in one transaction per shard, with Dagster's own statements in Dagster's order (the run
shard's rows, then per event the index row, its tags and the asset's latest-event columns),
so what is stored is what the loop stores. Any other batch (run status, asset checks, mixed
runs) is stored event by event, as before.

Every process opening an instance with this storage (CLI, ``dagster dev``'s webserver and
daemon, run processes, the backtest workers) sets ``DAGSTER_EVENT_BATCH_SIZE`` (default 64)
unless the operator did, since Dagster reads it from the process environment, not from
``dagster.yaml``. Configured in ``dagster.yaml``::

    storage:
      custom:
        module: btpipeline.executors.event_storage
        class: BatchingSqliteStorage
        config:
          base_dir: {env: DAGSTER_HOME}
"""

from __future__ import annotations

import os
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

from dagster import Field, IntSource, StringSource

from btpipeline.errors import StorageFolderMismatchError
from btpipeline.executors import dagster_internals as internals
from btpipeline.folders import make_dirs

DEFAULT_EVENT_BATCH_SIZE = 64


def _batchable(entry: internals.EventLogEntry) -> bool:
    """An asset event whose ``store_event`` does nothing but the run-shard row and the index
    shard's row, tags and asset entry (no run status, no asset-check mirroring)."""
    event_type = entry.dagster_event_type
    return (entry.is_dagster_event and event_type in internals.ASSET_EVENTS
            and event_type not in internals.ASSET_CHECK_EVENTS
            and event_type not in internals.EVENT_TYPE_TO_PIPELINE_RUN_STATUS)


class BatchingSqliteEventLogStorage(internals.SqliteEventLogStorage):
    """``SqliteEventLogStorage`` whose ``store_event_batch`` writes a batch of one run's asset
    events in one transaction per shard instead of two per event."""

    #: The instance folder this event log belongs to (``base_dir`` of the storage), checked
    #: when an instance registers it.
    instance_folder: str | None = None

    def register_instance(self, instance: Any) -> None:
        """Refuse an instance whose folder is not ``base_dir``: with ``{env: DAGSTER_HOME}``
        and an instance opened by path (``DagsterInstance.from_config(path)``) while
        DAGSTER_HOME names another folder, runs would be read from one folder and event logs
        from the other."""
        root, folder = getattr(instance, "root_directory", None), self.instance_folder
        if root and folder and os.path.realpath(root) != os.path.realpath(folder):
            raise StorageFolderMismatchError(
                "storage.custom.config.base_dir (BatchingSqliteStorage)",
                f"the Dagster instance's own folder {root}", folder,
                f"set DAGSTER_HOME={root} (dagster.yaml reads base_dir from it), or write "
                "that folder as base_dir in its dagster.yaml")
        super().register_instance(instance)

    def store_event_batch(self, events: Sequence[internals.EventLogEntry]) -> None:
        run_ids = {entry.run_id for entry in events}
        if len(events) < 2 or len(run_ids) != 1 or not all(_batchable(e) for e in events):
            super().store_event_batch(events)
            return
        statements = [self.prepare_insert_event(entry) for entry in events]
        with self.run_connection(run_ids.pop()) as conn:
            for statement in statements:
                conn.execute(statement)
        with self.index_transaction() as conn:
            for entry, statement in zip(events, statements, strict=True):
                with internals.db_result(conn, statement) as result:
                    event_id = result.inserted_primary_key[0]
                self._store_asset_event_tags(conn, [entry], [event_id])
                self._store_asset_event(conn, entry, event_id)


class BatchingSqliteStorage(internals.DagsterSqliteStorage):
    """Dagster's SQLite storage (runs, schedules, event logs in the same files and layout as
    the default) with :class:`BatchingSqliteEventLogStorage` as its event log."""

    def __init__(self, base_dir: str, inst_data: internals.ConfigurableClassData | None = None,
                 event_batch_size: int = DEFAULT_EVENT_BATCH_SIZE) -> None:
        super().__init__(base_dir, inst_data=inst_data)
        self._event_log_storage = BatchingSqliteEventLogStorage(
            internals.sqlite_event_logs_directory(base_dir))
        self._event_log_storage.instance_folder = base_dir
        if event_batch_size > 0:
            os.environ.setdefault("DAGSTER_EVENT_BATCH_SIZE", str(event_batch_size))

    @classmethod
    def config_type(cls) -> dict[str, Any]:
        return {"base_dir": StringSource,
                "event_batch_size": Field(
                    IntSource, is_required=False, default_value=DEFAULT_EVENT_BATCH_SIZE,
                    description="events per batched write (DAGSTER_EVENT_BATCH_SIZE, unless "
                    "set in the environment); 0 leaves batching off")}

    @classmethod
    def from_config_value(cls, inst_data: internals.ConfigurableClassData,
                          config_value: Mapping[str, Any]) -> BatchingSqliteStorage:
        make_dirs(Path(config_value["base_dir"]))
        return cls(config_value["base_dir"], inst_data=inst_data,
                   event_batch_size=config_value.get("event_batch_size",
                                                     DEFAULT_EVENT_BATCH_SIZE))
