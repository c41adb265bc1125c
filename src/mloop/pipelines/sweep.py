"""Sweeps: search a pipeline's (or a step's) parameters with Optuna, every trial a tracked run.

``sweep(target, space, n_trials=..., metric=...)`` starts one *sweep run* (tags
``mloop.sweep.*``) and an Optuna study whose storage is mloop's own metadata database (Optuna adds
its own tables — ``studies``, ``trials``, … — beside mloop's; mloop's migrations never touch
them). Each trial is a child run of the sweep run holding the sampled params, the metric, the
trial number and its state (``mloop.sweep.trial.*`` tags). For a pipeline, the trial runs
:func:`~mloop.pipelines.runner.run_pipeline` (a pipeline run of its own, with its step cache,
linked from the trial run by the tag ``mloop.sweep.pipeline_run``) and reads the metric from a
step output: ``metric="NODE"`` for a step returning a number, ``"NODE.KEY"`` for a step
returning a dict. For a step, the trial calls it directly and the metric is its return value (a
number) or ``metric`` names a key of the dict it returns.

Pruning is real but opt-in: code running in a trial calls :func:`report` with intermediate
values; the pruner (median by default) compares them with earlier trials and, when the trial
should stop, ``report`` raises ``optuna.TrialPruned`` and the trial ends PRUNED (its run KILLED).
``report`` reaches the trial from the code running on the trial's own thread — a step target,
or a pipeline on the ``local`` executor — wherever the trial runs; elsewhere it does nothing.

``max_workers`` trials run at once on ``trial_executor``: ``"thread"`` (threads of this process,
Optuna's ``n_jobs``), ``"process"`` (``spawn``-started worker processes) or ``"ray"`` (one Ray
task per trial); see :mod:`mloop.pipelines.sweep_workers`. A pipeline's steps run on
``executor`` (``local``, ``process`` or ``ray``) within each trial.
"""

from __future__ import annotations

import contextvars
import math
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field, replace
from typing import TYPE_CHECKING, Any

from mloop.errors import AlreadyExists, InvalidInput, MissingExtra
from mloop.pipelines.steps import Pipeline, Step
from mloop.store.records import RunStatus

if TYPE_CHECKING:
    import optuna

    from mloop.config import Settings
    from mloop.pipelines.runner import StepResult
    from mloop.pipelines.sweep_workers import TrialJob, TrialOutcome
    from mloop.store.records import ModelVersion
    from mloop.tracking.client import TrackingClient
    from mloop.tracking.run import ActiveRun

__all__ = ["TRIAL_EXECUTORS", "SweepResult", "TrialResult", "parse_space", "report", "sweep"]

_TAG = "mloop.sweep."
_KINDS = ("int", "float", "categorical")
#: Where whole trials run: threads of the sweep process, worker processes, or Ray tasks.
TRIAL_EXECUTORS = ("thread", "process", "ray")
_CURRENT_TRIAL: contextvars.ContextVar[Any] = contextvars.ContextVar("mloop_trial", default=None)


@dataclass(frozen=True)
class TrialResult:
    """One trial: its Optuna number, state, params, metric value, tracked run and error (a
    FAIL trial's ``Type: message``). ``run_id`` is None only for a trial whose worker died
    before it started its run."""

    number: int
    state: str
    params: dict[str, Any]
    value: float | None
    run_id: str | None
    pipeline_run_id: str | None = None
    error: str | None = None


@dataclass(frozen=True)
class SweepResult:
    """A finished sweep: its run, study, every trial and the best one."""

    run_id: str
    study_name: str
    metric: str
    direction: str
    trials: list[TrialResult]
    best: TrialResult | None
    registered: ModelVersion | None = field(default=None)

    @property
    def best_params(self) -> dict[str, Any]:
        """The best trial's params (fixed params not included); empty if no trial finished."""
        return {} if self.best is None else dict(self.best.params)

    @property
    def best_value(self) -> float | None:
        """The best trial's metric value."""
        return None if self.best is None else self.best.value


