"""The life of one autologged fit: find or start the run, call the fit, record, end the run.

The user's call is the story: its result is returned and its exception propagates unchanged.
Everything autologging does around it is attempted step by step; a step that fails is reported
once as an :class:`AutologWarning` (or, when warnings are turned into errors, as a log record)
and the next step still runs.
"""

from __future__ import annotations

import logging
import threading
import warnings
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Literal, Protocol

from mloop.autolog.patches import silenced

if TYPE_CHECKING:
    from mloop.tracking.run import ActiveRun

__all__ = [
    "AutologConfig",
    "AutologWarning",
    "FitCall",
    "FitContext",
    "FitHandler",
    "current_config",
    "intercept",
    "set_config",
    "system_tags",
    "warn_once",
]

_log = logging.getLogger("mloop.autolog")


class AutologWarning(UserWarning):
    """Autologging could not record something; the user's fit itself went ahead."""


@dataclass(frozen=True)
class AutologConfig:
    """What :func:`mloop.autolog` was last asked to record."""

    log_models: bool = True
    register_as: str | None = None
    log_datasets: bool | Literal["register"] = True
    dataset_name: str | None = None
    silent: bool = False
    max_tuning_runs: int = 5
    libraries: frozenset[str] = frozenset()


_config: AutologConfig | None = None
_warned: set[tuple[str, str]] = set()
_warned_lock = threading.Lock()


def current_config() -> AutologConfig | None:
    """The active configuration, or None when autologging is off."""
    return _config


def set_config(config: AutologConfig | None) -> None:
    """Turn autologging on with ``config``, or off with None."""
    global _config  # noqa: PLW0603 - one process-wide switch, as mlflow.autolog has
    _config = config
    with _warned_lock:
        _warned.clear()


def warn_once(library: str, what: str, label: str, exc: BaseException) -> None:
    """Report a failed autologging step, once per library and step, unless silent."""
    config = _config
    if config is not None and config.silent:
        return
    with _warned_lock:
        if (library, what) in _warned:
            return
        _warned.add((library, what))
    message = (
        f"mloop.autolog could not log the {what} of {label}: {type(exc).__name__}: {exc}. "
        f"The fit itself went ahead; later failures of this kind are not reported."
    )
    try:
        warnings.warn(message, AutologWarning, stacklevel=4)
    except Warning:
        # Warnings are errors here, but autologging must never break the fit: log instead.
        _log.warning(message)


@dataclass
class FitCall:
    """One intercepted call: the original function, its arguments, and handler state."""

    original: Callable[..., Any]
    args: tuple[Any, ...]
    kwargs: dict[str, Any]
    state: dict[str, Any] = field(default_factory=dict)

    @property
    def target(self) -> Any:
        """The object a method was called on (the first argument)."""
        return self.args[0] if self.args else None


@dataclass
class FitContext:
    """What a handler records into: the run, the configuration, and a safe way to try."""

    run: ActiveRun
    config: AutologConfig
    library: str
    label: str

    def attempt(self, what: str, step: Callable[[], object]) -> None:
        """Run one recording step; a failure becomes a warning, never an exception."""
        try:
            step()
        except Exception as exc:
            warn_once(self.library, what, self.label, exc)


class FitHandler(Protocol):
    """One library's way of reading a fit: what to prepare before it and record after."""

    library: str

    def wants(self, call: FitCall) -> bool:
        """False to let this call go by unrecorded (and not mark the thread as inside)."""

    def label(self, call: FitCall) -> str:
        """How warnings name the call (``LogisticRegression.fit``)."""

    def prepare(self, call: FitCall, context: FitContext) -> None:
        """Before the fit: read the data, ask the library to record evaluations."""

    def record(self, call: FitCall, result: Any, context: FitContext) -> None:
        """After the fit: log params, metrics, the data digest and the model."""


def _run_for_fit() -> tuple[ActiveRun, bool]:
    """This thread's active run (not ours to end), or a new one (ours)."""
    from mloop.tracking import fluent

    run = fluent.active_run()
    if run is not None:
        return run, False
    return fluent.start_run(), True


def _end(run: ActiveRun, status: str, library: str, label: str) -> None:
    try:
        run.end(status)
    except Exception as exc:
        warn_once(library, "end of the run", label, exc)


def intercept(
    handler: FitHandler, original: Callable[..., Any], args: tuple[Any, ...], kwargs: dict[str, Any]
) -> Any:
    """Call ``original`` with autologging around it (the body of every patched wrapper)."""
    config = _config
    call = FitCall(original, args, dict(kwargs))
    if config is None or not _wanted(handler, call):
        return original(*args, **kwargs)
    with silenced():
        return _logged(handler, config, call)


def _wanted(handler: FitHandler, call: FitCall) -> bool:
    try:
        return handler.wants(call)
    except Exception:
        return False


def _logged(handler: FitHandler, config: AutologConfig, call: FitCall) -> Any:
    original, args, kwargs = call.original, call.args, dict(call.kwargs)
    try:
        label = handler.label(call)
    except Exception:
        label = getattr(original, "__qualname__", "a fit")
    try:
        run, owned = _run_for_fit()
    except Exception as exc:
        warn_once(handler.library, "run", label, exc)
        return original(*args, **kwargs)
    context = FitContext(run, config, handler.library, label)
    try:
        handler.prepare(call, context)
    except Exception as exc:
        warn_once(handler.library, "training data", label, exc)
        call.args, call.kwargs = args, dict(kwargs)
    try:
        result = call.original(*call.args, **call.kwargs)
    except BaseException as exc:
        if owned:
            _end(run, "KILLED" if isinstance(exc, KeyboardInterrupt) else "FAILED", *_who(context))
        raise
    try:
        handler.record(call, result, context)
    except Exception as exc:
        warn_once(handler.library, "results", label, exc)
    if owned:
        _end(run, "FINISHED", *_who(context))
    return result


def _who(context: FitContext) -> tuple[str, str]:
    return context.library, context.label


def system_tags(run: ActiveRun, tags: Mapping[str, Any]) -> None:
    """Set tags under the reserved ``mloop.`` prefix: autologging is mloop recording itself."""
    from mloop.tracking.names import tag_value, validate_key
    from mloop.tracking.writer import TAG

    if run.ended:
        return
    rows = [(validate_key(k, "tag", system=True), tag_value(k, v)) for k, v in tags.items()]
    for key, text in rows:
        run.client.writer.log((TAG, run.id, key, text))
