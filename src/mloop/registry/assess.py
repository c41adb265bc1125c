"""Evaluations and gate decisions recorded with model versions (and runs).

:func:`evaluate` runs :func:`mloop.evaluation.evaluate` on a registered version (or any model)
and records the result with the version — metrics, slices, fairness and calibration as a
record, the plots as the version's artifacts under ``evaluations/<record id>/`` — and, when a
run is given, as ``eval_<metric>`` metrics and plot artifacts of that run. :class:`Gate` is the
evaluation gate that also takes model versions: ``gate.check(mv, against="champion",
data=holdout)`` evaluates the candidate and the alias's current version on the same rows,
decides, and records the decision for that alias, where :func:`mloop.registry.set_alias`
looks for it.
"""

from __future__ import annotations

import time
from collections.abc import Mapping, Sequence
from typing import TYPE_CHECKING, Any

from mloop.errors import InvalidInput, NotFound
from mloop.evaluation import EvaluationResult, GateDecision
from mloop.evaluation import Gate as _BaseGate
from mloop.evaluation import evaluate as _evaluate
from mloop.registry.core import load, resolve
from mloop.registry.uri import ModelRef
from mloop.store.base import ModelVersion
from mloop.store.registry import OWNER_KIND, check_alias
from mloop.tracking.fluent import client_or_default

if TYPE_CHECKING:
    import pandas as pd

    from mloop.tracking import TrackingClient

__all__ = ["Gate", "check_gate", "evaluate"]

#: Prefix of the metrics an evaluation logs on a run.
RUN_METRIC_PREFIX = "eval_"


def _as_version(model: object, client: TrackingClient) -> ModelVersion | None:
    if isinstance(model, ModelVersion | ModelRef):
        return resolve(model, client=client)
    if isinstance(model, str):
        return resolve(model, client=client)
    return None


def evaluate(
    model: object,
    data: pd.DataFrame,
    *,
    target: str,
    slices: Sequence[str] = (),
    run: object = None,
    trusted: bool = False,
    client: TrackingClient | None = None,
    **options: Any,
) -> EvaluationResult:
    """Evaluate a registered version (``models:/…`` URI or record) or any model with
    ``predict`` on labelled ``data``; a version's result is recorded with it, and with ``run``
    when given. Options go to :func:`mloop.evaluation.evaluate`."""
    client = client_or_default(client)
    version = _as_version(model, client)
    predictor = model if version is None else load(version, trusted=trusted, client=client)
    result = _evaluate(predictor, data, target=target, slices=slices, **options)
    if version is not None:
        _record(client, version, result)
    if run is not None:
        _log_on_run(client, run, result)
    return result


def _record(client: TrackingClient, version: ModelVersion, result: EvaluationResult) -> None:
    record = client.store.add_model_record(
        version.model,
        version.version,
        kind="evaluation",
        subject=result.data_digest,
        passed=None,
        body=result.to_dict(include_plots=False),  # plots: artifacts
        actor=client.settings.actor,
    )
    if result.plots:
        entries = []
        for name, svg in sorted(result.plots.items()):
            ref = client.artifacts.put_bytes(svg.encode("utf-8"))
            entries.append((f"evaluations/{record.id}/{name}", ref.digest, ref.size))
        client.store.add_artifacts(OWNER_KIND, str(version.id), entries)


def _log_on_run(client: TrackingClient, run: object, result: EvaluationResult) -> None:
    run_id = run if isinstance(run, str) else getattr(run, "id", None)
    if not isinstance(run_id, str):
        raise InvalidInput(f"run must be a run id or a run, got {type(run).__name__}")
    metrics = {f"{RUN_METRIC_PREFIX}{k}": v for k, v in result.metrics.items()}
    active = next((r for r in client.active_runs if r.id == run_id), None)
    if active is not None:
        active.log_metrics(metrics)
        for name, svg in sorted(result.plots.items()):
            active.log_text(svg, f"evaluation/{name}")
        return
    now = time.time_ns() // 1_000_000
    client.store.write_batch(metrics=[(run_id, k, float(v), 0, now) for k, v in metrics.items()])
    for name, svg in sorted(result.plots.items()):
        client.log_bytes(run_id, svg.encode("utf-8"), f"evaluation/{name}")


def check_gate(
    gate: _BaseGate,
    candidate: str | ModelRef | ModelVersion,
    *,
    against: str = "champion",
    data: pd.DataFrame,
    target: str | None = None,
    slices: Sequence[str] = (),
    trusted: bool = False,
    client: TrackingClient | None = None,
    **options: Any,
) -> GateDecision:
    """Evaluate ``candidate`` and the version behind ``against`` on the same ``data``, apply
    ``gate``, and record the decision with the candidate for that alias. ``target`` defaults to
    the target of the candidate's newest recorded evaluation; ``slices`` to its slices."""
    client = client_or_default(client)
    check_alias(against)
    version = resolve(candidate, client=client)
    if target is None or not slices:
        previous = client.store.list_model_records(version.model, version.version, "evaluation")
        if target is None:
            if not previous:
                raise InvalidInput(
                    f"gate.check needs target=…: {version.uri} has no recorded evaluation to take "
                    "the target column from"
                )
            target = str(previous[-1].body.get("target"))
        if not slices and previous:
            slices = list((previous[-1].body.get("slices") or {}).keys())
    run_options = dict(
        options, latency=gate.max_latency_ms is not None or options.get("latency", False)
    )
    cand = evaluate(
        version, data, target=target, slices=slices, trusted=trusted, client=client, **run_options
    )
    champion: ModelVersion | None = None
    try:
        champion = resolve(ModelRef(version.model, alias=against), client=client)
    except NotFound:
        champion = None
    champ = None
    if champion is not None and champion.id != version.id:
        champ = evaluate(
            champion, data, target=target, slices=slices, trusted=trusted, client=client,
            **run_options,
        )  # fmt: skip
    decision = gate.check(cand, champ)
    body = decision.to_dict()
    body["reasons"] = list(decision.reasons)
    body["candidate"] = version.uri
    body["champion"] = None if champion is None else champion.uri
    client.store.add_model_record(
        version.model,
        version.version,
        kind="gate",
        subject=against,
        passed=decision.passed,
        body=body,
        actor=client.settings.actor,
    )
    return decision


class Gate(_BaseGate):
    """An evaluation gate whose ``check`` also takes model versions (see module docstring)."""

    def check(
        self,
        candidate: EvaluationResult | Mapping[str, Any] | str | ModelRef | ModelVersion,
        champion: EvaluationResult | Mapping[str, Any] | None = None,
        *,
        against: str = "champion",
        data: pd.DataFrame | None = None,
        target: str | None = None,
        slices: Sequence[str] = (),
        trusted: bool = False,
        client: TrackingClient | None = None,
    ) -> GateDecision:
        """Decide on evaluation results, or evaluate a model version against the version behind
        ``against`` on ``data`` and record the decision."""
        if isinstance(candidate, EvaluationResult | Mapping):
            return super().check(candidate, champion)
        if data is None:
            raise InvalidInput("gate.check on a model version needs data=… (labelled rows)")
        return check_gate(
            self, candidate, against=against, data=data, target=target, slices=slices,
            trusted=trusted, client=client,
        )  # fmt: skip
