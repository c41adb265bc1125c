"""Every table of the metadata store, in SQLAlchemy Core, with named indexes.

The Alembic migrations under ``migrations/versions`` build exactly this schema; a test compares
the two, so a change here without a migration fails the suite. Params and tags have no
``(key, value)`` index: search filters compile to correlated EXISTS probes served by the
``(run_id, key)`` primary key, and PostgreSQL caps btree rows at ~2.7 kB, which long values
would exceed. Times are integer milliseconds
since the epoch (UTC). NaN metric values are stored as NULL with ``is_nan`` set, because SQLite
turns NaN into NULL on its own; infinities are stored as themselves.
"""

from __future__ import annotations

from sqlalchemy import (
    BigInteger,
    Boolean,
    Column,
    Float,
    ForeignKey,
    Index,
    Integer,
    MetaData,
    String,
    Table,
    Text,
    UniqueConstraint,
)

__all__ = [
    "alert_deliveries",
    "alias_history",
    "alias_policies",
    "artifacts",
    "audit_events",
    "audit_head",
    "dataset_version_parents",
    "dataset_version_tags",
    "dataset_versions",
    "datasets",
    "deployment_history",
    "deployments",
    "episodes",
    "experiment_tags",
    "experiments",
    "latest_metrics",
    "metadata",
    "metrics",
    "model_aliases",
    "model_version_records",
    "model_version_tags",
    "model_versions",
    "monitor_reports",
    "monitor_results",
    "monitors",
    "params",
    "policies",
    "policy_reports",
    "registered_model_tags",
    "registered_models",
    "run_inputs",
    "runs",
    "schedules",
    "step_cache",
    "tags",
    "validation_results",
]

NAMING = {
    "ix": "ix_%(table_name)s_%(column_0_N_name)s",
    "uq": "uq_%(table_name)s_%(column_0_N_name)s",
    "ck": "ck_%(table_name)s_%(constraint_name)s",
    "fk": "fk_%(table_name)s_%(column_0_name)s_%(referred_table_name)s",
    "pk": "pk_%(table_name)s",
}

metadata = MetaData(naming_convention=NAMING)

# Tables keyed by a text or composite primary key are created with sqlite_with_rowid=False:
# SQLite keeps their rows in that key's B-tree (one tree instead of a rowid table plus an index,
# so fewer pages written per commit); other databases ignore the option.

# SQLite only autoincrements an INTEGER PRIMARY KEY (the rowid); PostgreSQL wants BIGINT.
AutoId = BigInteger().with_variant(Integer, "sqlite")

KEY_LEN = 250
NAME_LEN = 256
RUN_ID_LEN = 32
DIGEST_LEN = 64
PATH_LEN = 1024


def _tag_table(name: str, owner_column: str, owner_table: str) -> Table:
    """A (owner, key) → value table whose rows go with their owner's."""
    return Table(
        name,
        metadata,
        Column(
            owner_column,
            AutoId,
            ForeignKey(f"{owner_table}.id", ondelete="CASCADE"),
            primary_key=True,
        ),
        Column("key", String(KEY_LEN), primary_key=True),
        Column("value", Text, nullable=False),
        sqlite_with_rowid=False,
    )


experiments = Table(
    "experiments",
    metadata,
    Column("id", AutoId, primary_key=True, autoincrement=True),
    Column("name", String(NAME_LEN), nullable=False),
    Column("lifecycle", String(16), nullable=False),
    Column("created_at", BigInteger, nullable=False),
    Column("updated_at", BigInteger, nullable=False),
    UniqueConstraint("name"),
)

experiment_tags = _tag_table("experiment_tags", "experiment_id", "experiments")

runs = Table(
    "runs",
    metadata,
    Column("id", String(RUN_ID_LEN), primary_key=True),
    Column("experiment_id", AutoId, ForeignKey("experiments.id"), nullable=False),
    Column("name", String(NAME_LEN), nullable=False),
    Column("status", String(16), nullable=False),
    Column("lifecycle", String(16), nullable=False),
    Column("user", String(NAME_LEN), nullable=False),
    Column("start_time", BigInteger, nullable=False),
    Column("end_time", BigInteger, nullable=True),
    Column("parent_id", String(RUN_ID_LEN), ForeignKey("runs.id"), nullable=True),
    Column("heartbeat_at", BigInteger, nullable=False),
    Column("host", String(NAME_LEN), nullable=False),
    Column("pid", Integer, nullable=False),
    Column("pid_started_at", BigInteger, nullable=False),
    Index(None, "experiment_id", "start_time"),
    Index(None, "status"),
    Index(None, "parent_id"),
    sqlite_with_rowid=False,
)

