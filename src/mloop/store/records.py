"""The typed records the metadata store returns and takes (see :mod:`mloop.store.base`).

Plain frozen dataclasses and enums: the domain packages pass these between each other, never
rows or ORM objects. Times are integer milliseconds since the epoch (UTC).
"""

from __future__ import annotations

import enum
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any, Generic, TypeVar

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

T = TypeVar("T")

#: (run_id, key, value, step, timestamp_ms) — tuples, not objects, on the hot write path.
MetricRow = tuple[str, str, float, int, int]
#: (run_id, key, value) for params and tags.
TagRow = tuple[str, str, str]


class RunStatus(enum.StrEnum):
    """Where a run is in its life. Only RUNNING is not terminal."""

    RUNNING = "RUNNING"
    FINISHED = "FINISHED"
    FAILED = "FAILED"
    KILLED = "KILLED"

    @property
    def is_terminal(self) -> bool:
        """True for FINISHED, FAILED and KILLED."""
        return self is not RunStatus.RUNNING


class Lifecycle(enum.StrEnum):
    """Soft deletion: a deleted object is hidden by default and can be restored."""

    ACTIVE = "active"
    DELETED = "deleted"


class ViewType(enum.StrEnum):
    """Which lifecycle a listing shows."""

    ACTIVE = "active"
    DELETED = "deleted"
    ALL = "all"


@dataclass(frozen=True, slots=True)
class Experiment:
    """A named group of runs."""

    id: int
    name: str
    lifecycle: Lifecycle
    created_at: int
    updated_at: int
    tags: dict[str, str] = field(default_factory=dict)


@dataclass(frozen=True, slots=True)
class Run:
    """One execution, with its params, tags and the latest value of each metric."""

    id: str
    experiment_id: int
    name: str
    status: RunStatus
    lifecycle: Lifecycle
    user: str
    start_time: int
    end_time: int | None
    parent_id: str | None
    heartbeat_at: int
    host: str
    pid: int
    params: dict[str, str] = field(default_factory=dict)
    metrics: dict[str, float] = field(default_factory=dict)
    tags: dict[str, str] = field(default_factory=dict)


@dataclass(frozen=True, slots=True)
class Metric:
    """One point of a metric's history."""

    key: str
    value: float
    step: int
    timestamp: int


@dataclass(frozen=True, slots=True)
class RunEnd:
    """A run's move to its final status, written with the run's last batch of data;
    ``artifacts`` are (path, digest, size) references recorded in that transaction too."""

    run_id: str
    status: RunStatus
    end_time: int
    actor: str
    artifacts: tuple[tuple[str, str, int], ...] = ()


@dataclass(frozen=True, slots=True)
class RunLiveness:
    """What the stale-run reaper needs to decide whether a RUNNING run's process is alive."""

    run_id: str
    host: str
    pid: int
    pid_started_at: int
    heartbeat_at: int


@dataclass(frozen=True, slots=True)
class ArtifactEntry:
    """A logical path inside an owner (a run, later a model version or dataset) and its blob."""

    path: str
    digest: str
    size: int
    created_at: int


@dataclass(frozen=True, slots=True)
class AuditEvent:
    """One entry of the append-only, hash-chained audit log."""

    seq: int
    ts: int
    actor: str
    action: str
    object_type: str
    object_id: str
    before: dict[str, Any] | None
    after: dict[str, Any] | None
    prev_hash: str
    hash: str


class DatasetKind(enum.StrEnum):
    """What a dataset version holds: one table (stored as Parquet) or a folder of files."""

    TABLE = "table"
    FILES = "files"


@dataclass(frozen=True, slots=True)
class Dataset:
    """A named series of dataset versions."""

    id: int
    name: str
    description: str
    created_at: int
    updated_at: int
    versions: int = 0
    latest: int | None = None


@dataclass(frozen=True, slots=True)
class DatasetVersion:
    """One immutable version of a dataset, named by the digest of its canonical content.

    ``storage_digest`` is the blob holding it (the Parquet file of a table, the manifest of a
    folder); ``schema`` lists ``{"name", "type", "nullable"}`` per column of a table;
    ``profile`` is the stored column profile (None in listings and for folders); ``parents``
    are the ``name@vN`` references of the versions it was made from; ``run_id`` is the run
    that produced it.
    """

    id: int
    dataset: str
    version: int
    digest: str
    kind: DatasetKind
    storage_digest: str
    schema: list[dict[str, Any]] | None
    num_rows: int | None
    num_files: int | None
    size: int
    run_id: str | None
    description: str
    created_at: int
    created_by: str
    tags: dict[str, str] = field(default_factory=dict)
    parents: tuple[str, ...] = ()
    profile: dict[str, Any] | None = None

    @property
    def ref(self) -> str:
        """The version's reference, ``name@vN``."""
        return f"{self.dataset}@v{self.version}"


