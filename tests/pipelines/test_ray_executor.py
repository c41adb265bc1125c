"""RayExecutor against real Ray runtimes: a local one it starts, and one started with
`ray start --head` and joined by address. Bad input: resources no node has, a timeout, a step
that raises, a closure, an unshareable artifact store, no runtime, no ray installed.

Skipped when ray is not installed, except with MLOOP_REQUIRE_RAY=1 (CI), where that fails."""

from __future__ import annotations

import contextlib
import importlib.util
import json
import os
import pickle
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
import uuid
from collections.abc import Iterator
from pathlib import Path
from types import ModuleType
from typing import Any

import pandas as pd
import pytest

from mloop.artifacts import open_artifact_store
from mloop.errors import BackendError, ConfigError, InvalidInput, MissingExtra
from mloop.pipelines.execution import StepOutcome, StepSpec, step_ref
from mloop.pipelines.materialisers import OutputRecord, dematerialise
from mloop.pipelines.steps import step

pytestmark = [pytest.mark.slow, pytest.mark.timeout(120)]

HAVE_RAY = importlib.util.find_spec("ray") is not None
REQUIRE_RAY = os.environ.get("MLOOP_REQUIRE_RAY") == "1"


@pytest.fixture(scope="session")
def ray_installed() -> None:
    """Skip without ray, unless MLOOP_REQUIRE_RAY=1 demands it."""
    if HAVE_RAY:
        return
    if REQUIRE_RAY:
        pytest.fail("MLOOP_REQUIRE_RAY=1 but ray is not installed: pip install 'mloop[ray]'")
    pytest.skip("ray is not installed (pip install 'mloop[ray]'); set MLOOP_REQUIRE_RAY=1 to fail")


STEPS_SOURCE = """
import os
import time

import pandas as pd

from mloop.pipelines.steps import step


@step
def summary(n: int) -> dict:
    return {"n": n, "squares": [i * i for i in range(n)], "pid": os.getpid()}


@step
def frame(n: int) -> pd.DataFrame:
    return pd.DataFrame({"i": range(n), "name": [f"row{i}" for i in range(n)]})


@step
def count_rows(df: pd.DataFrame) -> int:
    return len(df)


def _inner(n):
    raise ValueError(f"bad n={n}")


@step
def explode(n: int) -> int:
    return _inner(n)


@step
def sleepy(seconds: float) -> int:
    time.sleep(seconds)
    return 1
"""


@pytest.fixture(scope="module")
def steps_module(tmp_path_factory: pytest.TempPathFactory) -> Iterator[ModuleType]:
    """A module of steps in a temp folder, importable here and (via PYTHONPATH) on workers."""
    folder = tmp_path_factory.mktemp("ray_steps")
    name = f"mloop_ray_steps_{uuid.uuid4().hex[:8]}"
    (folder / f"{name}.py").write_text(STEPS_SOURCE)
    with pytest.MonkeyPatch.context() as patch:
        patch.syspath_prepend(str(folder))
        module = importlib.import_module(name)
        module.FOLDER = folder  # type: ignore[attr-defined]
        yield module
    sys.modules.pop(name, None)


def runtime_env(module: ModuleType) -> dict[str, Any]:
    return {"env_vars": {"PYTHONPATH": str(module.FOLDER)}}


def spec_for(a_step: Any, uri: str, node_id: str, **literals: Any) -> StepSpec:
    arguments = {k: {"literal": v} for k, v in literals.items()}
    return StepSpec(node_id=node_id, step=step_ref(a_step), arguments=arguments, artifact_uri=uri)


def read_output(uri: str, outcome: StepOutcome, folder: Path, index: int = 0) -> Any:
    assert outcome.ok, outcome.failure
    record = OutputRecord.from_dict(outcome.outputs[index])
    blobs = outcome.blobs[index]
    open_artifact_store(uri).download_many([(d, folder / rel) for rel, d in blobs.items()])
    return dematerialise(folder, record)


# ------------------------------------------------------------------ a local runtime


@pytest.fixture(scope="class")
def local(
    ray_installed: None,
    steps_module: ModuleType,
    tmp_path_factory: pytest.TempPathFactory,
) -> Iterator[tuple[Any, str]]:
    import ray

    from mloop.pipelines.ray_executor import RayExecutor

    assert not ray.is_initialized()
    uri = str(tmp_path_factory.mktemp("ray_artifacts"))
    with pytest.MonkeyPatch.context() as patch:
        patch.delenv("RAY_ADDRESS", raising=False)  # else None would join that cluster
        executor = RayExecutor(
            None,
            artifact_uri=uri,
            runtime_env=runtime_env(steps_module),
            num_cpus=2,
            include_dashboard=False,
        )
    try:
        yield executor, uri
    finally:
        executor.shutdown()
    assert not ray.is_initialized()  # it started the runtime, so it stopped it