params = Table(
    "params",
    metadata,
    Column(
        "run_id", String(RUN_ID_LEN), ForeignKey("runs.id", ondelete="CASCADE"), primary_key=True
    ),
    Column("key", String(KEY_LEN), primary_key=True),
    Column("value", Text, nullable=False),
    sqlite_with_rowid=False,
)

tags = Table(
    "tags",
    metadata,
    Column(
        "run_id", String(RUN_ID_LEN), ForeignKey("runs.id", ondelete="CASCADE"), primary_key=True
    ),
    Column("key", String(KEY_LEN), primary_key=True),
    Column("value", Text, nullable=False),
    sqlite_with_rowid=False,
)

metrics = Table(
    "metrics",
    metadata,
    Column("id", AutoId, primary_key=True, autoincrement=True),
    Column("run_id", String(RUN_ID_LEN), ForeignKey("runs.id", ondelete="CASCADE"), nullable=False),
    Column("key", String(KEY_LEN), nullable=False),
    Column("value", Float(precision=53), nullable=True),
    Column("is_nan", Boolean, nullable=False),
    Column("step", BigInteger, nullable=False),
    Column("timestamp", BigInteger, nullable=False),
    Index(None, "run_id", "key", "step"),
)

latest_metrics = Table(
    "latest_metrics",
    metadata,
    Column(
        "run_id", String(RUN_ID_LEN), ForeignKey("runs.id", ondelete="CASCADE"), primary_key=True
    ),
    Column("key", String(KEY_LEN), primary_key=True),
    Column("value", Float(precision=53), nullable=True),
    Column("is_nan", Boolean, nullable=False),
    Column("step", BigInteger, nullable=False),
    Column("timestamp", BigInteger, nullable=False),
    Index(None, "key", "value"),
    sqlite_with_rowid=False,
)

# Every reference from a recorded object to a blob goes through this one table, so that
# garbage collection is "blobs minus digests named here". owner_kind is 'run' today; models
# and datasets add their own kinds.
artifacts = Table(
    "artifacts",
    metadata,
    Column("owner_kind", String(16), primary_key=True),
    Column("owner_id", String(64), primary_key=True),
    Column("path", String(PATH_LEN), primary_key=True),
    Column("digest", String(DIGEST_LEN), nullable=False),
    Column("size", BigInteger, nullable=False),
    Column("created_at", BigInteger, nullable=False),
    Index(None, "digest"),
    sqlite_with_rowid=False,
)

audit_events = Table(
    "audit_events",
    metadata,
    Column("seq", AutoId, primary_key=True, autoincrement=True),
    Column("ts", BigInteger, nullable=False),
    Column("actor", String(NAME_LEN), nullable=False),
    Column("action", String(64), nullable=False),
    Column("object_type", String(32), nullable=False),
    Column("object_id", String(128), nullable=False),
    Column("before", Text, nullable=True),
    Column("after", Text, nullable=True),
    Column("prev_hash", String(DIGEST_LEN), nullable=False),
    Column("hash", String(DIGEST_LEN), nullable=False),
    Index(None, "object_type", "object_id"),
)

# One row (id = 1) holding the newest event's seq and hash. Appends lock it, which serialises
# the chain on PostgreSQL, and verify() compares the chain's tail with it, so deleting the
# newest events is detected too.
audit_head = Table(
    "audit_head",
    metadata,
    Column("id", Integer, primary_key=True, autoincrement=False),
    Column("seq", BigInteger, nullable=False),
    Column("hash", String(DIGEST_LEN), nullable=False),
)

# -- datasets (revision 0002) -------------------------------------------------------------------

datasets = Table(
    "datasets",
    metadata,
    Column("id", AutoId, primary_key=True, autoincrement=True),
    Column("name", String(NAME_LEN), nullable=False),
    Column("description", Text, nullable=False),
    Column("created_at", BigInteger, nullable=False),
    Column("updated_at", BigInteger, nullable=False),
    UniqueConstraint("name"),
)