@dataclass(frozen=True, slots=True)
class NewDatasetVersion:
    """What the store records for a new dataset version; blobs must already be stored.

    ``files`` are the (path, digest, size) blobs the version needs, recorded as its artifact
    references so that garbage collection keeps them; ``parents`` are version ids.
    """

    digest: str
    kind: DatasetKind
    storage_digest: str
    size: int
    files: Sequence[tuple[str, str, int]]
    schema: list[dict[str, Any]] | None = None
    num_rows: int | None = None
    num_files: int | None = None
    profile: dict[str, Any] | None = None
    parents: Sequence[int] = ()
    run_id: str | None = None
    description: str = ""
    tags: dict[str, str] = field(default_factory=dict)


@dataclass(frozen=True, slots=True)
class RunInput:
    """A dataset version a run read, and in which role (``training``, ``evaluation``, …)."""

    run_id: str
    version: DatasetVersion
    context: str
    created_at: int


@dataclass(frozen=True, slots=True)
class ValidationRecord:
    """A stored validation result, kept with a dataset version, a run, or both."""

    id: int
    version_id: int | None
    run_id: str | None
    suite: str
    success: bool
    body: dict[str, Any]
    created_at: int
    created_by: str


class ModelVersionStatus(enum.StrEnum):
    """Whether a model version can be used (``ready``) or was deleted (kept for lineage)."""

    READY = "ready"
    DELETED = "deleted"


@dataclass(frozen=True, slots=True)
class RegisteredModel:
    """A named model: its versions, tags and aliases (alias → version number)."""

    id: int
    name: str
    description: str
    created_at: int
    updated_at: int
    tags: dict[str, str] = field(default_factory=dict)
    aliases: dict[str, int] = field(default_factory=dict)
    latest_version: int | None = None


@dataclass(frozen=True, slots=True)
class ModelVersion:
    """One registered, packaged model: its package digest, flavor, signature and source run."""

    id: int
    model: str
    version: int
    package_digest: str
    flavor: str
    signature: dict[str, Any] | None
    run_id: str | None
    status: ModelVersionStatus
    description: str
    created_at: int
    created_by: str
    tags: dict[str, str] = field(default_factory=dict)
    aliases: tuple[str, ...] = ()

    @property
    def uri(self) -> str:
        """The version's URI, ``models:/name/N``."""
        return f"models:/{self.model}/{self.version}"


@dataclass(frozen=True, slots=True)
class NewModelVersion:
    """What the store records for a new model version; its files must already be stored.

    ``files`` are the (path, digest, size) blobs of the packaged model folder.
    """

    package_digest: str
    flavor: str
    files: Sequence[tuple[str, str, int]]
    signature: dict[str, Any] | None = None
    run_id: str | None = None
    description: str = ""
    tags: dict[str, str] = field(default_factory=dict)


@dataclass(frozen=True, slots=True)
class AliasChange:
    """One move of an alias: to ``version`` (None: removed) from ``previous``."""

    id: int
    model: str
    alias: str
    version: int | None
    previous: int | None
    reason: str
    at: int
    actor: str


@dataclass(frozen=True, slots=True)
class ModelRecord:
    """Something recorded about a model version: an evaluation, a gate decision, an approval."""

    id: int
    model: str
    version: int
    kind: str
    subject: str
    passed: bool | None
    body: dict[str, Any]
    created_at: int
    created_by: str


@dataclass(frozen=True, slots=True)
class StepCacheEntry:
    """A cached step result: the key, what went into it, and the recorded outputs."""

    cache_key: str
    step: str
    run_id: str
    parts: dict[str, Any]
    outputs: list[dict[str, Any]]
    created_at: int
    expires_at: int | None = None


@dataclass(frozen=True, slots=True)
class Schedule:
    """A cron schedule of a pipeline, with when it fires next and who holds its lease."""

    id: int
    name: str
    pipeline: str
    cron: str
    tz: str
    params: dict[str, Any]
    enabled: bool
    next_fire_at: int
    last_fired_at: int | None
    last_run_id: str | None
    lease_owner: str | None
    lease_until: int | None
    created_at: int
    updated_at: int


@dataclass(frozen=True, slots=True)
class Deployment:
    """What a serving endpoint serves: a model version pinned by number or followed through an
    alias (exactly one of ``alias`` and ``version`` is set), an optional canary version taking
    ``canary_percent`` (0-100) of the traffic, sticky by the value of the request header
    ``sticky_key`` (None: no header), and an optional shadow version that sees every request.
    ``revision`` goes up by one per change."""

    name: str
    model: str
    alias: str | None
    version: int | None
    canary_version: int | None
    canary_percent: float
    shadow_version: int | None
    sticky_key: str | None
    revision: int
    created_at: int
    updated_at: int

    @property
    def model_uri(self) -> str:
        """The primary as a model URI: ``models:/name@alias`` or ``models:/name/N``."""
        if self.alias is not None:
            return f"models:/{self.model}@{self.alias}"
        return f"models:/{self.model}/{self.version}"


