"""Policies: what mloop does on its own when a deployment's monitors raise events.

::

    import mloop
    from mloop.loop import Canary

    mloop.policies.create(
        deployment="fraud-api",
        on=["drift", "performance_drop"],
        retrain="flows.fraud:training",          # module:pipeline
        gate=mloop.Gate(beat_champion={"roc_auc": 0.005}),
        rollout=Canary(steps=[0.1, 0.5, 1.0], hold="15m"),
        alert="https://hooks.example/abc",       # host listed in MLOOP_ALERT_HOSTS
        cooldown="6h",
    )

Everything is checked before the policy is stored: the deployment exists, the events are
known, the pipeline imports and accepts the params the agent will give it (``deployment``,
``start_ms``, ``end_ms`` and ``retrain_params``), the gate and rollout are valid and the
webhook's host is allowed. The agent (:mod:`mloop.loop.agent`) does the rest.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import TYPE_CHECKING, Any

from mloop.errors import InvalidInput
from mloop.evaluation import Gate as _BaseGate
from mloop.loop.alerts import check_webhook
from mloop.loop.rollout import Canary, parse_duration
from mloop.loop.triggers import EVENTS
from mloop.store.records import AlertDelivery, Episode, Policy
from mloop.store.registry import check_alias
from mloop.tracking.fluent import client_or_default

if TYPE_CHECKING:
    from mloop.tracking import TrackingClient

__all__ = [
    "PIPELINE_PARAMS",
    "Policy",
    "alerts",
    "create",
    "delete",
    "episodes",
    "get",
    "get_episode",
    "list_policies",
]

#: The params the agent gives the retraining pipeline, besides ``retrain_params``.
PIPELINE_PARAMS = ("deployment", "start_ms", "end_ms")


def _events(on: object) -> list[str]:
    items = [on] if isinstance(on, str) else on
    if not isinstance(items, Sequence) or not items:
        raise InvalidInput(
            f"on must name at least one event of {', '.join(EVENTS)}, got {on!r}", field="on"
        )
    out = []
    for item in items:
        if item not in EVENTS:
            raise InvalidInput(
                f"unknown event {item!r} in on=; events: {', '.join(EVENTS)}", field="on"
            )
        out.append(str(item))
    return sorted(set(out))


def _gate(gate: object) -> dict[str, Any]:
    if gate is None:
        return _BaseGate(beat_champion={"roc_auc": 0.005}).to_dict()
    if isinstance(gate, _BaseGate):
        return gate.to_dict()
    if isinstance(gate, Mapping):
        return _BaseGate.from_dict(gate).to_dict()
    raise InvalidInput(
        f"gate must be a mloop.Gate or a mapping of its fields, got {type(gate).__name__}",
        field="gate",
    )


def _rollout(rollout: object) -> dict[str, Any]:
    if rollout is None:
        return Canary().to_dict()
    if isinstance(rollout, Canary):
        return rollout.to_dict()
    if isinstance(rollout, Mapping):
        return Canary.from_dict(rollout).to_dict()
    raise InvalidInput(
        f"rollout must be a mloop.loop.Canary or a mapping of its fields, got "
        f"{type(rollout).__name__}",
        field="rollout",
    )


def _check_pipeline(retrain: object, params: dict[str, Any]) -> str:
    from mloop.pipelines.runner import import_pipeline

    if not isinstance(retrain, str):
        raise InvalidInput(
            f"retrain must name a pipeline as 'module:name', got {retrain!r}", field="retrain"
        )
    pipeline = import_pipeline(retrain)
    clash = sorted(set(params) & set(PIPELINE_PARAMS))
    if clash:
        raise InvalidInput(
            f"retrain_params may not set {', '.join(clash)}: the agent gives those",
            field="retrain_params",
        )
    try:
        pipeline.graph(deployment="x", start_ms=0, end_ms=1, **params)
    except InvalidInput as exc:
        raise InvalidInput(
            f"pipeline {retrain!r} does not take the params the agent gives it "
            f"({', '.join(PIPELINE_PARAMS)} and retrain_params {sorted(params)}): {exc.message}",
            field="retrain",
        ) from None
    return retrain


def _fraction(value: object, name: str) -> float:
    if isinstance(value, bool) or not isinstance(value, int | float) or not 0 < value < 1:
        raise InvalidInput(f"{name} must be a fraction in (0, 1), got {value!r}", field=name)
    return float(value)


def _count(value: object, name: str) -> int:
    if isinstance(value, bool) or not isinstance(value, int) or value < 1:
        raise InvalidInput(f"{name} must be a whole number >= 1, got {value!r}", field=name)
    return value


def create(
    name: str | None = None,
    *,
    deployment: str,
    on: Sequence[str] | str = ("drift", "performance_drop"),
    retrain: str,
    retrain_params: Mapping[str, Any] | None = None,
    gate: _BaseGate | Mapping[str, Any] | None = None,
    rollout: Canary | Mapping[str, Any] | None = None,
    alert: str | None = None,
    cooldown: str | float = "6h",
    against: str | None = None,
    holdout: float = 0.3,
    min_labelled_rows: int = 100,
    train_window: str | float | None = None,
    label_wait: str | float = "6h",
    client: TrackingClient | None = None,
) -> Policy:
    """Create a policy of ``deployment`` (named after it unless ``name`` is given); see the
    module docstring and docs/loop.md for every option. Raises InvalidInput, InvalidName,
    NotFound (deployment, pipeline), Forbidden (the webhook host), AlreadyExists."""
    client = client_or_default(client)
    deployment_record = client.store.get_deployment(deployment)
    params = dict(retrain_params or {})
    gate_dict = _gate(gate)
    config: dict[str, Any] = {
        "on": _events(on),
        "retrain": _check_pipeline(retrain, params),
        "retrain_params": params,
        "gate": gate_dict,
        "rollout": _rollout(rollout),
        "alert": None if alert is None else check_webhook(alert, client.settings),
        "cooldown": cooldown,
        "cooldown_ms": parse_duration(cooldown, "cooldown"),
        "against": against or deployment_record.alias or "champion",
        "holdout": _fraction(holdout, "holdout"),
        "min_labelled_rows": _count(min_labelled_rows, "min_labelled_rows"),
        "train_window_ms": (
            None if train_window is None else parse_duration(train_window, "train_window")
        ),
        "label_wait_ms": parse_duration(label_wait, "label_wait"),
    }
    check_alias(config["against"])
    return client.store.create_policy(
        name if name is not None else deployment,
        deployment=deployment,
        config=config,
        actor=client.settings.actor,
    )


def get(name: str, *, client: TrackingClient | None = None) -> Policy:
    """A policy by name. Raises NotFound."""
    return client_or_default(client).store.get_policy(name)


def list_policies(
    deployment: str | None = None, *, client: TrackingClient | None = None
) -> list[Policy]:
    """Every policy (of ``deployment`` when given), by name."""
    return client_or_default(client).store.list_policies(deployment)


def delete(name: str, *, client: TrackingClient | None = None) -> None:
    """Delete a policy with its episodes (audit events stay). Raises NotFound, InvalidState
    (an episode is open: let it end first)."""
    client = client_or_default(client)
    client.store.delete_policy(name, actor=client.settings.actor)


def episodes(
    name: str | None = None,
    *,
    open_only: bool = False,
    limit: int | None = None,
    client: TrackingClient | None = None,
) -> list[Episode]:
    """Episodes newest first, of one policy or all. Raises NotFound (the policy)."""
    return client_or_default(client).store.list_episodes(name, open_only=open_only, limit=limit)


def get_episode(episode_id: int, *, client: TrackingClient | None = None) -> Episode:
    """An episode by id. Raises NotFound."""
    return client_or_default(client).store.get_episode(episode_id)


def alerts(name: str, *, client: TrackingClient | None = None) -> list[AlertDelivery]:
    """A policy's webhook deliveries, oldest first. Raises NotFound."""
    return client_or_default(client).store.list_alert_deliveries(name)