class TestLocalRuntime:
    """One runtime for these tests: started by the executor, stopped by its shutdown."""

    def test_json_and_dataframe_outputs_through_the_store(
        self, local: tuple[Any, str], steps_module: ModuleType, tmp_path: Path
    ) -> None:
        executor, uri = local
        assert executor.name == "ray" and executor.max_parallel == 2 and executor.is_local
        first = executor.submit(spec_for(steps_module.summary, uri, "summary", n=4), timeout=60)
        second = executor.submit(spec_for(steps_module.frame, uri, "frame", n=5), timeout=60)
        summary = read_output(uri, first.result(timeout=90), tmp_path / "summary")
        assert summary["n"] == 4 and summary["squares"] == [0, 1, 4, 9]
        assert summary["pid"] != os.getpid()  # it ran in a Ray worker
        made = second.result(timeout=90)
        df = read_output(uri, made, tmp_path / "frame")
        pd.testing.assert_frame_equal(
            df, pd.DataFrame({"i": range(5), "name": [f"row{i}" for i in range(5)]})
        )
        # The next step reads the frame back from the store, on a worker.
        chained = StepSpec(
            node_id="count_rows",
            step=step_ref(steps_module.count_rows),
            arguments={"df": {"output": made.outputs[0], "blobs": made.blobs[0]}},
            artifact_uri=uri,
        )
        rows = executor.submit(chained, resources={"num_cpus": 2}).result(timeout=90)
        assert read_output(uri, rows, tmp_path / "rows") == 5

    def test_resources_beyond_the_cluster_are_refused_up_front(
        self, local: tuple[Any, str], steps_module: ModuleType
    ) -> None:
        executor, uri = local
        spec = spec_for(steps_module.summary, uri, "greedy", n=1)
        outcome = executor.submit(spec, resources={"num_cpus": 99}).result(timeout=1)
        assert outcome.failure is not None and outcome.failure.type == "mloop.errors.InvalidInput"
        assert "asks for CPU=99 but the whole Ray cluster has CPU=2" in outcome.failure.message
        outcome = executor.submit(spec, resources={"tpu": 1}).result(timeout=1)
        assert outcome.failure is not None and "asks for tpu=1" in outcome.failure.message

    def test_pending_step_times_out_and_is_cancelled(
        self, local: tuple[Any, str], steps_module: ModuleType
    ) -> None:
        from mloop.pipelines.ray_executor import RayExecutor

        _, uri = local
        # Ray is initialised already: this executor shares the connection and leaves it open.
        unchecked = RayExecutor(
            artifact_uri=uri, runtime_env=runtime_env(steps_module), check_resources=False
        )
        spec = spec_for(steps_module.summary, uri, "greedy", n=1)
        outcome = unchecked.submit(spec, resources={"num_cpus": 99}, timeout=1).result(timeout=30)
        assert not outcome.ok and outcome.failure is not None
        assert outcome.failure.type == "builtins.TimeoutError"
        assert "timed out after 1 seconds" in outcome.failure.message
        unchecked.shutdown()
        import ray

        assert ray.is_initialized()

    def test_running_step_times_out_then_the_cluster_is_free_again(
        self, local: tuple[Any, str], steps_module: ModuleType, tmp_path: Path
    ) -> None:
        executor, uri = local
        started = time.monotonic()
        slow = executor.submit(
            spec_for(steps_module.sleepy, uri, "sleepy", seconds=60),
            resources={"num_cpus": 2},
            timeout=3,
        )
        outcome = slow.result(timeout=30)
        assert outcome.failure is not None, outcome
        assert outcome.failure.type == "builtins.TimeoutError", outcome.failure
        assert time.monotonic() - started < 30
        # The cancelled task released both CPUs: a 2-CPU step runs again.
        again = executor.submit(
            spec_for(steps_module.summary, uri, "after", n=2), resources={"num_cpus": 2}
        )
        assert read_output(uri, again.result(timeout=60), tmp_path / "after")["n"] == 2

    def test_step_error_comes_back_as_a_failure_with_its_traceback(
        self, local: tuple[Any, str], steps_module: ModuleType
    ) -> None:
        executor, uri = local
        outcome = executor.submit(spec_for(steps_module.explode, uri, "explode", n=7)).result(
            timeout=60
        )
        assert not outcome.ok and outcome.failure is not None
        assert outcome.failure.type == "builtins.ValueError"
        assert outcome.failure.message == "bad n=7"
        assert "in _inner" in outcome.failure.traceback
        assert 'raise ValueError(f"bad n={n}")' in outcome.failure.traceback

    def test_unimportable_step_is_a_failure_not_a_hang(
        self, local: tuple[Any, str], steps_module: ModuleType
    ) -> None:
        from mloop.pipelines.ray_executor import RayExecutor

        executor, uri = local
        spec = StepSpec("ghost", "mloop_no_such_module_xyz:ghost", {}, uri)
        outcome = executor.submit(spec).result(timeout=60)
        assert outcome.failure is not None and "mloop_no_such_module_xyz" in outcome.failure.message
        # Without a runtime_env, a local runtime gets the driver's import path.
        default_env = RayExecutor(artifact_uri=uri)
        try:
            spec = spec_for(steps_module.summary, uri, "default_env", n=3)
            assert default_env.submit(spec).result(timeout=60).ok
        finally:
            default_env.shutdown()

    def test_memory_store_is_refused(self, local: tuple[Any, str]) -> None:
        from mloop.pipelines.ray_executor import RayExecutor

        with pytest.raises(ConfigError, match="one process's memory"):
            RayExecutor(artifact_uri="memory://mloop-ray-test")


