"""The base of the SQL store's mixins (datasets, registry): what they may use of ``SqlStore``."""

from __future__ import annotations

from contextlib import AbstractContextManager
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from sqlalchemy.engine import Connection
    from sqlalchemy.sql.schema import Table

    from mloop.store import queries as q
    from mloop.store.base import AuditEvent

__all__ = ["StorePart"]


class StorePart:
    """Declares, for type checking only, the ``SqlStore`` members a mixin calls."""

    if TYPE_CHECKING:
        _stmts: q.Statements

        def _write(self, duplicate: str = "") -> AbstractContextManager[Connection]: ...
        def _read(self) -> AbstractContextManager[Connection]: ...
        def _insert(self, table: Table) -> Any: ...
        def _audit(  # noqa: PLR0917
            self,
            conn: Connection,
            actor: str,
            action: str,
            object_id: str,
            before: dict[str, Any] | None,
            after: dict[str, Any] | None,
        ) -> AuditEvent: ...
