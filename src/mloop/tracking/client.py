"""The tracking client: experiments, runs, search, artifacts and maintenance, in one object.

A :class:`TrackingClient` owns one metadata store, one artifact store (opened on first use) and
one background writer shared by its runs. The module-level ``mloop.*`` verbs call the same
methods on a lazily built default client (:mod:`mloop.tracking.fluent`).

At interpreter exit, runs still active in this process are ended — FINISHED, or FAILED when the
interpreter is exiting because of an unhandled exception (KILLED for an unhandled
KeyboardInterrupt) — and everything queued is stored.
"""

from __future__ import annotations

import atexit
import dataclasses
import logging
import os
import sys
import threading
import time
import weakref
from collections.abc import Mapping, Sequence
from pathlib import Path
from types import TracebackType
from typing import TYPE_CHECKING, Any

from mloop.config import Settings, load_settings
from mloop.errors import InvalidInput, InvalidState, MloopError, NotFound
from mloop.store import open_store
from mloop.store.base import (
    ArtifactEntry,
    DatasetVersion,
    Experiment,
    Lifecycle,
    MetadataStore,
    Metric,
    Run,
    RunEnd,
    RunInput,
    RunStatus,
    ViewType,
)
from mloop.store.datasets import parse_ref
from mloop.tracking import liveness
from mloop.tracking import run as run_module
from mloop.tracking import source as source_module
from mloop.tracking.names import (
    MAX_NOTE_LENGTH,
    NOTE_TAG,
    generate_run_name,
    tag_value,
    validate_key,
    validate_name,
)
from mloop.tracking.run import ActiveRun
from mloop.tracking.system import DEFAULT_INTERVAL, SystemMetricsSampler
from mloop.tracking.writer import BackgroundWriter

if TYPE_CHECKING:
    from mloop.artifacts import ContentAddressedStore, GcReport
    from mloop.audit import AuditReport

__all__ = ["RunPage", "TrackingClient"]

log = logging.getLogger(__name__)

_EXPERIMENT_CACHE_SECONDS = 5.0


class RunPage(list[Run]):
    """One page of :meth:`TrackingClient.search_runs`: a list of runs plus ``next_token``."""

    def __init__(self, runs: Sequence[Run] = (), next_token: str | None = None) -> None:
        super().__init__(runs)
        self.next_token = next_token


def _now_ms() -> int:
    return time.time_ns() // 1_000_000


def _view(view: ViewType | str) -> ViewType:
    try:
        return ViewType(str(view).lower())
    except ValueError:
        raise InvalidInput(f"view must be 'active', 'deleted' or 'all', got {view!r}") from None


def _status(status: RunStatus | str) -> RunStatus:
    try:
        return RunStatus(str(status).upper())
    except ValueError:
        raise InvalidInput(
            f"status must be one of {', '.join(s.value for s in RunStatus)}, got {status!r}"
        ) from None


def _user_tags(tags: Mapping[str, Any] | None, what: str = "tag") -> dict[str, str]:
    if tags is None:
        return {}
    if not isinstance(tags, Mapping):
        raise InvalidInput(f"tags must be a mapping of key to value, got {type(tags).__name__}")
    return {validate_key(k, what): tag_value(k, v) for k, v in tags.items()}


def _system_metrics_interval(value: bool | float | None) -> float | None:
    if value is None or value is False:
        return None
    if value is True:
        return DEFAULT_INTERVAL
    if isinstance(value, int | float) and value > 0:
        return float(value)
    raise InvalidInput(
        f"log_system_metrics must be True, False or an interval in seconds > 0, got {value!r}"
    )