# ----------------------------------------------- `ray start --head`, joined by address


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@pytest.fixture
def ray_head(ray_installed: None) -> Iterator[str]:
    """`ray start --head --block` in its own process group; that group is ended afterwards
    (not `ray stop`, which would stop every Ray on the machine)."""
    import ray

    assert not ray.is_initialized()
    port = free_port()
    temp_dir = tempfile.mkdtemp(prefix="mlray")  # short: Ray puts Unix sockets under it
    ray_cli = shutil.which("ray") or str(Path(sys.executable).with_name("ray"))
    env = {**os.environ, "RAY_AUTH_MODE": "disabled", "RAY_USAGE_STATS_ENABLED": "0"}
    env.pop("RAY_ADDRESS", None)
    log = Path(temp_dir) / "ray-start.log"  # a file, not a pipe nobody drains
    with log.open("wb") as out:
        head = subprocess.Popen(
            [ray_cli, "start", "--head", f"--port={port}", "--num-cpus=2", "--block",
             "--include-dashboard=false", "--disable-usage-stats", f"--temp-dir={temp_dir}"],
            env=env, stdout=out, stderr=subprocess.STDOUT, start_new_session=True,
        )  # fmt: skip
    try:
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline:
            if head.poll() is not None:
                output = log.read_text(errors="replace")
                pytest.fail(f"`ray start --head` exited with {head.returncode}:\n{output}")
            with contextlib.suppress(OSError), socket.create_connection(("127.0.0.1", port), 1):
                break
            time.sleep(0.5)
        else:
            pytest.fail("`ray start --head` did not listen within 60 s")
        yield f"127.0.0.1:{port}"
    finally:
        if ray.is_initialized():
            ray.shutdown()
        # `ray start --block` stops its processes on SIGTERM; then sweep the group for leftovers.
        with contextlib.suppress(ProcessLookupError):
            head.send_signal(signal.SIGTERM)
        with contextlib.suppress(subprocess.TimeoutExpired):
            head.wait(timeout=30)
        with contextlib.suppress(ProcessLookupError, PermissionError):
            os.killpg(head.pid, signal.SIGKILL)
        head.wait(timeout=10)
        shutil.rmtree(temp_dir, ignore_errors=True)


