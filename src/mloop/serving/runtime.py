"""The models a server holds for one deployment, and how it swaps them without failing a request.

A :class:`ServedModel` is one loaded, warmed model version with its own batcher and thread. A
:class:`DeploymentRuntime` keeps the versions the deployment needs (primary, canary, shadow),
re-reads the deployment every ``poll_interval_s`` and, when its alias or traffic split moved,
loads and warms the new versions first, then swaps them in at once; the versions no longer
needed finish what they hold before they are closed. A request routed to a version keeps it
until answered, so a swap under load drops nothing.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

import numpy as np

from mloop.errors import InvalidInput, MloopError, NotFound
from mloop.serving.batcher import Batcher, Outcome, Pending, run_isolated
from mloop.serving.protocols.oip import prediction_outputs
from mloop.serving.traffic import Router

if TYPE_CHECKING:
    from mloop.models.loaded import LoadedModel
    from mloop.serving.config import ServingConfig
    from mloop.serving.metrics import ServerMetrics
    from mloop.serving.predlog import PredictionLog
    from mloop.serving.protocols.common import ParsedInput
    from mloop.store.records import ModelVersion
    from mloop.tracking.client import TrackingClient

__all__ = ["DeploymentRuntime", "ServedModel"]

_log = logging.getLogger("mloop.serving")


class ServedModel:
    """One loaded model version behind its own batcher."""

    def __init__(
        self,
        version: ModelVersion,
        loaded: LoadedModel,
        *,
        config: ServingConfig,
        metrics: ServerMetrics | None = None,
        log: PredictionLog | None = None,
    ) -> None:
        self.version = version
        self.loaded = loaded
        self._metrics = metrics
        self._log = log
        raw_classes = getattr(loaded.raw, "classes_", None)
        self.classes: list[Any] | None = None if raw_classes is None else list(raw_classes)
        #: Outputs of the warm-up prediction (their dtypes and shapes describe the model).
        self.output_examples: dict[str, Any] = {}
        self.batcher = Batcher(
            self._run_batch,
            max_batch_size=config.max_batch_size,
            max_latency_ms=config.max_latency_ms,
            max_queue_rows=config.max_queue_rows,
            name=f"v{version.version}",
            on_batch=self._on_batch,
            thread_setup=lambda: limit_threads(config.model_threads),
        )

    @property
    def number(self) -> int:
        """The version number."""
        return self.version.version

    def warm_up(self) -> None:
        """Run one prediction on the stored input example, so the first request is not slow."""
        example = self.loaded.input_example
        if example is not None:
            inference = self.loaded.infer(example, proba=self.loaded.has_proba)
            self.output_examples = prediction_outputs(
                inference.predictions, inference.probabilities
            )

    def _on_batch(self, rows: int, queued: int) -> None:
        if self._metrics is not None:
            self._metrics.observe_batch(self.number, rows, queued)

    def _run_batch(self, batch: list[Pending]) -> list[Outcome | BaseException]:
        return run_isolated(self._run_all, batch)

    def _run_all(self, batch: list[Pending]) -> list[Outcome]:
        inference = self.loaded.infer(combine([p.item for p in batch]), proba=self.loaded.has_proba)
        done = time.perf_counter()
        outcomes: list[Outcome] = []
        start = 0
        for pending in batch:
            end = start + pending.item.n_rows
            outcomes.append(
                Outcome(
                    _rows(inference.predictions, start, end),
                    None
                    if inference.probabilities is None
                    else _rows(inference.probabilities, start, end),
                )
            )
            start = end
        if self._metrics is not None:
            if len({p.role for p in batch}) == 1:
                self._metrics.observe_predictions(self.number, batch[0].role, inference.predictions)
            else:
                for outcome, pending in zip(outcomes, batch, strict=True):
                    self._metrics.observe_predictions(
                        self.number, pending.role, outcome.predictions
                    )
        if self._log is not None:
            self._append_log(batch, inference, done)
        return outcomes

    def _append_log(self, batch: list[Pending], inference: Any, done: float) -> None:
        from mloop.serving.predlog import PredictionBatch

        roles = {p.role for p in batch}
        groups = [batch] if len(roles) == 1 else [[p] for p in batch]
        start = 0
        for group in groups:
            rows = sum(p.item.n_rows for p in group)
            end = start + rows
            whole = len(group) == len(batch)
            batch_log = PredictionBatch(
                model_version=self.number,
                role=group[0].role,
                request_ids=[p.request_id for p in group],
                row_counts=[p.item.n_rows for p in group],
                ts_ms=[p.arrival_ms for p in group],
                latency_ms=[(done - p.started) * 1000.0 for p in group],
                inputs=inference.prepared if whole else _rows(inference.prepared, start, end),
                predictions=inference.predictions
                if whole
                else _rows(inference.predictions, start, end),
                probabilities=None
                if inference.probabilities is None
                else (
                    inference.probabilities if whole else _rows(inference.probabilities, start, end)
                ),
                classes=self.classes,
            )
            self._log_append(batch_log)
            start = end

    def _log_append(self, batch_log: Any) -> None:
        assert self._log is not None
        if not self._log.append(batch_log) and self._metrics is not None:
            self._metrics.log_dropped.labels(self._metrics.deployment).inc(
                sum(batch_log.row_counts)
            )


def limit_threads(threads: int) -> None:
    """Cap the OpenMP/BLAS threads of the calling (model) thread's predict calls."""
    import warnings

    from threadpoolctl import threadpool_limits

    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # threadpoolctl warns about mixed OpenMP runtimes
        threadpool_limits(limits=threads)