@dataclass(frozen=True, slots=True)
class DeploymentChange:
    """One change of a deployment: its state ``before`` and ``after`` (the fields of
    :class:`Deployment` that can change, plus ``alias_version``: where the followed alias
    pointed then); ``before`` is empty for the creation. A rollback names the revision it
    undid in ``undoes``."""

    deployment: str
    revision: int
    action: str
    before: dict[str, Any]
    after: dict[str, Any]
    actor: str
    at: int
    undoes: int | None = None


@dataclass(frozen=True, slots=True)
class Targets:
    """The model versions a deployment serves right now, with its alias resolved.

    ``canary`` and ``shadow`` are None when unset or when they are the primary version (the
    alias moved onto them); ``alias_version`` is the followed alias's version (None when
    pinned). ``revision`` and ``alias_version`` together tell whether anything changed."""

    primary: ModelVersion
    canary: ModelVersion | None
    canary_percent: float
    shadow: ModelVersion | None
    revision: int
    alias_version: int | None
    sticky_key: str | None = None


@dataclass(frozen=True, slots=True)
class Page(Generic[T]):
    """One page of results and the token for the next page (None on the last page)."""

    items: list[T]
    next_token: str | None = None


@dataclass(frozen=True, slots=True)
class Monitor:
    """A monitor of a deployment's prediction log: its reference dataset version, its window
    (``"1h"``, ``"10000 rows"``), the checks it runs with their settings (``config``) and the
    digest of what was computed once from the reference (``reference_digest``)."""

    id: int
    name: str
    deployment: str
    reference: str
    window: str
    config: dict[str, Any]
    reference_digest: str
    created_at: int
    created_by: str

    @property
    def checks(self) -> list[str]:
        """The checks this monitor runs, in order."""
        return list(self.config.get("checks", []))


@dataclass(frozen=True, slots=True)
class MonitorResult:
    """One check's result on one feature (or metric) in one window: the statistic, its value,
    threshold and p-value (None when not applicable or not finite) and whether it drifted (or
    failed). ``report_id`` and the window are filled in when read back."""

    check: str
    feature: str
    statistic: str
    value: float | None = None
    threshold: float | None = None
    p_value: float | None = None
    drifted: bool | None = None
    report_id: int = 0
    window_start_ms: int = 0
    window_end_ms: int = 0


@dataclass(frozen=True, slots=True)
class MonitorReport:
    """One evaluated window of a monitor (``window_start_ms <= ts < window_end_ms``): status
    ``ok``, ``alert``, ``no_data`` or ``error``, the alerts (``{"check", "reason"}``) and a
    summary per check. Its per-feature results are :class:`MonitorResult` rows."""

    id: int
    monitor: str
    window_start_ms: int
    window_end_ms: int
    rows: int
    labelled_rows: int
    status: str
    alerts: list[dict[str, str]]
    summary: dict[str, Any]
    created_at: int
    results: tuple[MonitorResult, ...] = ()


@dataclass(frozen=True, slots=True)
class Policy:
    """A policy of a deployment: which monitor events start an episode and what the episode
    does (``config``: ``on``, ``retrain``, ``retrain_params``, ``gate``, ``rollout``,
    ``alert``, ``cooldown_ms`` and the data options). ``cooldown_until`` is when the cool-down
    after its last episode ends (None: never had one)."""

    id: int
    name: str
    deployment: str
    config: dict[str, Any]
    enabled: bool
    cooldown_until: int | None
    created_at: int
    created_by: str
    updated_at: int

    @property
    def on(self) -> list[str]:
        """The events that start an episode."""
        return list(self.config.get("on", []))


@dataclass(frozen=True, slots=True)
class Episode:
    """One episode of a policy, from the reports that triggered it to its end.

    ``state``: ``triggered``, ``retraining``, ``gating``, ``rolling_out`` (``step`` is the
    index of the canary step), then ``promoted``, ``rolled_back``, ``rejected`` or ``failed``.
    ``detail`` holds what each stage decided (data window, gate decision, health checks);
    ``reason`` says why the episode is where it is."""

    id: int
    policy: str
    policy_id: int
    state: str
    step: int
    events: list[str]
    report_ids: list[int]
    reason: str
    detail: dict[str, Any]
    pipeline_run_id: str | None
    candidate_version: int | None
    lease_owner: str | None
    lease_until: int | None
    started_at: int
    step_started_at: int
    updated_at: int
    ended_at: int | None

    @property
    def is_open(self) -> bool:
        """Whether the episode has not ended yet."""
        return self.ended_at is None


@dataclass(frozen=True, slots=True)
class AlertDelivery:
    """One webhook alert of a policy: ``sent`` or ``failed`` after ``attempts`` tries."""

    id: int
    policy: str
    episode_id: int | None
    event: str
    url: str
    status: str
    attempts: int
    http_status: int | None
    error: str | None
    at: int
