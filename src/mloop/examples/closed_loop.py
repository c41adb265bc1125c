"""The closed loop, end to end: what ``mloop demo`` runs (scenarios ``fraud`` and ``demand``).

:func:`run_closed_loop` does everything for real on the given store, one step after another:

1. generates the scenario's history and registers it as the dataset version ``<dataset>@v1``,
   validates it against a suggested expectation suite and records the result;
2. trains the first model through the scenario's pipeline (``mloop.examples.pipelines``),
   registers it, evaluates it, gates it, approves it and makes it the ``champion``;
3. creates a deployment following ``<model>@champion`` and serves it over HTTP on a free
   loopback port (uvicorn in a thread);
4. creates a monitor (reference: the training data of the serving version, which follows a
   promotion; windows of a fixed number of rows, so no wall-clock wait) and a policy (retrain
   with the scenario's retraining pipeline below, which reads the labelled rows of the
   prediction log; a ``beat_champion`` gate; a canary with one-second holds);
5. replays the live traffic through the server in requests of 100 rows, sends each row's label
   to ``/feedback`` once its simulated delay has passed (simulated time is the time of the last
   replayed row), and runs one :class:`mloop.loop.Agent` tick between batches: the monitor
   reports every complete window, the policy opens an episode on drift, the agent retrains on
   the labelled rows of the prediction log, gates the challenger against the champion on the
   same held-out fresh rows, rolls it out as a canary and promotes it;
6. measures the result (detection delay, false alarms before the change, the old champion and
   the promoted model on fresh post-change rows neither was trained on) and writes an HTML
   report into the store's home folder (:mod:`mloop.examples.closed_loop_report`).

The change of the scenario falls exactly on a window boundary of the replay, so the windows
before it are entirely before the change and an alert there is a false alarm.
"""

from __future__ import annotations

import dataclasses
import json
import os
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np
import pandas as pd

from mloop.errors import InvalidInput
from mloop.examples import fraud
from mloop.examples.closed_loop_report import LoopDemoResult, LoopEvent, WindowInfo
from mloop.examples.local_server import LocalServer, post_json
from mloop.examples.pipelines import TIME_COLUMN
from mloop.examples.scenarios import (
    SCENARIOS,
    SIM_START_MS,
    ScenarioSpec,
    change_point,
    fresh_sample,
    generate_timeline,
)
from mloop.tracking.fluent import use_client

if TYPE_CHECKING:
    from mloop.tracking.client import TrackingClient

__all__ = ["check_store_free", "run_closed_loop"]
#: Rows per request sent to the server.
REQUEST_ROWS = 100


@dataclass
class _Request:
    request_id: str
    first_row: int
    rows: int
    arrival_ms: int
    known: int = 0


def _records(frame: pd.DataFrame) -> list[dict[str, Any]]:
    """Rows as JSON records with plain Python values."""
    return json.loads(frame.to_json(orient="records"))  # type: ignore[no-any-return]