def _optuna() -> Any:
    try:
        import optuna
    except ImportError as exc:
        raise MissingExtra("sweeps", "optuna", "mloop.sweep") from exc
    optuna.logging.set_verbosity(optuna.logging.WARNING)
    return optuna


def report(value: float, step: int) -> None:
    """Report an intermediate metric value of the running trial; raises ``optuna.TrialPruned``
    when the pruner says to stop. Works on a trial's own thread on every trial executor (a
    worker talks to the study in the database); does nothing outside a sweep trial."""
    trial = _CURRENT_TRIAL.get()
    if trial is None:
        return
    trial.report(float(value), step)
    if trial.should_prune():
        raise _optuna().TrialPruned(f"pruned at step {step}")


# --- the search space -------------------------------------------------------------------------


def _number(value: Any) -> bool:
    return isinstance(value, (int, float)) and not isinstance(value, bool) and math.isfinite(value)


def parse_space(space: Mapping[str, Any]) -> dict[str, dict[str, Any]]:
    """Check a search space and return it in its long form (``{"type": ..., ...}`` per name)."""
    if not isinstance(space, Mapping) or not space:
        raise InvalidInput("a sweep needs a non-empty space: {name: spec}", field="space")
    checked: dict[str, dict[str, Any]] = {}
    for name, given in space.items():
        if not isinstance(name, str) or not name:
            raise InvalidInput(f"space names must be non-empty strings, got {name!r}")
        spec: Any = given
        if isinstance(given, (list, tuple)):
            spec = {"type": "categorical", "choices": list(given)}
        if not isinstance(spec, Mapping) or spec.get("type") not in _KINDS:
            raise InvalidInput(
                f"space parameter {name!r}: {spec!r} is not a spec; give "
                '{"type": "int"|"float", "low": .., "high": ..} or '
                '{"type": "categorical", "choices": [..]} or a list of choices',
                param=name,
            )
        kind = spec["type"]
        if kind == "categorical":
            choices = spec.get("choices")
            if not isinstance(choices, (list, tuple)) or not choices:
                raise InvalidInput(
                    f"space parameter {name!r}: categorical needs a non-empty list of choices",
                    param=name,
                )
            if any(c is not None and not isinstance(c, (str, int, float, bool)) for c in choices):
                raise InvalidInput(
                    f"space parameter {name!r}: choices must be strings, numbers, booleans or None",
                    param=name,
                )
            checked[name] = {"type": kind, "choices": list(choices)}
            continue
        low: Any = spec.get("low")
        high: Any = spec.get("high")
        log: Any = spec.get("log", False)
        if not _number(low) or not _number(high) or low > high:
            raise InvalidInput(
                f"space parameter {name!r}: {kind} needs numbers low <= high, got "
                f"low={low!r}, high={high!r}",
                param=name,
            )
        if kind == "int" and (int(low) != low or int(high) != high):
            raise InvalidInput(
                f"space parameter {name!r}: int needs whole numbers, got {low!r}..{high!r}",
                param=name,
            )
        if not isinstance(log, bool) or (log and low <= 0):
            raise InvalidInput(
                f"space parameter {name!r}: log=True needs low > 0 (and log must be a bool)",
                param=name,
            )
        checked[name] = {"type": kind, "low": low, "high": high, "log": log}
    return checked


def _suggest(trial: Any, space: Mapping[str, dict[str, Any]]) -> dict[str, Any]:
    params: dict[str, Any] = {}
    for name, spec in space.items():
        if spec["type"] == "int":
            params[name] = trial.suggest_int(
                name, int(spec["low"]), int(spec["high"]), log=spec["log"]
            )
        elif spec["type"] == "float":
            params[name] = trial.suggest_float(
                name, float(spec["low"]), float(spec["high"]), log=spec["log"]
            )
        else:
            params[name] = trial.suggest_categorical(name, spec["choices"])
    return params


# --- reading the metric -----------------------------------------------------------------------


def _as_metric(value: Any, what: str) -> float:
    if not _number(value):
        raise InvalidInput(
            f"the sweep metric {what} is {value!r}, not a finite number", field="metric"
        )
    return float(value)


