"""Alembic revisions of the results database (``backtest_*`` tables), run by ``migrate.upgrade``
when ``ResultsDatabase`` opens a database. Each revision names its schema explicitly (a
PostgreSQL schema comes in through ``migrate.upgrade``), and uses batch mode for constraint
changes, so the same revision runs on SQLite and PostgreSQL.

A new revision: ``python -m alembic -c btpipeline/results/migrations/alembic.ini revision -m
"what changes"``, then write its upgrade by hand (autogenerate is not wired: the tables carry
no schema).
"""