# -- the demo -----------------------------------------------------------------------------------
class _Demo:
    def __init__(
        self,
        client: TrackingClient,
        spec: ScenarioSpec,
        seed: int,
        on_event: Callable[[LoopEvent], None] | None,
        stationary_windows: int | None = None,
    ) -> None:
        self.client = client
        self.spec = spec
        self.stationary_windows = stationary_windows
        self.seed = seed
        self.on_event = on_event
        self.started = time.monotonic()
        self.events: list[LoopEvent] = []
        self.sim_ms = SIM_START_MS
        self.requests: list[_Request] = []
        self.labels_sent = 0
        self.audit_seq = 0
        self.episode_id: int | None = None
        self.seen_reports: set[int] = set()
        self.window_index = 0
        #: The reference the last report was judged against, and the last note about it.
        self.reference: tuple[Any, Any] = (None, None)

    def emit(self, kind: str, message: str, **data: Any) -> None:
        """Record one timeline event and pass it to ``on_event``."""
        event = LoopEvent(
            self.sim_ms, kind, message, time.monotonic() - self.started, data,
            self.spec.time_format,
        )  # fmt: skip
        self.events.append(event)
        if self.on_event is not None:
            self.on_event(event)

    # -- set-up --------------------------------------------------------------------------------
    def prepare_data(self, timeline: pd.DataFrame) -> Any:
        """Register the history as ``<dataset>@v1``, validate it, record the validation."""
        from mloop.data import record_validation, register, suggest_expectations, validate

        spec = self.spec
        history = timeline.iloc[: spec.train_rows]
        columns = [TIME_COLUMN, *spec.features, spec.target, fraud.LABEL_DELAY]
        version = register(
            spec.dataset, history[columns].reset_index(drop=True),
            description=f"{spec.name} scenario: the history the first model is trained on",
            tags={"source": f"mloop.examples.{spec.name}.generate", "seed": str(self.seed)},
            client=self.client,
        )  # fmt: skip
        suite = suggest_expectations(history[columns], name=spec.dataset)
        result = validate(history[columns], suite)
        record_validation(result, dataset=version, client=self.client)
        self.emit(
            "data",
            f"registered {version.ref} ({len(history):,} rows of history); "
            f"validation: {result.summary}",
            ref=version.ref, rows=len(history), validation=result.summary,
        )  # fmt: skip
        return version

    def train_champion(self, version: Any, history: pd.DataFrame) -> tuple[int, dict[str, Any]]:
        """Train through the scenario's pipeline, register, evaluate, gate, approve, promote."""
        from mloop.pipelines.runner import import_pipeline, run_pipeline
        from mloop.registry import Gate, approve, evaluate, set_alias
        from mloop.registry.core import log_model

        spec = self.spec
        labelled_by = int(history[TIME_COLUMN].iloc[-1]) + 1
        result = run_pipeline(
            import_pipeline(spec.initial_pipeline),
            {"dataset": version.ref, "labelled_by_ms": labelled_by, "seed": self.seed},
            client=self.client,
        )
        model = result.output("train")
        metrics = result.output("evaluate")
        self.emit(
            "train",
            f"pipeline {spec.initial_pipeline} (run {result.run_id[:8]}): "
            f"{spec.metric} {metrics[spec.metric]:.3f} on its held-out slice",
            run_id=result.run_id, metrics={k: float(v) for k, v in metrics.items()},
        )  # fmt: skip
        # The held-out slice of the history (the pipeline's split) evaluates and gates it.
        known = history[history[TIME_COLUMN] + history[fraud.LABEL_DELAY] <= labelled_by]
        test = known.iloc[round(len(known) * 0.8) :][[*spec.features, spec.target]]
        registered = log_model(
            result.run_id, model, spec.model,
            input_example=known[list(spec.features)].head(5).reset_index(drop=True),
            description=f"{spec.name} model trained on {version.ref}", client=self.client,
        )  # fmt: skip
        self.client.log_input(result.run_id, version, context="training")
        evaluate(registered, test, target=spec.target, latency=False, plots=False,
                 client=self.client)  # fmt: skip
        gate = Gate(min=spec.gate_min, max=spec.gate_max, beat_champion=spec.beat_champion)
        decision = gate.check(
            registered, against="champion", data=test, target=spec.target, client=self.client
        )
        if not decision.passed:
            raise RuntimeError(f"the first {spec.name} model failed its gate: {decision.summary()}")
        approve(spec.model, registered.version, by="mloop-demo",
                note="first model of the closed-loop demo", client=self.client)  # fmt: skip
        set_alias(spec.model, "champion", registered.version,
                  reason="closed-loop demo: passed its gate", client=self.client)  # fmt: skip
        self.emit(
            "registry",
            f"models:/{spec.model}/{registered.version} registered, gate passed "
            f"({decision.summary()}), approved, alias champion",
            version=registered.version, gate=decision.summary(),
        )  # fmt: skip
        return int(registered.version), {
            "run_id": result.run_id, "version": int(registered.version),
            "metrics": {k: float(v) for k, v in metrics.items()}, "gate": decision.summary(),
        }  # fmt: skip

    def create_loop(self, version: Any, history: pd.DataFrame) -> None:
        """Create the deployment's monitor and policy."""
        from mloop import monitoring
        from mloop.evaluation import Gate
        from mloop.loop import Canary, policies

        spec = self.spec
        window = f"{spec.window_rows} rows"
        # "training": the data the serving version was trained on (now version.ref); after a
        # promotion the monitor compares with the promoted version's training data instead.
        monitoring.create(
            spec.deployment, deployment=spec.deployment, reference="training", window=window,
            target=spec.target, thresholds=spec.monitor_thresholds or None, client=self.client,
        )  # fmt: skip
        self.emit(
            "monitor",
            f"monitor {spec.deployment}: windows of {window} against the training data of the "
            f"serving version (now {version.ref}), checks feature_drift, prediction_drift, "
            "data_quality, performance",
        )
        policies.create(
            spec.deployment, deployment=spec.deployment, on=["drift", "performance_drop"],
            retrain=spec.retrain_pipeline, retrain_params={"seed": self.seed},
            gate=Gate(beat_champion=spec.beat_champion),
            rollout=Canary(steps=[0.1, 0.5, 1.0], hold="1s",
                           max_error_rate=spec.canary_error_rate, min_rows=REQUEST_ROWS),
            cooldown="1h", min_labelled_rows=spec.min_labelled_rows, label_wait="10m",
            client=self.client,
        )  # fmt: skip
        margin = ", ".join(f"{k} by {v:g}" for k, v in spec.beat_champion.items())
        self.emit(
            "policy",
            f"policy {spec.deployment}: on drift or a performance drop retrain with "
            f"{spec.retrain_pipeline} once {spec.min_labelled_rows:,} labelled rows are in; "
            f"gate: beat the champion ({margin}); canary 10% -> 50% -> 100%, 1 s holds",
        )

    # -- the replay ----------------------------------------------------------------------------
    def send(self, server: LocalServer, live: pd.DataFrame, start: int, stop: int) -> None:
        """Send live rows ``[start, stop)`` to ``/predict`` in requests of ``REQUEST_ROWS``."""
        features = list(self.spec.features)
        for first in range(start, stop, REQUEST_ROWS):
            rows = live.iloc[first : min(first + REQUEST_ROWS, stop)]
            body = post_json(f"{server.url}/predict", _records(rows[features]))
            request_id = str(body["request_id"])
            self.requests.append(_Request(request_id, first, len(rows), int(request_id[:13])))

    def send_labels(self, server: LocalServer, live: pd.DataFrame, due_ms: np.ndarray) -> None:
        """Send every label known by now (cumulative per request: unknown rows as null)."""
        target = live[self.spec.target].to_numpy()
        feedback = []
        for request in self.requests:
            if request.known == request.rows:
                continue
            span = slice(request.first_row, request.first_row + request.rows)
            known = due_ms[span] <= self.sim_ms
            count = int(known.sum())
            if count == request.known:
                continue
            labels = [int(y) if k else None for y, k in zip(target[span], known, strict=True)]
            feedback.append({"request_id": request.request_id, "label": labels})
            self.labels_sent += count - request.known
            request.known = count
        for first in range(0, len(feedback), 200):
            post_json(f"{server.url}/feedback", {"feedback": feedback[first : first + 200]})

    def row_of(self, real_ms: int) -> int:
        """The replay row of the first request that arrived at or after ``real_ms``."""
        for request in self.requests:
            if request.arrival_ms >= real_ms:
                return request.first_row
        return self.requests[-1].first_row + self.requests[-1].rows if self.requests else 0

    def follow_reports(self, live: pd.DataFrame, change_row: int) -> list[WindowInfo]:
        """The monitor reports not seen yet, as windows of the replay (with an event each)."""
        from mloop import monitoring

        spec = self.spec
        ts = live[TIME_COLUMN].to_numpy()
        found = []
        for report in monitoring.reports(spec.deployment, client=self.client):
            if report.id in self.seen_reports:
                continue
            self.seen_reports.add(report.id)
            self.window_index += 1
            self.follow_reference(report)
            first, last = self.row_of(report.window_start_ms), self.row_of(report.window_end_ms)
            summary = report.summary.get("feature_drift") or {}
            share = summary.get("drifted_share")
            info = WindowInfo(
                index=self.window_index, report_id=report.id, first_row=first, last_row=last,
                rows=report.rows, post_change_rows=max(0, last - max(first, change_row)),
                status=report.status, drift_share=None if share is None else float(share),
                checks=sorted({str(a["check"]) for a in report.alerts}),
                sim_start_ms=int(ts[min(first, len(ts) - 1)]),
                sim_end_ms=int(ts[min(max(last - 1, 0), len(ts) - 1)]),
                model_versions=dict(report.summary.get("model_versions") or {}),
                reference_version=report.summary.get("reference_model_version"),
            )  # fmt: skip
            found.append(info)
            when = "after the change" if info.post_change_rows else "before the change"
            if self.stationary_windows is not None:
                when = "no change"
            self.emit(
                "window",
                f"window {info.index} (rows {first:,}-{last:,}, {when}): "
                + _window_verdict(report),
                window=info.index, status=report.status, drift_share=info.drift_share,
            )  # fmt: skip
        return found

    def follow_reference(self, report: Any) -> None:
        """An event when the monitor judged ``report`` against another reference than the one
        before (it follows a promotion), or could not and says why."""
        summary = report.summary
        seen = (summary.get("reference_model_version"), summary.get("reference_note"))
        if seen[0] is None:
            return
        before, self.reference = self.reference, seen
        name = self.spec.deployment
        if before[0] is not None and seen[0] != before[0]:
            self.emit(
                "monitor",
                f"monitor {name}: now compares with {summary.get('reference')}, the training "
                f"data of version {seen[0]}",
            )
        if seen[1] and seen[1] != before[1]:
            self.emit("monitor", f"monitor {name}: {seen[1]}")

    def follow_audit(self) -> None:
        """An event for each episode transition audited since the last look."""
        store: Any = self.client.store
        for event in store.iter_audit(after_seq=self.audit_seq):
            self.audit_seq = event.seq
            if not event.action.startswith("episode."):
                continue
            after = event.after or {}
            state = event.action.split(".", 1)[1]
            reason = str(after.get("reason", ""))
            if self.episode_id is None and state == "triggered":
                self.episode_id = int(str(event.object_id).rsplit("/", 1)[-1])
            message = _episode_message(state, after, reason)
            self.emit("episode", f"episode {event.object_id} {state}: {message}", state=state)

    def run(self) -> LoopDemoResult:
        """The whole demo (see the module docstring)."""
        spec = self.spec
        stationary = self.stationary_windows is not None
        change_ms = None if stationary else change_point(spec, self.seed)
        timeline = generate_timeline(spec, self.seed, change_at_ms=change_ms)
        history = timeline.iloc[: spec.train_rows].reset_index(drop=True)
        live = timeline.iloc[spec.train_rows :].reset_index(drop=True)
        if change_ms is None:  # every row is before the (absent) change
            change_row = len(live)
        else:
            ts = live[TIME_COLUMN].to_numpy()
            change_row = int(np.searchsorted(ts, change_ms, side="left"))
        self.sim_ms = int(history[TIME_COLUMN].iloc[-1])
        if stationary:
            self.emit(
                "start",
                f"{spec.name} scenario, seed {self.seed}, stationary: {len(history):,} rows of "
                f"history, then {self.stationary_windows} windows of {spec.window_rows:,} live "
                "rows with no change: any alarm is a false one",
            )
        else:
            self.emit(
                "start",
                f"{spec.name} scenario, seed {self.seed}: {len(history):,} rows of history, "
                f"then live traffic whose pattern changes after {change_row:,} rows "
                f"({change_row // spec.window_rows} windows of {spec.window_rows:,})",
            )
        version = self.prepare_data(timeline)
        champion, initial = self.train_champion(version, history)
        from mloop.serving.deployments import create_deployment

        create_deployment(spec.deployment, f"{spec.model}@champion", client=self.client)
        self.audit_seq = self._audit_head()
        result = LoopDemoResult(
            scenario=spec.name, seed=self.seed, dataset=spec.dataset, model=spec.model,
            deployment=spec.deployment, monitor=spec.deployment, policy=spec.deployment,
            url="", change_sim_ms=change_ms, change_row=change_row,
            window_rows=spec.window_rows, metric=spec.metric, champion_version=champion,
            initial=initial, stationary=stationary,
        )  # fmt: skip
        with LocalServer(spec.deployment, self.client) as server:
            result.url = server.url
            self.emit("serve", f"deployment {spec.deployment} follows {spec.model}@champion, "
                      f"served on {server.url}")  # fmt: skip
            self.create_loop(version, history)
            self.audit_seq = self._audit_head()
            self.replay(server, live, change_row, result)
        result.requests = len(self.requests)
        result.labels_sent = self.labels_sent
        self.measure(result, live, change_ms)
        return result

    def _audit_head(self) -> int:
        head = self.client.store.audit_head()
        return 0 if head is None else int(head[0])

    def replay(
        self, server: LocalServer, live: pd.DataFrame, change_row: int, result: LoopDemoResult
    ) -> None:
        """Replay the live rows with labels, one agent tick per batch, until the episode has
        ended and ``after_windows`` more windows were served (or the rows run out)."""
        from mloop.loop import Agent

        spec = self.spec
        agent = Agent(self.client, schedules=False, lease_seconds=120)
        ts = live[TIME_COLUMN].to_numpy()
        due = ts + live[fraud.LABEL_DELAY].to_numpy()
        pos = 0
        stop_at: int | None = None
        announced = False
        while pos < len(live) and (stop_at is None or pos < stop_at):
            batch = spec.batch_rows
            if self._rolling_out():
                batch = REQUEST_ROWS * 5
            end = min(pos + batch, len(live))
            self.send(server, live, pos, end)
            pos = end
            self.sim_ms = int(ts[pos - 1])
            if not announced and pos > change_row:
                announced = True
                self.emit("change", f"the {spec.name} pattern changes at row {change_row:,}")
            self.send_labels(server, live, due)
            server.flush()
            tick = agent.tick()
            for error in tick.errors:
                self.emit("error", error)
            result.windows.extend(self.follow_reports(live, change_row))
            self.follow_audit()
            if stop_at is None and not result.stationary and self._episode_ended():
                stop_at = min(len(live), pos + spec.after_windows * spec.window_rows + 1)
        result.rows_replayed = pos
        # The last windows: complete them (a later row exists) and report them.
        server.flush()
        agent.tick()
        result.windows.extend(self.follow_reports(live, change_row))
        self.follow_audit()

    def _episode(self) -> Any:
        from mloop.loop import policies

        if self.episode_id is None:
            return None
        return policies.get_episode(self.episode_id, client=self.client)

    def _rolling_out(self) -> bool:
        episode = self._episode()
        return episode is not None and episode.state in ("gating", "rolling_out")

    def _episode_ended(self) -> bool:
        episode = self._episode()
        return episode is not None and not episode.is_open

    # -- measuring -----------------------------------------------------------------------------
    def measure(self, result: LoopDemoResult, live: pd.DataFrame, change_ms: int | None) -> None:
        """Fill in the figures: detection, false alarms, the episode, the models on fresh rows."""
        from mloop.registry import evaluate

        spec = self.spec
        windows = result.windows
        pre = [w for w in windows if w.post_change_rows == 0 and w.last_row <= result.change_row]
        result.pre_change_windows = len(pre)
        result.pre_change_alarms = sum(1 for w in pre if w.status == "alert")
        post = [w for w in windows if w.post_change_rows > 0]
        detected = next((w for w in post if w.status == "alert"), None)
        if detected is not None and post:
            result.detection_window = detected.index
            # Windows ending after the change up to the alerting one, included: 1 means the
            # first window after the change raised it.
            result.detection_delay_windows = detected.index - post[0].index + 1
            result.detection_delay_rows = detected.last_row - result.change_row
        episode = self._episode()
        if episode is not None:
            result.episode = {
                "id": episode.id, "state": episode.state, "reason": episode.reason,
                "candidate_version": episode.candidate_version,
                "pipeline_run_id": episode.pipeline_run_id, "report_ids": episode.report_ids,
                "data": episode.detail.get("data"),
                "health": {k: v for k, v in episode.detail.items() if k.startswith("health_")},
            }  # fmt: skip
            result.gate = dict(episode.detail.get("gate") or {})
            if episode.state == "promoted":
                result.promoted_version = episode.candidate_version
        if change_ms is None:
            self.emit(
                "measure",
                f"stationary replay: alarms: {result.alarms} of {len(windows)} windows "
                f"({result.rows_replayed:,} rows, no change point)",
                alarms=result.alarms, windows=len(windows),
            )  # fmt: skip
            return
        # The old champion and the model serving now, on fresh post-change rows.
        start = int(live[TIME_COLUMN].iloc[-1]) + 1
        fresh = fresh_sample(spec, self.seed, start, change_ms)
        data = fresh[[*spec.features, spec.target]]
        result.fresh_rows = len(data)
        options: dict[str, Any] = {"latency": False, "plots": False}
        old = evaluate(f"models:/{spec.model}/{result.champion_version}", data,
                       target=spec.target, client=self.client, **options)  # fmt: skip
        result.old_metric = float(old.metrics[spec.metric])
        newest = result.promoted_version or result.champion_version
        new = evaluate(f"models:/{spec.model}/{newest}", data, target=spec.target,
                       client=self.client, **options)  # fmt: skip
        result.new_metric = float(new.metrics[spec.metric])
        self.sim_ms = start
        self.emit(
            "measure",
            f"on {len(data):,} fresh post-change rows: old champion v{result.champion_version} "
            f"{spec.metric} {result.old_metric:.3f}, serving now v{newest} "
            f"{result.new_metric:.3f}",
        )


