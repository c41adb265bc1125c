"""The active run: what ``mloop.start_run`` returns, and the per-thread stack of active runs.

An :class:`ActiveRun` validates every call on the caller's thread (so a bad call raises at once
and writes nothing), then hands metric points, params and tags to its client's background
writer and returns. Steps: when ``step`` is omitted, a metric's step is one more than the last
step logged for that key in this run, starting at 0.

The stack of active runs lives in a :class:`contextvars.ContextVar`, so each thread (and each
asyncio task) has its own: a run started in one thread is not the active run of another.
"""

from __future__ import annotations

import contextvars
import json
import time
from collections.abc import Iterable, Mapping, Sequence
from pathlib import Path
from types import TracebackType
from typing import TYPE_CHECKING, Any, Final

from mloop.errors import InvalidInput, InvalidState, ParamConflict
from mloop.store.base import ArtifactEntry, DatasetVersion, ModelVersion, Run, RunStatus
from mloop.tracking.names import (
    MAX_NOTE_LENGTH,
    NOTE_TAG,
    metric_value,
    param_value,
    tag_value,
    validate_key,
    validate_step,
)
from mloop.tracking.writer import PARAM, TAG

if TYPE_CHECKING:
    from mloop.tracking.client import TrackingClient
    from mloop.tracking.system import SystemMetricsSampler

__all__ = ["ActiveRun", "active_run", "active_runs"]

_INT64_MIN: Final = -(2**63)
_INT64_MAX: Final = 2**63 - 1
_KEY_CACHE_LIMIT: Final = 100_000

# Metric keys seen valid, shared by all runs: validating a key costs microseconds, and a
# training loop logs the same few keys millions of times. Bounded so that generated keys
# cannot grow it forever.
_valid_metric_keys: set[str] = set()

_stack: contextvars.ContextVar[tuple[ActiveRun, ...]] = contextvars.ContextVar(
    "mloop_active_runs", default=()
)


def active_runs() -> tuple[ActiveRun, ...]:
    """The active runs of this thread (or task), outermost first."""
    stack = _stack.get()
    if any(run.ended for run in stack):
        stack = tuple(run for run in stack if not run.ended)
        _stack.set(stack)
    return stack


def active_run() -> ActiveRun | None:
    """The innermost active run of this thread (or task), or None."""
    stack = active_runs()
    return stack[-1] if stack else None


def _push(run: ActiveRun) -> None:
    _stack.set((*active_runs(), run))


def _remove(run: ActiveRun) -> None:
    stack = _stack.get()
    if run in stack:
        _stack.set(tuple(r for r in stack if r is not run))


def _validate_metric_key(key: object) -> str:
    checked = validate_key(key, "metric")
    if len(_valid_metric_keys) >= _KEY_CACHE_LIMIT:
        _valid_metric_keys.clear()
    _valid_metric_keys.add(checked)
    return checked


