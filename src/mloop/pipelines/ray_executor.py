"""Run pipeline steps as Ray tasks: each step one task with the step's resources.

A Ray task runs :func:`~mloop.pipelines.execution.execute_step` on some node of the cluster;
values travel between steps only through the artifact store, so the store must be reachable
from every node: S3 (or another object store), or a folder mounted at the same path on every
node. A local folder is refused when the cluster reaches beyond this machine, unless
``shared_artifacts=True`` says it is such a shared mount.

How "beyond this machine" is told: a runtime this executor starts (``address=None``) is local;
for a joined cluster, every alive node's IP (``ray.nodes()``) must be this host's IP or a
loopback address. ``memory://`` stores live in one process and are refused always.

Steps travel by reference (``module:qualname``, see :func:`step_ref`), so a step's module must
be importable on the workers: for a local runtime the driver's own import path is passed to the
workers (``PYTHONPATH``) unless a ``runtime_env`` is given; for a remote cluster, ship the code
with ``runtime_env={"working_dir": ...}`` or ``{"py_modules": [...]}`` or install it there.

Ray is imported only when a ``RayExecutor`` is created; without it the error names
``pip install 'mloop[ray]'``.
"""

from __future__ import annotations

import concurrent.futures
import contextlib
import dataclasses
import ipaddress
import os
import site
import socket
import sys
import threading
import traceback
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

from mloop.errors import BackendError, ConfigError, InvalidInput, MissingExtra
from mloop.pipelines.execution import StepFailure, StepOutcome, StepSpec, execute_step
from mloop.pipelines.executors import timed_out

__all__ = ["RayExecutor"]

# Step resource names Ray takes as their own task options; every other name is a custom resource.
_RAY_OPTIONS = {"num_cpus": "num_cpus", "CPU": "num_cpus", "num_gpus": "num_gpus",
                "GPU": "num_gpus", "memory": "memory"}  # fmt: skip
# The cluster resource each task option draws from, for the feasibility check.
_CLUSTER_NAME = {"num_cpus": "CPU", "num_gpus": "GPU", "memory": "memory"}


def _import_ray() -> Any:
    try:
        import ray
    except ImportError as exc:
        raise MissingExtra("ray", "ray", "running pipeline steps on Ray") from exc
    return ray


def _local_path(uri: str) -> str | None:
    """The folder a local artifact URI names (absolute), or None for a remote store."""
    parts = urlsplit(uri)
    scheme = parts.scheme.lower()
    if len(scheme) <= 1 or "://" not in uri:
        return str(Path(uri).expanduser().resolve())
    if scheme == "file":
        return str(Path(parts.path).resolve())
    return None


def _this_host_ips() -> set[str]:
    ips = {"127.0.0.1", "::1", "localhost"}
    with contextlib.suppress(OSError):
        ips.add(socket.gethostbyname(socket.gethostname()))
    return ips


def _is_loopback(ip: str) -> bool:
    try:
        return ipaddress.ip_address(ip).is_loopback
    except ValueError:
        return ip == "localhost"


def _driver_pythonpath() -> str:
    """The driver's import path minus the interpreter's own folders, for local workers."""
    system = {
        str(Path(p).resolve()) for p in [*site.getsitepackages(), site.getusersitepackages()] if p
    }
    prefixes = {str(Path(p).resolve()) for p in (sys.prefix, sys.base_prefix, sys.exec_prefix)}
    keep: list[str] = []
    for entry in sys.path:
        path = Path(entry or os.getcwd()).resolve()
        text = str(path)
        if not path.is_dir() or text in system or text in keep:
            continue
        if any(text == p or text.startswith(p + os.sep) for p in prefixes):
            continue
        keep.append(text)
    existing = os.environ.get("PYTHONPATH")
    if existing:
        keep.extend(p for p in existing.split(os.pathsep) if p and p not in keep)
    return os.pathsep.join(keep)