def _window_verdict(report: Any) -> str:
    """A short verdict of a monitor report: ok, or the alerts in a few words each."""
    if report.status != "alert":
        return str(report.status)
    parts = []
    for alert in report.alerts:
        check = str(alert["check"])
        summary = report.summary.get(check) or {}
        if check == "feature_drift" and "drifted" in summary:
            drifted = list(summary["drifted"])
            names = ", ".join(drifted[:4]) + (", ..." if len(drifted) > 4 else "")
            parts.append(f"feature drift {len(drifted)}/{summary.get('tested')} ({names})")
        elif check == "performance" and isinstance(summary.get("value"), int | float):
            parts.append(
                f"performance {summary.get('metric')} {float(summary['value']):.3f} "
                f"(reference {float(summary.get('reference') or 0.0):.3f})"
            )
        else:
            reason = str(alert["reason"])
            parts.append(f"{check.replace('_', ' ')}: {reason[:70]}")
    return "ALERT " + "; ".join(parts)


def _episode_message(state: str, after: dict[str, Any], reason: str) -> str:
    """A short account of an episode's transition, from its audit event."""
    if state == "triggered":
        events = ", ".join(after.get("events", []))
        return f"opened on {events} (monitor report(s) {after.get('report_ids')})"
    if state == "retraining" and isinstance(after.get("data"), dict):
        data = after["data"]
        return (
            f"{data.get('labelled_rows', 0):,} labelled rows since the first drifting window: "
            f"retraining on the oldest {data.get('train_rows', 0):,}, the newest "
            f"{data.get('holdout_rows', 0):,} held out for the gate"
        )
    if state == "gating" and after.get("candidate_version") is not None:
        run = str(after.get("pipeline_run_id") or "")[:8]
        return f"retrained (run {run}): candidate version {after['candidate_version']}"
    gate = after.get("gate")
    if state == "rolling_out" and isinstance(gate, dict) and gate.get("checks"):
        check = gate["checks"][0]
        return (
            f"gate passed on the same {gate.get('rows', 0):,} held-out fresh rows: challenger "
            f"{check.get('metric')} {float(check.get('observed') or 0.0):.3f} vs champion "
            f"{float(check.get('champion') or 0.0):.3f}; {reason.rsplit('; ', 1)[-1]}"
        )
    return reason


