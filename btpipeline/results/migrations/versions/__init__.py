"""The revisions, oldest first (``NNNN_what.py``); run in order by ``results/migrate.py``."""