# One immutable version of a dataset, named by the digest of its canonical content: a table's
# (kind 'table', stored as one Parquet blob) or a folder manifest's (kind 'files'). The blobs a
# version needs are rows of ``artifacts`` with owner_kind 'dataset_version', so garbage
# collection keeps them. A producing run that is purged leaves the version without it.
dataset_versions = Table(
    "dataset_versions",
    metadata,
    Column("id", AutoId, primary_key=True, autoincrement=True),
    Column("dataset_id", AutoId, ForeignKey("datasets.id"), nullable=False),
    Column("version", Integer, nullable=False),
    Column("digest", String(DIGEST_LEN), nullable=False),
    Column("kind", String(16), nullable=False),
    Column("storage_digest", String(DIGEST_LEN), nullable=False),
    Column("schema_json", Text, nullable=True),
    Column("num_rows", BigInteger, nullable=True),
    Column("num_files", BigInteger, nullable=True),
    Column("size", BigInteger, nullable=False),
    Column("profile_json", Text, nullable=True),
    Column("run_id", String(RUN_ID_LEN), ForeignKey("runs.id", ondelete="SET NULL"), nullable=True),
    Column("description", Text, nullable=False),
    Column("created_at", BigInteger, nullable=False),
    Column("created_by", String(NAME_LEN), nullable=False),
    UniqueConstraint("dataset_id", "version"),
    UniqueConstraint("dataset_id", "digest"),
    Index(None, "run_id"),
)

dataset_version_tags = _tag_table("dataset_version_tags", "version_id", "dataset_versions")

# Lineage between versions: a version made from others (a cleaned table from a raw one).
dataset_version_parents = Table(
    "dataset_version_parents",
    metadata,
    Column(
        "version_id",
        AutoId,
        ForeignKey("dataset_versions.id", ondelete="CASCADE"),
        primary_key=True,
    ),
    Column("parent_id", AutoId, ForeignKey("dataset_versions.id"), primary_key=True),
    Index(None, "parent_id"),
    sqlite_with_rowid=False,
)

# Which dataset versions a run read, and in which role ('training', 'evaluation', …).
run_inputs = Table(
    "run_inputs",
    metadata,
    Column(
        "run_id", String(RUN_ID_LEN), ForeignKey("runs.id", ondelete="CASCADE"), primary_key=True
    ),
    Column("version_id", AutoId, ForeignKey("dataset_versions.id"), primary_key=True),
    Column("context", String(64), primary_key=True),
    Column("created_at", BigInteger, nullable=False),
    Index(None, "version_id"),
    sqlite_with_rowid=False,
)

# Results of validating data against a suite, kept with the dataset version and/or the run.
validation_results = Table(
    "validation_results",
    metadata,
    Column("id", AutoId, primary_key=True, autoincrement=True),
    Column(
        "version_id",
        AutoId,
        ForeignKey("dataset_versions.id", ondelete="CASCADE"),
        nullable=True,
    ),
    Column("run_id", String(RUN_ID_LEN), ForeignKey("runs.id", ondelete="CASCADE"), nullable=True),
    Column("suite", String(NAME_LEN), nullable=False),
    Column("success", Boolean, nullable=False),
    Column("body", Text, nullable=False),
    Column("created_at", BigInteger, nullable=False),
    Column("created_by", String(NAME_LEN), nullable=False),
    Index(None, "version_id"),
    Index(None, "run_id"),
)

# -- model registry (revision 0003) -------------------------------------------------------------

registered_models = Table(
    "registered_models",
    metadata,
    Column("id", AutoId, primary_key=True, autoincrement=True),
    Column("name", String(NAME_LEN), nullable=False),
    Column("description", Text, nullable=False),
    Column("created_at", BigInteger, nullable=False),
    Column("updated_at", BigInteger, nullable=False),
    UniqueConstraint("name"),
)

registered_model_tags = _tag_table("registered_model_tags", "model_id", "registered_models")

# A packaged model registered under a name, numbered per model. Its files are artifact
# references (owner_kind 'model_version'); ``package_digest`` is the digest of its manifest.
model_versions = Table(
    "model_versions",
    metadata,
    Column("id", AutoId, primary_key=True, autoincrement=True),
    Column("model_id", AutoId, ForeignKey("registered_models.id"), nullable=False),
    Column("version", Integer, nullable=False),
    Column("package_digest", String(DIGEST_LEN), nullable=False),
    Column("flavor", String(64), nullable=False),
    Column("signature_json", Text, nullable=True),
    Column("run_id", String(RUN_ID_LEN), ForeignKey("runs.id", ondelete="SET NULL"), nullable=True),
    Column("status", String(16), nullable=False),
    Column("description", Text, nullable=False),
    Column("created_at", BigInteger, nullable=False),
    Column("created_by", String(NAME_LEN), nullable=False),
    UniqueConstraint("model_id", "version"),
    Index(None, "run_id"),
)