def _rows(value: Any, start: int, end: int) -> Any:
    if hasattr(value, "iloc"):
        return value.iloc[start:end]
    return value[start:end]


def combine(items: list[ParsedInput]) -> Any:
    """One model input (a DataFrame or an array) from the rows of several requests."""
    import pandas as pd

    from mloop.serving.protocols.common import concat_inputs

    try:
        joined = concat_inputs(items)
    except ValueError as exc:  # tables beside tensors: the batcher retries each alone
        raise InvalidInput(str(exc)) from None
    if joined.columns is None:
        return joined.array
    arrays = {name: _numeric_array(values) for name, values in joined.columns.items()}
    if all(a is not None for a in arrays.values()):
        return arrays  # plain numbers: coerced straight to the model's frame, no detour
    return pd.DataFrame(joined.columns)


def _numeric_array(values: Any) -> np.ndarray | None:
    """``values`` as a 1-D numeric numpy array when they are plain numbers (or bools), else None."""
    if isinstance(values, np.ndarray):
        return values if values.ndim == 1 and values.dtype.kind in "fiub" else None
    try:
        arr = np.asarray(values)
    except (ValueError, OverflowError):
        return None
    if arr.ndim != 1 or arr.dtype.kind not in "fiub":
        return None
    # numpy would read True as 1 beside numbers; bools only count as bools on their own.
    if arr.dtype.kind != "b" and any(type(v) is bool for v in values):
        return None
    return arr


@dataclass(frozen=True)
class _Plan:
    primary: int
    canary: int | None
    canary_percent: float
    shadow: int | None
    sticky_key: str | None
    #: The records of the versions above, by number (loaded as they are, not read again).
    versions: dict[int, ModelVersion] = field(compare=False)


