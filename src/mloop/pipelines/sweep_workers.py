"""Running sweep trials: one trial's body, and whole trials on worker processes or Ray tasks.

:func:`run_trial` is what every trial does, wherever it runs: start the trial's child run
(``trial-<n>`` under the sweep run), evaluate the target with the trial's params, record the
metric (or the error, or the pruning) and end the run. On the ``thread`` trial executor the
sweep's own process calls it from Optuna's ``optimize``. On ``process`` and ``ray`` the sweep
process keeps the study and runs an ask/tell loop (:func:`run_in_workers`): it asks Optuna for
up to ``max_workers`` trials, samples their params, ships each as a :class:`TrialJob` — plain
picklable data: the target's ``module:qualname``, the params, the trial's number and id, the
settings naming the metadata database and artifact store — and tells Optuna each
:class:`TrialOutcome` as it comes back.

A worker (:func:`run_trial_job`) opens the tracking store itself and loads the study from the
same database (Optuna's RDB storage is mloop's database), so :func:`~mloop.pipelines.sweep.report`
inside a worker writes intermediate values to the study and asks the pruner directly: pruning
works in worker processes and Ray tasks as on threads. The database must therefore be reachable
from every worker (any SQLite file or PostgreSQL on one machine; PostgreSQL for a Ray cluster
beyond this machine), and so must the artifact store (as for the Ray step executor).
"""

from __future__ import annotations

import contextlib
import importlib
import multiprocessing
import pickle
import traceback
from concurrent.futures import FIRST_COMPLETED, Future, ProcessPoolExecutor, wait
from concurrent.futures.process import BrokenProcessPool
from dataclasses import dataclass, replace
from typing import TYPE_CHECKING, Any, Protocol

from mloop.errors import ConfigError, InvalidInput, NotFound
from mloop.pipelines.execution import _type_name
from mloop.pipelines.executors import _kill
from mloop.pipelines.steps import Pipeline, Step
from mloop.pipelines.sweep import (
    _CURRENT_TRIAL,
    _TAG,
    _close_storage,
    _from_value,
    _number,
    _optuna,
    _pruned_step,
    _split_metric,
    _study_storage,
)
from mloop.store.queries import now_ms
from mloop.store.records import RunStatus

if TYPE_CHECKING:
    from mloop.config import Settings
    from mloop.pipelines.runner import StepResult
    from mloop.tracking.client import TrackingClient

__all__ = [
    "TrialJob",
    "TrialOutcome",
    "check_shippable",
    "import_target",
    "open_pool",
    "run_in_workers",
    "run_trial",
    "run_trial_job",
    "shippable_settings",
    "target_ref",
]


@dataclass(frozen=True)
class TrialJob:
    """What a worker needs to run one trial (plain picklable data).

    ``target`` is the pipeline's or step's ``module:qualname``; ``params`` the sampled ones,
    ``fixed`` those given to every trial; ``executor`` is where a pipeline's steps run within
    the trial; ``keep_output`` asks for a step target's return value back (to register it).
    """

    target: str
    number: int
    trial_id: int
    params: dict[str, Any]
    fixed: dict[str, Any]
    metric: str
    executor: str
    sweep_run_id: str
    study_name: str
    settings: Settings
    pruner: Any = None
    keep_output: bool = False


@dataclass(frozen=True)
class TrialOutcome:
    """How one trial went: ``state`` is COMPLETE, PRUNED or FAIL.

    ``error`` is the failure (``Type: message``); ``fatal`` is set when the target does not
    produce the metric, a mistake of the sweep that stops it. ``steps`` are a pipeline trial's
    step results and ``output`` a step target's return value (when asked for), to find the
    model to register.
    """

    number: int
    state: str
    value: float | None = None
    run_id: str | None = None
    pipeline_run_id: str | None = None
    error: str | None = None
    fatal: str | None = None
    steps: dict[str, StepResult] | None = None
    output: Any = None


class _BadMetric(Exception):
    """The target ran but did not produce the metric (carries the InvalidInput)."""

    def __init__(self, error: InvalidInput) -> None:
        super().__init__(str(error))
        self.error = error


# --- one trial --------------------------------------------------------------------------------


def _describe(exc: BaseException) -> str:
    return f"{_type_name(exc)}: {exc}"


