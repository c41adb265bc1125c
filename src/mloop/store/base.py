"""The metadata store's interface, and the typed records it returns (defined in
:mod:`mloop.store.records`, re-exported here).

``MetadataStore`` is what every domain package uses to reach the database. One SQL
implementation (``sql.SqlStore``) writes each query once; ``sqlite.SQLiteStore`` and
``postgres.PostgresStore`` only supply engines and connection settings. The docstring of each
method names the ``MloopError`` subclasses it raises. Times are integer milliseconds since the
epoch (UTC). Every state-changing method takes the ``actor`` recorded in the audit log and writes
its audit event in the same transaction as the change.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Callable, Iterator, Mapping, Sequence
from typing import Any

from mloop.store.records import (
    AlertDelivery,
    AliasChange,
    ArtifactEntry,
    AuditEvent,
    Dataset,
    DatasetKind,
    DatasetVersion,
    Deployment,
    DeploymentChange,
    Episode,
    Experiment,
    Lifecycle,
    Metric,
    MetricRow,
    ModelRecord,
    ModelVersion,
    ModelVersionStatus,
    Monitor,
    MonitorReport,
    MonitorResult,
    NewDatasetVersion,
    NewModelVersion,
    Page,
    Policy,
    RegisteredModel,
    Run,
    RunEnd,
    RunInput,
    RunLiveness,
    RunStatus,
    Schedule,
    StepCacheEntry,
    TagRow,
    Targets,
    ValidationRecord,
    ViewType,
)

__all__ = [
    "AlertDelivery",
    "AliasChange",
    "ArtifactEntry",
    "AuditEvent",
    "Dataset",
    "DatasetKind",
    "DatasetVersion",
    "Deployment",
    "DeploymentChange",
    "Episode",
    "Experiment",
    "Lifecycle",
    "MetadataStore",
    "Metric",
    "MetricRow",
    "ModelRecord",
    "ModelVersion",
    "ModelVersionStatus",
    "Monitor",
    "MonitorReport",
    "MonitorResult",
    "NewDatasetVersion",
    "NewModelVersion",
    "Page",
    "Policy",
    "RegisteredModel",
    "Run",
    "RunEnd",
    "RunInput",
    "RunLiveness",
    "RunStatus",
    "Schedule",
    "StepCacheEntry",
    "TagRow",
    "Targets",
    "ValidationRecord",
    "ViewType",
]


class MetadataStore(ABC):
    """Experiments, runs, params, metrics, tags, artifact references and the audit log."""

    uri: str

    # -- experiments ------------------------------------------------------------------------
    @abstractmethod
    def create_experiment(
        self, name: str, *, actor: str, tags: dict[str, str] | None = None
    ) -> Experiment:
        """Create an experiment. Raises AlreadyExists if the name is taken (even if deleted)."""

    @abstractmethod
    def get_experiment(self, experiment_id: int) -> Experiment:
        """Return an experiment by id. Raises NotFound."""

    @abstractmethod
    def get_experiment_by_name(self, name: str) -> Experiment | None:
        """Return the experiment with this name, or None."""

    @abstractmethod
    def list_experiments(self, view: ViewType = ViewType.ACTIVE) -> list[Experiment]:
        """Return experiments in the given view, ordered by id."""

    @abstractmethod
    def rename_experiment(self, experiment_id: int, new_name: str, *, actor: str) -> Experiment:
        """Rename an experiment. Raises NotFound, AlreadyExists."""

    @abstractmethod
    def set_experiment_lifecycle(
        self, experiment_id: int, lifecycle: Lifecycle, *, actor: str
    ) -> Experiment:
        """Soft-delete or restore an experiment (its runs follow). Raises NotFound."""

    @abstractmethod
    def set_experiment_tags(self, experiment_id: int, tags: dict[str, str], *, actor: str) -> None:
        """Set (upsert) experiment tags. Raises NotFound."""

    # -- runs -------------------------------------------------------------------------------
    @abstractmethod
    def create_run(
        self,
        *,
        experiment_id: int,
        name: str,
        user: str,
        start_time: int,
        parent_id: str | None,
        host: str,
        pid: int,
        pid_started_at: int,
        tags: dict[str, str] | None,
        actor: str,
        run_id: str | None = None,
        artifacts: Sequence[tuple[str, str, int]] = (),
    ) -> Run:
        """Create a RUNNING run with its tags and (path, digest, size) artifact references in
        one transaction. Raises NotFound (experiment or parent), InvalidState (deleted
        experiment), AlreadyExists (run_id given and taken), Conflict (a path given twice)."""

    @abstractmethod
    def get_run(self, run_id: str) -> Run:
        """Return a run with params, tags and latest metrics. Raises NotFound."""

    @abstractmethod
    def get_runs(self, run_ids: Sequence[str]) -> list[Run]:
        """Return the runs that exist among ``run_ids``, in the order given."""

    @abstractmethod
    def find_run_ids(self, fragment: str, limit: int = 2) -> list[str]:
        """Ids of runs (any lifecycle) that start or end with ``fragment``, at most ``limit``.
        Raises InvalidInput unless the fragment is hexadecimal."""

    @abstractmethod
    def set_run_status(
        self, run_id: str, status: RunStatus, *, end_time: int | None, actor: str
    ) -> None:
        """Move a run to a status. Moving a terminal run to another status raises InvalidState;
        setting the status it already has is a no-op. Raises NotFound."""

    @abstractmethod
    def set_run_lifecycle(self, run_id: str, lifecycle: Lifecycle, *, actor: str) -> Run:
        """Soft-delete or restore a run. Raises NotFound."""

    @abstractmethod
    def heartbeat(self, run_ids: Sequence[str], now: int) -> None:
        """Record that the processes behind these RUNNING runs are alive."""

    @abstractmethod
    def list_running(self) -> list[RunLiveness]:
        """Every RUNNING run with what is needed to decide whether its process is alive."""

    @abstractmethod
    def write_batch(
        self,
        *,
        metrics: Sequence[MetricRow] = (),
        params: Sequence[TagRow] = (),
        tags: Sequence[TagRow] = (),
        end: RunEnd | None = None,
    ) -> None:
        """Write metric points, params and tags for any runs in one transaction: all or none.
        With ``end``, that run also moves to its final status in the same transaction (as
        ``set_run_status`` would, after recording ``end.artifacts`` as ``add_artifacts``
        would), so a finished run always has all its data. Raises Conflict (an artifact path
        already recorded with another digest) too.
        Raises NotFound (a run), InvalidState (a deleted run, or ``end`` on a run already in
        another final status), ParamConflict (a param already logged with another value; same
        value is a no-op)."""

    @abstractmethod
    def get_metric_history(self, run_id: str, key: str) -> list[Metric]:
        """All points of one metric of a run, ordered by step then timestamp. Raises NotFound."""

    @abstractmethod
    def search_runs(
        self,
        *,
        experiment_ids: Sequence[int] | None = None,
        filter_string: str = "",
        order_by: Sequence[str] = (),
        max_results: int = 1000,
        page_token: str | None = None,
        view: ViewType = ViewType.ACTIVE,
    ) -> Page[Run]:
        """Runs matching an MLflow-style filter (with OR and parentheses), ordered and paged.
        Raises SearchSyntaxError, InvalidPageToken, InvalidInput (max_results out of range)."""

    @abstractmethod
    def purge_runs(self, run_ids: Sequence[str], *, actor: str) -> int:
        """Delete deleted runs for good, with their params, metrics, tags and artifact
        references. Raises InvalidState if one is not deleted. Returns how many were purged."""

    # -- artifact references ----------------------------------------------------------------
    @abstractmethod
    def add_artifacts(
        self, owner_kind: str, owner_id: str, entries: Sequence[tuple[str, str, int]]
    ) -> None:
        """Record (path, digest, size) references. Re-adding a path with the same digest is a
        no-op; with another digest raises Conflict (recorded paths are immutable)."""

    @abstractmethod
    def list_artifacts(
        self, owner_kind: str, owner_id: str, prefix: str = ""
    ) -> list[ArtifactEntry]:
        """References of an owner whose path starts with ``prefix``, ordered by path."""

    @abstractmethod
    def referenced_digests(self, among: Sequence[str] | None = None) -> set[str]:
        """The digests some record references (what garbage collection must keep): all of
        them, or those of ``among``."""

    # -- datasets ---------------------------------------------------------------------------
    @abstractmethod
    def create_dataset_version(
        self, name: str, new: NewDatasetVersion, *, actor: str
    ) -> tuple[DatasetVersion, bool]:
        """Record a version of dataset ``name`` (created on first use) with the next version
        number, or return the version that already has this digest. Returns (version,
        created). Version numbers stay unique with concurrent writers. Raises InvalidName,
        InvalidInput, NotFound (a parent or the run)."""

    @abstractmethod
    def find_dataset_version(self, name: str, digest: str) -> DatasetVersion | None:
        """The version of ``name`` with this content digest, if there is one."""

    @abstractmethod
    def get_dataset_version(
        self, name: str, version: int | None = None, *, with_profile: bool = True
    ) -> DatasetVersion:
        """A version of a dataset (None: the newest). Raises NotFound."""

    @abstractmethod
    def get_dataset_versions_by_id(self, version_ids: Sequence[int]) -> list[DatasetVersion]:
        """Versions by id, in the order given (without profiles). Raises NotFound."""

    @abstractmethod
    def list_datasets(self) -> list[Dataset]:
        """Every dataset, by name, with its number of versions and newest version."""

    @abstractmethod
    def list_dataset_versions(self, name: str) -> list[DatasetVersion]:
        """The versions of a dataset, oldest first, without profiles. Raises NotFound."""

    @abstractmethod
    def set_dataset_version_tags(
        self, version_id: int, tags: dict[str, str], *, actor: str
    ) -> None:
        """Set (add or overwrite) tags of a version. Raises NotFound, InvalidName."""

    @abstractmethod
    def log_run_inputs(self, run_id: str, inputs: Sequence[tuple[int, str]], *, actor: str) -> None:
        """Record (version id, context) inputs of a run; re-logging one is a no-op. Raises
        NotFound, InvalidName (context)."""

    @abstractmethod
    def list_run_inputs(self, run_id: str) -> list[RunInput]:
        """The dataset versions a run read, in the order they were logged."""

    @abstractmethod
    def list_version_consumers(self, version_id: int) -> list[tuple[str, str]]:
        """(run id, context) of every run that read a version, oldest first."""

    @abstractmethod
    def add_validation_result(
        self,
        *,
        version_id: int | None,
        run_id: str | None,
        suite: str,
        success: bool,
        body: dict[str, Any],
        actor: str,
    ) -> ValidationRecord:
        """Store a validation result with a version and/or a run. Raises InvalidInput,
        NotFound."""

    @abstractmethod
    def list_validation_results(
        self, *, version_id: int | None = None, run_id: str | None = None
    ) -> list[ValidationRecord]:
        """Stored validation results of a version and/or a run, oldest first."""

    # -- model registry ---------------------------------------------------------------------
    @abstractmethod
    def create_registered_model(
        self, name: str, *, description: str = "", tags: dict[str, str] | None = None, actor: str
    ) -> RegisteredModel:
        """Create a registered model. Raises InvalidName, AlreadyExists."""

    @abstractmethod
    def get_registered_model(self, name: str) -> RegisteredModel:
        """A registered model with its tags, aliases and newest version. Raises NotFound."""

    @abstractmethod
    def list_registered_models(self) -> list[RegisteredModel]:
        """Every registered model, by name."""

    @abstractmethod
    def set_registered_model_tags(
        self, name: str, tags: dict[str, str], *, actor: str
    ) -> RegisteredModel:
        """Set (add or overwrite) tags of a registered model. Raises NotFound, InvalidName."""

    @abstractmethod
    def create_model_version(self, name: str, new: NewModelVersion, *, actor: str) -> ModelVersion:
        """Register a version of model ``name`` (created on first use) with the next number;
        numbers stay unique with concurrent writers. Raises InvalidName, InvalidInput,
        NotFound (the run)."""

    @abstractmethod
    def get_model_version(self, name: str, version: int) -> ModelVersion:
        """One version of a model. Raises NotFound."""

    @abstractmethod
    def resolve_model_version(
        self, name: str, *, version: int | None = None, alias: str | None = None
    ) -> ModelVersion:
        """The version of model ``name`` numbered ``version``, or behind ``alias``, or (neither
        given) its newest ready version, with its tags and aliases. Raises InvalidInput (a bad
        number, or both given), NotFound (no such model; no such version; no such alias, naming
        the known ones; no ready version)."""

    @abstractmethod
    def list_model_versions(self, name: str) -> list[ModelVersion]:
        """The versions of a model, oldest first (deleted ones included). Raises NotFound."""

    @abstractmethod
    def delete_model_version(self, name: str, version: int, *, actor: str) -> ModelVersion:
        """Mark a version deleted (its record stays, for lineage). Raises NotFound, and
        InvalidState while an alias points at it."""

    @abstractmethod
    def set_model_alias(
        self,
        name: str,
        alias: str,
        version: int | None,
        *,
        reason: str = "",
        actor: str,
        check: Callable[[dict[str, Any], list[ModelRecord]], None] | None = None,
    ) -> AliasChange:
        """Point ``alias`` at a ready version (None: remove it) and record the move. When the
        alias has a policy, ``check(policy, records of the version)`` runs first in the same
        transaction and may raise to refuse the move. Raises NotFound, InvalidName,
        InvalidState (a deleted version), and whatever ``check`` raises."""

    @abstractmethod
    def list_alias_history(self, name: str, alias: str | None = None) -> list[AliasChange]:
        """Every move of a model's aliases (or of one), oldest first. Raises NotFound."""

    @abstractmethod
    def add_model_record(
        self,
        name: str,
        version: int,
        *,
        kind: str,
        subject: str,
        passed: bool | None,
        body: dict[str, Any],
        actor: str,
    ) -> ModelRecord:
        """Record an evaluation, gate decision or approval about a version. Raises NotFound,
        InvalidInput."""

    @abstractmethod
    def list_model_records(
        self, name: str, version: int | None = None, kind: str | None = None
    ) -> list[ModelRecord]:
        """Records of a model (or of one version), optionally of one kind, oldest first."""

    @abstractmethod
    def set_alias_policy(
        self, name: str, alias: str, policy: dict[str, Any] | None, *, actor: str
    ) -> None:
        """Set (None: remove) what moving ``alias`` requires. Raises NotFound, InvalidName."""

    @abstractmethod
    def get_alias_policy(self, name: str, alias: str) -> dict[str, Any] | None:
        """The policy of an alias, if one is set."""

    # -- pipelines --------------------------------------------------------------------------
    @abstractmethod
    def put_step_cache(self, entry: StepCacheEntry) -> None:
        """Record (or replace) a cached step result. Raises NotFound (the run), InvalidInput."""

    @abstractmethod
    def get_step_cache(self, cache_key: str, *, now: int) -> StepCacheEntry | None:
        """The cached result for a key, unless missing or expired at ``now``."""

    @abstractmethod
    def latest_step_cache(self, step: str) -> StepCacheEntry | None:
        """The newest cached result of a step (any key), to explain why it ran again."""

    @abstractmethod
    def create_schedule(
        self,
        name: str,
        *,
        pipeline: str,
        cron: str,
        tz: str,
        params: dict[str, Any],
        next_fire_at: int,
        actor: str,
    ) -> Schedule:
        """Create an enabled schedule. Raises InvalidName, AlreadyExists, InvalidInput."""

    @abstractmethod
    def get_schedule(self, name: str) -> Schedule:
        """A schedule by name. Raises NotFound."""

    @abstractmethod
    def list_schedules(self) -> list[Schedule]:
        """Every schedule, by name."""

    @abstractmethod
    def set_schedule_enabled(
        self, name: str, enabled: bool, *, next_fire_at: int | None = None, actor: str
    ) -> Schedule:
        """Enable or disable a schedule (re-enabling sets when it fires next). Raises NotFound."""

    @abstractmethod
    def delete_schedule(self, name: str, *, actor: str) -> None:
        """Delete a schedule. Raises NotFound."""

    @abstractmethod
    def claim_due_schedules(
        self, owner: str, *, now: int, lease_ms: int, limit: int = 100
    ) -> list[Schedule]:
        """Take the lease of enabled schedules due at ``now`` whose lease is free or expired,
        in one conditional update, and return them: two schedulers never hold one at once."""

    @abstractmethod
    def renew_schedule_lease(self, schedule_id: int, owner: str, *, lease_until: int) -> bool:
        """Extend a held lease to ``lease_until``; False if ``owner`` no longer holds it."""

    @abstractmethod
    def finish_schedule_fire(
        self, schedule_id: int, owner: str, *, fired_at: int, next_fire_at: int,
        run_id: str | None, actor: str,
    ) -> bool:  # fmt: skip
        """Record a fire and release the lease, if ``owner`` still holds it; returns whether
        it did (False: the lease expired and another scheduler may have taken it)."""

    # -- deployments ------------------------------------------------------------------------
    @abstractmethod
    def create_deployment(
        self,
        name: str,
        *,
        model: str,
        alias: str | None = None,
        version: int | None = None,
        actor: str,
    ) -> Deployment:
        """Create a deployment of registered ``model`` that follows ``alias`` or is pinned to
        ``version`` (exactly one), at revision 1. Raises InvalidName (the name or alias),
        InvalidInput (both or neither given, a bad number), AlreadyExists, NotFound (the model,
        the version, the alias), InvalidState (a deleted version)."""

    @abstractmethod
    def update_deployment(
        self,
        name: str,
        changes: Mapping[str, Any],
        *,
        action: str,
        actor: str,
        expected_revision: int | None = None,
        undoes: int | None = None,
        reason: str = "",
    ) -> Deployment:
        """Set some of the fields ``alias, version, canary_version, canary_percent,
        shadow_version, sticky_key`` as one change named ``action`` (``pinned``, ``followed``,
        ``canary_set``, ``canary_cleared``, ``canary_promoted``, ``shadow_set``,
        ``shadow_cleared``, ``rolled_back``, which names the revision it ``undoes``): the whole
        new state is checked, the revision goes up by one, and the state before and after is
        recorded in the history and the audit log. A change that changes nothing (other than a
        rollback) is not recorded and returns the deployment as it is. Raises NotFound (the
        deployment, a version, the alias), InvalidInput (an unknown field or action; a percent
        outside 0-100; a canary or shadow that is the primary version, except for a rollback;
        a percent or sticky key without a canary), InvalidName (the alias), InvalidState (a
        deleted version), Conflict (the revision is not ``expected_revision``)."""

    @abstractmethod
    def delete_deployment(self, name: str, *, actor: str) -> None:
        """Delete a deployment and its history (its audit events stay). Raises NotFound."""

    @abstractmethod
    def get_deployment(self, name: str) -> Deployment:
        """A deployment by name. Raises NotFound."""

    @abstractmethod
    def list_deployments(self) -> list[Deployment]:
        """Every deployment, by name."""

    @abstractmethod
    def list_deployment_history(self, name: str) -> list[DeploymentChange]:
        """Every change of a deployment, oldest first. Raises NotFound."""

    @abstractmethod
    def resolve_deployment(self, name: str) -> Targets:
        """The model versions a deployment serves now (its alias resolved), in at most two
        queries: cheap enough to poll every second. A canary or shadow that is the primary
        version is left out. Raises NotFound (the deployment; its alias points nowhere),
        InvalidState (a version it serves was deleted)."""

    # -- monitors ---------------------------------------------------------------------------
    @abstractmethod
    def create_monitor(
        self,
        name: str,
        *,
        deployment: str,
        reference: str,
        reference_version_id: int,
        window: str,
        config: dict[str, Any],
        reference_digest: str,
        reference_size: int,
        actor: str,
    ) -> Monitor:
        """Create a monitor of ``deployment`` with its settings and reference blob (kept as an
        artifact of owner kind ``monitor``), audited as ``monitor.created``. Raises InvalidName,
        AlreadyExists, NotFound (the reference version), InvalidInput (config not JSON)."""

    @abstractmethod
    def update_monitor_reference(
        self,
        name: str,
        *,
        expect_digest: str,
        config: dict[str, Any],
        event: str,
        detail: dict[str, Any],
        actor: str,
        reference: tuple[str, int, str, int] | None = None,
    ) -> Monitor | None:
        """Replace a monitor's config and, with ``reference`` (dataset ref, dataset version
        id, blob digest, blob size), its reference (the new blob under a new artifact path), if
        its blob is still ``expect_digest``; audited as ``event``. None when another process
        changed it first. Raises NotFound, InvalidInput (config not JSON)."""

    @abstractmethod
    def get_monitor(self, name: str) -> Monitor:
        """A monitor by name. Raises NotFound."""

    @abstractmethod
    def list_monitors(self, deployment: str | None = None) -> list[Monitor]:
        """Every monitor (of one deployment, when given), by name."""

    @abstractmethod
    def delete_monitor(self, name: str, *, actor: str) -> None:
        """Delete a monitor with its reports and results; audited as ``monitor.deleted``.
        Raises NotFound."""

    @abstractmethod
    def add_monitor_report(
        self,
        name: str,
        *,
        window_start_ms: int,
        window_end_ms: int,
        rows: int,
        labelled_rows: int,
        status: str,
        alerts: Sequence[dict[str, str]],
        summary: dict[str, Any],
        results: Sequence[MonitorResult],
    ) -> MonitorReport | None:
        """Store a window's report and its results in one transaction; None (nothing written)
        when the window (by its start) was already reported. Non-finite numbers are stored as
        None. Raises NotFound, InvalidInput (status, bounds, duplicate results)."""

    @abstractmethod
    def list_monitor_reports(
        self,
        name: str,
        *,
        since_ms: int | None = None,
        limit: int | None = None,
        newest_first: bool = False,
        with_results: bool = False,
    ) -> list[MonitorReport]:
        """A monitor's reports by window start (oldest first unless ``newest_first``), those
        ending after ``since_ms``, at most ``limit``, with their results when asked. Raises
        NotFound."""

    @abstractmethod
    def list_monitor_results(
        self,
        name: str,
        *,
        check: str | None = None,
        feature: str | None = None,
        since_ms: int | None = None,
    ) -> list[MonitorResult]:
        """Per-feature results over time (by window, then check, feature, statistic), of one
        check and/or feature when given, of windows ending after ``since_ms``. Raises
        NotFound."""

    # -- loop: policies and episodes --------------------------------------------------------
    @abstractmethod
    def create_policy(
        self, name: str, *, deployment: str, config: Mapping[str, Any], actor: str
    ) -> Policy:
        """Create an enabled policy of ``deployment`` with its ``config`` (JSON). Raises
        InvalidName, AlreadyExists, InvalidInput (config not JSON)."""

    @abstractmethod
    def get_policy(self, name: str) -> Policy:
        """A policy by name. Raises NotFound."""

    @abstractmethod
    def list_policies(self, deployment: str | None = None) -> list[Policy]:
        """Every policy (of ``deployment`` when given), by name."""

    @abstractmethod
    def delete_policy(self, name: str, *, actor: str) -> None:
        """Delete a policy, its episodes, consumed reports and deliveries (audit events stay).
        Raises NotFound, InvalidState (an episode is open)."""

    @abstractmethod
    def pending_reports(self, policy: str, *, limit: int = 1000) -> list[MonitorReport]:
        """The reports of the monitors of the policy's deployment, made since the policy was
        created and not consumed by it yet, oldest window first, at most ``limit`` (without
        per-feature results). Raises NotFound (the policy)."""

    @abstractmethod
    def unconsumed_reports(self, policy_id: int, report_ids: Sequence[int]) -> list[int]:
        """The ids among ``report_ids`` the policy has not consumed yet, in order."""

    @abstractmethod
    def record_trigger(
        self,
        policy: str,
        *,
        considered: Sequence[int],
        trigger: Sequence[int],
        events: Sequence[str],
        reason: str,
        detail: Mapping[str, Any] | None = None,
        now: int,
        actor: str,
    ) -> Episode | None:
        """In one transaction: consume the reports (each at most once per policy) and, when
        some of ``trigger`` are new, the policy enabled, without an open episode and past its
        cool-down, open an episode (audited) for them; None when nothing started. Raises
        NotFound (the policy)."""

    @abstractmethod
    def get_episode(self, episode_id: int) -> Episode:
        """An episode by id. Raises NotFound."""

    @abstractmethod
    def list_episodes(
        self, policy: str | None = None, *, open_only: bool = False, limit: int | None = None
    ) -> list[Episode]:
        """Episodes newest first (of ``policy``; open ones only). Raises NotFound (policy)."""

    @abstractmethod
    def claim_episode(
        self, episode_id: int, owner: str, *, now: int, lease_ms: int
    ) -> Episode | None:
        """Take an open episode's lease if free, expired or ``owner``'s (one conditional
        update); None otherwise. Raises InvalidInput (a bad owner or lease)."""

    @abstractmethod
    def renew_episode_lease(self, episode_id: int, owner: str, *, lease_until: int) -> bool:
        """Extend a held lease; False if ``owner`` no longer holds it."""

    @abstractmethod
    def release_episode(self, episode_id: int, owner: str) -> None:
        """Give an episode's lease back if ``owner`` holds it."""

    @abstractmethod
    def update_episode(
        self,
        episode_id: int,
        owner: str,
        *,
        expect_state: str,
        state: str,
        reason: str,
        step: int | None = None,
        detail: Mapping[str, Any] | None = None,
        pipeline_run_id: str | None = None,
        candidate_version: int | None = None,
        restart_clock: bool = True,
        now: int,
        actor: str,
    ) -> Episode:
        """Move an episode from ``expect_state`` to ``state`` under ``owner``'s lease (audited,
        with its report ids); an end state closes it and starts the policy's cool-down.
        Raises NotFound, Conflict (lease lost or state moved), InvalidInput (unknown state)."""

    @abstractmethod
    def add_alert_delivery(
        self,
        policy: str,
        *,
        episode_id: int | None,
        event: str,
        url: str,
        status: str,
        attempts: int,
        http_status: int | None,
        error: str | None,
    ) -> AlertDelivery:
        """Record one webhook delivery. Raises NotFound (policy), InvalidInput (status)."""

    @abstractmethod
    def list_alert_deliveries(self, policy: str) -> list[AlertDelivery]:
        """A policy's webhook deliveries, oldest first. Raises NotFound."""

    # -- audit ------------------------------------------------------------------------------
    @abstractmethod
    def append_audit(
        self,
        *,
        actor: str,
        action: str,
        object_type: str,
        object_id: str,
        before: dict[str, Any] | None,
        after: dict[str, Any] | None,
    ) -> AuditEvent:
        """Append one event (for changes not made through another store method)."""

    @abstractmethod
    def iter_audit(self, after_seq: int = 0, batch: int = 1000) -> Iterator[AuditEvent]:
        """Every audit event with seq > after_seq, in order, fetched in batches."""

    @abstractmethod
    def audit_head(self) -> tuple[int, str] | None:
        """The (seq, hash) the head row records, or None for an empty log."""

    # -- lifecycle --------------------------------------------------------------------------
    @abstractmethod
    def schema_revision(self) -> str | None:
        """The Alembic revision the database is at (None before the first migration)."""

    @abstractmethod
    def close(self) -> None:
        """Release connections."""
