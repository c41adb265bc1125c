"""The metadata store: SQL tables, migrations, and the backends chosen by URI.

:func:`open_store` reads the URI's scheme and imports only the backend it names, so a missing
optional driver costs nothing until that backend is used.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

from mloop.errors import ConfigError
from mloop.store.base import (
    ArtifactEntry,
    AuditEvent,
    Dataset,
    DatasetKind,
    DatasetVersion,
    Experiment,
    Lifecycle,
    MetadataStore,
    Metric,
    MetricRow,
    NewDatasetVersion,
    Page,
    Run,
    RunInput,
    RunLiveness,
    RunStatus,
    TagRow,
    ValidationRecord,
    ViewType,
)

if TYPE_CHECKING:
    from mloop.config import Settings

__all__ = [
    "BACKENDS",
    "ArtifactEntry",
    "AuditEvent",
    "Dataset",
    "DatasetKind",
    "DatasetVersion",
    "Experiment",
    "Lifecycle",
    "MetadataStore",
    "Metric",
    "MetricRow",
    "NewDatasetVersion",
    "Page",
    "Run",
    "RunInput",
    "RunLiveness",
    "RunStatus",
    "TagRow",
    "ValidationRecord",
    "ViewType",
    "open_store",
]

#: URI scheme (before any ``+driver``) → the "module:Class" implementing it.
BACKENDS: dict[str, str] = {
    "sqlite": "mloop.store.sqlite:SQLiteStore",
    "postgresql": "mloop.store.postgres:PostgresStore",
    "postgres": "mloop.store.postgres:PostgresStore",
}


def open_store(
    uri: str, *, settings: Settings | None = None, migrate: bool = True
) -> MetadataStore:
    """Open the metadata store a URI names (empty: the configured tracking URI), migrating it
    to the current schema unless ``migrate`` is False. Raises ConfigError, MigrationError,
    MissingExtra, BackendError."""
    if not uri:
        from mloop.config import load_settings

        settings = settings or load_settings()
        uri = settings.tracking_uri
    scheme = uri.split(":", 1)[0].split("+", 1)[0].lower() if ":" in uri else ""
    target = BACKENDS.get(scheme)
    if target is None:
        supported = ", ".join(f"{name}://" for name in sorted(BACKENDS))
        shown = uri.split("@")[-1] if "@" in uri else uri
        raise ConfigError(
            f"no metadata store for the URI {shown!r}; supported schemes: {supported} "
            "(e.g. sqlite:///.mloop/mloop.db or postgresql+psycopg://user:pw@host/db)"
        )
    module_name, _, class_name = target.partition(":")
    backend: Any = getattr(importlib.import_module(module_name), class_name)
    store: MetadataStore = backend(uri, settings=settings, migrate=migrate)
    return store
