"""Runs the revisions on the connection ``migrate.upgrade`` hands over (in its transaction).

Alembic executes this file with its context set up; imported any other way (a package walk)
it does nothing.
"""

from alembic import context
from sqlalchemy import MetaData

from btpipeline.results.migrations.naming import NAMING


def run_revisions() -> None:
    config = context.config
    context.configure(
        connection=config.attributes["connection"],
        target_metadata=MetaData(naming_convention=NAMING),  # names constraints made by ops
        version_table_schema=config.attributes.get("schema"),
        render_as_batch=True,
    )
    with context.begin_transaction():
        context.run_migrations()


if hasattr(context, "config"):  # alembic installs its proxy only while it runs this file
    run_revisions()
