"""Executors: where a pipeline's steps run — inline, in a process pool, or on Ray.

The runner (``mloop.pipelines.runner``) owns everything about a pipeline run: graph order,
caching, tracked runs and retries. An executor only runs
:func:`~mloop.pipelines.execution.execute_step` on a :class:`~mloop.pipelines.execution.StepSpec`
somewhere, within the step's timeout, and hands back a future of its
:class:`~mloop.pipelines.execution.StepOutcome`. The protocol is deliberately narrow:

``max_parallel: int``
    How many steps the runner may have in flight at once. The runner submits every ready step
    (all upstream steps done) up to this many.
``submit(spec, *, resources=None, timeout=None) -> concurrent.futures.Future[StepOutcome]``
    Start one step. ``resources`` are the step's ``resources`` option (``{"num_cpus": 2}``),
    for executors that place work by them. ``timeout`` is the step's ``timeout`` option in
    seconds. The future resolves to a ``StepOutcome`` in every case: the step's own error, a
    worker that died and an exceeded timeout all come back as a failed outcome (a timeout with
    ``failure.type == "builtins.TimeoutError"``), so the runner treats them alike (an
    exception set on the future is still handled, as a failed attempt).
``shutdown() -> None``
    Release workers. Called once, by the runner, for executors it made from a name.

Executors are found by name, lazily (``"local"``, ``"process"``, ``"ray"``):
:func:`open_executor` imports the class only when it is chosen and calls
``cls(max_parallel=..., artifact_uri=...)`` (the artifact store the steps exchange values
through, for executors that must check it is reachable by their workers).
:func:`register_executor` adds a name.

Timeouts differ by executor, honestly:

- ``LocalExecutor`` runs the step inline on the caller's thread, so nothing can interrupt it: a
  step that runs past its timeout is marked failed (timed out) *after it returns*. A step that
  never returns hangs the run; use the process executor for steps that may hang.
- ``ProcessExecutor`` (a ``ProcessPoolExecutor`` with the ``spawn`` start method) starts a timer
  when a step is submitted — so the time a fresh pool takes to start its worker counts — and at
  the deadline resolves the step as timed out, terminates the pool's worker processes (a
  running task cannot be stopped alone) and starts a fresh pool. Steps that were running
  beside the timed-out one are resubmitted to the new pool; the runner never sees them fail.

``spawn`` rather than ``fork``: the tracking client runs background threads (the writer, the
heartbeat) and forking a threaded process can deadlock the child; ``spawn`` behaves the same on
Linux, macOS and Windows. Workers start a fresh interpreter, so steps must be importable by
``module:qualname`` (defined at module level in a module on ``sys.path``, which spawned workers
inherit), and the artifact store must be reachable from the worker by its URI — any local path
is, on one machine.
"""

from __future__ import annotations

import importlib
import multiprocessing
import os
import threading
import traceback
from concurrent.futures import Future, ProcessPoolExecutor
from dataclasses import dataclass, field
from typing import Any, Protocol, runtime_checkable

from mloop.errors import InvalidInput, InvalidState, MissingExtra
from mloop.pipelines.execution import StepFailure, StepOutcome, StepSpec, execute_step

__all__ = [
    "Executor",
    "LocalExecutor",
    "ProcessExecutor",
    "open_executor",
    "register_executor",
    "registered_executors",
    "timed_out",
]


@runtime_checkable
class Executor(Protocol):
    """Runs steps somewhere; see the module docstring for the contract."""

    @property
    def max_parallel(self) -> int:
        """How many steps the runner may keep in flight."""
        ...

    def submit(
        self,
        spec: StepSpec,
        *,
        resources: dict[str, float] | None = None,
        timeout: float | None = None,
    ) -> Future[StepOutcome]:
        """Start running one step; the future resolves to its outcome."""
        ...

    def shutdown(self) -> None:
        """Release the executor's workers."""
        ...


def timed_out(spec: StepSpec, timeout: float, logs: str = "", seconds: float = 0.0) -> StepOutcome:
    """The failed outcome of a step that ran past its ``timeout`` option."""
    message = f"step {spec.node_id!r} timed out after {timeout:g} seconds (option timeout)"
    failure = StepFailure("builtins.TimeoutError", message, f"TimeoutError: {message}\n")
    return StepOutcome(spec.node_id, logs=logs, seconds=seconds, failure=failure)