def _from_value(value: Any, key: str | None, what: str) -> float:
    if key is None:
        return _as_metric(value, what)
    if not isinstance(value, Mapping):
        raise InvalidInput(
            f"the sweep metric needs {what} to be a dict with key {key!r}, got "
            f"{type(value).__name__}",
            field="metric",
        )
    if key not in value:
        raise InvalidInput(
            f"{what} has no key {key!r} for the sweep metric; keys: "
            f"{', '.join(map(str, value)) or 'none'}",
            field="metric",
        )
    return _as_metric(value[key], f"{what}[{key!r}]")


def _split_metric(metric: str, nodes: Mapping[str, Any]) -> tuple[str, str | None]:
    """``NODE`` or ``NODE.KEY`` (node ids may hold dots: the longest matching node wins)."""
    if metric in nodes:
        return metric, None
    node, _, _ = metric.rpartition(".")
    while node:
        if node in nodes:
            return node, metric[len(node) + 1 :]
        node, _, _ = node.rpartition(".")
    raise InvalidInput(
        f"the sweep metric {metric!r} names no step of the pipeline; give NODE or NODE.KEY "
        f"with NODE one of: {', '.join(nodes)}",
        field="metric",
    )


# --- the sweep --------------------------------------------------------------------------------


def _study_storage(settings: Settings, optuna: Any, *, create_tables: bool = True) -> Any:
    """Optuna's RDB storage on mloop's database. Optuna would stamp or check its own Alembic
    revision in ``alembic_version`` — the table mloop's migrations own — so its compatibility
    check is skipped: mloop's revision stays as it is.

    On SQLite, several processes write the study at once (trials on worker processes), so the
    engine gets mloop's pragmas and busy timeout and every Optuna transaction starts with
    ``BEGIN IMMEDIATE`` (:func:`mloop.store.sqlite.attach_hooks`): a deferred transaction that
    reads and then writes would otherwise fail at once with "database is locked" when another
    process wrote in between (WAL mode)."""
    from sqlalchemy.engine import make_url

    uri = settings.tracking_uri
    kwargs: dict[str, Any] = {}
    sqlite = make_url(uri).get_backend_name() == "sqlite"
    if sqlite:
        kwargs["connect_args"] = {"timeout": settings.sqlite_busy_timeout}
    else:
        from mloop.store.postgres import normalize_uri

        uri = normalize_uri(uri)
        kwargs["pool_pre_ping"] = True
    storage = optuna.storages.RDBStorage(
        uri, engine_kwargs=kwargs, skip_compatibility_check=True,
        skip_table_creation=not create_tables,
    )  # fmt: skip
    if sqlite:
        from mloop.store.sqlite import attach_hooks

        attach_hooks(storage.engine, settings, always_immediate=True)
        storage.engine.dispose()  # connections made before the hooks were attached
    return storage


def _close_storage(storage: Any) -> None:
    """Close the connections of a storage made by :func:`_study_storage`."""
    storage.remove_session()
    storage.engine.dispose()


def _pruner(optuna: Any, pruner: Any) -> Any:
    if pruner is None or pruner == "median":
        return optuna.pruners.MedianPruner()
    if pruner == "none":
        return optuna.pruners.NopPruner()
    if isinstance(pruner, optuna.pruners.BasePruner):
        return pruner
    raise InvalidInput(
        f"pruner {pruner!r} is not 'median', 'none' or an optuna pruner", field="pruner"
    )


class _TrialFailed(Exception):
    """A trial that failed (its error is recorded on its run); Optuna marks it FAIL."""