def _artifact_refs(entries: Sequence[tuple[str, str, int]]) -> tuple[tuple[str, str, int], ...]:
    """Check (path, digest, size) references given to ``end_run``; nothing is written yet."""
    from mloop.artifacts.cas import check_digest
    from mloop.artifacts.paths import validate_artifact_path

    if isinstance(entries, str | bytes) or not isinstance(entries, Sequence):
        raise InvalidInput(
            f"artifacts must be a list of (path, digest, size), got {type(entries).__name__}"
        )
    refs = []
    for entry in entries:
        if not isinstance(entry, tuple | list) or len(entry) != 3:
            raise InvalidInput(f"an artifact reference is (path, digest, size), got {entry!r:.80}")
        path, digest, size = entry
        try:
            check_digest(digest)
        except InvalidInput:
            raise InvalidInput(
                f"artifact {path!r}: the digest must be 64 lowercase hex digits (a SHA-256 from "
                f"the artifact store), got {digest!r:.80}"
            ) from None
        if isinstance(size, bool) or not isinstance(size, int) or size < 0:
            raise InvalidInput(f"artifact {path!r}: the size must be an int >= 0, got {size!r}")
        refs.append((validate_artifact_path(path), digest, size))
    return tuple(refs)


#: Characters in a run id, and the fewest that may abbreviate one.
RUN_ID_LENGTH = 32
MIN_RUN_REF = 6


