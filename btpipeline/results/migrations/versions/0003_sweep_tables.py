"""Stored parameter sweeps: ``sweeps`` and ``sweep_results`` (see results/sweep_tables.py),
created where missing, so a database whose sweep tables ``create_tables`` made earlier is
adopted as it is. A later change to those tables needs a revision of its own.

Revision ID: 0003
Revises: 0002
"""

from __future__ import annotations

from alembic import op

from btpipeline.results.sweep_tables import SWEEP_TABLES
from btpipeline.results.tables import metadata

revision = "0003"
down_revision = "0002"
branch_labels = None
depends_on = None


def upgrade() -> None:
    """Create each sweep table unless it exists (the bind's schema_translate_map puts them in
    the configured schema)."""
    metadata.create_all(op.get_bind(), tables=list(SWEEP_TABLES), checkfirst=True)


def downgrade() -> None:
    raise NotImplementedError("The results schema is not downgraded: restore a backup instead.")
