"""The module-level API (``mloop.start_run``, ``mloop.log_metric``, …) over a default client.

The default client is built on first use from :func:`mloop.config.load_settings` (so from
``MLOOP_*`` variables and the config file); :func:`reset_default_client` closes it so that the
next call builds a new one (after changing the environment, and between tests);
:func:`use_client` makes a given client the default for a block. Logging verbs
act on this thread's innermost active run and raise InvalidState when there is none.
"""

from __future__ import annotations

import threading
from collections.abc import Iterable, Iterator, Mapping, Sequence
from contextlib import contextmanager
from pathlib import Path
from typing import TYPE_CHECKING, Any

from mloop.errors import InvalidInput, InvalidState
from mloop.store.base import (
    ArtifactEntry,
    DatasetVersion,
    Experiment,
    Metric,
    Run,
    RunStatus,
    ViewType,
)
from mloop.tracking.client import RunPage, TrackingClient
from mloop.tracking.run import ActiveRun
from mloop.tracking.run import active_run as _active_run

if TYPE_CHECKING:
    from mloop.artifacts import GcReport
    from mloop.audit import AuditReport

__all__ = [
    "active_run",
    "client_or_default",
    "create_experiment",
    "default_client",
    "delete_experiment",
    "delete_run",
    "download_artifacts",
    "end_run",
    "flush",
    "gc",
    "get_experiment",
    "get_metric_history",
    "get_run",
    "list_artifacts",
    "list_experiments",
    "log_artifact",
    "log_artifacts",
    "log_batch",
    "log_input",
    "log_metric",
    "log_metrics",
    "log_param",
    "log_params",
    "rename_experiment",
    "reset_default_client",
    "restore_experiment",
    "restore_run",
    "run_id_of",
    "search_runs",
    "set_experiment",
    "set_tag",
    "set_tags",
    "start_run",
    "use_client",
    "verify_audit",
]

_default: TrackingClient | None = None
_default_lock = threading.Lock()


def default_client() -> TrackingClient:
    """The process's default client, built from the settings on first use."""
    global _default  # noqa: PLW0603 - the one lazily built default
    client = _default
    if client is None:
        with _default_lock:
            if _default is None:
                _default = TrackingClient()
            client = _default
    return client


def client_or_default(client: TrackingClient | None) -> TrackingClient:
    """``client``, or the default client when None (what every domain function takes)."""
    return client if client is not None else default_client()


def run_id_of(run: object) -> str | None:
    """The id of a run given as an id, a run record or an active run (None stays None)."""
    if run is None or isinstance(run, str):
        return run
    run_id = getattr(run, "id", None)
    if not isinstance(run_id, str):
        raise InvalidInput(f"run must be a run id or a run, got {type(run).__name__}")
    return run_id


@contextmanager
def use_client(client: TrackingClient) -> Iterator[TrackingClient]:
    """Make ``client`` the process's default client inside the block, then put the previous one
    back (not closing either): code that takes no client, such as pipeline steps, uses it."""
    global _default  # noqa: PLW0603 - swapped for the block, restored after
    if not isinstance(client, TrackingClient):
        raise InvalidInput(
            f"use_client takes a TrackingClient, got {type(client).__name__}", field="client"
        )
    with _default_lock:
        previous, _default = _default, client
    try:
        yield client
    finally:
        with _default_lock:
            _default = previous


def reset_default_client() -> None:
    """Close the default client (ending its active runs) so the next call builds a new one."""
    global _default
    with _default_lock:
        client, _default = _default, None
    if client is not None:
        client.close()


def active_run() -> ActiveRun | None:
    """This thread's innermost active run, or None."""
    return _active_run()


def _require_run() -> ActiveRun:
    run = _active_run()
    if run is None:
        raise InvalidState(
            "there is no active run in this thread; start one with mloop.start_run() "
            "(as a context manager: with mloop.start_run() as run: ...)"
        )
    return run


def start_run(
    experiment: str | int | None = None,
    run_name: str | None = None,
    *,
    nested: bool = False,
    parent: str | ActiveRun | None = None,
    tags: Mapping[str, Any] | None = None,
    note: str | None = None,
    log_system_metrics: bool | float = False,
    capture_source: bool = True,
) -> ActiveRun:
    """Start a run on the default client (see :meth:`TrackingClient.start_run`).

    With a run already active in this thread, pass ``nested=True`` (or ``parent=``);
    otherwise this raises InvalidState rather than silently starting an unrelated run.
    """
    current = _active_run()
    if current is not None and not nested and parent is None:
        raise InvalidState(
            f"run {current.id} ({current.name!r}) is already active in this thread; end it "
            f"with mloop.end_run(), or start a child with mloop.start_run(nested=True)",
            run_id=current.id,
        )
    client = current.client if current is not None and nested else default_client()
    return client.start_run(
        experiment,
        run_name,
        nested=nested,
        parent=parent,
        tags=tags,
        note=note,
        log_system_metrics=log_system_metrics,
        capture_source=capture_source,
    )


