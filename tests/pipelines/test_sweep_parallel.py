"""Whole sweep trials on worker processes and Ray tasks (``trial_executor``): trials really run
elsewhere, ``report`` prunes from a worker, a failing or dying worker trial is recorded FAILED
and the sweep goes on, and targets or stores that cannot be shipped are refused up front."""

from __future__ import annotations

import importlib.util
import os
import sys
from collections.abc import Iterator
from pathlib import Path
from types import ModuleType
from typing import Any

import pytest

import mloop
from mloop.errors import ConfigError, InvalidInput, MissingExtra
from mloop.pipelines import step
from mloop.pipelines.sweep import _close_storage, _study_storage, sweep

pytest.importorskip("optuna")

pytestmark = [pytest.mark.slow, pytest.mark.timeout(180)]

FLOWS = """
import os

from sklearn.dummy import DummyRegressor

from mloop.pipelines import pipeline, step
from mloop.pipelines.sweep import report


@step
def fit(x: int) -> DummyRegressor:
    model = DummyRegressor(strategy="constant", constant=x)
    return model.fit([[0.0], [1.0]], [0.0, 1.0])


@step
def evaluate(model: DummyRegressor) -> dict:
    x = float(model.constant)
    return {"score": -((x - 5.0) ** 2), "pid": os.getpid()}


@pipeline
def flow(x: int = 1):
    evaluate(fit(x))


@step
def where(x: float) -> dict:
    return {"score": -((x - 2.0) ** 2), "pid": os.getpid()}


@step
def quad(x: float) -> float:
    for epoch in range(4):
        report(-((x - 2.0) ** 2) * (4 - epoch), epoch)
    return -((x - 2.0) ** 2)


@step
def odd_fails(x: int) -> float:
    if x % 2:
        raise ValueError(f"odd x={x}")
    return float(x)


@step
def dies(x: int) -> float:
    if x == 1:
        os._exit(3)
    return float(x)
"""


@pytest.fixture
def flows(tmp_path: Path, monkeypatch: pytest.MonkeyPatch, mloop_home: Path) -> Iterator[Any]:
    package = tmp_path / "proj" / "swpar"
    package.mkdir(parents=True)
    (package / "__init__.py").write_text("")
    (package / "flows.py").write_text(FLOWS)
    monkeypatch.syspath_prepend(str(tmp_path / "proj"))
    mloop.tracking.reset_default_client()
    import swpar.flows

    yield swpar.flows
    for name in [m for m in sys.modules if m == "swpar" or m.startswith("swpar.")]:
        del sys.modules[name]
    mloop.tracking.reset_default_client()


def _runs(client: mloop.TrackingClient) -> int:
    return len(client.search_runs("", max_results=1000))


def test_process_trials_run_in_other_processes(flows: ModuleType) -> None:
    result = sweep(
        flows.where, {"x": [0.0, 2.0, 3.0]}, n_trials=4, metric="score", max_workers=2,
        trial_executor="process", seed=1,
    )  # fmt: skip
    assert [t.state for t in result.trials] == ["COMPLETE"] * 4
    values = [t.value for t in result.trials if t.value is not None]
    assert result.best is not None and result.best_value == max(values)
    client = mloop.tracking.default_client()
    sweep_run = client.get_run(result.run_id)
    assert sweep_run.status.value == "FINISHED"
    assert sweep_run.tags["mloop.sweep.trial_executor"] == "process"
    runs = [client.get_run(str(t.run_id)) for t in result.trials]
    assert all(r.parent_id == result.run_id and r.status.value == "FINISHED" for r in runs)
    assert all(r.pid != os.getpid() for r in runs)  # each trial run started in a worker
    assert all("score" in r.metrics for r in runs)


