"""Dagster on PostgreSQL (issue 5, item 1), the file itself: ``deploy/postgres/dagster.yaml``
must match the top-level dagster.yaml apart from storage and hold no secret.

The instance opened from it is tested in tests/dagster/test_postgres_instance.py, the real
``dagster dev`` on it in tests/system/test_postgres_dagster_dev.py.
"""

from __future__ import annotations

import yaml

from tests.support import REPO
from tests.support.postgres import PG_ENV_VARS, PG_YAML


def test_postgres_yaml_matches_the_top_level_file_except_storage() -> None:
    postgres = yaml.safe_load(PG_YAML.read_text())
    top = yaml.safe_load((REPO / "dagster.yaml").read_text())
    top.pop("storage")  # the embedded SQLite storage (batched event-log writes)
    storage = postgres.pop("storage")
    assert postgres == top, "deploy/postgres/dagster.yaml drifted from dagster.yaml"
    assert list(storage) == ["postgres"]


def test_postgres_yaml_takes_every_connection_setting_from_the_environment() -> None:
    db = yaml.safe_load(PG_YAML.read_text())["storage"]["postgres"]["postgres_db"]
    assert {k: db[k] for k in PG_ENV_VARS} == {k: {"env": v} for k, v in PG_ENV_VARS.items()}
    # dagster-postgres 0.29 recognises the table-creation race by psycopg2 error codes only.
    assert db["scheme"] == "postgresql+psycopg2"
    assert set(db) == set(PG_ENV_VARS) | {"scheme"}
