"""The constraint naming convention the revisions use: frozen here, equal to the one in
``results/tables.py`` when the first revision was written (a revision never reads the live
table definitions, which move on)."""

NAMING = {
    "ix": "ix_%(table_name)s_%(column_0_N_name)s",
    "uq": "uq_%(table_name)s_%(column_0_N_name)s",
    "ck": "ck_%(table_name)s_%(constraint_name)s",
    "pk": "pk_%(table_name)s",
}


def revision_schema() -> str | None:
    """The PostgreSQL schema the running revision works in (None: the default one)."""
    from alembic import op

    return op.get_context().version_table_schema