def run_trial(
    client: TrackingClient, target: Pipeline | Step[..., Any] | str, job: TrialJob, trial: Any
) -> TrialOutcome:
    """Run one trial where this is called: its child run, the target, the metric. ``trial`` is
    the Optuna trial :func:`~mloop.pipelines.sweep.report` talks to; ``target`` may be a
    ``module:qualname`` to import first. Never raises for the trial's own errors."""
    from mloop.pipelines.runner import _clip, _param_text, _system_tags

    optuna = _optuna()
    run = client.start_run(
        run_name=f"trial-{job.number}", parent=job.sweep_run_id, capture_source=False
    )
    _system_tags(run, {_TAG + "trial.number": job.number, _TAG + "trial.state": "RUNNING"})
    run.log_params({k: _param_text(v) for k, v in job.params.items()})
    token = _CURRENT_TRIAL.set(trial)
    state, status = "FAIL", RunStatus.FAILED
    value: float | None = None
    error = fatal = pipeline_run = None
    steps: dict[str, StepResult] | None = None
    output: Any = None
    try:
        value, pipeline_run, steps, output = _evaluate(client, target, job)
        run.log_metrics({job.metric: value})
        state, status = "COMPLETE", RunStatus.FINISHED
    except optuna.TrialPruned:
        state, status = "PRUNED", RunStatus.KILLED
    except _BadMetric as exc:
        fatal = error = str(exc.error)
    except Exception as exc:
        failed = getattr(exc, "result", None)  # StepFailed: the pipeline run exists
        pipeline_run = getattr(failed, "run_id", None)
        if _pruned_step(exc):
            state, status = "PRUNED", RunStatus.KILLED
        else:
            error = _describe(exc)
            run.log_text("".join(traceback.format_exception(exc)), "error.txt")
    finally:
        _CURRENT_TRIAL.reset(token)
        tags: dict[str, Any] = {_TAG + "trial.state": state}
        if pipeline_run is not None:
            tags[_TAG + "pipeline_run"] = pipeline_run
        if error is not None:
            tags[_TAG + "trial.error"] = _clip(error)
        _system_tags(run, tags)
        run.end(status)
    return TrialOutcome(
        job.number, state, value, run.id, pipeline_run, error, fatal, steps,
        output if job.keep_output else None,
    )  # fmt: skip


def _evaluate(
    client: TrackingClient, target: Pipeline | Step[..., Any] | str, job: TrialJob
) -> tuple[float, str | None, dict[str, StepResult] | None, Any]:
    """The metric, the pipeline run, its step results and a step target's return value."""
    from mloop.pipelines.runner import run_pipeline

    if isinstance(target, str):
        target = import_target(target)
    params = {**job.fixed, **job.params}
    if isinstance(target, Step):
        value = target.call_with(params)
        key = None if _number(value) else job.metric
        try:
            metric = _from_value(value, key, f"the return value of step {target.name!r}")
        except InvalidInput as exc:
            raise _BadMetric(exc) from exc
        return metric, None, None, value
    result = run_pipeline(target, params, executor=job.executor, client=client)
    try:
        node, key = _split_metric(job.metric, result.steps)
        metric = _from_value(result.output(node), key, f"the output of step {node!r}")
    except InvalidInput as exc:
        raise _BadMetric(exc) from exc
    return metric, result.run_id, dict(result.steps), None


# --- shipping targets -------------------------------------------------------------------------


def target_ref(target: Pipeline | Step[..., Any]) -> str:
    """``module:qualname`` by which a worker imports ``target``."""
    func = target.func
    return f"{func.__module__}:{func.__qualname__}"


def import_target(ref: str) -> Pipeline | Step[..., Any]:
    """Import ``module:qualname`` and return the pipeline or step it names."""
    module_name, _, qualname = ref.partition(":")
    try:
        found: Any = importlib.import_module(module_name)
    except ImportError as exc:
        raise NotFound(f"a sweep worker cannot import module {module_name!r}: {exc}") from None
    for part in qualname.split("."):
        if not hasattr(found, part):
            raise NotFound(f"a sweep worker finds no {qualname!r} in module {module_name!r}")
        found = getattr(found, part)
    if not isinstance(found, (Pipeline, Step)):
        raise InvalidInput(f"{ref!r} is a {type(found).__name__}, not a pipeline or a step")
    return found