class RayExecutor:
    """Runs each step as a Ray task with the step's resources, exchanging values through a
    shared artifact store.

    ``address``: None joins the cluster ``RAY_ADDRESS`` names if it is set, else starts a
    private local runtime (``ray.init(address="local")``, stopped again by :meth:`shutdown`);
    ``"auto"`` joins the cluster started on this machine with ``ray start``; ``"host:port"`` or
    ``"ray://host:port"`` joins that cluster. If Ray is already initialised in this process,
    that connection is used and left open. ``executor="ray"`` by name uses ``address=None``.

    ``max_parallel`` defaults to the cluster's CPU count. ``runtime_env`` applies to every step
    task. ``shared_artifacts=True`` accepts a local folder as the artifact store of a
    multi-machine cluster (it must be mounted at the same path on every node).
    ``check_resources`` fails a step that asks for more of a resource than the whole cluster
    has (it would wait forever); turn it off for an autoscaling cluster, where the step's
    timeout bounds the wait. Other keyword arguments go to ``ray.init``.
    """

    name = "ray"

    def __init__(
        self,
        address: str | None = None,
        *,
        artifact_uri: str,
        max_parallel: int | None = None,
        runtime_env: dict[str, Any] | None = None,
        shared_artifacts: bool = False,
        check_resources: bool = True,
        **init_kwargs: Any,
    ) -> None:
        if max_parallel is not None and (
            isinstance(max_parallel, bool) or not isinstance(max_parallel, int) or max_parallel < 1
        ):
            raise InvalidInput(
                f"max_parallel must be a whole number >= 1, got {max_parallel!r}",
                max_parallel=repr(max_parallel),
            )
        self._ray = _import_ray()
        self.address = address
        self.artifact_uri = artifact_uri
        self.shared_artifacts = shared_artifacts
        self.check_resources = check_resources
        self._runtime_env = runtime_env
        self._lock = threading.Lock()
        self._pending: dict[concurrent.futures.Future[StepOutcome], _Task] = {}
        self._closed = False
        self._owns_runtime = False
        self._started_local = False
        self._connect(init_kwargs)
        try:
            nodes = [n for n in self._ray.nodes() if n.get("Alive", n.get("alive", True))]
            self.node_ips = sorted({str(n.get("NodeManagerAddress", "")) for n in nodes})
            self._total = {k: float(v) for k, v in self._ray.cluster_resources().items()}
            here = self._host_ips()
            self.remote_ips = [ip for ip in self.node_ips if not (_is_loopback(ip) or ip in here)]
            self.is_local = self._started_local or not self.remote_ips
            self._check_shared(artifact_uri)
        except BaseException:
            self.shutdown()
            raise
        self._max_parallel = max_parallel or max(1, int(self._total.get("CPU", 1)))
        self._remote = self._ray.remote(execute_step)

    # --- connection -------------------------------------------------------------------------

    def _connect(self, init_kwargs: dict[str, Any]) -> None:
        ray = self._ray
        if ray.is_initialized():
            return  # the caller's connection: use it, leave it open
        target = self.address or os.environ.get("RAY_ADDRESS") or "local"
        try:
            ray.init(address=target, **init_kwargs)
        except ValueError as exc:  # e.g. an address that does not parse
            raise InvalidInput(
                f"cannot use Ray address {target!r}: {exc}; give None, 'auto', 'host:port' or "
                "'ray://host:port'",
                address=target,
            ) from exc
        except (ConnectionError, RuntimeError, TimeoutError) as exc:
            where = "start a local Ray runtime" if target == "local" else (
                f"connect to the Ray cluster at {target!r}"
            )  # fmt: skip
            raise BackendError(
                f"could not {where}: {str(exc).splitlines()[0] if str(exc) else exc!r}; start "
                "one with `ray start --head` and pass its address, or address=None for a "
                "local runtime",
                address=target,
            ) from exc
        self._owns_runtime = True
        self._started_local = target == "local"

    def _host_ips(self) -> set[str]:
        ips = _this_host_ips()
        with contextlib.suppress(Exception):
            ips.add(str(self._ray.util.get_node_ip_address()))
        return ips

    def _check_shared(self, uri: str) -> None:
        scheme = urlsplit(uri).scheme.lower()
        if scheme == "memory":
            raise ConfigError(
                f"artifact store {uri!r} lives in one process's memory, so Ray workers cannot "
                "see it; use a folder (local runtime), a shared folder or s3://bucket/prefix",
                artifact_uri=uri,
            )
        if _local_path(uri) is None or self.is_local or self.shared_artifacts:
            return
        raise ConfigError(
            f"artifact store {uri!r} is a folder on this machine, but the Ray cluster has "
            f"nodes on other machines ({', '.join(self.remote_ips)}); steps exchange values "
            "through the artifact store, which must then be shared: use s3://bucket/prefix, or "
            "a folder mounted at the same path on every node and "
            "RayExecutor(shared_artifacts=True)",
            artifact_uri=uri,
        )

    # --- the executor protocol --------------------------------------------------------------

    @property
    def max_parallel(self) -> int:
        """How many steps the runner should keep in flight (by default the cluster's CPUs)."""
        return self._max_parallel

    def submit(
        self,
        spec: StepSpec,
        *,
        resources: dict[str, float] | None = None,
        timeout: float | None = None,
    ) -> concurrent.futures.Future[StepOutcome]:
        """Start ``spec`` as a Ray task (no Ray-level retries: the runner retries); the future
        always resolves to a :class:`StepOutcome`.

        A step's own error, a crashed worker, resources the cluster can never provide
        (``mloop.errors.InvalidInput``) and an exceeded ``timeout`` all come back as a failed
        outcome. The timeout counts from submission, so time spent waiting for resources
        counts; at the deadline the task is cancelled (``ray.cancel(force=True)``, which kills
        its worker) and the outcome's ``failure.type`` is ``"builtins.TimeoutError"``.
        """
        if self._closed:
            raise InvalidInput("this RayExecutor was shut down; create a new one")
        local = _local_path(spec.artifact_uri)
        if local is not None and spec.artifact_uri != local:
            spec = dataclasses.replace(spec, artifact_uri=local)  # workers have another cwd
        if spec.artifact_uri != self.artifact_uri:
            self._check_shared(spec.artifact_uri)
        outer: concurrent.futures.Future[StepOutcome] = concurrent.futures.Future()
        outer.set_running_or_notify_cancel()
        try:
            options = self._task_options(spec, resources or {})
        except InvalidInput as exc:  # retrying cannot help, but it is the step's failure
            outer.set_result(_failure(spec, exc, "the step cannot run on this Ray cluster"))
            return outer
        ref = self._remote.options(**options).remote(spec)
        task = _Task(ref, spec)
        if timeout is not None:
            task.timer = threading.Timer(timeout, self._expire, (outer, timeout))
            task.timer.daemon = True
        with self._lock:
            self._pending[outer] = task

        def finished(inner: concurrent.futures.Future[Any]) -> None:
            try:
                outcome = inner.result()
            except BaseException as exc:  # a dead worker or a cancelled task, not the step
                outcome = _failure(spec, exc, "the Ray task failed")
            self._resolve(outer, outcome)

        ref.future().add_done_callback(finished)
        if task.timer is not None:
            task.timer.start()
        return outer

    def shutdown(self) -> None:
        """Cancel what is still running, and stop the runtime if this executor started it."""
        with self._lock:
            self._closed = True
            pending = list(self._pending.items())
            self._pending.clear()
        for outer, task in pending:
            if task.timer is not None:
                task.timer.cancel()
            with contextlib.suppress(Exception):
                self._ray.cancel(task.ref, force=True)
            message = "the Ray executor was shut down before the step finished"
            outer.set_result(_failure(task.spec, None, message))
        if self._owns_runtime:
            self._owns_runtime = False
            self._ray.shutdown()

    # --- internals --------------------------------------------------------------------------

    def _task_options(self, spec: StepSpec, resources: dict[str, float]) -> dict[str, Any]:
        options: dict[str, Any] = {"max_retries": 0, "retry_exceptions": False,
                                   "name": f"mloop:{spec.node_id}"}  # fmt: skip
        custom: dict[str, float] = {}
        for key, amount in resources.items():
            if key in _RAY_OPTIONS:
                options[_RAY_OPTIONS[key]] = amount
            else:
                custom[key] = amount
        if custom:
            options["resources"] = custom
        if self.check_resources:
            wanted = {_CLUSTER_NAME[k]: options[k] for k in _CLUSTER_NAME if k in options}
            wanted.update(custom)
            for key, amount in wanted.items():
                have = self._total.get(key, 0.0)
                if amount > have:
                    raise InvalidInput(
                        f"step {spec.node_id!r} asks for {key}={amount:g} but the whole Ray "
                        f"cluster has {key}={have:g}, so it could never start; lower the "
                        "step's resources, add nodes, or pass check_resources=False for an "
                        "autoscaling cluster",
                        step=spec.node_id,
                        resource=key,
                    )
        runtime_env = self._runtime_env
        if runtime_env is None and self.is_local:
            runtime_env = {"env_vars": {"PYTHONPATH": _driver_pythonpath()}}
        if runtime_env:
            options["runtime_env"] = runtime_env
        return options

    def _expire(self, outer: concurrent.futures.Future[StepOutcome], timeout: float) -> None:
        # Claim the future before cancelling: the cancelled task's own error must not win.
        with self._lock:
            task = self._pending.pop(outer, None)
        if task is None:
            return  # finished meanwhile
        with contextlib.suppress(Exception):
            self._ray.cancel(task.ref, force=True)
        outer.set_result(timed_out(task.spec, timeout, seconds=timeout))

    def _resolve(self, outer: concurrent.futures.Future[StepOutcome], outcome: StepOutcome) -> None:
        # Whoever removes the task resolves the future (the task, its timeout or shutdown);
        # outside the lock, since the caller's callbacks run inside set_result.
        with self._lock:
            task = self._pending.pop(outer, None)
        if task is None:
            return
        if task.timer is not None:
            task.timer.cancel()
        outer.set_result(outcome)


@dataclasses.dataclass
class _Task:
    ref: Any
    spec: StepSpec
    timer: threading.Timer | None = None


def _failure(spec: StepSpec, exc: BaseException | None, what: str) -> StepOutcome:
    if exc is None:
        failure = StepFailure("mloop.errors.BackendError", what, what)
    else:
        kind = f"{type(exc).__module__}.{type(exc).__qualname__}"
        failure = StepFailure(kind, f"{what}: {exc}", "".join(traceback.format_exception(exc)))
    return StepOutcome(spec.node_id, failure=failure)