class DeploymentRuntime:
    """The versions one deployment serves now, kept in step with the store."""

    def __init__(
        self,
        deployment: str,
        *,
        config: ServingConfig,
        client: TrackingClient,
        metrics: ServerMetrics | None = None,
        log: PredictionLog | None = None,
    ) -> None:
        self.deployment = deployment
        self.config = config
        self.client = client
        self.metrics = metrics
        self.log = log
        self.model_name = ""
        self.slots: dict[int, ServedModel] = {}
        self.plan: _Plan | None = None
        self.router = Router(0.0)
        self.ready = False
        self._poller: asyncio.Task[None] | None = None
        self._closing: set[asyncio.Task[None]] = set()

    # -- lifecycle --------------------------------------------------------------------------
    async def start(self) -> None:
        """Load and warm every version the deployment needs, then follow it."""
        await self.refresh()
        self.ready = True
        self._poller = asyncio.get_running_loop().create_task(self._follow())

    async def close(self) -> None:
        """Stop following; let every version finish its queued requests; close them."""
        self.ready = False
        if self._poller is not None:
            self._poller.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._poller
        slots, self.slots = list(self.slots.values()), {}
        await asyncio.gather(
            *(s.batcher.close(self.config.graceful_timeout_s) for s in slots),
            *self._closing,
        )

    async def _follow(self) -> None:
        while True:
            await asyncio.sleep(self.config.poll_interval_s)
            try:
                await self.refresh()
            except asyncio.CancelledError:
                raise
            except Exception as exc:  # keep serving what we have; say why once per failure
                _log.warning("deployment %s: could not refresh: %s", self.deployment, exc)

    async def refresh(self) -> bool:
        """Re-read the deployment; load, warm and swap in what changed. True if it changed."""
        plan = await asyncio.to_thread(self._read_plan)
        self.model_name = plan.versions[plan.primary].model
        if plan == self.plan:
            return False
        wanted = {v for v in (plan.primary, plan.canary, plan.shadow) if v is not None}
        fresh = {v: self.slots[v] for v in wanted if v in self.slots}
        for number in sorted(wanted - set(fresh)):
            fresh[number] = await asyncio.to_thread(self._load, plan.versions[number])
        for slot in fresh.values():
            slot.batcher.start()
        retired = [s for v, s in self.slots.items() if v not in wanted]
        # The swap: one assignment each, no await between them.
        self.slots = fresh
        self.plan = plan
        self.router = Router(plan.canary_percent if plan.canary is not None else 0.0)
        for slot in retired:
            task = asyncio.get_running_loop().create_task(
                slot.batcher.close(self.config.graceful_timeout_s)
            )
            self._closing.add(task)
            task.add_done_callback(self._closing.discard)
        return True

    def _read_plan(self) -> _Plan:
        from mloop.serving.deployments import resolve_targets

        targets = resolve_targets(self.deployment, client=self.client)
        served = (targets.primary, targets.canary, targets.shadow)
        return _Plan(
            primary=targets.primary.version,
            canary=None if targets.canary is None else targets.canary.version,
            canary_percent=targets.canary_percent,
            shadow=None if targets.shadow is None else targets.shadow.version,
            sticky_key=targets.sticky_key,
            versions={v.version: v for v in served if v is not None},
        )

    def _load(self, version: ModelVersion) -> ServedModel:
        from mloop.registry import load

        loaded = load(version, trusted=self.config.trusted, client=self.client)
        slot = ServedModel(version, loaded, config=self.config, metrics=self.metrics, log=self.log)
        try:
            slot.warm_up()
        except MloopError as exc:
            raise type(exc)(
                f"{version.uri} failed its warm-up prediction on its input example: {exc}",
                **exc.details,
            ) from exc
        return slot

    # -- routing ----------------------------------------------------------------------------
    def route_primary(self) -> ServedModel:
        """The primary version (raises ServiceUnavailable while nothing is loaded)."""
        plan = self.plan
        if plan is None or plan.primary not in self.slots:
            from mloop.errors import ServiceUnavailable

            raise ServiceUnavailable("the model is still loading; retry in a moment")
        return self.slots[plan.primary]

    def route(self, key: str | None) -> tuple[ServedModel, ServedModel | None]:
        """The version that answers this request (primary or canary) and the shadow, if any."""
        plan = self.plan
        if plan is None or not self.slots:
            from mloop.errors import ServiceUnavailable

            raise ServiceUnavailable("the model is still loading; retry in a moment")
        number = plan.primary
        if plan.canary is not None and self.router.choose(key) == "canary":
            number = plan.canary
        shadow = None if plan.shadow is None else self.slots.get(plan.shadow)
        return self.slots[number], shadow

    def role_of(self, slot: ServedModel) -> str:
        """ "primary" or "canary" for a version answering requests."""
        plan = self.plan
        return "canary" if plan is not None and slot.number == plan.canary else "primary"

    def slot_for_version(self, number: int) -> ServedModel:
        """The served version ``number`` (primary or canary). Raises NotFound."""
        plan = self.plan
        if plan is not None and number in (plan.primary, plan.canary) and number in self.slots:
            return self.slots[number]
        served = ", ".join(str(v) for v in sorted(self.served_versions())) or "none"
        raise NotFound(
            f"version {number} of {self.model_name} is not served by deployment "
            f"{self.deployment} (served: {served})",
            version=number,
        )

    def served_versions(self) -> list[int]:
        """Versions answering requests (primary first, then the canary)."""
        plan = self.plan
        if plan is None:
            return []
        return [v for v in (plan.primary, plan.canary) if v is not None]

    @property
    def primary(self) -> ServedModel:
        """The primary version's model."""
        assert self.plan is not None
        return self.slots[self.plan.primary]

    @property
    def sticky_key(self) -> str | None:
        """The header whose value keeps a caller on one version (None: not sticky)."""
        return None if self.plan is None else self.plan.sticky_key