model_version_tags = _tag_table("model_version_tags", "version_id", "model_versions")

# An alias (champion, challenger, …) points at one version of its model.
model_aliases = Table(
    "model_aliases",
    metadata,
    Column(
        "model_id", AutoId, ForeignKey("registered_models.id", ondelete="CASCADE"), primary_key=True
    ),
    Column("alias", String(KEY_LEN), primary_key=True),
    Column("version_id", AutoId, ForeignKey("model_versions.id"), nullable=False),
    Column("updated_at", BigInteger, nullable=False),
    sqlite_with_rowid=False,
)

# Every move of an alias, so that rollback knows where it was and cards can show the history.
alias_history = Table(
    "alias_history",
    metadata,
    Column("id", AutoId, primary_key=True, autoincrement=True),
    Column("model_id", AutoId, ForeignKey("registered_models.id"), nullable=False),
    Column("alias", String(KEY_LEN), nullable=False),
    Column("version", Integer, nullable=True),
    Column("previous", Integer, nullable=True),
    Column("reason", Text, nullable=False),
    Column("at", BigInteger, nullable=False),
    Column("actor", String(NAME_LEN), nullable=False),
    Index(None, "model_id", "alias", "id"),
)

# What is recorded about a version: evaluations, gate decisions, approvals (``kind``), each a
# JSON body; ``subject`` is the alias an approval or gate decision is for, or the digest of the
# data an evaluation ran on.
model_version_records = Table(
    "model_version_records",
    metadata,
    Column("id", AutoId, primary_key=True, autoincrement=True),
    Column(
        "version_id", AutoId, ForeignKey("model_versions.id", ondelete="CASCADE"), nullable=False
    ),
    Column("kind", String(32), nullable=False),
    Column("subject", String(KEY_LEN), nullable=False),
    Column("passed", Boolean, nullable=True),
    Column("body", Text, nullable=False),
    Column("created_at", BigInteger, nullable=False),
    Column("created_by", String(NAME_LEN), nullable=False),
    Index(None, "version_id", "kind"),
)

# What moving an alias requires: a gate and approvals (a JSON policy).
alias_policies = Table(
    "alias_policies",
    metadata,
    Column(
        "model_id", AutoId, ForeignKey("registered_models.id", ondelete="CASCADE"), primary_key=True
    ),
    Column("alias", String(KEY_LEN), primary_key=True),
    Column("body", Text, nullable=False),
    Column("updated_at", BigInteger, nullable=False),
    sqlite_with_rowid=False,
)

# -- pipelines (revision 0004) ------------------------------------------------------------------

# The cache of step results: a step whose cache key is here (and not expired) is not run again;
# its outputs are read back from the recorded blobs. ``parts`` keeps what went into the key (code,
# parameters, inputs, materialisers, cache_version), so `why-rerun` can say which part changed.
# The entry goes with the step run that produced it.
step_cache = Table(
    "step_cache",
    metadata,
    Column("cache_key", String(DIGEST_LEN), primary_key=True),
    Column("step", String(NAME_LEN), nullable=False),
    Column("run_id", String(RUN_ID_LEN), ForeignKey("runs.id", ondelete="CASCADE"), nullable=False),
    Column("parts", Text, nullable=False),
    Column("outputs", Text, nullable=False),
    Column("created_at", BigInteger, nullable=False),
    Column("expires_at", BigInteger, nullable=True),
    Index(None, "step", "created_at"),
    Index(None, "run_id"),
    sqlite_with_rowid=False,
)

# Cron schedules of pipelines. A scheduler claims a due schedule by taking its lease in one
# conditional UPDATE (lease free or expired), so two schedulers never fire it at once.
schedules = Table(
    "schedules",
    metadata,
    Column("id", AutoId, primary_key=True, autoincrement=True),
    Column("name", String(NAME_LEN), nullable=False),
    Column("pipeline", String(PATH_LEN), nullable=False),
    Column("cron", String(NAME_LEN), nullable=False),
    Column("tz", String(64), nullable=False),
    Column("params", Text, nullable=False),
    Column("enabled", Boolean, nullable=False),
    Column("next_fire_at", BigInteger, nullable=False),
    Column("last_fired_at", BigInteger, nullable=True),
    Column("last_run_id", String(RUN_ID_LEN), nullable=True),
    Column("lease_owner", String(NAME_LEN), nullable=True),
    Column("lease_until", BigInteger, nullable=True),
    Column("created_at", BigInteger, nullable=False),
    Column("updated_at", BigInteger, nullable=False),
    UniqueConstraint("name"),
    Index(None, "enabled", "next_fire_at"),
)