class ActiveRun:
    """A run being logged to; a context manager that ends it (FINISHED, FAILED or KILLED)."""

    def __init__(
        self,
        client: TrackingClient,
        record: Run,
        *,
        owner_pid: int,
        params: Mapping[str, str] | None = None,
    ) -> None:
        self._client = client
        self._writer = client.writer
        self.id: str = record.id
        self.experiment_id: int = record.experiment_id
        self.name: str = record.name
        self.parent_id: str | None = record.parent_id
        self._params: dict[str, str] = dict(params or {})
        self._steps: dict[str, int] = {}
        self._sampler: SystemMetricsSampler | None = None
        self._owner_pid = owner_pid
        self.ended = False
        self.status: RunStatus = RunStatus.RUNNING

    def __repr__(self) -> str:
        return f"<ActiveRun {self.id} name={self.name!r} status={self.status}>"

    # -- context manager --------------------------------------------------------------------
    def __enter__(self) -> ActiveRun:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        if exc_type is None:
            self.end(RunStatus.FINISHED)
            return
        status = RunStatus.KILLED if issubclass(exc_type, KeyboardInterrupt) else RunStatus.FAILED
        try:
            self.end(status)
        except Exception as end_error:
            # The user's exception is the story; the failed write rides along as a note.
            if exc is not None:
                exc.add_note(f"mloop: ending run {self.id} also failed: {end_error}")

    # -- state ------------------------------------------------------------------------------
    @property
    def client(self) -> TrackingClient:
        """The client this run logs through."""
        return self._client

    @property
    def info(self) -> Run:
        """The stored run record, fresh: everything logged so far is flushed first."""
        self.flush()
        return self._client.store.get_run(self.id)

    def _closed(self) -> InvalidState:
        return InvalidState(
            f"run {self.id} has ended ({self.status}); start a new run to log more",
            run_id=self.id,
        )

    # -- metrics (the hot path) -------------------------------------------------------------
    def log_metric(self, key: str, value: float, step: int | None = None) -> None:
        """Log one metric point (queued; returns in microseconds). NaN and ±inf are kept."""
        if self.ended:
            raise self._closed()
        writer = self._writer
        if writer.failed:
            writer.raise_pending(self.id)
        if key not in _valid_metric_keys:
            _validate_metric_key(key)
        if type(value) is not float:
            value = metric_value(key, value)
        steps = self._steps
        if step is None:
            step = steps.get(key, -1) + 1
        elif type(step) is not int or not _INT64_MIN <= step <= _INT64_MAX:
            step = validate_step(key, step)
        steps[key] = step
        writer.log((self.id, key, value, step, time.time_ns() // 1_000_000))

    def log_metrics(self, metrics: Mapping[str, float], step: int | None = None) -> None:
        """Log several metrics at one step (each key auto-increments separately if omitted)."""
        if self.ended:
            raise self._closed()
        if self._writer.failed:
            self._writer.raise_pending(self.id)
        if not isinstance(metrics, Mapping):
            raise InvalidInput(
                f"log_metrics takes a mapping of key to value, got {type(metrics).__name__}"
            )
        rows = self._metric_rows(metrics, step)
        log = self._writer.log
        for row in rows:
            log(row)

    def log_batch(
        self,
        metrics: Iterable[tuple[Any, ...]] = (),
        params: Mapping[str, Any] | None = None,
        tags: Mapping[str, Any] | None = None,
    ) -> None:
        """Log many metric points, params and tags in one call; all are checked first.

        ``metrics`` holds ``(key, value, step)`` or ``(key, value, step, timestamp_ms)`` tuples;
        a step of None auto-increments per key, a missing timestamp is now. Nothing is queued
        unless every entry is valid.
        """
        if self.ended:
            raise self._closed()
        if self._writer.failed:
            self._writer.raise_pending(self.id)
        now = time.time_ns() // 1_000_000
        points: list[tuple[str, float, int | None, int]] = []
        for point in metrics:
            if not isinstance(point, tuple | list) or len(point) not in (3, 4):
                raise InvalidInput(
                    "log_batch metrics are (key, value, step) or (key, value, step, "
                    f"timestamp_ms) tuples, got {point!r:.80}"
                )
            key, value, step = point[0], point[1], point[2]
            if key not in _valid_metric_keys:
                _validate_metric_key(key)
            if type(value) is not float:
                value = metric_value(key, value)
            if step is not None and (type(step) is not int or not _INT64_MIN <= step <= _INT64_MAX):
                step = validate_step(key, step)
            stamp = now if len(point) == 3 else _timestamp(key, point[3])
            points.append((key, value, step, stamp))
        new_params = self._new_params(params or {})
        tag_rows = self._tag_rows(tags or {})
        log, steps = self._writer.log, self._steps
        for key, value, given, stamp in points:
            step = steps.get(key, -1) + 1 if given is None else given
            steps[key] = step
            log((self.id, key, value, step, stamp))
        self._queue_params(new_params)
        for key, text in tag_rows:
            log((TAG, self.id, key, text))

    def _metric_rows(
        self, metrics: Mapping[str, Any], step: int | None
    ) -> list[tuple[str, str, float, int, int]]:
        # Validate every entry before queueing any, so a bad one leaves nothing half-logged.
        if step is not None and (type(step) is not int or not _INT64_MIN <= step <= _INT64_MAX):
            step = validate_step(next(iter(metrics), "?"), step)
        now = time.time_ns() // 1_000_000
        checked: list[tuple[str, float]] = []
        for key, value in metrics.items():
            if key not in _valid_metric_keys:
                _validate_metric_key(key)
            checked.append((key, value if type(value) is float else metric_value(key, value)))
        steps = self._steps
        rows = []
        for key, value in checked:
            key_step = steps.get(key, -1) + 1 if step is None else step
            steps[key] = key_step
            rows.append((self.id, key, value, key_step, now))
        return rows

    def _log_system_metrics(self, metrics: Mapping[str, float]) -> None:
        # The sampler thread must not consume a write failure meant for the user's next call.
        if self.ended:
            raise self._closed()
        for row in self._metric_rows(metrics, None):
            self._writer.log(row)

    # -- params and tags --------------------------------------------------------------------
    def log_param(self, key: str, value: Any) -> None:
        """Log one param (stringified). Params are immutable: another value raises."""
        self.log_params({key: value})

    def log_params(self, params: Mapping[str, Any]) -> None:
        """Log several params at once; all are checked before any is queued."""
        if self.ended:
            raise self._closed()
        if self._writer.failed:
            self._writer.raise_pending(self.id)
        if not isinstance(params, Mapping):
            raise InvalidInput(
                f"log_params takes a mapping of key to value, got {type(params).__name__}"
            )
        self._queue_params(self._new_params(params))

    def _new_params(self, params: Mapping[str, Any]) -> list[tuple[str, str]]:
        # Checked against what this run already logged: a different value is refused now,
        # not later on the writer thread.
        if not isinstance(params, Mapping):
            raise InvalidInput(f"params must be a mapping of key to value, got {params!r:.80}")
        new: list[tuple[str, str]] = []
        for key, value in params.items():
            validate_key(key, "param")
            text = param_value(key, value)
            old = self._params.get(key)
            if old is None:
                new.append((key, text))
            elif old != text:
                raise ParamConflict(
                    f"param {key!r} was already logged as {old!r} for run {self.id}; params "
                    f"are immutable — log a new run, or record changing values as a tag or "
                    f"metric",
                    run_id=self.id,
                    key=key,
                )
        return new

    def _queue_params(self, new: list[tuple[str, str]]) -> None:
        for key, text in new:
            self._params[key] = text
            self._writer.log((PARAM, self.id, key, text))

    def set_tag(self, key: str, value: Any) -> None:
        """Set one tag (stringified; a later value replaces an earlier one)."""
        self.set_tags({key: value})

    def set_tags(self, tags: Mapping[str, Any]) -> None:
        """Set several tags at once; all are checked before any is queued."""
        if self.ended:
            raise self._closed()
        if self._writer.failed:
            self._writer.raise_pending(self.id)
        if not isinstance(tags, Mapping):
            raise InvalidInput(
                f"set_tags takes a mapping of key to value, got {type(tags).__name__}"
            )
        for key, text in self._tag_rows(tags):
            self._writer.log((TAG, self.id, key, text))

    @staticmethod
    def _tag_rows(tags: Mapping[str, Any]) -> list[tuple[str, str]]:
        if not isinstance(tags, Mapping):
            raise InvalidInput(f"tags must be a mapping of key to value, got {tags!r:.80}")
        return [(key, tag_value(validate_key(key, "tag"), value)) for key, value in tags.items()]

    def set_note(self, text: str) -> None:
        """Set the run's note (Markdown, up to 100,000 characters); replaces an earlier note."""
        if self.ended:
            raise self._closed()
        if not isinstance(text, str):
            raise InvalidInput(f"a note must be text, got {type(text).__name__}")
        self._writer.log((TAG, self.id, NOTE_TAG, tag_value(NOTE_TAG, text, limit=MAX_NOTE_LENGTH)))

    # -- artifacts --------------------------------------------------------------------------
    def log_input(self, dataset: str | DatasetVersion, context: str = "training") -> DatasetVersion:
        """Record that this run read a dataset version (a record or ``name@vN``) in a role
        (``training``, ``evaluation``, …)."""
        if self.ended:
            raise self._closed()
        return self._client.log_input(self.id, dataset, context)

    def log_model(self, model: Any, name: str, **options: Any) -> ModelVersion:
        """Package ``model``, keep it with this run and register it as the next version of
        ``name`` (options as :func:`mloop.registry.log_model`: input_example, signature,
        flavor, requirements, metadata, trusted_types, description, tags)."""
        if self.ended:
            raise self._closed()
        from mloop.registry import log_model

        return log_model(self, model, name, client=self._client, **options)

    def log_artifact(
        self, local_path: str | Path, artifact_path: str | None = None
    ) -> ArtifactEntry:
        """Upload a file (its blob first, then the reference) under ``artifact_path/<name>``."""
        if self.ended:
            raise self._closed()
        return self._client.log_artifact(self.id, local_path, artifact_path)

    def log_artifacts(
        self, local_dir: str | Path, artifact_path: str | None = None
    ) -> list[ArtifactEntry]:
        """Upload a folder recursively, in one batch, under ``artifact_path``."""
        if self.ended:
            raise self._closed()
        return self._client.log_artifacts(self.id, local_dir, artifact_path)

    def log_text(self, text: str, artifact_file: str) -> ArtifactEntry:
        """Store text (UTF-8) as an artifact at ``artifact_file``."""
        if self.ended:
            raise self._closed()
        if not isinstance(text, str):
            raise InvalidInput(f"log_text takes text, got {type(text).__name__}")
        return self._client.log_bytes(self.id, text.encode("utf-8"), artifact_file)

    def log_dict(self, dictionary: Mapping[str, Any], artifact_file: str) -> ArtifactEntry:
        """Store a mapping as JSON (which is also valid YAML) at ``artifact_file``."""
        if self.ended:
            raise self._closed()
        try:
            data = json.dumps(dictionary, indent=2, sort_keys=True, allow_nan=True)
        except (TypeError, ValueError) as exc:
            raise InvalidInput(f"log_dict: the mapping is not JSON-serialisable: {exc}") from None
        return self._client.log_bytes(self.id, (data + "\n").encode("utf-8"), artifact_file)

    # -- durability and the end -------------------------------------------------------------
    def flush(self) -> None:
        """Return when everything logged so far is stored; raise a pending write failure."""
        self._writer.flush()
        self._writer.raise_pending(self.id)

    def end(
        self,
        status: RunStatus | str = RunStatus.FINISHED,
        *,
        artifacts: Sequence[tuple[str, str, int]] = (),
    ) -> None:
        """Flush, then mark the run ``status``; raises a write failure not yet raised.
        ``artifacts``: (path, digest, size) references to stored blobs, recorded with the end."""
        self._client.end_run(self, status, artifacts=artifacts)


def _timestamp(key: str, value: object) -> int:
    """A point's timestamp: integer milliseconds since the epoch (None means now)."""
    if value is None:
        return time.time_ns() // 1_000_000
    if type(value) is not int or not 0 <= value <= _INT64_MAX:
        raise InvalidInput(
            f"metric {key!r}: a timestamp is integer milliseconds since the epoch, got {value!r}"
        )
    return value