def test_cluster_started_with_ray_start_joined_by_address(
    ray_head: str,
    steps_module: ModuleType,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    import ray

    from mloop.pipelines.ray_executor import RayExecutor

    uri = str(tmp_path / "artifacts")
    executor = RayExecutor(ray_head, artifact_uri=uri, runtime_env=runtime_env(steps_module))
    try:
        assert executor.is_local and executor.max_parallel == 2  # its only node is this host
        outcome = executor.submit(spec_for(steps_module.summary, uri, "joined", n=3)).result(
            timeout=60
        )
        assert read_output(uri, outcome, tmp_path / "out")["squares"] == [0, 1, 4]

        # A cluster with a node on another machine needs a shared artifact store.
        real_nodes = ray.nodes()
        remote = [{**real_nodes[0], "NodeManagerAddress": "203.0.113.7"}]
        monkeypatch.setattr(ray, "nodes", lambda: [*real_nodes, *remote])
        with pytest.raises(
            ConfigError, match=r"other machines \(203\.0\.113\.7\).*must then be shared"
        ) as caught:
            RayExecutor(ray_head, artifact_uri=uri)
        assert "s3://" in str(caught.value) and "shared_artifacts=True" in str(caught.value)
        assert not RayExecutor(ray_head, artifact_uri="s3://bucket/prefix").is_local
        shared = RayExecutor(ray_head, artifact_uri=uri, shared_artifacts=True)
        assert "203.0.113.7" in shared.node_ips and not shared.is_local
    finally:
        executor.shutdown()
    assert not ray.is_initialized()  # joined by this executor: disconnected again


PIPELINE_SOURCE = """
import os

import pandas as pd

from mloop.pipelines import pipeline, step


@step(resources={"num_cpus": 1})
def rows(n: int) -> pd.DataFrame:
    return pd.DataFrame({"v": range(n), "pid": os.getpid()})


@step(resources={"num_cpus": 2})
def total(df: pd.DataFrame) -> dict:
    return {"sum": int(df["v"].sum()), "pids": sorted({int(p) for p in df["pid"]} | {os.getpid()})}


@pipeline
def summed(n: int = 4) -> None:
    total(rows(n))
"""


def test_a_pipeline_runs_on_ray_by_name(
    ray_installed: None,
    mloop_home: Path,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """executor="ray" starts a local runtime; the steps' module reaches the workers through the
    driver's import path, and the runner reads the outputs back from the artifact store."""
    import ray

    import mloop.tracking

    assert not ray.is_initialized()
    monkeypatch.delenv("RAY_ADDRESS", raising=False)
    name = f"mloop_ray_pipe_{uuid.uuid4().hex[:8]}"
    (tmp_path / f"{name}.py").write_text(PIPELINE_SOURCE)
    monkeypatch.syspath_prepend(str(tmp_path))
    mloop.tracking.reset_default_client()
    try:
        module = importlib.import_module(name)
        result = module.summed.run(n=5, executor="ray")
        assert result.output("total")["sum"] == 10
        assert os.getpid() not in result.output("total")["pids"]
        client = mloop.tracking.default_client()
        for step in result.steps.values():  # records stored by the Ray workers, then recorded
            assert step.run_id is not None
            (entry,) = client.list_artifacts(step.run_id, "outputs.json")
            recorded = json.loads(client.artifacts.get_bytes(entry.digest))["outputs"]
            assert [o["blobs"] for o in recorded] == step.blobs
            assert len(client.list_artifacts(step.run_id, "logs.txt")) == 1
    finally:
        mloop.tracking.reset_default_client()
        sys.modules.pop(name, None)
    assert not ray.is_initialized()  # the runner shut the executor it made down


# ------------------------------------------------------------------ no runtime, no ray, closures


def test_missing_runtime_is_a_clear_error(
    ray_installed: None, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    import ray

    from mloop.pipelines.ray_executor import RayExecutor

    assert not ray.is_initialized()
    monkeypatch.delenv("RAY_ADDRESS", raising=False)
    with contextlib.suppress(Exception):  # "auto" would join any Ray running on this machine
        if ray._private.services.find_gcs_addresses():
            pytest.skip("another Ray runtime runs on this machine, so 'auto' would join it")
    empty = tempfile.mkdtemp(prefix="mlray")  # no cluster recorded here
    try:
        with pytest.raises(BackendError, match=r"could not connect to the Ray cluster at 'auto'"):
            RayExecutor("auto", artifact_uri=str(tmp_path), _temp_dir=empty)
    finally:
        shutil.rmtree(empty, ignore_errors=True)
    with pytest.raises(InvalidInput, match="cannot use Ray address 'not an address'"):
        RayExecutor("not an address", artifact_uri=str(tmp_path))
    with pytest.raises(InvalidInput, match="max_parallel must be a whole number"):
        RayExecutor(artifact_uri=str(tmp_path), max_parallel=0)
    assert not ray.is_initialized()


def test_missing_extra_names_the_install_command(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    from mloop.pipelines.ray_executor import RayExecutor

    monkeypatch.setitem(sys.modules, "ray", None)  # `import ray` raises ImportError
    with pytest.raises(MissingExtra) as caught:
        RayExecutor(artifact_uri=str(tmp_path))
    message = str(caught.value)
    assert "\n" not in message and "pip install 'mloop[ray]'" in message


def test_closure_step_cannot_be_shipped() -> None:
    def make() -> Any:
        @step
        def local_step(n: int) -> int:
            return n

        return local_step

    closure = make()
    with pytest.raises(InvalidInput, match=r"local_step.*cannot be shipped.*module level"):
        step_ref(closure)
    with pytest.raises((InvalidInput, pickle.PicklingError, AttributeError)):
        pickle.dumps(closure)
