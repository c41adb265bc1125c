"""Monitors: create one for a deployment, run it over the windows of its prediction log, read
its reports and the per-feature results over time.

::

    mloop.monitors.create(deployment="fraud-api", reference="transactions@v3", window="1h")
    reports = mloop.monitors.run("fraud-api")            # every complete window not yet reported
    points = mloop.monitors.history("fraud-api", check="feature_drift", feature="amount")

Creating a monitor computes what it needs from the reference once (the served model's
predictions on the reference data, an expectation suite, the reference performance; see
:mod:`mloop.monitoring.reference`) and keeps it in the artifact store, so a run reads only the
log. A run stores one report per window, with its per-check, per-feature results, each window
in one transaction.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from typing import TYPE_CHECKING, Any

from mloop.errors import (
    BackendError,
    IntegrityError,
    InvalidInput,
    InvalidState,
    MloopError,
    NotFound,
)
from mloop.monitoring.checks import (
    CHECKS,
    MIN_CLASS_ROWS,
    PERFORMANCE_DROP,
    CheckOutcome,
    run_check,
)
from mloop.monitoring.reference import Reference, build_reference, resolve_reference
from mloop.monitoring.windows import (
    SETTLE_MS,
    Window,
    WindowSpec,
    first_logged_ms,
    parse_window,
    read_window,
    row_windows,
)
from mloop.store.monitoring import check_monitor_name
from mloop.store.queries import now_ms
from mloop.store.records import DatasetVersion, Monitor, MonitorReport, MonitorResult
from mloop.tracking.fluent import client_or_default

if TYPE_CHECKING:
    from mloop.data.profile import DatasetProfile
    from mloop.tracking.client import TrackingClient

__all__ = [
    "MAX_WINDOWS_PER_RUN",
    "Monitor",
    "MonitorReport",
    "MonitorResult",
    "create",
    "delete",
    "get",
    "history",
    "list_monitors",
    "reports",
    "run",
]

#: Most windows one run evaluates (the next run goes on from there).
MAX_WINDOWS_PER_RUN = 1_000
_METRICS = tuple(PERFORMANCE_DROP)


def _check_checks(checks: object) -> list[str]:
    if isinstance(checks, str) or not isinstance(checks, Sequence) or not checks:
        raise InvalidInput(
            f"checks must be a non-empty list of {', '.join(CHECKS)}, got {checks!r}",
            field="checks",
        )
    unknown = [c for c in checks if c not in CHECKS]
    if unknown:
        raise InvalidInput(
            f"unknown check(s) {', '.join(map(repr, unknown))}: the checks are {', '.join(CHECKS)}",
            field="checks",
        )
    return list(dict.fromkeys(checks))


def _check_number(value: object, field: str, low: float, high: float) -> float:
    if (
        isinstance(value, bool)
        or not isinstance(value, int | float)
        or not math.isfinite(value)
        or not low < value <= high
    ):
        raise InvalidInput(f"{field} must be a number in ({low:g}, {high:g}], got {value!r}",
                           field=field)  # fmt: skip
    return float(value)


def _check_thresholds(thresholds: object) -> dict[str, Any]:
    if thresholds is None:
        return {}
    if not isinstance(thresholds, Mapping):
        raise InvalidInput(
            "thresholds maps a check to its thresholds, e.g. {'performance': 0.03, "
            f"'feature_drift': {{'amount': 0.2}}}}, got {thresholds!r}",
            field="thresholds",
        )
    found: dict[str, Any] = {}
    for check, value in thresholds.items():
        if check not in CHECKS:
            raise InvalidInput(
                f"thresholds: unknown check {check!r} (the checks are {', '.join(CHECKS)})",
                field="thresholds",
            )
        if check == "performance":
            found[check] = _check_number(value, "thresholds['performance']", 0.0, math.inf)
        elif check == "data_quality":
            raise InvalidInput(
                "thresholds: data_quality takes no threshold; give an expectation suite "
                "(expectations=) with the 'mostly' you want",
                field="thresholds",
            )
        else:
            if not isinstance(value, Mapping):
                raise InvalidInput(
                    f"thresholds[{check!r}] maps a column to its threshold, got {value!r}",
                    field="thresholds",
                )
            found[check] = {
                str(k): _check_number(v, f"thresholds[{check!r}][{k!r}]", 0.0, math.inf)
                for k, v in value.items()
            }
    return found


def _check_min_rows(min_rows: object, name: str = "min_rows") -> int:
    if isinstance(min_rows, bool) or not isinstance(min_rows, int) or min_rows < 1:
        raise InvalidInput(f"{name} must be an int >= 1, got {min_rows!r}", field=name)
    return min_rows


def _suite_of(expectations: object) -> dict[str, Any] | None:
    from mloop.data.validation import Suite

    if expectations is None:
        return None
    if isinstance(expectations, str):
        return Suite.load(expectations).to_dict()
    if isinstance(expectations, Suite):
        return expectations.to_dict()
    raise InvalidInput(
        f"expectations must be a Suite or the path of a suite's YAML, got {expectations!r}",
        field="expectations",
    )


def create(
    name: str | None = None,
    *,
    deployment: str,
    reference: str | DatasetVersion = "training",
    window: str = "1h",
    checks: Sequence[str] = CHECKS,
    drift_share: float = 0.5,
    thresholds: Mapping[str, Any] | None = None,
    performance_metric: str | None = None,
    min_rows: int = 100,
    min_class_rows: int = MIN_CLASS_ROWS,
    target: str | None = None,
    expectations: Any = None,
    trusted: bool = False,
    actor: str | None = None,
    client: TrackingClient | None = None,
) -> Monitor:
    """Create a monitor of ``deployment`` (named after it by default) against ``reference``
    (``"dataset@vN"``, a DatasetVersion, or ``"training"``: the data the served version was
    trained on). Raises InvalidName, InvalidInput, AlreadyExists, NotFound (the deployment,
    the reference), InvalidState (a reference without the model's inputs)."""
    from mloop.serving.deployments import resolve_targets

    name = check_monitor_name(deployment if name is None else name)
    spec = parse_window(window)
    chosen = _check_checks(checks)
    share = _check_number(drift_share, "drift_share", 0.0, 1.0)
    limits = _check_thresholds(thresholds)
    rows = _check_min_rows(min_rows)
    per_class = _check_min_rows(min_class_rows, "min_class_rows")
    if performance_metric is not None and performance_metric not in _METRICS:
        raise InvalidInput(
            f"performance_metric {performance_metric!r} is not supported: use "
            f"{', '.join(_METRICS)}",
            field="performance_metric",
        )
    suite = _suite_of(expectations)
    client = client_or_default(client)
    who = client.settings.actor if actor is None else actor
    targets = resolve_targets(deployment, client=client)
    dataset = resolve_reference(reference, targets.primary, client=client)
    if dataset.profile is None:
        raise InvalidInput(
            f"the reference {dataset.ref} has no stored profile (a folder of files?); a monitor "
            "compares tables",
            field="reference",
        )
    built = build_reference(
        dataset, targets.primary, target=target, metric=performance_metric, suite=suite,
        trusted=trusted, client=client,
    )  # fmt: skip
    blob = client.artifacts.put_bytes(built.to_bytes())
    config = {
        "checks": chosen, "drift_share": share, "thresholds": limits, "min_rows": rows,
        "min_class_rows": per_class, "performance_metric": built.metric, "target": built.target,
        "model_version": built.model_version, "features": built.features,
        "reference_given": reference if isinstance(reference, str) else dataset.ref,
        "suite": suite, "trusted": bool(trusted),
    }  # fmt: skip
    return client.store.create_monitor(
        name, deployment=deployment, reference=dataset.ref, reference_version_id=dataset.id,
        window=spec.text, config=config, reference_digest=blob.digest,
        reference_size=blob.size, actor=who,
    )  # fmt: skip


def get(name: str, *, client: TrackingClient | None = None) -> Monitor:
    """A monitor by name. Raises NotFound."""
    return client_or_default(client).store.get_monitor(name)


def list_monitors(
    deployment: str | None = None, *, client: TrackingClient | None = None
) -> list[Monitor]:
    """Every monitor (of one deployment, when given), by name."""
    return client_or_default(client).store.list_monitors(deployment)


def delete(name: str, *, actor: str | None = None, client: TrackingClient | None = None) -> None:
    """Delete a monitor with its reports (its audit events stay). Raises NotFound."""
    client = client_or_default(client)
    client.store.delete_monitor(name, actor=client.settings.actor if actor is None else actor)


def reports(
    name: str,
    *,
    since_ms: int | None = None,
    limit: int | None = None,
    newest_first: bool = False,
    with_results: bool = False,
    client: TrackingClient | None = None,
) -> list[MonitorReport]:
    """A monitor's reports by window, oldest first unless ``newest_first``. Raises NotFound."""
    return client_or_default(client).store.list_monitor_reports(
        name, since_ms=since_ms, limit=limit, newest_first=newest_first,
        with_results=with_results,
    )  # fmt: skip


def history(
    name: str,
    *,
    check: str | None = None,
    feature: str | None = None,
    since_ms: int | None = None,
    client: TrackingClient | None = None,
) -> list[MonitorResult]:
    """Per-feature results over time, oldest window first (e.g. one feature's drift score per
    window, to plot). Raises NotFound, InvalidInput (an unknown check)."""
    if check is not None and check not in CHECKS:
        raise InvalidInput(
            f"unknown check {check!r}: the checks are {', '.join(CHECKS)}", field="check"
        )
    return client_or_default(client).store.list_monitor_results(
        name, check=check, feature=feature, since_ms=since_ms
    )


# -- running ----------------------------------------------------------------------------------
class _Context:
    """What a run loads once: the reference document and the features' stored profile."""

    def __init__(self, monitor: Monitor, client: TrackingClient) -> None:
        from mloop.data.profile import DatasetProfile
        from mloop.data.versions import lookup

        self.reference = Reference.from_bytes(client.artifacts.get_bytes(monitor.reference_digest))
        self.feature_profile: DatasetProfile | None = None
        if "feature_drift" in monitor.checks:
            version = lookup(monitor.reference, client=client)
            whole = DatasetProfile.from_dict(version.profile or {"rows": 0, "columns": []})
            wanted = set(self.reference.features)
            self.feature_profile = DatasetProfile(
                rows=whole.rows, columns={k: v for k, v in whole.columns.items() if k in wanted}
            )


def _windows(
    monitor: Monitor, spec: WindowSpec, clock: int, limit: int, client: TrackingClient
) -> list[Window]:
    last = client.store.list_monitor_reports(monitor.name, limit=1, newest_first=True)
    start = last[0].window_end_ms if last else None
    if spec.rows is not None:
        return row_windows(monitor.deployment, spec, start, clock, limit=limit, client=client)
    assert spec.ms is not None
    if start is None:
        first = first_logged_ms(monitor.deployment, client=client)
        start = spec.align(
            min(first, monitor.created_at) if first is not None else monitor.created_at
        )
    count = max(0, min(limit, (clock - start) // spec.ms))
    return [Window(start + i * spec.ms, start + (i + 1) * spec.ms) for i in range(count)]


def refresh_reference(monitor: Monitor, client: TrackingClient) -> Monitor:
    """For a monitor whose reference is ``"training"``: when the deployment's primary version
    is no longer the one its reference was computed with, rebuild the reference from the
    training data of the version serving now (audited ``monitor.reference_refreshed``).

    When that cannot be done (the version's run logged no training data, its data lacks the
    model's inputs, ...) the old reference stays, the reason is kept in the monitor's config
    (``reference_note``, shown in every report) and audited once as
    ``monitor.reference_refresh_failed``; the next promotion tries again. A reference named
    ``"dataset@vN"`` is never replaced: that is the data the user chose to compare with."""
    from mloop.serving.deployments import resolve_targets

    config = monitor.config
    if config.get("reference_given") != "training":
        return monitor
    try:
        primary = resolve_targets(monitor.deployment, client=client).primary
    except (NotFound, InvalidState):
        return monitor  # nothing serves now: the windows are judged as they were
    if primary.version == config.get("model_version"):
        return monitor
    note = config.get("reference_note") or {}
    if note.get("model_version") == primary.version:
        return monitor  # already tried for this version
    who = client.settings.actor
    try:
        dataset = resolve_reference("training", primary, client=client)
        if dataset.profile is None:
            raise InvalidInput(f"{dataset.ref} has no stored profile (a folder of files?)")
        columns = {c["name"] for c in dataset.profile.get("columns", [])}
        target = config.get("target")
        if target not in columns:
            # The loop records its retraining data with the label column "label".
            target = "label" if "label" in columns else None
        built = build_reference(
            dataset, primary, target=target, metric=config.get("performance_metric"),
            suite=config.get("suite"), trusted=bool(config.get("trusted", False)), client=client,
        )  # fmt: skip
    except BackendError:
        raise  # the store is down: try again on the next run
    except (MloopError, ValueError) as exc:
        reason = exc.message if isinstance(exc, MloopError) else f"{type(exc).__name__}: {exc}"
        failed = {
            "model_version": primary.version,
            "reason": f"kept the reference of version {config.get('model_version')}: the "
            f"training data of {primary.uri} could not become the reference ({reason})",
        }
        changed = client.store.update_monitor_reference(
            monitor.name, expect_digest=monitor.reference_digest,
            config={**config, "reference_note": failed}, event="monitor.reference_refresh_failed",
            detail=failed, actor=who,
        )  # fmt: skip
        return changed or client.store.get_monitor(monitor.name)
    blob = client.artifacts.put_bytes(built.to_bytes())
    new_config = {
        **config, "target": built.target, "model_version": built.model_version,
        "features": built.features, "performance_metric": built.metric, "reference_note": None,
    }  # fmt: skip
    changed = client.store.update_monitor_reference(
        monitor.name, expect_digest=monitor.reference_digest, config=new_config,
        event="monitor.reference_refreshed",
        detail={"reference": dataset.ref, "model_version": built.model_version,
                "reason": f"{primary.uri} now serves as the primary of {monitor.deployment}"},
        reference=(dataset.ref, dataset.id, blob.digest, blob.size), actor=who,
    )  # fmt: skip
    return changed or client.store.get_monitor(monitor.name)


def evaluate_window(
    monitor: Monitor, window: Window, context: _Context, client: TrackingClient
) -> dict[str, Any]:
    """Read one window and run the monitor's checks on it: the report's fields."""
    checks, config = monitor.checks, monitor.config
    reads_features = bool({"feature_drift", "data_quality"} & set(checks))
    try:
        data = read_window(
            monitor.deployment, window,
            features=context.reference.features if reads_features else [],
            outputs=bool({"prediction_drift", "performance"} & set(checks)),
            labels="performance" in checks, client=client,
        )  # fmt: skip
    except (IntegrityError, NotFound, InvalidState) as exc:
        # A damaged or missing segment, or segments whose columns cannot be joined: the window
        # is reported as an error, saying which, and the next windows go on. (A store that is
        # down raises: nothing is reported.)
        return {
            "window_start_ms": window.start_ms, "window_end_ms": window.end_ms, "rows": 0,
            "labelled_rows": 0, "status": "error", "alerts": [], "results": [],
            "summary": {"error": f"{type(exc).__name__}: {exc}"},
        }  # fmt: skip
    fields: dict[str, Any] = {
        "window_start_ms": window.start_ms, "window_end_ms": window.end_ms, "rows": data.rows,
        "labelled_rows": data.labelled_rows,
    }  # fmt: skip
    versions = {str(k): v for k, v in sorted(data.model_versions.items())}
    if data.rows < config["min_rows"]:
        fields.update(
            status="no_data", alerts=[], results=[],
            summary={"reason": f"{data.rows} rows in the window, fewer than min_rows "
                     f"{config['min_rows']}: not evaluated", "model_versions": versions},
        )  # fmt: skip
        return fields
    alerts: list[dict[str, str]] = []
    results: list[MonitorResult] = []
    # Rows of versions other than the one the reference was computed with are compared with
    # that version's reference predictions and performance: say so in the summary.
    summary: dict[str, Any] = {
        "model_versions": versions, "reference_model_version": context.reference.model_version,
        "reference": context.reference.dataset,
    }  # fmt: skip
    note = config.get("reference_note")
    if note:
        summary["reference_note"] = note["reason"]
    errors = []
    for check in checks:
        try:
            outcome = run_check(check, data, context.reference, context.feature_profile, config)
        except (MloopError, ValueError, ArithmeticError) as exc:
            outcome = CheckOutcome(summary={"error": f"{type(exc).__name__}: {exc}"})
            errors.append(check)
        alerts.extend(outcome.alerts)
        results.extend(outcome.results)
        summary[check] = outcome.summary
    status = "alert" if alerts else "error" if errors else "ok"
    fields.update(status=status, alerts=alerts, results=results, summary=summary)
    return fields


def run(
    name: str,
    *,
    end_ms: int | None = None,
    max_windows: int = MAX_WINDOWS_PER_RUN,
    client: TrackingClient | None = None,
) -> list[MonitorReport]:
    """Evaluate every complete window not yet reported, up to ``end_ms`` (default: now), and
    store one report per window; windows with fewer than ``min_rows`` rows are stored with
    status ``no_data``. A ``"training"`` reference follows the deployment's primary version
    first (:func:`refresh_reference`). Returns the new reports, oldest first. Raises
    NotFound."""
    client = client_or_default(client)
    monitor = client.store.get_monitor(name)
    if end_ms is not None and (isinstance(end_ms, bool) or not isinstance(end_ms, int)):
        raise InvalidInput(f"end_ms must be epoch milliseconds, got {end_ms!r}", field="end_ms")
    # Without end_ms, a window is complete SETTLE_MS after its end: the log's writers flush
    # every couple of seconds, so rows of the last moments may still be on their way.
    clock = now_ms() - SETTLE_MS if end_ms is None else end_ms
    spec = parse_window(monitor.window)
    windows = _windows(monitor, spec, clock, max_windows, client)
    if not windows:
        return []
    monitor = refresh_reference(monitor, client)
    context = _Context(monitor, client)
    stored = []
    for window in windows:
        fields = evaluate_window(monitor, window, context, client)
        report = client.store.add_monitor_report(name, **fields)
        if report is not None:
            stored.append(report)
    return stored
