"""The episode state machine: retrain, gate, roll out, then promote or roll back.

::

    triggered ──► retraining ──► gating ──► rolling_out(0) ─► … ─► rolling_out(k) ──► promoted
        │              │            │               │
        ▼              ▼            ▼               ▼
      failed         failed     rejected      rolled_back (health) / failed

:class:`EpisodeRunner` advances one episode as far as it can go now, under its lease; every
transition is one conditional store update (lease owner and expected state) and one audit
event naming the episode's report ids. Each state is safe to enter again after a crash:

- **triggered**: reads the labelled rows logged since the first triggering window (or the
  policy's ``train_window``), waits for ``min_labelled_rows`` of them (failing after
  ``label_wait``), and splits them by time: the first ``1 - holdout`` for training, the rest
  held out for the gate. The bounds are recorded, so a restart uses the same data.
- **retraining**: runs the pipeline with ``deployment``, ``start_ms``, ``end_ms`` (the
  training part) and ``retrain_params``. A run of an earlier attempt (found by its params) is
  resumed if it failed or was killed (a run whose process died is marked KILLED first), or run
  again from the step cache if it finished; a run still alive elsewhere is waited for. The
  first step output that is a model is registered as the next version of the deployment's
  model (tagged ``mloop.loop.episode``; registered once per episode).
- **gating**: :class:`mloop.Gate` checks the candidate against the policy's alias on the
  held-out rows (target ``label``); the decision is recorded with the version.
- **rolling_out(k)**: the canary is set to ``steps[k]`` and held; at the end of a hold the
  prediction log of that hold decides (:func:`mloop.loop.rollout.check_health`). A deployment
  found in another state than the episode says (an agent stopped between the two writes) is
  reconciled: the alias already on the candidate means promoted, a canary gone means rolled
  back.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from mloop.errors import BackendError, Conflict, Forbidden, InvalidInput, MloopError, NotFound
from mloop.loop.alerts import AlertSender
from mloop.loop.rollout import Canary, check_health
from mloop.store.loop import END_STATES
from mloop.store.queries import now_ms
from mloop.store.records import Episode, Policy, RunStatus

if TYPE_CHECKING:
    import pandas as pd
    import pyarrow as pa

    from mloop.pipelines.steps import Pipeline
    from mloop.tracking import TrackingClient

__all__ = ["EpisodeRunner", "LeaseLost", "labelled_frame"]

log = logging.getLogger(__name__)

#: The tag naming the episode a candidate version was registered by.
EPISODE_TAG = "mloop.loop.episode"
#: How many times a failed retraining run is resumed before the episode fails.
MAX_RESUMES = 1


class LeaseLost(Conflict):
    """Another agent took the episode over while this one worked on it."""


def labelled_frame(table: pa.Table) -> pd.DataFrame:
    """The labelled rows of a prediction-log table as a frame of the input columns plus
    ``label`` and ``ts`` (epoch ms); shadow rows (a copy of a request) are left out."""
    import pandas as pd
    import pyarrow as pa
    import pyarrow.compute as pc

    if table.num_rows == 0 or "label" not in table.column_names:
        return pd.DataFrame({"label": [], "ts": []})
    keep = pc.and_(
        pc.is_valid(table["label"]), pc.not_equal(table["role"].cast(pa.string()), "shadow")
    )
    if not pa.types.is_struct(table.schema.field("inputs").type):
        raise InvalidInput(
            "labelled_frame needs inputs logged as named columns (a frame or a dict of "
            f"columns); this log holds {table.schema.field('inputs').type} inputs (a tensor): "
            "retrain such a model from a registered dataset instead of the prediction log",
            field="inputs",
        )
    rows = table.filter(keep)
    inputs = rows.column("inputs").combine_chunks()
    names = [field.name for field in inputs.type]
    frame = pa.Table.from_arrays(inputs.flatten(), names=names).to_pandas()
    frame["label"] = rows.column("label").to_pandas()
    frame["ts"] = rows.column("ts").cast(pa.int64()).to_numpy()
    return frame


@dataclass
class _Step:
    """What a state handler decided: a transition, or None to wait."""

    state: str
    reason: str
    detail: dict[str, Any]
    step: int | None = None
    pipeline_run_id: str | None = None
    candidate_version: int | None = None


class EpisodeRunner:
    """Advances episodes under their leases (see the module docstring)."""

    def __init__(
        self,
        client: TrackingClient,
        owner: str,
        *,
        lease_ms: int = 60_000,
        alerts: AlertSender | None = None,
        clock: Callable[[], int] = now_ms,
    ) -> None:
        self.client = client
        self.owner = owner
        self.lease_ms = lease_ms
        self.alerts = alerts or AlertSender(client)
        self.clock = clock
        # The labelled frames of the prediction-log ranges read during one advance(): the
        # states it goes through read the same held-out and training ranges again.
        self._frames: dict[tuple[str, int, int], pd.DataFrame] = {}

    # -- leases -------------------------------------------------------------------------------
    @contextmanager
    def _keep_lease(self, episode_id: int) -> Iterator[threading.Event]:
        """Renew the lease every third of its length while the body runs; the event is set
        if a renewal found the lease taken."""
        lost = threading.Event()
        done = threading.Event()

        def renew() -> None:
            while not done.wait(self.lease_ms / 3000):
                try:
                    ok = self.client.store.renew_episode_lease(
                        episode_id, self.owner, lease_until=self.clock() + self.lease_ms
                    )
                except MloopError as exc:
                    log.warning("renewing the lease of episode %s failed: %s", episode_id, exc)
                    continue
                if not ok:
                    lost.set()
                    return

        thread = threading.Thread(target=renew, name=f"mloop-lease-{episode_id}", daemon=True)
        thread.start()
        try:
            yield lost
        finally:
            done.set()
            thread.join()

    def _confirm_lease(self, episode_id: int) -> None:
        ok = self.client.store.renew_episode_lease(
            episode_id, self.owner, lease_until=self.clock() + self.lease_ms
        )
        if not ok:
            raise LeaseLost(f"the lease of episode {episode_id} was taken by another agent")

    # -- the loop -----------------------------------------------------------------------------
    def advance(self, episode: Episode) -> Episode:
        """Move a claimed episode on until it waits or ends; returns it as it is then."""
        self._frames.clear()
        try:
            return self._advance(episode)
        finally:
            self._frames.clear()

    def _advance(self, episode: Episode) -> Episode:
        handlers: dict[str, Callable[[Episode, Policy], _Step | None]] = {
            "triggered": self._triggered,
            "retraining": self._retraining,
            "gating": self._gating,
            "rolling_out": self._rolling_out,
        }
        while episode.is_open:
            policy = self.client.store.get_policy(episode.policy)
            handler = handlers[episode.state]
            try:
                with self._keep_lease(episode.id) as lost:
                    decided = handler(episode, policy)
                if lost.is_set():
                    raise LeaseLost(f"the lease of episode {episode.id} was lost while working")
            except LeaseLost:
                raise
            except Exception as exc:  # a bug or a backend failure: end explained, not stuck
                if isinstance(exc, BackendError):
                    raise  # the store is down: try again on the next tick
                decided = _Step(
                    "failed",
                    f"{episode.state} stopped on {type(exc).__name__}: {exc}",
                    {"error": f"{type(exc).__name__}: {exc}"},
                )
                self._cleanup_canary(episode, policy)
            if decided is None:
                return episode
            episode = self._move(episode, policy, decided)
        return episode

    def _move(self, episode: Episode, policy: Policy, decided: _Step) -> Episode:
        try:
            moved = self.client.store.update_episode(
                episode.id, self.owner, expect_state=episode.state, state=decided.state,
                reason=decided.reason, step=decided.step, detail=decided.detail,
                pipeline_run_id=decided.pipeline_run_id,
                candidate_version=decided.candidate_version, now=self.clock(),
                actor=self.client.settings.actor,
            )  # fmt: skip
        except Conflict as exc:
            raise LeaseLost(exc.message) from None
        if moved.state in END_STATES:
            self._alert(policy, moved, f"episode.{moved.state}")
        return moved

    def _alert(self, policy: Policy, episode: Episode, event: str) -> None:
        url = policy.config.get("alert")
        if not url:
            return
        self.alerts.send(
            policy.name, url, event,
            {"policy": policy.name, "deployment": policy.deployment, "episode": episode.id,
             "state": episode.state, "reason": episode.reason, "report_ids": episode.report_ids,
             "candidate_version": episode.candidate_version},
            episode_id=episode.id,
        )  # fmt: skip

    def alert_triggered(self, policy: Policy, episode: Episode) -> None:
        """Send the policy's webhook for a newly opened episode."""
        self._alert(policy, episode, "episode.triggered")

    def _cleanup_canary(self, episode: Episode, policy: Policy) -> None:
        """Take the episode's candidate off the deployment if it is its canary."""
        from mloop.serving.deployments import clear_canary, get_deployment

        if episode.candidate_version is None:
            return
        try:
            dep = get_deployment(policy.deployment, client=self.client)
            if dep.canary_version == episode.candidate_version:
                clear_canary(policy.deployment, client=self.client)
        except MloopError as exc:
            log.warning("could not clear the canary of %s: %s", policy.deployment, exc)

    # -- triggered ----------------------------------------------------------------------------
    def _window(self, policy: Policy, start_ms: int, end_ms: int) -> pd.DataFrame:
        """The labelled rows logged in ``[start_ms, end_ms)``, read once per advance()
        (callers do not modify the frame)."""
        from mloop.serving.predlog_read import read_predictions

        key = (policy.deployment, start_ms, end_ms)
        if key not in self._frames:
            table = read_predictions(
                policy.deployment, start_ms=start_ms, end_ms=end_ms, with_labels=True,
                client=self.client,
            )  # fmt: skip
            self._frames[key] = labelled_frame(table)
        return self._frames[key]

    def _triggered(self, episode: Episode, policy: Policy) -> _Step | None:
        cfg = policy.config
        now = self.clock()
        window = cfg.get("train_window_ms")
        start = (
            now - int(window)
            if window is not None
            else int(episode.detail.get("reports_start_ms", episode.started_at))
        )
        frame = self._window(policy, start, now)
        need = int(cfg.get("min_labelled_rows", 100))
        if len(frame) < need:
            if now - episode.started_at > int(cfg.get("label_wait_ms", 0)):
                return _Step(
                    "failed",
                    f"only {len(frame)} labelled row(s) of the {need} needed were logged "
                    f"between {start} and {now}, after waiting {cfg.get('label_wait_ms')} ms "
                    "for labels; send labels through /feedback or lower min_labelled_rows",
                    {"data": {"start_ms": start, "end_ms": now, "labelled_rows": len(frame)}},
                )
            return None
        ts = sorted(int(t) for t in frame["ts"])
        cut_index = min(max(1, int(len(ts) * (1 - float(cfg.get("holdout", 0.3))))), len(ts) - 1)
        cut = ts[cut_index]
        if cut <= ts[0]:  # every row at one instant: no time split is possible
            cut = ts[0] + 1
        data = {
            "start_ms": start, "end_ms": now + 1, "cut_ms": cut, "labelled_rows": len(ts),
            "train_rows": sum(1 for t in ts if t < cut),
            "holdout_rows": sum(1 for t in ts if t >= cut),
        }  # fmt: skip
        return _Step(
            "retraining",
            f"retraining on {data['train_rows']} labelled row(s) logged in [{start}, {cut}); "
            f"{data['holdout_rows']} held out for the gate",
            {"data": data, "retrain_started_at": now, "retrain_attempts": 0},
        )

    # -- retraining ---------------------------------------------------------------------------
    def _params(self, policy: Policy, episode: Episode) -> dict[str, Any]:
        data = episode.detail["data"]
        return {
            **dict(policy.config.get("retrain_params") or {}),
            "deployment": policy.deployment,
            "start_ms": int(data["start_ms"]),
            "end_ms": int(data["cut_ms"]),
        }

    def _earlier_run(self, pipeline: Pipeline, params: dict[str, Any], since: int) -> Any:
        """The newest run of this pipeline with these params started since ``since``."""
        from mloop.pipelines.graph import canonical_json

        try:
            page = self.client.search_runs(
                experiments=[pipeline.name], order_by=["start_time DESC"], max_results=50
            )
        except NotFound:
            return None
        # As run_pipeline logs params: text as is, anything else as canonical JSON.
        wanted = {k: v if isinstance(v, str) else canonical_json(v) for k, v in params.items()}
        for run in page:
            if run.start_time < since - 1000 or run.parent_id is not None:
                continue
            if all(run.params.get(k) == v for k, v in wanted.items()):
                return run
        return None

    def _retraining(self, episode: Episode, policy: Policy) -> _Step | None:
        from mloop.pipelines.runner import StepFailed, import_pipeline, run_pipeline

        pipeline = import_pipeline(policy.config["retrain"])
        params = self._params(policy, episode)
        attempts = int(episode.detail.get("retrain_attempts", 0))
        since = int(episode.detail.get("retrain_started_at", episode.started_at))
        earlier = self._earlier_run(pipeline, params, since)
        resume_from: str | None = None
        note = ""
        if earlier is not None:
            if earlier.status is RunStatus.RUNNING:
                self.client.reap_stale_runs()
                earlier = self.client.get_run(earlier.id)
            if earlier.status is RunStatus.RUNNING:
                return None  # alive in another process: wait for it (or for the reaper)
            if earlier.status in (RunStatus.FAILED, RunStatus.KILLED):
                if attempts >= MAX_RESUMES:
                    return _Step(
                        "failed",
                        f"the retraining run {earlier.id} ended {earlier.status} and was "
                        f"already resumed {attempts} time(s)",
                        {"retrain_run": earlier.id},
                        pipeline_run_id=earlier.id,
                    )
                resume_from = earlier.id
                note = f" (resumed run {earlier.id}, which ended {earlier.status})"
            else:
                note = f" (run {earlier.id} had finished; its steps came from the cache)"
        if resume_from is not None:
            # Count the attempt before it starts: a crash during it must not loop forever.
            self.client.store.update_episode(
                episode.id, self.owner, expect_state="retraining", state="retraining",
                reason=f"resuming the retraining run {resume_from}",
                detail={"retrain_attempts": attempts + 1}, restart_clock=False,
                now=self.clock(), actor=self.client.settings.actor,
            )  # fmt: skip
        try:
            if resume_from is not None:
                result = run_pipeline(pipeline, None, client=self.client, resume_from=resume_from)
            else:
                result = run_pipeline(pipeline, params, client=self.client)
        except StepFailed as exc:
            failure = exc.failure
            return _Step(
                "failed",
                f"retraining failed in step {exc.node_id!r}: {failure.type}: {failure.message}",
                {"retrain_run": exc.result.run_id, "error": f"{failure.type}: {failure.message}"},
                pipeline_run_id=exc.result.run_id,
            )
        version = self._register(result, policy, episode)
        self._record_training_data(policy, episode, version)
        return _Step(
            "gating",
            f"retrained in run {result.run_id}{note}; candidate {policy.deployment} model "
            f"version {version}",
            {"retrain_run": result.run_id},
            pipeline_run_id=result.run_id,
            candidate_version=version,
        )

    def _register(self, result: Any, policy: Policy, episode: Episode) -> int:
        from mloop.errors import InvalidInput
        from mloop.models import detect_flavor
        from mloop.registry.core import log_model

        dep = self.client.store.get_deployment(policy.deployment)
        for version in self.client.store.list_model_versions(dep.model):
            if version.tags.get(EPISODE_TAG) == str(episode.id):
                return int(version.version)  # registered before a crash: once per episode
        model = None
        for node, step in result.steps.items():
            if len(step.outputs) != 1:
                continue
            try:
                value = result.output(node)
                detect_flavor(value)
            except (InvalidInput, MloopError):
                continue
            if isinstance(value, str | bytes | dict | list | tuple | int | float):
                continue
            model = value
            break
        if model is None:
            raise InvalidInput(
                f"pipeline {policy.config['retrain']!r} produced no model (no step output that "
                "a model flavor recognises); return the trained model from a step"
            )
        data = episode.detail["data"]
        sample = self._window(policy, int(data["cut_ms"]), int(data["end_ms"])).head(5)
        example = sample.drop(columns=["label", "ts"]) if len(sample) else None
        registered = log_model(
            result.run_id, model, dep.model, input_example=example,
            tags={EPISODE_TAG: str(episode.id), "mloop.loop.policy": policy.name,
                  "mloop.loop.candidate": "true"},
            client=self.client,
        )  # fmt: skip
        return int(registered.version)

    def _record_training_data(self, policy: Policy, episode: Episode, version: int) -> None:
        """Register the labelled rows the retraining was given as a dataset version
        (``<deployment>.training``: the inputs, ``label`` and ``ts``) and log it as the
        training input of the run that made the candidate, unless that run logged its own:
        the candidate's lineage, and the reference of a monitor that follows the training
        data of the serving version."""
        from mloop.data.versions import register

        dep = self.client.store.get_deployment(policy.deployment)
        made = self.client.store.get_model_version(dep.model, version)
        if made.run_id is None:
            return
        if any(i.context == "training" for i in self.client.store.list_run_inputs(made.run_id)):
            return
        data = episode.detail["data"]
        frame = self._window(policy, int(data["start_ms"]), int(data["cut_ms"]))
        if frame.empty:
            return
        dataset = register(
            f"{policy.deployment}.training", frame.reset_index(drop=True),
            description=f"the labelled rows of {policy.deployment}'s prediction log in "
            f"[{data['start_ms']}, {data['cut_ms']}) that policy {policy.name} retrained on "
            f"(episode {episode.id})",
            tags={EPISODE_TAG: str(episode.id), "mloop.loop.policy": policy.name},
            client=self.client,
        )  # fmt: skip
        self.client.log_input(made.run_id, dataset, context="training")

    # -- gating -------------------------------------------------------------------------------
    def _gating(self, episode: Episode, policy: Policy) -> _Step | None:
        from mloop.evaluation import Gate
        from mloop.registry.assess import check_gate
        from mloop.serving.deployments import get_deployment, set_canary

        data = episode.detail["data"]
        frame = self._window(policy, int(data["cut_ms"]), int(data["end_ms"]))
        if frame.empty:
            return _Step("failed", "no held-out labelled rows are left for the gate", {})
        dep = get_deployment(policy.deployment, client=self.client)
        gate = Gate.from_dict(policy.config["gate"])
        decision = check_gate(
            gate,
            f"models:/{dep.model}/{episode.candidate_version}",
            against=str(policy.config.get("against", "champion")),
            data=frame.drop(columns=["ts"]),
            target="label",
            client=self.client,
        )
        gate_detail = {
            "gate": {
                "passed": decision.passed,
                "reasons": list(decision.reasons),
                "checks": [check.to_dict() for check in decision.checks],
                "rows": len(frame),
            }
        }
        if not decision.passed:
            return _Step(
                "rejected", f"the gate refused the candidate: {decision.summary()}", gate_detail
            )
        canary = Canary.from_dict(policy.config["rollout"])
        percent = canary.steps[0] * 100
        set_canary(policy.deployment, int(str(episode.candidate_version)), percent,
                   client=self.client)  # fmt: skip
        return _Step(
            "rolling_out",
            f"the gate passed ({decision.summary()}); canary at {percent:g}%",
            {**gate_detail, "rollout_started_at": self.clock()},
            step=0,
        )

    # -- rolling out --------------------------------------------------------------------------
    def _rolling_out(self, episode: Episode, policy: Policy) -> _Step | None:
        from mloop.serving.deployments import (
            clear_canary,
            get_deployment,
            promote_canary,
            resolve_targets,
            set_canary,
        )

        canary = Canary.from_dict(policy.config["rollout"])
        candidate = int(str(episode.candidate_version))
        k = episode.step
        percent = canary.steps[k] * 100
        dep = get_deployment(policy.deployment, client=self.client)
        if dep.canary_version != candidate:
            primary = resolve_targets(policy.deployment, client=self.client).primary.version
            if primary == candidate:
                return _Step(
                    "promoted",
                    f"version {candidate} already serves as the primary of "
                    f"{policy.deployment} (the promotion was made before the agent stopped)",
                    {},
                )
            return _Step(
                "rolled_back",
                f"the canary of {policy.deployment} is no longer version {candidate} (cleared "
                "or replaced outside this episode, or by an agent that stopped after clearing "
                "it); nothing was promoted",
                {},
            )
        if abs(dep.canary_percent - percent) > 1e-9:
            set_canary(policy.deployment, candidate, percent, client=self.client)
        now = self.clock()
        elapsed = now - episode.step_started_at
        if elapsed < canary.hold_ms:
            return None
        rollout_start = int(episode.detail.get("rollout_started_at", episode.step_started_at))
        health = check_health(
            policy.deployment, candidate, canary, start_ms=episode.step_started_at,
            end_ms=now + 1, baseline_start_ms=rollout_start, client=self.client,
        )  # fmt: skip
        detail = {f"health_{k}": health.to_dict()}
        if health.passed is None:
            if elapsed < 3 * max(canary.hold_ms, 1):
                return None
            clear_canary(policy.deployment, client=self.client)
            return _Step(
                "rolled_back",
                f"canary step {k} ({percent:g}%) never showed health: {health.reason} "
                f"within three holds ({3 * canary.hold_ms} ms)",
                detail,
            )
        if not health.passed:
            clear_canary(policy.deployment, client=self.client)
            return _Step(
                "rolled_back", f"canary step {k} ({percent:g}%) failed: {health.reason}", detail
            )
        if k + 1 < len(canary.steps):
            nxt = canary.steps[k + 1] * 100
            set_canary(policy.deployment, candidate, nxt, client=self.client)
            return _Step(
                "rolling_out",
                f"canary step {k} ({percent:g}%) {health.reason}; canary at {nxt:g}%",
                detail,
                step=k + 1,
            )
        self._confirm_lease(episode.id)  # two agents never promote at once
        try:
            promote_canary(
                policy.deployment,
                reason=f"policy {policy.name}, episode {episode.id}: canary healthy",
                client=self.client,
            )
        except Forbidden as exc:
            clear_canary(policy.deployment, client=self.client)
            return _Step("failed", f"the promotion was refused: {exc.message}", detail)
        return _Step(
            "promoted",
            f"version {candidate} promoted after {len(canary.steps)} healthy canary step(s); "
            f"{health.reason}",
            detail,
        )