@dataclass
class _Sweep:
    target: Pipeline | Step[..., Any]
    space: dict[str, dict[str, Any]]
    fixed: dict[str, Any]
    metric: str
    executor: str
    client: TrackingClient
    root: ActiveRun
    optuna: Any
    study_name: str
    keep_output: bool
    settings: Settings
    pruner: Any = None
    target_ref: str = ""
    trials: dict[int, TrialResult] = field(default_factory=dict)
    steps: dict[int, dict[str, StepResult]] = field(default_factory=dict)
    outputs: dict[int, Any] = field(default_factory=dict)
    fatal: InvalidInput | None = None

    def job(self, trial: Any) -> TrialJob:
        """Sample a trial's params and describe the trial for whoever runs it."""
        from mloop.pipelines.sweep_workers import TrialJob

        return TrialJob(
            target=self.target_ref, number=trial.number,
            trial_id=trial._trial_id,  # Optuna's storage id; load_study + Trial need it
            params=_suggest(trial, self.space), fixed=self.fixed, metric=self.metric,
            executor=self.executor, sweep_run_id=self.root.id, study_name=self.study_name,
            settings=self.settings, pruner=self.pruner,
            keep_output=self.keep_output,
        )  # fmt: skip

    def record(self, outcome: TrialOutcome, params: dict[str, Any]) -> None:
        """Keep a trial's outcome; a metric the target does not produce stops the sweep."""
        self.trials[outcome.number] = TrialResult(
            outcome.number, outcome.state, params, None, outcome.run_id,
            outcome.pipeline_run_id, outcome.error,
        )  # fmt: skip
        if outcome.steps is not None:
            self.steps[outcome.number] = outcome.steps
        if outcome.output is not None:
            self.outputs[outcome.number] = outcome.output
        if outcome.fatal is not None and self.fatal is None:
            self.fatal = InvalidInput(outcome.fatal, field="metric")

    def objective(self, trial: optuna.Trial) -> float:
        """One trial on this process's thread (``trial_executor="thread"``)."""
        from mloop.pipelines.sweep_workers import run_trial

        job = self.job(trial)
        outcome = run_trial(self.client, self.target, job, trial)
        self.record(outcome, job.params)
        if outcome.fatal is not None:
            trial.study.stop()
        if outcome.state == "COMPLETE":
            assert outcome.value is not None
            return outcome.value
        if outcome.state == "PRUNED":
            raise self.optuna.TrialPruned()
        raise _TrialFailed(outcome.error)


def _pruned_step(exc: BaseException) -> bool:
    """A step that raised ``TrialPruned`` inside a pipeline comes back wrapped as StepFailed."""
    failure = getattr(exc, "failure", None)
    return failure is not None and str(getattr(failure, "type", "")).endswith(".TrialPruned")


def _check_choice(name: str, value: Any, allowed: tuple[str, ...]) -> None:
    if value not in allowed:
        raise InvalidInput(
            f"{name} must be one of {', '.join(map(repr, allowed))}, got {value!r}", field=name
        )


