"""Every error mloop raises on purpose, under one root.

Each class carries the HTTP status a server answers with, so that one handler turns any
``MloopError`` into one JSON shape (``MloopError.to_dict``). The tree::

    MloopError (500)
    ├── ConfigError (400)                 a setting or config file is wrong
    ├── InvalidInput (400)                a value from a user, a file or the network is wrong
    │   ├── InvalidName (400)             a name or key breaks the naming rules
    │   ├── InvalidArtifactPath (400)     a logical artifact path is unsafe or malformed
    │   ├── SearchSyntaxError (400)       a search filter or order-by does not parse
    │   ├── InvalidPageToken (400)        a page token is malformed or belongs to another query
    │   └── UnsupportedMediaType (415)    a request body's content type is not one accepted
    ├── NotFound (404)                    no experiment, run, artifact, blob, … of that id or name
    ├── Conflict (409)                    the request clashes with what is stored
    │   ├── AlreadyExists (409)           a name that must be unique is taken
    │   ├── ParamConflict (409)           a param was already logged with another value
    │   └── InvalidState (409)            the object's state forbids this (e.g. a finished run)
    │       └── NoPredictProba (409)      the model gives no probabilities (an AttributeError)
    ├── Forbidden (403)                   the caller may not do this
    ├── PayloadTooLarge (413)             a value or upload exceeds a documented limit
    ├── IntegrityError (500)              stored bytes or records fail verification
    │   ├── DigestMismatch (500)          a blob's bytes do not hash to its name
    │   └── AuditChainBroken (500)        the audit log was edited or truncated
    ├── BackendError (503)                a database or object store failed or is unreachable
    │   └── MigrationError (503)          the schema cannot be brought to the current revision
    ├── ServiceUnavailable (503)          a server cannot take the request now; retry later
    │   └── Overloaded (503)              a server's queue is full (answered with Retry-After)
    ├── Timeout (504)                     an operation did not finish in its time limit
    │   └── RequestTimeout (408)          a client did not send its request in time
    ├── MissingExtra (500)                an optional dependency is not installed
    ├── ModelCallFailed (500)             a model's own code raised while predicting
    └── WriteFailed (500)                 a background write failed; raised at the next call
"""

from __future__ import annotations

from typing import Any, ClassVar

__all__ = [
    "AlreadyExists",
    "AuditChainBroken",
    "BackendError",
    "ConfigError",
    "Conflict",
    "DigestMismatch",
    "Forbidden",
    "IntegrityError",
    "InvalidArtifactPath",
    "InvalidInput",
    "InvalidName",
    "InvalidPageToken",
    "InvalidState",
    "MigrationError",
    "MissingExtra",
    "MloopError",
    "ModelCallFailed",
    "NoPredictProba",
    "NotFound",
    "Overloaded",
    "ParamConflict",
    "PayloadTooLarge",
    "RequestTimeout",
    "SearchSyntaxError",
    "ServiceUnavailable",
    "Timeout",
    "UnsupportedMediaType",
    "WriteFailed",
]


class MloopError(Exception):
    """Root of every error mloop raises on purpose; carries an HTTP status and a stable code."""

    http_status: ClassVar[int] = 500

    def __init__(self, message: str, **details: Any) -> None:
        super().__init__(message)
        self.message = message
        self.details = details

    @property
    def code(self) -> str:
        """A stable machine-readable name for the error (its class name)."""
        return type(self).__name__

    def to_dict(self) -> dict[str, Any]:
        """The one JSON shape every interface uses for an error."""
        body: dict[str, Any] = {"error": self.code, "message": self.message}
        if self.details:
            body["details"] = self.details
        return body

    def __str__(self) -> str:
        return self.message


class ConfigError(MloopError):
    """A setting, an environment variable or the config file holds a wrong value."""

    http_status = 400


class InvalidInput(MloopError):
    """A value from a user, a file or the network is malformed or out of range."""

    http_status = 400


class InvalidName(InvalidInput):
    """A name or key (experiment, run, param, metric, tag) breaks the naming rules."""


class InvalidArtifactPath(InvalidInput):
    """A logical artifact path is absolute, escapes its root, or is otherwise unsafe."""


class SearchSyntaxError(InvalidInput):
    """A search filter or order-by clause does not parse; ``column`` points at the failure."""

    def __init__(self, message: str, *, text: str = "", column: int = 0, **details: Any) -> None:
        self.text = text
        self.column = column
        if text:
            caret = " " * column + "^"
            message = f"{message} (at column {column + 1})\n  {text}\n  {caret}"
        super().__init__(message, column=column + 1, **details)


class InvalidPageToken(InvalidInput):
    """A page token is malformed or was issued for a different query."""


class UnsupportedMediaType(InvalidInput):
    """A request body's content type is not one the endpoint accepts; the message lists them."""

    http_status = 415


class NotFound(MloopError):
    """No object of that id or name exists (or it was deleted)."""

    http_status = 404


class Conflict(MloopError):
    """The request clashes with what is already stored."""

    http_status = 409


class AlreadyExists(Conflict):
    """An object with that unique name already exists."""


class ParamConflict(Conflict):
    """A param was already logged for the run with a different value; params are immutable."""


class InvalidState(Conflict):
    """The object's current state forbids the operation (e.g. logging to a finished run)."""


class Forbidden(MloopError):
    """The caller is not allowed to perform the operation."""

    http_status = 403


class PayloadTooLarge(MloopError):
    """A value or upload is larger than the documented limit."""

    http_status = 413


class IntegrityError(MloopError):
    """Stored bytes or records fail verification."""

    http_status = 500


class DigestMismatch(IntegrityError):
    """A blob's bytes do not hash to the digest it is stored under: it was corrupted or edited."""


class AuditChainBroken(IntegrityError):
    """The audit log's hash chain does not verify: an event was edited, deleted or reordered."""


class BackendError(MloopError):
    """A database or object store failed or could not be reached."""

    http_status = 503


class MigrationError(BackendError):
    """The metadata schema could not be brought to the revision this mloop needs."""


class ServiceUnavailable(MloopError):
    """A server cannot take the request now (starting, shutting down, swapping); retry later."""

    http_status = 503


class Overloaded(ServiceUnavailable):
    """A server's queue is full; ``details.retry_after`` says how many seconds to wait."""


class Timeout(MloopError):
    """The model server hit a time limit: a prediction not ready within ``predict_timeout_s``
    (a pipeline step past its ``timeout`` fails with the builtin ``TimeoutError`` instead)."""

    http_status = 504


class RequestTimeout(Timeout):
    """A client did not send its whole request within the server's time limit."""

    http_status = 408


class MissingExtra(MloopError):
    """An optional dependency is missing; the message names the extra to install."""

    http_status = 500

    def __init__(self, extra: str, module: str, purpose: str) -> None:
        super().__init__(
            f"{purpose} needs the '{module}' package, which is not installed; "
            f"install it with: pip install 'mloop[{extra}]'",
            extra=extra,
            module=module,
        )


class ModelCallFailed(MloopError):
    """A model's own code raised while predicting; the original exception is the cause."""

    http_status = 500


class NoPredictProba(InvalidState, AttributeError):
    """The model gives no probabilities; an AttributeError too, so duck-typing checks work."""


class WriteFailed(MloopError):
    """A batched background write failed; raised at the next call, flush() or end of run."""

    http_status = 500