def run_closed_loop(
    client: TrackingClient,
    *,
    scenario: str = "fraud",
    seed: int = 0,
    on_event: Callable[[LoopEvent], None] | None = None,
    stationary_windows: int | None = None,
    after_windows: int | None = None,
) -> LoopDemoResult:
    """Run the closed-loop demo of ``scenario`` (``fraud`` or ``demand``) on ``client``'s store,
    calling ``on_event`` for every line of the timeline; writes the HTML report into the store's
    home folder. The store should not hold the scenario's dataset, model or deployment yet
    (AlreadyExists otherwise: use a fresh MLOOP_HOME).

    With ``stationary_windows`` N, the live traffic has no change point: N windows of the
    scenario's size are replayed (and a few rows more, to complete the last one), and every
    alarm is a false one (``result.alarms``); nothing is measured on post-change rows. With
    ``after_windows`` N, N windows are replayed after the episode ends (the scenario's
    default: 2), to watch the promoted model (``result.after_promotion_alarms``)."""
    from mloop.examples.closed_loop_report import write_report

    spec = SCENARIOS.get(scenario)
    if spec is None:
        raise InvalidInput(
            f"unknown scenario {scenario!r}; choose one of {', '.join(SCENARIOS)}",
            field="scenario",
        )
    if stationary_windows is not None:
        live = _count(stationary_windows, "stationary_windows") * spec.window_rows + REQUEST_ROWS
        spec = dataclasses.replace(spec, pre_rows=live, post_rows=0)
    if after_windows is not None:
        extra = max(0, _count(after_windows, "after_windows") - spec.after_windows)
        spec = dataclasses.replace(
            spec, post_rows=spec.post_rows + extra * spec.window_rows, after_windows=after_windows
        )
    _check_fresh(client, spec)
    from threadpoolctl import threadpool_limits

    demo = _Demo(client, spec, seed, on_event, stationary_windows)
    # Training uses at most two threads (the server's predictions one): the demo is sized for
    # a two-core machine, and more threads than cores only make the server wait.
    with use_client(client), threadpool_limits(limits=min(2, os.cpu_count() or 1)):
        result = demo.run()
    result.events = demo.events
    result.seconds = time.monotonic() - demo.started
    home = Path(client.settings.home).expanduser()
    result.report_path = str(write_report(result, home / f"demo-{spec.name}-report.html"))
    return result