def _lost(spec: StepSpec, exc: BaseException, what: str) -> StepOutcome:
    failure = StepFailure(
        type=f"{type(exc).__module__}.{type(exc).__qualname__}",
        message=f"{what}: {exc}",
        traceback="".join(traceback.format_exception(exc)),
    )
    return StepOutcome(spec.node_id, failure=failure)


def _check_parallel(value: Any) -> int | None:
    if value is not None and (not isinstance(value, int) or isinstance(value, bool) or value < 1):
        raise InvalidInput(f"max_parallel must be a whole number >= 1, got {value!r}")
    return value


class LocalExecutor:
    """Runs each step inline, in this process, one at a time (the default)."""

    def __init__(self, *, max_parallel: int | None = None, artifact_uri: str | None = None) -> None:
        if _check_parallel(max_parallel) not in (None, 1):
            raise InvalidInput(
                f"the local executor runs one step at a time; max_workers={max_parallel!r} "
                "needs executor='process'"
            )

    def __repr__(self) -> str:
        return "<LocalExecutor>"

    @property
    def max_parallel(self) -> int:
        """One: steps run inline, one after another."""
        return 1

    def submit(
        self,
        spec: StepSpec,
        *,
        resources: dict[str, float] | None = None,
        timeout: float | None = None,
    ) -> Future[StepOutcome]:
        """Run the step now and return an already finished future; a timeout is checked
        after the call returns (nothing can interrupt a call on this thread)."""
        future: Future[StepOutcome] = Future()
        future.set_running_or_notify_cancel()
        outcome = execute_step(spec)
        if outcome.ok and timeout is not None and outcome.seconds > timeout:
            outcome = timed_out(spec, timeout, outcome.logs, outcome.seconds)
        future.set_result(outcome)
        return future

    def shutdown(self) -> None:
        """Nothing to release."""


@dataclass(eq=False)
class _Task:
    spec: StepSpec
    timeout: float | None
    outer: Future[StepOutcome] = field(default_factory=Future)
    generation: int = 0
    timer: threading.Timer | None = None


class ProcessExecutor:
    """Runs steps in a pool of ``spawn``-started worker processes, independent steps in
    parallel (``max_parallel`` defaults to the number of CPUs)."""

    def __init__(self, *, max_parallel: int | None = None, artifact_uri: str | None = None) -> None:
        self._max_parallel: int = _check_parallel(max_parallel) or os.cpu_count() or 1
        self._context = multiprocessing.get_context("spawn")
        self._lock = threading.RLock()
        self._pool: ProcessPoolExecutor | None = None
        self._generation = 0  # bumped each time a timeout kills the pool
        self._pending: set[_Task] = set()
        self._closed = False

    def __repr__(self) -> str:
        return f"<ProcessExecutor max_parallel={self._max_parallel}>"

    @property
    def max_parallel(self) -> int:
        """The number of worker processes."""
        return self._max_parallel

    def submit(
        self,
        spec: StepSpec,
        *,
        resources: dict[str, float] | None = None,
        timeout: float | None = None,
    ) -> Future[StepOutcome]:
        """Queue the step on the pool; at ``timeout`` seconds it is resolved as timed out."""
        if self._closed:
            raise InvalidState("this ProcessExecutor was shut down; create a new one")
        task = _Task(spec, timeout)
        task.outer.set_running_or_notify_cancel()
        with self._lock:
            self._pending.add(task)
        self._launch(task)
        return task.outer

    def _launch(self, task: _Task) -> None:
        with self._lock:
            if self._pool is None:
                self._pool = ProcessPoolExecutor(self._max_parallel, mp_context=self._context)
            task.generation = self._generation
            if task.timer is not None:  # a resubmitted step gets its whole timeout again
                task.timer.cancel()
                task.timer = None
            if task.timeout is not None:
                task.timer = threading.Timer(task.timeout, self._expire, (task,))
                task.timer.daemon = True
                task.timer.start()
            inner = self._pool.submit(execute_step, task.spec)
        inner.add_done_callback(lambda f: self._done(task, f))

    def _done(self, task: _Task, inner: Future[StepOutcome]) -> None:
        try:
            outcome = inner.result()
        except BaseException as exc:  # the worker died, or the pool was killed
            with self._lock:
                if task.outer.done():
                    return
                killed_for_another = task.generation < self._generation and not self._closed
            if killed_for_another:
                self._launch(task)
                return
            outcome = _lost(task.spec, exc, "the worker process running the step was lost")
        self._resolve(task, outcome)

    def _expire(self, task: _Task) -> None:
        with self._lock:
            if task.outer.done() or task not in self._pending:
                return
            self._generation += 1
            pool, self._pool = self._pool, None
        assert task.timeout is not None
        self._resolve(task, timed_out(task.spec, task.timeout, seconds=task.timeout))
        if pool is not None:
            _kill(pool)

    def _resolve(self, task: _Task, outcome: StepOutcome) -> None:
        with self._lock:
            if task not in self._pending:
                return
            self._pending.discard(task)
            if task.timer is not None:
                task.timer.cancel()
        task.outer.set_result(outcome)

    def shutdown(self) -> None:
        """Stop the pool; steps still running (an interrupted run) are terminated."""
        with self._lock:
            self._closed = True
            pool, self._pool = self._pool, None
            for task in self._pending:
                if task.timer is not None:
                    task.timer.cancel()
        if pool is not None and self._pending:  # interrupted: do not wait for running steps
            _kill(pool)
        elif pool is not None:
            pool.shutdown(wait=True, cancel_futures=True)
        for task in list(self._pending):
            self._resolve(task, _lost(task.spec, InvalidState("shut down"), "the executor stopped"))