def end_run(status: RunStatus | str = RunStatus.FINISHED) -> None:
    """End this thread's innermost active run (no-op when there is none)."""
    run = _active_run()
    if run is not None:
        run.end(status)


def flush() -> None:
    """Return when everything logged so far is stored; raise a pending write failure."""
    run = _active_run()
    if run is not None:
        run.client.flush()
    elif _default is not None:
        _default.flush()


def log_param(key: str, value: Any) -> None:
    """Log a param on the active run."""
    _require_run().log_param(key, value)


def log_params(params: Mapping[str, Any]) -> None:
    """Log params on the active run."""
    _require_run().log_params(params)


def log_metric(key: str, value: float, step: int | None = None) -> None:
    """Log a metric point on the active run."""
    _require_run().log_metric(key, value, step)


def log_metrics(metrics: Mapping[str, float], step: int | None = None) -> None:
    """Log several metrics at one step on the active run."""
    _require_run().log_metrics(metrics, step)


def log_batch(
    metrics: Iterable[tuple[Any, ...]] = (),
    params: Mapping[str, Any] | None = None,
    tags: Mapping[str, Any] | None = None,
) -> None:
    """Log many metric points, params and tags on the active run (see ActiveRun.log_batch)."""
    _require_run().log_batch(metrics, params, tags)


def set_tag(key: str, value: Any) -> None:
    """Set a tag on the active run."""
    _require_run().set_tag(key, value)


def set_tags(tags: Mapping[str, Any]) -> None:
    """Set tags on the active run."""
    _require_run().set_tags(tags)


def log_input(dataset: str | DatasetVersion, context: str = "training") -> DatasetVersion:
    """Record that the active run read a dataset version in a role."""
    return _require_run().log_input(dataset, context)


def log_artifact(local_path: str | Path, artifact_path: str | None = None) -> ArtifactEntry:
    """Log a file as an artifact of the active run."""
    return _require_run().log_artifact(local_path, artifact_path)


def log_artifacts(local_dir: str | Path, artifact_path: str | None = None) -> list[ArtifactEntry]:
    """Log a folder's files as artifacts of the active run."""
    return _require_run().log_artifacts(local_dir, artifact_path)


def search_runs(
    filter_string: str = "",
    *,
    experiments: Sequence[str | int] | str | int | None = None,
    order_by: Sequence[str] | str | None = None,
    max_results: int = 1000,
    page_token: str | None = None,
    view: ViewType | str = "active",
) -> RunPage:
    """Search runs (see :meth:`TrackingClient.search_runs`)."""
    return default_client().search_runs(
        filter_string,
        experiments=experiments,
        order_by=order_by,
        max_results=max_results,
        page_token=page_token,
        view=view,
    )


def get_run(run_id: str) -> Run:
    """A run by id."""
    return default_client().get_run(run_id)


def get_metric_history(run_id: str, key: str) -> list[Metric]:
    """Every point of a run's metric."""
    return default_client().get_metric_history(run_id, key)


def list_artifacts(run_id: str, prefix: str = "") -> list[ArtifactEntry]:
    """A run's artifacts under a prefix."""
    return default_client().list_artifacts(run_id, prefix)


def download_artifacts(run_id: str, path: str = "", dest: str | Path = ".") -> Path:
    """Download a run's artifact or folder of artifacts, verified."""
    return default_client().download_artifacts(run_id, path, dest)


def create_experiment(name: str, tags: Mapping[str, Any] | None = None) -> Experiment:
    """Create an experiment."""
    return default_client().create_experiment(name, tags)


def get_experiment(name_or_id: str | int) -> Experiment:
    """An experiment by name or id."""
    return default_client().get_experiment(name_or_id)


def list_experiments(view: ViewType | str = "active") -> list[Experiment]:
    """Experiments in a view."""
    return default_client().list_experiments(view)


def rename_experiment(name_or_id: str | int, new_name: str) -> Experiment:
    """Rename an experiment."""
    return default_client().rename_experiment(name_or_id, new_name)


def delete_experiment(name_or_id: str | int) -> Experiment:
    """Soft-delete an experiment."""
    return default_client().delete_experiment(name_or_id)


def restore_experiment(name_or_id: str | int) -> Experiment:
    """Restore a soft-deleted experiment."""
    return default_client().restore_experiment(name_or_id)


def set_experiment(name: str) -> Experiment:
    """Choose the experiment of later runs (created if missing)."""
    return default_client().set_experiment(name)


def delete_run(run_id: str) -> Run:
    """Soft-delete a run."""
    return default_client().delete_run(run_id)


def restore_run(run_id: str) -> Run:
    """Restore a soft-deleted run."""
    return default_client().restore_run(run_id)


def gc(
    *, grace: float | None = None, dry_run: bool = False, purge_deleted: bool = False
) -> GcReport:
    """Delete unreferenced blobs (see :meth:`TrackingClient.gc`)."""
    return default_client().gc(grace=grace, dry_run=dry_run, purge_deleted=purge_deleted)


def verify_audit() -> AuditReport:
    """Verify the audit log's hash chain."""
    return default_client().verify_audit()