def test_process_pipeline_trials_register_the_best_model(flows: ModuleType) -> None:
    result = sweep(
        flows.flow, {"x": [2, 5, 8]}, n_trials=3, metric="evaluate.score", max_workers=2,
        trial_executor="process", register_as="par-model", seed=0,
    )  # fmt: skip
    assert result.best is not None and result.registered is not None
    assert all(t.pipeline_run_id for t in result.trials)
    client = mloop.tracking.default_client()
    pipeline_run = client.get_run(str(result.best.pipeline_run_id))
    assert pipeline_run.pid != os.getpid()
    model = mloop.registry.load(f"models:/par-model/{result.registered.version}")
    assert model.predict([[0.0]])[0] == result.best.params["x"]


def test_report_prunes_from_a_worker_process(flows: ModuleType) -> None:
    import optuna

    pruner = optuna.pruners.MedianPruner(n_startup_trials=2, n_warmup_steps=0)
    result = sweep(
        flows.quad, {"x": [2.0, 40.0, 3.0]}, n_trials=10, metric="q", pruner=pruner, seed=3,
        trial_executor="process",
    )  # fmt: skip
    pruned = [t for t in result.trials if t.state == "PRUNED"]
    assert pruned and all(t.params["x"] == 40.0 for t in pruned)
    assert result.best_params == {"x": 2.0}
    client = mloop.tracking.default_client()
    for trial in pruned:
        run = client.get_run(str(trial.run_id))
        assert run.status.value == "KILLED" and run.pid != os.getpid()
        assert run.tags["mloop.sweep.trial.state"] == "PRUNED"
    # The intermediate values reached the study from the worker.
    storage = _study_storage(client.settings, optuna, create_tables=False)
    study = optuna.load_study(study_name=result.study_name, storage=storage)
    assert all(t.intermediate_values for t in study.trials)
    _close_storage(storage)


@pytest.mark.parametrize("trial_executor", ["thread", "process"])
def test_a_failing_trial_is_recorded_and_the_sweep_goes_on(
    flows: ModuleType, trial_executor: str
) -> None:
    # Optuna reseeds its sampler per thread when trials run on threads, so the seed does not
    # fix the draws there: 12 draws from {1, 2} hold both with probability 1 - 2/4096.
    result = sweep(
        flows.odd_fails, {"x": [1, 2]}, n_trials=12, metric="x",
        max_workers=2, trial_executor=trial_executor, seed=4,
    )  # fmt: skip
    assert len(result.trials) == 12
    failed = [t for t in result.trials if t.state == "FAIL"]
    done = [t for t in result.trials if t.state == "COMPLETE"]
    assert failed and done
    client = mloop.tracking.default_client()
    for trial in failed:
        assert trial.error is not None and f"ValueError: odd x={trial.params['x']}" in trial.error
        run = client.get_run(str(trial.run_id))
        assert run.status.value == "FAILED"
        assert "odd x=" in run.tags["mloop.sweep.trial.error"]
        assert client.list_artifacts(run.id, "error.txt")
    assert client.get_run(result.run_id).status.value == "FINISHED"


def test_a_dead_worker_fails_its_trial_only(flows: ModuleType) -> None:
    result = sweep(
        flows.dies, {"x": [0, 1, 2]}, n_trials=5, metric="x", trial_executor="process", seed=2,
    )  # fmt: skip
    lost = [t for t in result.trials if t.state == "FAIL"]
    assert lost and all(t.params["x"] == 1 for t in lost)
    assert all("was lost" in (t.error or "") for t in lost)
    assert any(t.state == "COMPLETE" for t in result.trials)
    client = mloop.tracking.default_client()
    for trial in lost:
        if trial.run_id is not None:
            assert client.get_run(trial.run_id).status.value in ("FAILED", "KILLED")


def test_closures_and_bad_trial_executors_are_refused(flows: ModuleType) -> None:
    client = mloop.tracking.default_client()
    before = _runs(client)

    @step
    def inner(x: float) -> float:
        return x

    with pytest.raises(InvalidInput, match="define the step at module level"):
        sweep(inner, {"x": [1.0]}, n_trials=1, metric="x", trial_executor="process")
    with pytest.raises(InvalidInput, match="trial_executor must be one of"):
        sweep(flows.quad, {"x": [1.0]}, n_trials=1, metric="q", trial_executor="fork")
    assert _runs(client) == before