def sweep(
    target: Pipeline | Step[..., Any],
    space: Mapping[str, Any],
    *,
    n_trials: int,
    metric: str,
    direction: str = "maximize",
    params: Mapping[str, Any] | None = None,
    executor: str = "local",
    max_workers: int = 1,
    trial_executor: str = "thread",
    pruner: Any = None,
    study_name: str | None = None,
    register_as: str | None = None,
    seed: int | None = None,
    client: TrackingClient | None = None,
) -> SweepResult:
    """Search ``space`` for the params of ``target`` (a pipeline or a step) that give the best
    ``metric``, with ``n_trials`` Optuna trials, each a child run of one sweep run.

    ``params`` are fixed params passed to every trial. ``max_workers`` trials run at once on
    ``trial_executor``: ``"thread"`` (threads of this process), ``"process"`` (worker
    processes) or ``"ray"`` (Ray tasks); for the last two the target must be importable as
    ``module:qualname``. A pipeline's steps run on ``executor`` within each trial.
    ``register_as`` registers the best trial's model (its ``NODE`` output, or the step's return
    value) as a new version of that model, tagged ``mloop.sweep.candidate=true``. ``seed``
    seeds Optuna's TPE sampler.
    """
    from mloop.tracking import default_client

    if not isinstance(target, (Pipeline, Step)):
        raise InvalidInput(
            f"sweep needs an @mloop.pipeline or an @mloop.step, got {type(target).__name__}"
        )
    checked = parse_space(space)
    fixed = dict(params or {})
    both = sorted(set(fixed) & set(checked))
    if both:
        raise InvalidInput(f"params {both} are both fixed and searched; give each once")
    if not isinstance(n_trials, int) or isinstance(n_trials, bool) or n_trials < 1:
        raise InvalidInput(f"n_trials must be a whole number >= 1, got {n_trials!r}")
    if not isinstance(max_workers, int) or isinstance(max_workers, bool) or max_workers < 1:
        raise InvalidInput(f"max_workers must be a whole number >= 1, got {max_workers!r}")
    if direction not in ("maximize", "minimize"):
        raise InvalidInput(f"direction must be 'maximize' or 'minimize', got {direction!r}")
    _check_choice("trial_executor", trial_executor, TRIAL_EXECUTORS)
    if not isinstance(metric, str) or not metric:
        raise InvalidInput("metric must name the value to optimise, e.g. 'evaluate.roc_auc'")
    if isinstance(target, Pipeline):
        nodes = {call.id: call for call in target.graph(**fixed, **_first(checked))}
        _split_metric(metric, nodes)  # a metric naming no step is refused before any trial
    optuna = _optuna()
    chosen_pruner = _pruner(optuna, pruner)
    client = client or default_client()
    ref, settings, pool = "", client.settings, None
    if trial_executor != "thread":
        from mloop.pipelines.sweep_workers import check_shippable, open_pool, shippable_settings

        ref = check_shippable(target, trial_executor, chosen_pruner)
        settings = shippable_settings(client.settings, trial_executor)
        pool = open_pool(trial_executor, max_workers, settings)  # Ray: connect and check first
    try:
        return _run_sweep(
            target, checked, fixed, n_trials=n_trials, metric=metric, direction=direction,
            executor=executor, max_workers=max_workers, trial_executor=trial_executor,
            pruner=chosen_pruner, study_name=study_name, register_as=register_as, seed=seed,
            client=client, ref=ref, settings=settings, pool=pool, optuna=optuna,
        )  # fmt: skip
    finally:
        if pool is not None:
            pool.shutdown(interrupted=True)  # a finished sweep has shut it down already


def _run_sweep(
    target: Pipeline | Step[..., Any],
    checked: dict[str, dict[str, Any]],
    fixed: dict[str, Any],
    *,
    n_trials: int,
    metric: str,
    direction: str,
    executor: str,
    max_workers: int,
    trial_executor: str,
    pruner: Any,
    study_name: str | None,
    register_as: str | None,
    seed: int | None,
    client: TrackingClient,
    ref: str,
    settings: Settings,
    pool: Any,
    optuna: Any,
) -> SweepResult:
    from mloop.pipelines.runner import _param_text, _system_tags

    name = target.name
    root = client.start_run(name, run_name=f"sweep-{name}", capture_source=False)
    study_name = study_name or f"mloop-sweep-{root.id}"
    state = _Sweep(
        target, checked, fixed, metric, executor, client, root, optuna, study_name,
        keep_output=register_as is not None and isinstance(target, Step), settings=settings,
        pruner=pruner, target_ref=ref,
    )  # fmt: skip
    storage: Any = None
    try:
        _system_tags(
            root,
            {
                _TAG + "target": name,
                _TAG + "kind": "pipeline" if isinstance(target, Pipeline) else "step",
                _TAG + "metric": metric,
                _TAG + "direction": direction,
                _TAG + "study": study_name,
                _TAG + "n_trials": n_trials,
                _TAG + "trial_executor": trial_executor,
            },
        )
        root.log_params({k: _param_text(v) for k, v in fixed.items()})
        root.log_dict({"space": checked}, "space.json")
        storage = _study_storage(client.settings, optuna)
        try:
            study = optuna.create_study(
                storage=storage,
                study_name=study_name,
                direction=direction,
                pruner=pruner,
                sampler=optuna.samplers.TPESampler(seed=seed),
            )
        except optuna.exceptions.DuplicatedStudyError:
            raise AlreadyExists(
                f"an Optuna study named {study_name!r} already exists; pick another study_name",
                field="study_name",
            ) from None
        if pool is None:
            study.optimize(
                state.objective, n_trials=n_trials, n_jobs=max_workers, catch=(_TrialFailed,)
            )
        else:
            from mloop.pipelines.sweep_workers import run_in_workers

            run_in_workers(state, study, n_trials=n_trials, max_workers=max_workers, pool=pool)
        if state.fatal is not None:
            raise state.fatal
        trials = []
        for frozen in study.trials:
            mine = state.trials.get(frozen.number)
            if mine is None:
                continue
            value = frozen.value if frozen.state.name == "COMPLETE" else None
            trials.append(replace(mine, state=frozen.state.name, value=value))
        done = [t for t in trials if t.value is not None]
        pick = max if direction == "maximize" else min
        best = pick(done, key=lambda t: t.value or 0.0) if done else None
        registered = None
        if best is not None:
            _system_tags(
                root,
                {_TAG + "best_trial": best.number, _TAG + "best_run": str(best.run_id)},
            )
            root.log_metrics({"best_" + metric: best.value or 0.0})
            if register_as is not None:
                registered = _register(state, best, register_as, metric)
        root.end(RunStatus.FINISHED if best is not None else RunStatus.FAILED)
    except BaseException as exc:
        root.end(RunStatus.KILLED if isinstance(exc, KeyboardInterrupt) else RunStatus.FAILED)
        raise
    finally:
        if storage is not None:
            _close_storage(storage)
    return SweepResult(root.id, study_name, metric, direction, trials, best, registered)