def _count(value: object, name: str) -> int:
    """``value`` if it is a whole number >= 1; InvalidInput naming ``name`` otherwise."""
    if isinstance(value, bool) or not isinstance(value, int) or value < 1:
        raise InvalidInput(f"{name} must be an int >= 1, got {value!r}", field=name)
    return value


def check_store_free(client: TrackingClient, scenario: str) -> None:
    """AlreadyExists when ``client``'s store already holds ``scenario``'s demo."""
    spec = SCENARIOS.get(scenario)
    if spec is None:
        raise InvalidInput(
            f"unknown scenario {scenario!r}; choose one of {', '.join(SCENARIOS)}",
            field="scenario",
        )
    _check_fresh(client, spec)


def _check_fresh(client: TrackingClient, spec: ScenarioSpec) -> None:
    """AlreadyExists unless the store is free of the scenario's deployment, monitor and policy
    (checked first, so that nothing is written before the error)."""
    from mloop.errors import AlreadyExists, NotFound

    store: Any = client.store
    for what, get in (
        ("deployment", store.get_deployment),
        ("monitor", store.get_monitor),
        ("policy", store.get_policy),
    ):
        try:
            get(spec.deployment)
        except NotFound:
            continue
        raise AlreadyExists(
            f"{what} {spec.deployment!r} already exists in this store: the {spec.name} demo "
            "needs a fresh one (set MLOOP_HOME to an empty folder, e.g. "
            "MLOOP_HOME=$(mktemp -d) mloop demo)"
        )