def check_shippable(target: Pipeline | Step[..., Any], trial_executor: str, pruner: Any) -> str:
    """The target's reference, once it is known that a worker can import it and that the
    pruner can be sent; an ``InvalidInput`` naming the fix otherwise."""
    ref = target_ref(target)
    kind = "pipeline" if isinstance(target, Pipeline) else "step"
    fix = (
        f"define the {kind} at module level in an importable module (workers import it as "
        f"module:qualname), or use trial_executor='thread'"
    )
    if "<locals>" in ref or "<lambda>" in ref:
        raise InvalidInput(
            f"{kind} {target.name!r} ({ref}) cannot be shipped to trial_executor="
            f"{trial_executor!r}: it is defined inside a function; {fix}",
            field="trial_executor",
        )
    if ref.startswith("__main__:") and trial_executor == "ray":
        raise InvalidInput(
            f"{kind} {target.name!r} is defined in the script being run (__main__), which Ray "
            f"workers cannot import; {fix}",
            field="trial_executor",
        )
    try:
        same = import_target(ref) is target
    except (NotFound, InvalidInput):
        same = False
    if not same:
        raise InvalidInput(
            f"{kind} {target.name!r} is not found again as {ref}, so trial_executor="
            f"{trial_executor!r} workers could not import it; {fix}",
            field="trial_executor",
        )
    try:
        pickle.dumps(pruner)
    except Exception as exc:
        raise InvalidInput(
            f"pruner {pruner!r} cannot be sent to trial_executor={trial_executor!r} workers "
            f"({exc}); use a pruner that pickles, or trial_executor='thread'",
            field="pruner",
        ) from None
    return ref


def shippable_settings(settings: Settings, trial_executor: str) -> Settings:
    """``settings`` with absolute paths (workers may run elsewhere), or a ``ConfigError`` for
    stores that live in this process only."""
    from sqlalchemy.engine import make_url

    from mloop.pipelines.ray_executor import _local_path
    from mloop.store.sqlite import database_path

    artifact_uri = settings.artifact_uri
    if artifact_uri.lower().startswith("memory:"):
        raise ConfigError(
            f"artifact store {artifact_uri!r} lives in this process's memory, so "
            f"trial_executor={trial_executor!r} workers cannot see it; use a folder or S3",
            artifact_uri=artifact_uri,
        )
    artifact_uri = _local_path(artifact_uri) or artifact_uri
    tracking_uri = settings.tracking_uri
    url = make_url(tracking_uri)
    if url.get_backend_name() == "sqlite":
        path = database_path(tracking_uri).resolve()
        tracking_uri = url.set(database=path.as_posix()).render_as_string(hide_password=False)
    return replace(settings, artifact_uri=artifact_uri, tracking_uri=tracking_uri)


# --- the worker side --------------------------------------------------------------------------


def run_trial_job(job: TrialJob) -> TrialOutcome:
    """Run one shipped trial in this worker: open the store and the study, run the trial, and
    return its outcome (never raises for the trial's own errors)."""
    from mloop.tracking.client import TrackingClient

    optuna = _optuna()
    client = TrackingClient(job.settings)
    storage: Any = None
    try:
        storage = _study_storage(job.settings, optuna, create_tables=False)
        study = optuna.load_study(
            study_name=job.study_name, storage=storage, pruner=job.pruner,
            sampler=optuna.samplers.RandomSampler(),  # params were sampled by the sweep process
        )  # fmt: skip
        trial = optuna.trial.Trial(study, job.trial_id)
        outcome = run_trial(client, job.target, job, trial)
    finally:
        if storage is not None:
            _close_storage(storage)
        client.close()
    if outcome.output is not None:
        try:
            pickle.dumps(outcome.output)
        except Exception as exc:
            outcome = replace(outcome, output=None, error=f"the return value cannot be sent back "
                              f"to register it: {exc}")  # fmt: skip
    return outcome


# --- pools of workers -------------------------------------------------------------------------


class _Pool(Protocol):
    def submit(self, job: TrialJob) -> Future[TrialOutcome]: ...

    def shutdown(self, *, interrupted: bool) -> None: ...


class _ProcessPool:
    """``spawn``-started worker processes; a pool broken by a dead worker is replaced."""

    def __init__(self, max_workers: int) -> None:
        self.max_workers = max_workers
        self.context = multiprocessing.get_context("spawn")
        self.pool: ProcessPoolExecutor | None = ProcessPoolExecutor(
            max_workers, mp_context=self.context
        )

    def submit(self, job: TrialJob) -> Future[TrialOutcome]:
        assert self.pool is not None
        try:
            return self.pool.submit(run_trial_job, job)
        except BrokenProcessPool:  # a worker died: its trials failed, the pool cannot go on
            self.pool.shutdown(wait=False, cancel_futures=True)
            self.pool = ProcessPoolExecutor(self.max_workers, mp_context=self.context)
            return self.pool.submit(run_trial_job, job)

    def shutdown(self, *, interrupted: bool) -> None:
        pool, self.pool = self.pool, None
        if pool is None:
            return
        if interrupted:  # do not wait for running trials: terminate the workers
            _kill(pool)
        else:
            pool.shutdown(wait=True, cancel_futures=True)