class TrackingClient:
    """Experiments, runs, metrics, artifacts and search over one metadata and artifact store."""

    def __init__(
        self,
        settings: Settings | None = None,
        *,
        tracking_uri: str | None = None,
        artifact_uri: str | None = None,
    ) -> None:
        if settings is None:
            given = {"tracking_uri": tracking_uri, "artifact_uri": artifact_uri}
            settings = load_settings({name: value for name, value in given.items() if value})
        elif tracking_uri or artifact_uri:
            settings = dataclasses.replace(
                settings,
                tracking_uri=tracking_uri or settings.tracking_uri,
                artifact_uri=artifact_uri or settings.artifact_uri,
            )
        self.settings: Settings = settings
        self.store: MetadataStore = open_store(settings.tracking_uri, settings=settings)
        self._artifacts: ContentAddressedStore | None = None
        self._heartbeat = liveness.Heartbeat(self.store, settings.heartbeat_interval)
        self.writer = BackgroundWriter(
            self.store,
            batch_size=settings.writer_batch_size,
            queue_size=settings.writer_queue_size,
            flush_interval=settings.writer_flush_interval,
            heartbeat=self._heartbeat,
        )
        self._default_experiment: str | None = None
        self._experiment_cache: dict[str, tuple[Experiment, float]] = {}
        self._runs: dict[str, ActiveRun] = {}
        self._lock = threading.Lock()
        self._closed = False
        _install_exit_hooks()
        _clients.add(self)
        # One query; runs left RUNNING by a crashed process stop showing as running.
        self.reap_stale_runs()

    def __repr__(self) -> str:
        return f"<TrackingClient {self.store.uri}>"

    def __enter__(self) -> TrackingClient:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.close()

    @property
    def artifacts(self) -> ContentAddressedStore:
        """The content-addressed artifact store (opened on first use)."""
        if self._artifacts is None:
            from mloop.artifacts import open_artifact_store

            self._artifacts = open_artifact_store(self.settings.artifact_uri)
        return self._artifacts

    # -- experiments ------------------------------------------------------------------------
    def create_experiment(self, name: str, tags: Mapping[str, Any] | None = None) -> Experiment:
        """Create an experiment. Raises InvalidName, AlreadyExists."""
        validate_name(name, "experiment")
        return self.store.create_experiment(name, actor=self.settings.actor, tags=_user_tags(tags))

    def get_experiment(self, name_or_id: str | int) -> Experiment:
        """An experiment by name or id. Raises NotFound."""
        if isinstance(name_or_id, bool) or not isinstance(name_or_id, str | int):
            raise InvalidInput(
                f"an experiment is named by its name or id, got {type(name_or_id).__name__}"
            )
        if isinstance(name_or_id, int):
            return self.store.get_experiment(name_or_id)
        found = self.store.get_experiment_by_name(name_or_id)
        if found is not None:
            return found
        if name_or_id.isdigit():
            return self.store.get_experiment(int(name_or_id))
        raise NotFound(
            f"no experiment named {name_or_id!r}; create it with "
            f"mloop.create_experiment({name_or_id!r}) or list them with mloop.list_experiments()",
            name=name_or_id,
        )

    def list_experiments(self, view: ViewType | str = "active") -> list[Experiment]:
        """Experiments in a view ('active', 'deleted' or 'all'), ordered by id."""
        return self.store.list_experiments(_view(view))

    def rename_experiment(self, name_or_id: str | int, new_name: str) -> Experiment:
        """Rename an experiment. Raises NotFound, InvalidName, AlreadyExists."""
        validate_name(new_name, "experiment")
        self._experiment_cache.clear()
        experiment = self.get_experiment(name_or_id)
        return self.store.rename_experiment(experiment.id, new_name, actor=self.settings.actor)

    def delete_experiment(self, name_or_id: str | int) -> Experiment:
        """Soft-delete an experiment and its runs (restorable). Raises NotFound."""
        self._experiment_cache.clear()
        experiment = self.get_experiment(name_or_id)
        return self.store.set_experiment_lifecycle(
            experiment.id, Lifecycle.DELETED, actor=self.settings.actor
        )

    def restore_experiment(self, name_or_id: str | int) -> Experiment:
        """Restore a soft-deleted experiment and its runs. Raises NotFound."""
        self._experiment_cache.clear()
        experiment = self.get_experiment(name_or_id)
        return self.store.set_experiment_lifecycle(
            experiment.id, Lifecycle.ACTIVE, actor=self.settings.actor
        )

    def set_experiment(self, name: str) -> Experiment:
        """Make ``name`` the experiment of later runs that name none; create it if missing."""
        experiment = self._experiment_for_run(name)
        self._default_experiment = experiment.name
        return experiment

    def _experiment_for_run(self, name_or_id: str | int) -> Experiment:
        if isinstance(name_or_id, str) and not name_or_id.isdigit():
            # A loop starting thousands of runs names one experiment: remember it briefly
            # (create_run still refuses a deleted experiment, which drops the entry).
            cached = self._experiment_cache.get(name_or_id)
            if cached is not None and time.monotonic() - cached[1] < _EXPERIMENT_CACHE_SECONDS:
                return cached[0]
            validate_name(name_or_id, "experiment")
            experiment = self.store.get_experiment_by_name(name_or_id)
            if experiment is None:
                try:
                    experiment = self.store.create_experiment(name_or_id, actor=self.settings.actor)
                except MloopError:
                    # Another process created it between our read and our write.
                    experiment = self.store.get_experiment_by_name(name_or_id)
                    if experiment is None:
                        raise
        else:
            experiment = self.get_experiment(name_or_id)
        if experiment.lifecycle is Lifecycle.DELETED:
            raise InvalidState(
                f"experiment {experiment.name!r} is deleted; restore it with "
                f"mloop.restore_experiment({experiment.name!r}) or choose another",
                experiment_id=experiment.id,
            )
        if isinstance(name_or_id, str):
            self._experiment_cache[name_or_id] = (experiment, time.monotonic())
        return experiment

    # -- runs -------------------------------------------------------------------------------
    def start_run(
        self,
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
        """Start a RUNNING run and make it this thread's active run; use it as a context manager.

        ``nested=True`` makes it a child of the active run; ``parent`` names a parent run
        explicitly. With neither, the experiment is ``experiment``, else the parent's, else the
        one chosen by :meth:`set_experiment`, else the ``default_experiment`` setting; a name
        that does not exist yet is created.
        """
        # Everything is checked before anything is written.
        name = generate_run_name() if run_name is None else validate_name(run_name, "run")
        user_tags = _user_tags(tags)
        if note is not None:
            if not isinstance(note, str):
                raise InvalidInput(f"a note must be text, got {type(note).__name__}")
            user_tags[NOTE_TAG] = tag_value(NOTE_TAG, note, limit=MAX_NOTE_LENGTH)
        interval = _system_metrics_interval(log_system_metrics)
        parent_id, parent_experiment = self._parent_of(nested, parent)
        if experiment is not None:
            experiment_id = self._experiment_for_run(experiment).id
        elif parent_experiment is not None:
            # The parent's experiment id is known: create_run checks in its own transaction
            # that the experiment exists and is not deleted, so no read is needed here.
            experiment_id = parent_experiment
        else:
            experiment_id = self._experiment_for_run(
                self._default_experiment or self.settings.default_experiment
            ).id
        source = source_module.capture_source() if capture_source else None
        if source is not None:
            user_tags = {**source.tags, **user_tags}
        # Blobs first, references with the run: a run never names a blob that is not stored.
        refs = self._put_source_artifacts(source.artifacts) if source is not None else []
        me = liveness.current_process()
        try:
            record = self.store.create_run(
                experiment_id=experiment_id,
                name=name,
                user=self.settings.actor,
                start_time=_now_ms(),
                parent_id=parent_id,
                host=me.host,
                pid=me.pid,
                pid_started_at=me.started_at,
                tags=user_tags,
                actor=self.settings.actor,
                artifacts=refs,
            )
        except MloopError:
            self._experiment_cache.clear()
            raise
        run = ActiveRun(self, record, owner_pid=me.pid)
        with self._lock:
            self._runs[run.id] = run
        self._heartbeat.add(run.id)
        self.writer.wake()
        run_module._push(run)
        if interval is not None:
            run._sampler = SystemMetricsSampler(run._log_system_metrics, interval)
            run._sampler.start()
        return run

    def _parent_of(
        self, nested: bool, parent: str | ActiveRun | None
    ) -> tuple[str | None, int | None]:
        if isinstance(parent, ActiveRun):
            return parent.id, parent.experiment_id
        if parent is not None:
            if not isinstance(parent, str) or not parent:
                raise InvalidInput(f"parent must be a run id or an ActiveRun, got {parent!r}")
            found = self.store.get_runs([parent])
            if not found:
                raise NotFound(f"no run with id {parent!r} to be the parent", run_id=parent)
            return found[0].id, found[0].experiment_id
        if nested:
            current = run_module.active_run()
            if current is not None:
                return current.id, current.experiment_id
        return None, None

    def _put_source_artifacts(self, artifacts: Mapping[str, bytes]) -> list[tuple[str, str, int]]:
        # put_bytes every time (it is a hash and one existence check): a cached "already
        # uploaded" could outlive a garbage collection and leave a reference to nothing.
        entries = []
        for path, data in artifacts.items():
            ref = self.artifacts.put_bytes(data)
            entries.append((path, ref.digest, ref.size))
        return entries

    def end_run(
        self,
        run: ActiveRun,
        status: RunStatus | str = RunStatus.FINISHED,
        *,
        artifacts: Sequence[tuple[str, str, int]] = (),
    ) -> None:
        """Flush a run's queued writes, then mark it ``status`` (FINISHED, FAILED or KILLED).

        ``artifacts`` are (path, digest, size) references to blobs already in the artifact
        store (e.g. from ``artifacts.put_files``), recorded in the same transaction as the end.
        A write failure not yet raised is raised here, after the run is marked FAILED.
        """
        final = _status(status)
        if final is RunStatus.RUNNING:
            raise InvalidInput("end_run takes a final status: FINISHED, FAILED or KILLED")
        refs = _artifact_refs(artifacts)
        if run.ended:
            if refs:
                raise run._closed()
            return
        if run._sampler is not None:
            run._sampler.stop()
        run.ended = True
        failure: MloopError | None = None
        ended = False
        try:
            # The status goes with the run's last batch: one transaction, all data in.
            ended = self.writer.flush(RunEnd(run.id, final, _now_ms(), self.settings.actor, refs))
            self.writer.raise_pending(run.id)
        except MloopError as exc:
            failure = exc
            if final is RunStatus.FINISHED:
                final = RunStatus.FAILED
        run.status = final
        try:
            if not ended:
                # The end did not go with a batch (a write of the run failed, or the batch
                # was retried run by run): record the references, then the status, apart.
                try:
                    self.store.add_artifacts("run", run.id, refs)
                except MloopError as exc:
                    failure = failure or exc
                    if final is RunStatus.FINISHED:
                        final = run.status = RunStatus.FAILED
                self.store.set_run_status(
                    run.id, final, end_time=_now_ms(), actor=self.settings.actor
                )
        finally:
            self._heartbeat.discard(run.id)
            with self._lock:
                self._runs.pop(run.id, None)
            run_module._remove(run)
        if failure is not None:
            raise failure

    def resolve_run_id(self, ref: str) -> str:
        """The full id of the run a reference names: a full id, or a unique prefix or suffix
        of at least 6 hex digits (as tables abbreviate ids). Raises NotFound, InvalidInput."""
        self._check_run_id(ref)
        ref = ref.strip().lower()
        if len(ref) == RUN_ID_LENGTH:
            return ref
        if len(ref) < MIN_RUN_REF:
            raise InvalidInput(
                f"{ref!r} is too short to name a run: give the full id or at least "
                f"{MIN_RUN_REF} of its characters"
            )
        found = self.store.find_run_ids(ref, limit=3)
        if not found:
            raise NotFound(f"no run id starts or ends with {ref!r}", run_id=ref)
        if len(found) > 1:
            listed = ", ".join(found[:2]) + (", …" if len(found) > 2 else "")
            raise InvalidInput(f"{ref!r} matches several runs ({listed}); give more characters")
        return found[0]

    def get_run(self, run_id: str) -> Run:
        """A run with its params, tags and latest metric values. Raises NotFound."""
        self._check_run_id(run_id)
        return self.store.get_run(run_id)

    def get_metric_history(self, run_id: str, key: str) -> list[Metric]:
        """Every point of one metric of a run, by step then time. Raises NotFound."""
        self._check_run_id(run_id)
        validate_key(key, "metric")
        return self.store.get_metric_history(run_id, key)

    def delete_run(self, run_id: str) -> Run:
        """Soft-delete a run (restorable; purged by ``gc(purge_deleted=True)``)."""
        self._check_run_id(run_id)
        return self.store.set_run_lifecycle(run_id, Lifecycle.DELETED, actor=self.settings.actor)

    def restore_run(self, run_id: str) -> Run:
        """Restore a soft-deleted run."""
        self._check_run_id(run_id)
        return self.store.set_run_lifecycle(run_id, Lifecycle.ACTIVE, actor=self.settings.actor)

    @staticmethod
    def _check_run_id(run_id: object) -> None:
        if not isinstance(run_id, str) or not run_id:
            raise InvalidInput(f"a run id is a non-empty string, got {run_id!r}")

    def search_runs(
        self,
        filter_string: str = "",
        *,
        experiments: Sequence[str | int] | str | int | None = None,
        order_by: Sequence[str] | str | None = None,
        max_results: int = 1000,
        page_token: str | None = None,
        view: ViewType | str = "active",
    ) -> RunPage:
        """Runs matching an MLflow-style filter, e.g. ``"metrics.acc > 0.9 and params.lr = '0.1'"``.

        ``experiments`` takes names or ids (all experiments if None); ``order_by`` e.g.
        ``["metrics.acc DESC"]``. Pass the returned page's ``next_token`` as ``page_token``
        for the next page. Raises SearchSyntaxError, InvalidPageToken, NotFound.
        """
        if not isinstance(filter_string, str):
            raise InvalidInput(f"filter_string must be text, got {type(filter_string).__name__}")
        ids: list[int] | None = None
        if experiments is not None:
            names = [experiments] if isinstance(experiments, str | int) else list(experiments)
            ids = [self.get_experiment(name).id for name in names]
        orders = [order_by] if isinstance(order_by, str) else list(order_by or ())
        page = self.store.search_runs(
            experiment_ids=ids,
            filter_string=filter_string,
            order_by=orders,
            max_results=max_results,
            page_token=page_token,
            view=_view(view),
        )
        return RunPage(page.items, page.next_token)

    # -- artifacts --------------------------------------------------------------------------
    def log_input(
        self, run_id: str, dataset: str | DatasetVersion, context: str = "training"
    ) -> DatasetVersion:
        """Record that a run read a dataset version (a record or ``name@vN``) in a role."""
        self._check_run_id(run_id)
        if isinstance(dataset, DatasetVersion):
            version = dataset
        elif isinstance(dataset, str):
            name, number = parse_ref(dataset)
            version = self.store.get_dataset_version(name, number, with_profile=False)
        else:
            raise InvalidInput(
                f"log_input takes a dataset version or a 'name@vN' reference, got "
                f"{type(dataset).__name__}"
            )
        self.store.log_run_inputs(run_id, [(version.id, context)], actor=self.settings.actor)
        return version

    def list_inputs(self, run_id: str) -> list[RunInput]:
        """The dataset versions a run read, with their roles."""
        return self.store.list_run_inputs(run_id)

    def log_artifact(
        self, run_id: str, local_path: str | Path, artifact_path: str | None = None
    ) -> ArtifactEntry:
        """Store a local file as ``artifact_path/<file name>`` of a run: blob, then reference."""
        path = Path(local_path)
        if not path.is_file():
            raise InvalidInput(
                f"cannot log {str(local_path)!r}: "
                + ("it is a folder; use log_artifacts" if path.is_dir() else "no such file"),
            )
        logical = self._logical(artifact_path, path.name)
        return self._record(run_id, [(logical, path)])[0]

    def log_artifacts(
        self, run_id: str, local_dir: str | Path, artifact_path: str | None = None
    ) -> list[ArtifactEntry]:
        """Store every file under a local folder, recursively and in one batch."""
        root = Path(local_dir)
        if not root.is_dir():
            raise InvalidInput(f"cannot log {str(local_dir)!r}: not a folder")
        files = sorted(p for p in root.rglob("*") if p.is_file())
        items = [(self._logical(artifact_path, p.relative_to(root).as_posix()), p) for p in files]
        return self._record(run_id, items) if items else []

    def log_bytes(self, run_id: str, data: bytes, artifact_file: str) -> ArtifactEntry:
        """Store bytes as the artifact ``artifact_file`` of a run."""
        logical = self._logical(None, artifact_file)
        self._writable_run(run_id)
        ref = self.artifacts.put_bytes(data)
        self.store.add_artifacts("run", run_id, [(logical, ref.digest, ref.size)])
        return ArtifactEntry(logical, ref.digest, ref.size, _now_ms())

    @staticmethod
    def _logical(prefix: str | None, name: str) -> str:
        from mloop.artifacts.paths import validate_artifact_path

        if prefix is not None and not isinstance(prefix, str):
            raise InvalidInput(f"artifact_path must be text, got {type(prefix).__name__}")
        full = f"{prefix.rstrip('/')}/{name}" if prefix else name
        return validate_artifact_path(full)

    def _writable_run(self, run_id: str) -> None:
        self._check_run_id(run_id)
        found = self.store.get_runs([run_id])
        if not found:
            raise NotFound(f"no run with id {run_id!r}", run_id=run_id)
        if found[0].lifecycle is Lifecycle.DELETED:
            raise InvalidState(f"run {run_id} is deleted; restore it before logging to it")

    def _record(self, run_id: str, items: list[tuple[str, Path]]) -> list[ArtifactEntry]:
        # Paths are validated (by the caller) and the run checked before any upload; the
        # references are recorded only once every blob is durable, so a crash in between
        # leaves, at worst, unreferenced blobs for gc — never a reference to a missing blob.
        self._writable_run(run_id)
        refs = self.artifacts.put_files([path for _, path in items])
        entries = [
            (logical, ref.digest, ref.size) for (logical, _), ref in zip(items, refs, strict=True)
        ]
        self.store.add_artifacts("run", run_id, entries)
        now = _now_ms()
        return [ArtifactEntry(path, digest, size, now) for path, digest, size in entries]

    def list_artifacts(self, run_id: str, prefix: str = "") -> list[ArtifactEntry]:
        """A run's artifacts whose path starts with ``prefix``, ordered by path."""
        self._check_run_id(run_id)
        if not self.store.get_runs([run_id]):
            raise NotFound(f"no run with id {run_id!r}", run_id=run_id)
        if not isinstance(prefix, str):
            raise InvalidInput(f"prefix must be text, got {type(prefix).__name__}")
        return self.store.list_artifacts("run", run_id, prefix)

    def download_artifacts(self, run_id: str, path: str = "", dest: str | Path = ".") -> Path:
        """Download one artifact, or every artifact under a folder path, verified; return where.

        A file lands at ``dest/<path>``; a folder at ``dest/<path>/…``; ``path=""`` downloads
        everything into ``dest``. Raises NotFound when nothing matches, DigestMismatch when a
        blob is corrupt (nothing is left at its destination).
        """
        from mloop.artifacts.paths import validate_artifact_path

        wanted = validate_artifact_path(path.rstrip("/")) if path else ""
        entries = self.list_artifacts(run_id, wanted)
        root = Path(dest)
        exact = [e for e in entries if e.path == wanted]
        if exact:
            target = root / wanted
            self.artifacts.download(exact[0].digest, target)
            return target
        under = [e for e in entries if not wanted or e.path.startswith(wanted + "/")]
        if not under:
            raise NotFound(
                f"run {run_id} has no artifact at {wanted!r}"
                + (" (it has none at all)" if not entries and not wanted else ""),
                run_id=run_id,
                path=wanted,
            )
        self.artifacts.download_many([(e.digest, root / e.path) for e in under])
        return root / wanted if wanted else root

    # -- maintenance ------------------------------------------------------------------------
    def reap_stale_runs(self) -> list[str]:
        """Mark RUNNING runs whose process died (or went silent) KILLED; return their ids."""
        return liveness.reap_stale_runs(self.store, self.settings)

    def gc(
        self, *, grace: float | None = None, dry_run: bool = False, purge_deleted: bool = False
    ) -> GcReport:
        """Delete blobs no record references and older than ``grace`` seconds.

        ``purge_deleted`` first purges soft-deleted runs for good (skipped in a dry run, whose
        report therefore counts only what is unreferenced now).
        """
        from mloop.artifacts.gc import collect_garbage

        if purge_deleted and not dry_run:
            self.purge_deleted_runs()
        grace_seconds = self.settings.gc_grace if grace is None else grace
        return collect_garbage(
            self.artifacts,
            self.store.referenced_digests,
            grace_seconds=grace_seconds,
            dry_run=dry_run,
        )

    def purge_deleted_runs(self) -> int:
        """Purge every soft-deleted run for good; return how many."""
        purged = 0
        while True:
            page = self.store.search_runs(view=ViewType.DELETED, max_results=1000)
            if not page.items:
                return purged
            done = self.store.purge_runs([r.id for r in page.items], actor=self.settings.actor)
            if not done:
                return purged
            purged += done

    def verify_audit(self) -> AuditReport:
        """Walk the audit log and check its hash chain."""
        from mloop.audit import verify

        return verify(self.store)

    def flush(self) -> None:
        """Return when everything logged through this client is stored; raise a failure."""
        self.writer.flush()
        self.writer.raise_pending()

    @property
    def active_runs(self) -> list[ActiveRun]:
        """Runs started by this client in this process and not ended yet."""
        with self._lock:
            return list(self._runs.values())

    def close(self, status: RunStatus | str = RunStatus.FINISHED) -> None:
        """End this process's active runs with ``status``, store everything, release the store."""
        if self._closed:
            return
        self._end_all(_status(status))
        self._closed = True
        self.writer.close()
        self.store.close()
        _clients.discard(self)

    def _end_all(self, status: RunStatus) -> None:
        pid = os.getpid()
        # Innermost first, so children end before their parents.
        for run in reversed(self.active_runs):
            if run._owner_pid != pid:
                continue  # a forked child must not end its parent's runs
            try:
                self.end_run(run, status)
            except Exception as exc:
                log.warning("mloop: ending run %s failed: %s", run.id, exc)


# -- interpreter exit ---------------------------------------------------------------------------
_clients: weakref.WeakSet[TrackingClient] = weakref.WeakSet()
_exit_status = RunStatus.FINISHED
_hooks_installed = False


def _excepthook(
    exc_type: type[BaseException], exc: BaseException, tb: TracebackType | None
) -> None:
    global _exit_status  # noqa: PLW0603 - the process's exit status, decided once
    _exit_status = RunStatus.KILLED if issubclass(exc_type, KeyboardInterrupt) else RunStatus.FAILED
    _previous_excepthook(exc_type, exc, tb)


_previous_excepthook = sys.excepthook


def _install_exit_hooks() -> None:
    global _hooks_installed, _previous_excepthook  # noqa: PLW0603
    if _hooks_installed:
        return
    _hooks_installed = True
    # An unhandled exception reaches sys.excepthook before atexit handlers run: remember it,
    # so that runs left open end FAILED rather than FINISHED.
    _previous_excepthook = sys.excepthook
    sys.excepthook = _excepthook
    atexit.register(_at_exit)


def _at_exit() -> None:
    for client in list(_clients):
        try:
            client._end_all(_exit_status)
            client.writer.close()
        except Exception as exc:  # pragma: no cover - nothing left to raise to
            log.warning("mloop: could not store everything at exit: %s", exc)