def test_a_memory_artifact_store_is_refused(
    flows: ModuleType, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("MLOOP_ARTIFACT_URI", "memory://")
    mloop.tracking.reset_default_client()
    with pytest.raises(ConfigError, match="trial_executor='process' workers cannot see it"):
        sweep(flows.quad, {"x": [1.0]}, n_trials=1, metric="q", trial_executor="process")


def test_missing_ray_names_the_extra(flows: ModuleType, monkeypatch: pytest.MonkeyPatch) -> None:
    client = mloop.tracking.default_client()
    before = _runs(client)
    monkeypatch.setitem(sys.modules, "ray", None)
    with pytest.raises(MissingExtra, match=r"pip install 'mloop\[ray\]'"):
        sweep(flows.quad, {"x": [1.0]}, n_trials=1, metric="q", trial_executor="ray")
    assert _runs(client) == before


@pytest.fixture
def ray_runtime() -> Iterator[None]:
    """A local Ray runtime for the test (skipped without ray unless MLOOP_REQUIRE_RAY=1)."""
    if importlib.util.find_spec("ray") is None:
        if os.environ.get("MLOOP_REQUIRE_RAY") == "1":
            pytest.fail("MLOOP_REQUIRE_RAY=1 but ray is not installed: pip install 'mloop[ray]'")
        pytest.skip("ray is not installed (pip install 'mloop[ray]')")
    import ray

    ray.init(address="local", num_cpus=2, include_dashboard=False)
    try:
        yield
    finally:
        ray.shutdown()


def test_ray_trials_on_a_local_runtime(flows: ModuleType, ray_runtime: None) -> None:
    import optuna

    pruner = optuna.pruners.MedianPruner(n_startup_trials=2, n_warmup_steps=0)
    result = sweep(
        flows.quad, {"x": [2.0, 40.0, 3.0]}, n_trials=6, metric="q", pruner=pruner, seed=3,
        trial_executor="ray", max_workers=2,
    )  # fmt: skip
    assert "COMPLETE" in {t.state for t in result.trials} and result.best_params == {"x": 2.0}
    client = mloop.tracking.default_client()
    runs = [client.get_run(str(t.run_id)) for t in result.trials]
    assert all(r.parent_id == result.run_id and r.pid != os.getpid() for r in runs)
    assert client.get_run(result.run_id).tags["mloop.sweep.trial_executor"] == "ray"
    storage = _study_storage(client.settings, optuna, create_tables=False)
    study = optuna.load_study(study_name=result.study_name, storage=storage)
    assert all(t.intermediate_values for t in study.trials)  # report() reached the study
    _close_storage(storage)
    failed = sweep(flows.odd_fails, {"x": [1, 3]}, n_trials=2, metric="x", trial_executor="ray")
    assert failed.best is None and all("ValueError" in (t.error or "") for t in failed.trials)
    assert client.get_run(failed.run_id).status.value == "FAILED"


@pytest.mark.postgres
def test_process_trials_on_postgres(
    flows: ModuleType,
    monkeypatch: pytest.MonkeyPatch,
    postgres_database_factory: Any,
) -> None:
    import optuna

    monkeypatch.setenv("MLOOP_TRACKING_URI", postgres_database_factory())
    mloop.tracking.reset_default_client()
    pruner = optuna.pruners.MedianPruner(n_startup_trials=2, n_warmup_steps=0)
    result = sweep(
        flows.quad, {"x": [2.0, 40.0, 3.0]}, n_trials=6, metric="q", pruner=pruner, seed=3,
        trial_executor="process", max_workers=2,
    )  # fmt: skip
    assert result.best_params == {"x": 2.0}
    client = mloop.tracking.default_client()
    assert client.settings.tracking_uri.startswith("postgresql")
    runs = [client.get_run(str(t.run_id)) for t in result.trials]
    assert all(r.parent_id == result.run_id and r.pid != os.getpid() for r in runs)