# -- deployments (revision 0005) ----------------------------------------------------------------

# What a serving endpoint serves: a model's version pinned by number or followed through an
# alias, an optional canary version taking ``canary_percent`` of the traffic (sticky by the
# request field ``sticky_key`` when set) and an optional shadow version that sees every request.
# Versions are numbers of the model (never deleted rows). ``revision`` counts the changes.
deployments = Table(
    "deployments",
    metadata,
    Column("id", AutoId, primary_key=True, autoincrement=True),
    Column("name", String(NAME_LEN), nullable=False),
    Column("model_id", AutoId, ForeignKey("registered_models.id"), nullable=False),
    Column("alias", String(KEY_LEN), nullable=True),
    Column("version", Integer, nullable=True),
    Column("canary_version", Integer, nullable=True),
    Column("canary_percent", Float(precision=53), nullable=False),
    Column("shadow_version", Integer, nullable=True),
    Column("sticky_key", String(KEY_LEN), nullable=True),
    Column("revision", Integer, nullable=False),
    Column("created_at", BigInteger, nullable=False),
    Column("updated_at", BigInteger, nullable=False),
    UniqueConstraint("name"),
    Index(None, "model_id"),
)

# Every change of a deployment, with its state before and after (JSON, including the followed
# alias's version at that moment), so that rollback can restore the previous state. A rollback
# row names the revision it undid (``undoes``). The rows go with their deployment.
deployment_history = Table(
    "deployment_history",
    metadata,
    Column(
        "deployment_id", AutoId, ForeignKey("deployments.id", ondelete="CASCADE"), primary_key=True
    ),
    Column("revision", Integer, primary_key=True),
    Column("action", String(32), nullable=False),
    Column("before", Text, nullable=False),
    Column("after", Text, nullable=False),
    Column("undoes", Integer, nullable=True),
    Column("actor", String(NAME_LEN), nullable=False),
    Column("at", BigInteger, nullable=False),
    sqlite_with_rowid=False,
)

# -- monitoring (revision 0006) -----------------------------------------------------------------

# A monitor watches a deployment's prediction log in windows (``window``: "1h", "10000 rows")
# against a reference dataset version. ``config`` holds the checks and thresholds (JSON);
# ``reference_digest`` names the blob of what was computed once from the reference (prediction
# profile, expectation suite, reference performance), kept as an artifact of owner kind
# 'monitor'. The deployment is named, not referenced: a monitor's history outlives it.
monitors = Table(
    "monitors",
    metadata,
    Column("id", AutoId, primary_key=True, autoincrement=True),
    Column("name", String(NAME_LEN), nullable=False),
    Column("deployment", String(NAME_LEN), nullable=False),
    Column("reference", String(NAME_LEN), nullable=False),
    Column("reference_version_id", AutoId, ForeignKey("dataset_versions.id"), nullable=False),
    Column("window", String(64), nullable=False),
    Column("config", Text, nullable=False),
    Column("reference_digest", String(DIGEST_LEN), nullable=False),
    Column("created_at", BigInteger, nullable=False),
    Column("created_by", String(NAME_LEN), nullable=False),
    UniqueConstraint("name"),
    Index(None, "deployment"),
)

# One evaluated window of a monitor: its bounds (half-open, epoch ms), row counts, status
# ("ok", "alert", "no_data", "error"), the alerts and a summary (JSON). A window is reported
# once: two runs racing on it insert one row.
monitor_reports = Table(
    "monitor_reports",
    metadata,
    Column("id", AutoId, primary_key=True, autoincrement=True),
    Column("monitor_id", AutoId, ForeignKey("monitors.id", ondelete="CASCADE"), nullable=False),
    Column("window_start_ms", BigInteger, nullable=False),
    Column("window_end_ms", BigInteger, nullable=False),
    Column("rows", BigInteger, nullable=False),
    Column("labelled_rows", BigInteger, nullable=False),
    Column("status", String(16), nullable=False),
    Column("alerts", Text, nullable=False),
    Column("summary", Text, nullable=False),
    Column("created_at", BigInteger, nullable=False),
    UniqueConstraint("monitor_id", "window_start_ms"),
)

