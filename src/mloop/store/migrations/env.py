"""Alembic environment: migrations run on the connection :mod:`mloop.store.migrate` passes in.

No ``alembic.ini`` is needed; ``migrate.alembic_config`` builds the configuration in code, so
the migrations work from an installed wheel. The caller owns the transaction (and the lock that
keeps two processes from migrating at once).
"""

from __future__ import annotations

from alembic import context
from sqlalchemy.engine import Connection

from mloop.store.schema import metadata


def _run(connection: Connection) -> None:
    context.configure(
        connection=connection,
        target_metadata=metadata,
        # SQLite cannot ALTER most things; batch mode rebuilds the table instead.
        render_as_batch=connection.dialect.name == "sqlite",
        compare_type=True,
    )
    with context.begin_transaction():
        context.run_migrations()


def _main() -> None:
    connection = context.config.attributes.get("connection")
    if connection is None:
        raise RuntimeError(
            "mloop migrations run through mloop.store.migrate.upgrade(engine) "
            "(or `mloop db upgrade`), not through the alembic command line"
        )
    if context.is_offline_mode():
        raise RuntimeError("mloop migrations do not support offline (SQL script) mode")
    _run(connection)


_main()
