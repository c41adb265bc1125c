"""Alembic migrations of the metadata store (run through :mod:`mloop.store.migrate`)."""