# The per-check, per-feature results of a report (a drift test of one feature, one expectation,
# one metric), so drift over time can be queried and plotted. Non-finite numbers are NULL.
monitor_results = Table(
    "monitor_results",
    metadata,
    Column(
        "report_id", AutoId, ForeignKey("monitor_reports.id", ondelete="CASCADE"), primary_key=True
    ),
    Column("check", String(32), primary_key=True),
    Column("feature", String(KEY_LEN), primary_key=True),
    Column("statistic", String(64), primary_key=True),
    Column("value", Float(precision=53), nullable=True),
    Column("threshold", Float(precision=53), nullable=True),
    Column("p_value", Float(precision=53), nullable=True),
    Column("drifted", Boolean, nullable=True),
    sqlite_with_rowid=False,
)

# -- loop (revision 0007) -----------------------------------------------------------------------

# A policy of a deployment: which monitor events (``on``, JSON list) start an episode, the
# retraining pipeline (``module:name``) and its extra params, the gate, the rollout (JSON), an
# optional webhook, the cool-down after an episode ends and ``cooldown_until`` (epoch ms) set
# when one does. The deployment is named, not referenced, as monitors name it.
policies = Table(
    "policies",
    metadata,
    Column("id", AutoId, primary_key=True, autoincrement=True),
    Column("name", String(NAME_LEN), nullable=False),
    Column("deployment", String(NAME_LEN), nullable=False),
    Column("config", Text, nullable=False),
    Column("enabled", Boolean, nullable=False),
    Column("cooldown_until", BigInteger, nullable=True),
    Column("created_at", BigInteger, nullable=False),
    Column("created_by", String(NAME_LEN), nullable=False),
    Column("updated_at", BigInteger, nullable=False),
    UniqueConstraint("name"),
    Index(None, "deployment"),
)

# One episode of a policy: triggered -> retraining -> gating -> rolling_out (``step``) ->
# promoted | rolled_back | rejected | failed. ``open_policy_id`` is the policy's id while the
# episode is open and NULL once it ended: its unique constraint allows one open episode per
# policy. An agent advances an episode only while it holds the lease (``lease_owner``,
# ``lease_until``), taken and renewed by conditional UPDATEs, as schedules are.
episodes = Table(
    "episodes",
    metadata,
    Column("id", AutoId, primary_key=True, autoincrement=True),
    Column("policy_id", AutoId, ForeignKey("policies.id", ondelete="CASCADE"), nullable=False),
    Column("open_policy_id", AutoId, nullable=True),
    Column("state", String(16), nullable=False),
    Column("step", Integer, nullable=False),
    Column("events", Text, nullable=False),
    Column("report_ids", Text, nullable=False),
    Column("reason", Text, nullable=False),
    Column("detail", Text, nullable=False),
    Column("pipeline_run_id", String(RUN_ID_LEN), nullable=True),
    Column("candidate_version", Integer, nullable=True),
    Column("lease_owner", String(NAME_LEN), nullable=True),
    Column("lease_until", BigInteger, nullable=True),
    Column("started_at", BigInteger, nullable=False),
    Column("step_started_at", BigInteger, nullable=False),
    Column("updated_at", BigInteger, nullable=False),
    Column("ended_at", BigInteger, nullable=True),
    UniqueConstraint("open_policy_id"),
    Index(None, "policy_id", "started_at"),
)

# Monitor reports a policy has looked at, each once: the episode it started or joined, or NULL
# (ignored: nothing the policy acts on, or during a cool-down).
policy_reports = Table(
    "policy_reports",
    metadata,
    Column("policy_id", AutoId, ForeignKey("policies.id", ondelete="CASCADE"), primary_key=True),
    Column("report_id", AutoId, primary_key=True),
    Column("episode_id", AutoId, nullable=True),
    Column("consumed_at", BigInteger, nullable=False),
    sqlite_with_rowid=False,
)

# Webhook deliveries of a policy's alerts: "sent" or "failed" after ``attempts`` tries, with
# the last error.
alert_deliveries = Table(
    "alert_deliveries",
    metadata,
    Column("id", AutoId, primary_key=True, autoincrement=True),
    Column("policy_id", AutoId, ForeignKey("policies.id", ondelete="CASCADE"), nullable=False),
    Column("episode_id", AutoId, nullable=True),
    Column("event", String(32), nullable=False),
    Column("url", String(PATH_LEN), nullable=False),
    Column("status", String(16), nullable=False),
    Column("attempts", Integer, nullable=False),
    Column("http_status", Integer, nullable=True),
    Column("error", Text, nullable=True),
    Column("at", BigInteger, nullable=False),
    Index(None, "policy_id", "at"),
)