def _kill(pool: ProcessPoolExecutor) -> None:
    # ProcessPoolExecutor has no public way to stop a running task; its worker processes are
    # in the private ``_processes`` map. Terminating them breaks the pool, which fails every
    # pending future (the executor resubmits those), then the pool is shut down without waiting.
    processes: dict[int, Any] = dict(getattr(pool, "_processes", None) or {})
    for process in processes.values():
        process.terminate()
    for process in processes.values():
        process.join(timeout=5)
    pool.shutdown(wait=False, cancel_futures=True)


# --- executors by name ------------------------------------------------------------------------

_REGISTRY: dict[str, str] = {
    "local": "mloop.pipelines.executors:LocalExecutor",
    "process": "mloop.pipelines.executors:ProcessExecutor",
    "ray": "mloop.pipelines.ray_executor:RayExecutor",
}


def registered_executors() -> dict[str, str]:
    """Executor names and the ``module:Class`` each one loads."""
    return dict(_REGISTRY)


def register_executor(name: str, target: str) -> None:
    """Make ``executor=name`` load ``target`` (``"module:Class"``, imported when chosen)."""
    if not isinstance(name, str) or not name.isidentifier():
        raise InvalidInput(f"an executor name must be an identifier, got {name!r}")
    if not isinstance(target, str) or target.count(":") != 1:
        raise InvalidInput(f"an executor target is 'module:Class', got {target!r}")
    _REGISTRY[name] = target


def open_executor(
    executor: str | Executor, *, max_parallel: int | None = None, artifact_uri: str
) -> Executor:
    """The executor a name stands for (built as ``cls(max_parallel=..., artifact_uri=...)``),
    or ``executor`` itself."""
    if not isinstance(executor, str):
        if not isinstance(executor, Executor):
            raise InvalidInput(
                f"executor must be a name ({', '.join(sorted(_REGISTRY))}) or an object with "
                f"submit, shutdown and max_parallel, got {type(executor).__name__}"
            )
        return executor
    target = _REGISTRY.get(executor)
    if target is None:
        raise InvalidInput(
            f"no executor named {executor!r}; choose one of {', '.join(sorted(_REGISTRY))}"
        )
    module_name, _, class_name = target.partition(":")
    try:
        module = importlib.import_module(module_name)
    except ImportError as exc:
        missing = (exc.name or "").split(".")[0]
        if missing and missing != "mloop":  # the executor's own dependency, e.g. ray
            raise MissingExtra(missing, missing, f"executor {executor!r}") from exc
        raise
    built: Executor = getattr(module, class_name)(
        max_parallel=max_parallel, artifact_uri=artifact_uri
    )
    return built
