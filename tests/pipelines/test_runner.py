"""The pipeline runner: tracked runs, the step cache, why-rerun, executors, retries, timeouts,
resume — and the bad inputs: failing steps, unserialisable outputs, hanging steps."""

from __future__ import annotations

import contextlib
import hashlib
import importlib
import itertools
import json
import os
import shutil
import sys
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from types import ModuleType

import pytest

import mloop.tracking
from mloop.pipelines import runner
from mloop.pipelines.runner import PipelineResult, StepFailed
from mloop.store.records import RunStatus
from mloop.tracking.client import TrackingClient

PROJECT = Path(__file__).parent / "runner_project"
PKG = "rnproj"

Load = Callable[..., ModuleType]


def _purge() -> None:
    for name in [n for n in sys.modules if n == PKG or n.startswith(PKG + ".")]:
        del sys.modules[name]


@pytest.fixture
def project(mloop_home: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[Load]:
    """Import the test project as ``rnproj`` from a fresh folder on ``sys.path`` (which spawned
    workers inherit); ``load(helpers=...)`` writes and imports another version of it."""
    counts = tmp_path / "counts"
    counts.mkdir()
    monkeypatch.setenv("MLOOP_TEST_RUNNER_DIR", str(counts))
    mloop.tracking.reset_default_client()
    versions = itertools.count()

    def load(helpers: str | None = None) -> ModuleType:
        root = tmp_path / f"v{next(versions)}"
        shutil.copytree(PROJECT, root / PKG)
        (root / PKG / "__init__.py").write_text("")
        if helpers is not None:
            (root / PKG / "helpers.py").write_text(helpers)
        _purge()
        for old in [p for p in sys.path if p.startswith(str(tmp_path))]:
            sys.path.remove(old)
        monkeypatch.syspath_prepend(str(root))
        importlib.invalidate_caches()
        return importlib.import_module(f"{PKG}.steps")

    yield load
    mloop.tracking.reset_default_client()
    _purge()


def _client() -> TrackingClient:
    return mloop.tracking.default_client()


def _counts() -> dict[str, int]:
    folder = Path(os.environ["MLOOP_TEST_RUNNER_DIR"])
    return {p.stem: len(p.read_text()) for p in folder.glob("*.count")}


def _artifact_text(run_id: str, path: str) -> str:
    client = _client()
    (entry,) = client.list_artifacts(run_id, path)
    return client.artifacts.get_bytes(entry.digest).decode()


# -- a run, tracked ------------------------------------------------------------------------------


def test_a_run_is_a_tracked_run_with_a_child_run_per_step(project: Load) -> None:
    steps = project()
    result = steps.simple.run(n=4)
    assert isinstance(result, PipelineResult)
    assert result.status is RunStatus.FINISHED
    assert result.output("total") == 12
    assert result.output("load") == [0, 1, 2, 3]
    client = _client()
    root = client.get_run(result.run_id)
    assert root.status is RunStatus.FINISHED
    assert root.params == {"n": "4"}
    assert root.tags["mloop.pipeline.name"] == "simple"
    assert client.get_experiment(root.experiment_id).name == "simple"
    graph = json.loads(_artifact_text(root.id, "graph.json"))
    assert [node["id"] for node in graph["nodes"]] == ["load", "double", "total"]
    load = client.get_run(result["load"].run_id)
    assert (load.name, load.parent_id, load.status) == ("load", root.id, RunStatus.FINISHED)
    assert load.params == {"n": "4"}
    assert load.tags["mloop.step.cached"] == "false"
    assert load.tags["mloop.step.attempts"] == "1"
    assert load.tags["mloop.step.cache_key"] == result["load"].cache_key
    assert "seconds" in load.metrics
    assert _artifact_text(load.id, "logs.txt") == "loading 4 values\n"
    double = client.get_run(result["double"].run_id)
    assert double.tags["mloop.step.input.values"].startswith("load ")
    assert double.tags["mloop.step.input.values"].endswith(result["load"].outputs[0].digest)
    # Outputs are references to the blobs the worker stored: the same digests, no new copy.
    (out,) = client.list_artifacts(load.id, "outputs/")
    assert out.path == "outputs/0/value.json"
    assert out.digest == result["load"].blobs[0]["value.json"]


def _staged(monkeypatch: pytest.MonkeyPatch) -> list[Path]:
    """The staging folders the runner opens from now on."""
    folders: list[Path] = []
    real = runner.scratch

    @contextlib.contextmanager
    def counted() -> Iterator[Path]:
        with real() as folder:
            folders.append(folder)
            yield folder

    monkeypatch.setattr(runner, "scratch", counted)
    return folders


def _check_records(result: PipelineResult) -> None:
    """Each step run's outputs.json and logs.txt: right content, right digest and size."""
    client = _client()
    for node, step in result.steps.items():
        assert step.run_id is not None
        recorded = json.loads(_artifact_text(step.run_id, "outputs.json"))["outputs"]
        assert [o["blobs"] for o in recorded] == step.blobs
        assert [o["record"] for o in recorded] == [o.to_dict() for o in step.outputs], node
        for name in ("outputs.json", "logs.txt"):
            (entry,) = client.list_artifacts(step.run_id, name)
            data = _artifact_text(step.run_id, name).encode()
            assert (entry.digest, entry.size) == (hashlib.sha256(data).hexdigest(), len(data))


def test_the_worker_stores_the_step_records_with_its_outputs(
    project: Load, monkeypatch: pytest.MonkeyPatch
) -> None:
    steps = project()
    folders = _staged(monkeypatch)
    result = steps.simple.run(n=2)
    _check_records(result)
    assert _artifact_text(result["load"].run_id or "", "logs.txt") == "loading 2 values\n"
    assert folders == []  # outputs.json and logs.txt came with the outputs' batch
    # A cached re-run records the same outputs (its outputs.json comes from the cache entry).
    again = steps.simple.run(n=2)
    assert all(s.cached for s in again.steps.values())
    for node in ("load", "double", "total"):
        first, second = (
            json.loads(_artifact_text(r[node].run_id or "", "outputs.json"))
            for r in (result, again)
        )
        assert first == second


def test_logs_of_several_attempts_are_stored_by_the_runner(
    project: Load, monkeypatch: pytest.MonkeyPatch
) -> None:
    steps = project()
    folders = _staged(monkeypatch)
    result = steps.shaky.run()
    _check_records(result)
    logs = _artifact_text(result["flaky"].run_id or "", "logs.txt")
    assert logs.startswith("--- attempt 1 ---\n") and "--- attempt 3 ---\n" in logs
    assert len(folders) == 1  # the joined logs: one staging folder for the whole run


# -- the cache -----------------------------------------------------------------------------------


def test_a_second_run_is_served_from_the_cache(project: Load) -> None:
    steps = project()
    first = steps.simple.run()
    assert _counts() == {"load": 1, "double": 1, "total": 1}
    second = steps.simple.run()
    assert _counts() == {"load": 1, "double": 1, "total": 1}  # nothing executed again
    assert second.run_id != first.run_id
    assert all(step.cached for step in second.steps.values())
    assert second.output("total") == 6
    client = _client()
    cached = client.get_run(second["total"].run_id)
    assert cached.status is RunStatus.FINISHED
    assert cached.tags["mloop.step.cached"] == "true"
    assert cached.tags["mloop.step.cached_from"] == first["total"].run_id
    assert [(a.path, a.digest) for a in client.list_artifacts(cached.id, "outputs/")] == [
        (a.path, a.digest) for a in client.list_artifacts(first["total"].run_id, "outputs/")
    ]
    # Another param is another key.
    steps.simple.run(n=5)
    assert _counts() == {"load": 2, "double": 2, "total": 2}


def test_a_changed_helper_reruns_only_the_steps_that_use_it(project: Load) -> None:
    steps = project()
    steps.simple.run()
    changed = "def scale(value: int) -> int:\n    return value + value\n"
    steps = project(helpers=changed)
    result = steps.simple.run()
    # double re-ran; its output is equal, so total (downstream) is still a cache hit.
    assert _counts() == {"load": 1, "double": 2, "total": 1}
    assert [n for n, s in result.steps.items() if not s.cached] == ["double"]
    why = result["double"].why_rerun
    assert any("rnproj.helpers.scale" in line for line in why), why
    run = _client().get_run(result["double"].run_id)
    assert "rnproj.helpers.scale" in run.tags["mloop.step.why_rerun"]
    assert "rnproj.helpers.scale" in _artifact_text(run.id, "why_rerun.txt")
    # explain_rerun can be asked directly, from the stored parts.
    parts = runner._key_parts(steps.simple.graph()["double"], {})
    assert any(
        "input 'values' removed" in line
        for line in runner.explain_rerun("simple/double", parts, _client())
    )


def test_ignored_inputs_are_left_out_of_the_key(project: Load) -> None:
    steps = project()
    steps.with_note.run(note="a")
    result = steps.with_note.run(note="b")
    assert _counts() == {"noted": 1}
    assert result["noted"].cached


def test_cache_false_always_runs(project: Load) -> None:
    steps = project()
    steps.uncached.run()
    result = steps.uncached.run()
    assert _counts() == {"load": 1, "side": 2}
    assert not result["side"].cached and result["load"].cached


def test_an_expired_entry_is_not_used(project: Load, monkeypatch: pytest.MonkeyPatch) -> None:
    steps = project()
    steps.expiring.run()
    real = runner._now_ms
    monkeypatch.setattr(runner, "_now_ms", lambda: real() + 30_000)
    steps.expiring.run()
    assert _counts() == {"fresh": 1}  # 30 s later: still fresh (expire=60)
    monkeypatch.setattr(runner, "_now_ms", lambda: real() + 120_000)
    result = steps.expiring.run()
    assert _counts() == {"fresh": 2}
    assert any("expired" in line for line in result["fresh"].why_rerun)


# -- failures ------------------------------------------------------------------------------------


def test_a_failing_step_fails_the_run_and_resume_reruns_only_what_failed(project: Load) -> None:
    steps = project()
    flag = Path(os.environ["MLOOP_TEST_RUNNER_DIR"]) / "fail"
    flag.write_text("")
    with pytest.raises(StepFailed) as caught:
        steps.fragile.run(n=3)
    error = caught.value
    assert error.node_id == "boom"
    assert "step 'boom'" in str(error)
    assert "ValueError: boom: the values are bad" in str(error)
    assert 'raise ValueError("boom: the values are bad")' in error.failure.traceback
    failed = error.result
    client = _client()
    assert client.get_run(failed.run_id).status is RunStatus.FAILED
    boom = client.get_run(failed["boom"].run_id)
    assert boom.status is RunStatus.FAILED
    assert "ValueError" in boom.tags["mloop.step.error"]
    assert "Traceback" in _artifact_text(boom.id, "error.txt")
    assert client.list_artifacts(boom.id, "outputs/") == []
    assert failed["after"].status is None and failed["after"].run_id is None  # never started
    assert _counts() == {"load": 1, "side": 1, "boom": 1}

    flag.unlink()
    resumed = steps.fragile.resume(failed.run_id)
    assert resumed.status is RunStatus.FINISHED
    # load from the cache, side (cache=False) from the failed run's records, boom and after run.
    assert _counts() == {"load": 1, "side": 1, "boom": 2, "after": 1}
    assert resumed["side"].cached
    side = client.get_run(resumed["side"].run_id)
    assert side.tags["mloop.step.cached_from"] == failed["side"].run_id
    assert resumed.output("after") == 6
    root = client.get_run(resumed.run_id)
    assert root.tags["mloop.pipeline.resumed_from"] == failed.run_id
    assert root.params == {"n": "3"}


def test_resume_refuses_a_finished_run_and_another_pipelines_run(project: Load) -> None:
    steps = project()
    done = steps.simple.run()
    with pytest.raises(Exception, match="only a FAILED or KILLED"):
        steps.simple.resume(done.run_id)
    with pytest.raises(Exception, match="not 'fragile'"):
        steps.fragile.resume(done.run_id)


def test_an_unserialisable_output_fails_the_step_and_records_nothing(project: Load) -> None:
    steps = project()
    with pytest.raises(StepFailed) as caught:
        steps.bad_output.run()
    assert caught.value.node_id == "weird"
    assert "step 'weird'" in str(caught.value)
    assert "builtins.set" in str(caught.value)
    client = _client()
    weird = client.get_run(caught.value.result["weird"].run_id)
    assert weird.status is RunStatus.FAILED
    assert client.list_artifacts(weird.id, "outputs") == []
    assert client.store.latest_step_cache("bad_output/weird") is None
    assert caught.value.result["total"].run_id is None


def test_retries_rerun_a_flaky_step(project: Load) -> None:
    steps = project()
    result = steps.shaky.run()
    assert _counts() == {"flaky": 3}
    assert result["flaky"].attempts == 3
    run = _client().get_run(result["flaky"].run_id)
    assert run.tags["mloop.step.attempts"] == "3"
    assert result.output("flaky") == 5


def test_the_local_executor_checks_the_timeout_after_the_call(project: Load) -> None:
    steps = project()
    with pytest.raises(StepFailed, match="timed out"):
        steps.slow_local.run()


def test_steps_must_be_importable(project: Load) -> None:
    from mloop.errors import InvalidInput
    from mloop.pipelines import pipeline, step

    @step
    def local_step(n: int) -> int:
        return n

    @pipeline
    def closure() -> None:
        local_step(1)

    with pytest.raises(InvalidInput, match="module level"):
        closure.run()


# -- the process executor ------------------------------------------------------------------------


def test_the_process_executor_runs_independent_steps_in_parallel(project: Load) -> None:
    steps = project()
    result = steps.pair.run(executor="process", max_workers=2)
    (a_start, a_end), (b_start, b_end) = result.output("meet"), result.output("meet_2")
    assert a_start < b_end and b_start < a_end  # each started before the other ended
    _check_records(result)  # stored by the workers, recorded by the runner


def test_a_step_past_its_timeout_fails_on_the_process_executor(project: Load) -> None:
    steps = project()
    with pytest.raises(StepFailed, match="timed out after 2 seconds") as caught:
        steps.sleeper.run(executor="process")
    assert _client().get_run(caught.value.result.run_id).status is RunStatus.FAILED


def test_bad_executor_names_are_refused(project: Load) -> None:
    from mloop.errors import InvalidInput

    steps = project()
    with pytest.raises(InvalidInput, match="no executor named 'nope'"):
        steps.simple.run(executor="nope")
    assert _counts() == {}


def test_a_timeout_resubmits_the_steps_running_beside_it(project: Load) -> None:
    from mloop.pipelines.execution import StepSpec
    from mloop.pipelines.executors import ProcessExecutor

    project()
    uri = _client().settings.artifact_uri
    counts = Path(os.environ["MLOOP_TEST_RUNNER_DIR"])

    def spec(name: str) -> StepSpec:
        return StepSpec(name, f"{PKG}.steps:{name}", {"n": {"literal": 1}}, uri)

    executor = ProcessExecutor(max_parallel=2)
    try:
        beside = executor.submit(spec("gated"))
        while not (counts / "gated.count").exists():  # it is running in a worker
            assert not beside.done(), beside.result()
            time.sleep(0.01)
        late = executor.submit(spec("sleepy"), timeout=1).result()
        assert late.failure is not None and late.failure.type == "builtins.TimeoutError"
        (counts / "go").write_text("")
        outcome = beside.result()
        assert outcome.ok, outcome.failure
        assert _counts()["gated"] == 2  # killed with the pool, then run again, not failed
    finally:
        executor.shutdown()


def test_an_executor_object_can_be_passed(project: Load) -> None:
    from mloop.pipelines.executors import LocalExecutor

    steps = project()
    assert steps.simple.run(executor=LocalExecutor()).output("total") == 6


def test_outputs_inside_a_list_argument_are_refused_before_anything_runs(project: Load) -> None:
    from mloop.errors import InvalidInput

    steps = project()
    with pytest.raises(InvalidInput, match="not inside a list or dict"):
        steps.combined.run()
    assert _counts() == {}
    assert _client().search_runs(experiments=None) == []