class _RayPool:
    """Each trial one Ray task (one CPU), on the runtime the Ray step executor would use."""

    def __init__(self, max_workers: int, settings: Settings) -> None:
        from sqlalchemy.engine import make_url

        from mloop.pipelines.ray_executor import RayExecutor, _driver_pythonpath

        # The step executor's connection and checks: a missing extra, no runtime, an artifact
        # store the cluster cannot share.
        self.connection: RayExecutor | None = RayExecutor(
            artifact_uri=settings.artifact_uri, max_parallel=max_workers
        )
        self.ray: Any = self.connection._ray
        try:
            if make_url(settings.tracking_uri).get_backend_name() == "sqlite" and (
                not self.connection.is_local
            ):
                raise ConfigError(
                    f"the sweep's database {settings.tracking_uri!r} is a SQLite file on this "
                    f"machine, but the Ray cluster has nodes on other machines "
                    f"({', '.join(self.connection.remote_ips)}); trials there need a shared "
                    "database: use PostgreSQL, or trial_executor='process'",
                    tracking_uri=settings.tracking_uri,
                )
            self.options: dict[str, Any] = {"num_cpus": 1, "max_retries": 0}
            if self.connection.is_local:
                self.options["runtime_env"] = {"env_vars": {"PYTHONPATH": _driver_pythonpath()}}
            self.remote = self.ray.remote(run_trial_job)
        except BaseException:
            self.connection.shutdown()
            raise
        self.refs: dict[Future[TrialOutcome], Any] = {}

    def submit(self, job: TrialJob) -> Future[TrialOutcome]:
        ref = self.remote.options(**self.options, name=f"mloop:trial-{job.number}").remote(job)
        future: Future[TrialOutcome] = ref.future()
        self.refs[future] = ref
        future.add_done_callback(lambda f: self.refs.pop(f, None))
        return future

    def shutdown(self, *, interrupted: bool) -> None:
        connection, self.connection = self.connection, None
        if connection is None:
            return
        for ref in list(self.refs.values()):
            with contextlib.suppress(Exception):
                self.ray.cancel(ref, force=True)
        connection.shutdown()


def open_pool(trial_executor: str, max_workers: int, settings: Settings) -> _Pool:
    """The pool that runs whole trials: Ray tasks for ``"ray"``, worker processes otherwise."""
    if trial_executor == "ray":
        return _RayPool(max_workers, settings)
    return _ProcessPool(max_workers)


# --- the sweep side ---------------------------------------------------------------------------


def _lost(job: TrialJob, exc: BaseException, client: TrackingClient) -> TrialOutcome:
    """A trial whose worker died: end its run (if it got one) FAILED."""
    error = f"the worker running trial {job.number} was lost: {_describe(exc)}"
    # Found by parent and name, written with the run itself (its tags may not be flushed yet).
    mine = client.search_runs(
        f"attributes.parent_run_id = '{job.sweep_run_id}' AND "
        f"attributes.run_name = 'trial-{job.number}'",
        max_results=1,
    )
    run_id = mine[0].id if mine else None
    if mine and mine[0].status is RunStatus.RUNNING:
        with contextlib.suppress(Exception):  # best effort: the reaper ends it otherwise
            client.store.set_run_status(
                mine[0].id, RunStatus.FAILED, end_time=now_ms(),
                actor=client.settings.actor,
            )  # fmt: skip
    return TrialOutcome(job.number, "FAIL", run_id=run_id, error=error)


def run_in_workers(sweep: Any, study: Any, *, n_trials: int, max_workers: int, pool: _Pool) -> None:
    """Run ``n_trials`` trials of ``study`` on ``pool``, ``max_workers`` at a time: ask Optuna
    for a trial, ``sweep.job(trial)`` samples it, a worker runs it, ``sweep.record(outcome,
    params)`` keeps the outcome and Optuna is told. ``sweep.fatal`` stops asking for more."""
    optuna = sweep.optuna
    pending: dict[Future[TrialOutcome], tuple[Any, TrialJob]] = {}
    asked = 0
    while True:
        while sweep.fatal is None and asked < n_trials and len(pending) < max_workers:
            trial = study.ask()
            job = sweep.job(trial)
            asked += 1
            pending[pool.submit(job)] = (trial, job)
        if not pending:
            break
        done, _ = wait(list(pending), return_when=FIRST_COMPLETED)
        for future in sorted(done, key=lambda f: pending[f][1].number):
            trial, job = pending.pop(future)
            try:
                outcome = future.result()
            except Exception as exc:  # the worker died, not the trial's code
                outcome = _lost(job, exc, sweep.client)
            sweep.record(outcome, job.params)
            if outcome.state == "COMPLETE":
                study.tell(trial, outcome.value)
            elif outcome.state == "PRUNED":
                study.tell(trial, state=optuna.trial.TrialState.PRUNED)
            else:
                study.tell(trial, state=optuna.trial.TrialState.FAIL)
    pool.shutdown(interrupted=False)