def _first(space: Mapping[str, dict[str, Any]]) -> dict[str, Any]:
    """One point of the space, to trace the pipeline's graph before any trial."""
    point: dict[str, Any] = {}
    for name, spec in space.items():
        if spec["type"] == "categorical":
            point[name] = spec["choices"][0]
        else:
            point[name] = int(spec["low"]) if spec["type"] == "int" else float(spec["low"])
    return point


def _register(state: _Sweep, best: TrialResult, name: str, metric: str) -> ModelVersion:
    from mloop.models import detect_flavor
    from mloop.pipelines.runner import PipelineResult
    from mloop.registry.core import log_model

    if isinstance(state.target, Step):
        value = state.outputs.get(best.number)
        found = value.values() if isinstance(value, Mapping) else [value]
        model = next((v for v in found if _is_model(v, detect_flavor)), None)
        where = f"step {state.target.name!r}"
    else:
        node = metric.split(".", 1)[0]
        result = PipelineResult(
            str(best.pipeline_run_id), state.target.name, RunStatus.FINISHED,
            state.steps[best.number], state.client,
        )  # fmt: skip
        model = _find_model(result, node, detect_flavor)
        where = f"pipeline {state.target.name!r}"
    if model is None:
        raise InvalidInput(
            f"register_as={name!r}: no output of {where} in the best trial is a model",
            field="register_as",
        )
    return log_model(
        state.root,
        model,
        name,
        tags={
            "mloop.sweep.candidate": "true",
            "mloop.sweep.run": state.root.id,
            "mloop.sweep.trial": str(best.number),
        },
        client=state.client,
    )


def _find_model(result: Any, metric_node: str, detect: Callable[[Any], str]) -> Any:
    """The first step output (in graph order) that a model flavor recognises, skipping the
    metric's own node."""
    for node, step_result in result.steps.items():
        if node == metric_node or len(step_result.outputs) != 1:
            continue
        try:
            value = result.output(node)
        except Exception:  # an output that needs trust or cannot load is not a candidate
            continue
        if _is_model(value, detect):
            return value
    return None


def _is_model(value: Any, detect: Callable[[Any], str]) -> bool:
    if value is None or _number(value) or isinstance(value, (str, bytes, dict, list, tuple)):
        return False
    try:
        detect(value)
    except InvalidInput:
        return False
    return True
