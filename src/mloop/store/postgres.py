"""The PostgreSQL metadata store: only the engine (psycopg 3, pre-pinged pool)."""

from __future__ import annotations

import importlib.util

import sqlalchemy
from sqlalchemy.dialects.postgresql import insert as pg_insert
from sqlalchemy.engine import Engine, make_url
from sqlalchemy.exc import ArgumentError

from mloop.config import Settings
from mloop.errors import ConfigError, MissingExtra
from mloop.store.sql import SqlStore

__all__ = ["PostgresStore", "make_engine", "normalize_uri"]

_SCHEMES = ("postgresql+psycopg://", "postgresql://", "postgres://")


def normalize_uri(uri: str) -> str:
    """Rewrite ``postgresql://`` and ``postgres://`` URIs to the psycopg 3 driver."""
    for scheme in _SCHEMES:
        if uri.startswith(scheme):
            return "postgresql+psycopg://" + uri[len(scheme) :]
    raise ConfigError(
        f"{make_safe(uri)!r} is not a PostgreSQL URI; use postgresql+psycopg://user:pw@host/db"
    )


def make_safe(uri: str) -> str:
    """The URI with its password hidden, for messages."""
    try:
        return make_url(uri).render_as_string(hide_password=True)
    except ArgumentError:
        return uri.rsplit("@", maxsplit=1)[-1]


def make_engine(uri: str) -> Engine:
    """A psycopg 3 engine whose pool checks each connection before handing it out."""
    if importlib.util.find_spec("psycopg") is None:
        raise MissingExtra("postgres", "psycopg", "The PostgreSQL metadata store")
    try:
        return sqlalchemy.create_engine(normalize_uri(uri), pool_pre_ping=True)
    except ArgumentError as exc:
        raise ConfigError(f"{make_safe(uri)!r} is not a valid PostgreSQL URI: {exc}") from None


class PostgresStore(SqlStore):
    """The metadata store in a PostgreSQL database, for many writers and a shared server."""

    dialect_insert = staticmethod(pg_insert)

    def __init__(self, uri: str, *, settings: Settings | None = None, migrate: bool = True) -> None:
        super().__init__(uri, make_engine(uri), settings=settings, migrate=migrate)
