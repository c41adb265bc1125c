"""``sweep``: Optuna trials over a pipeline or a step, each a child run of the sweep run."""

from __future__ import annotations

import sqlite3
import sys
from collections.abc import Iterator
from pathlib import Path
from types import ModuleType
from typing import Any

import pytest

import mloop
from mloop.errors import AlreadyExists, InvalidInput, MissingExtra
from mloop.pipelines.sweep import parse_space, sweep

pytest.importorskip("optuna")

FLOWS = """
from sklearn.dummy import DummyRegressor

from mloop.pipelines import pipeline, step
from mloop.pipelines.sweep import report


@step
def fit(x: int, kind: str) -> DummyRegressor:
    model = DummyRegressor(strategy="constant", constant=x)
    return model.fit([[0.0], [1.0]], [0.0, 1.0])


@step
def evaluate(model: DummyRegressor, kind: str) -> dict:
    x = float(model.constant)
    return {"score": -((x - 5.0) ** 2) + (0.5 if kind == "b" else 0.0), "x": x}


@pipeline
def flow(x: int = 1, kind: str = "a"):
    evaluate(fit(x, kind), kind)


@step
def quad(x: float, slow: bool = False) -> float:
    for epoch in range(4):
        report(-((x - 2.0) ** 2) * (4 - epoch), epoch)
    return -((x - 2.0) ** 2)
"""


@pytest.fixture
def flows(tmp_path: Path, monkeypatch: pytest.MonkeyPatch, mloop_home: Path) -> Iterator[Any]:
    package = tmp_path / "proj" / "swproj"
    package.mkdir(parents=True)
    (package / "__init__.py").write_text("")
    (package / "flows.py").write_text(FLOWS)
    monkeypatch.syspath_prepend(str(tmp_path / "proj"))
    mloop.tracking.reset_default_client()
    import swproj.flows

    yield swproj.flows
    for name in [m for m in sys.modules if m == "swproj" or m.startswith("swproj.")]:
        del sys.modules[name]
    mloop.tracking.reset_default_client()


def _children(client: mloop.TrackingClient, run_id: str) -> list[Any]:
    return [
        r
        for r in client.search_runs("tags.`mloop.sweep.trial.number` LIKE '%'", max_results=100)
        if r.parent_id == run_id
    ]


def test_pipeline_sweep_records_trials_as_children(flows: ModuleType, mloop_home: Path) -> None:
    space = {"x": {"type": "int", "low": 0, "high": 9}, "kind": ["a", "b"]}
    result = sweep(flows.flow, space, n_trials=6, metric="evaluate.score", max_workers=2)
    values = [t.value for t in result.trials if t.value is not None]
    assert len(result.trials) == 6 and len(values) == 6
    assert result.best is not None and result.best_value == max(values) > min(values)
    client = mloop.tracking.default_client()
    sweep_run = client.get_run(result.run_id)
    assert sweep_run.status.value == "FINISHED"
    assert sweep_run.tags["mloop.sweep.metric"] == "evaluate.score"
    assert sweep_run.tags["mloop.sweep.best_run"] == result.best.run_id
    children = _children(client, result.run_id)
    assert {c.id for c in children} == {t.run_id for t in result.trials}
    for child in children:
        assert child.tags["mloop.sweep.trial.state"] == "COMPLETE"
        assert set(child.params) == {"x", "kind"}
        assert "evaluate.score" in child.metrics
        assert child.tags["mloop.sweep.pipeline_run"]
    # Optuna's tables live in mloop's own database, and mloop still opens it afterwards.
    db = sqlite3.connect(mloop_home / "mloop.db")
    try:
        tables = {row[0] for row in db.execute("SELECT name FROM sqlite_master")}
        assert {"studies", "trials", "runs"} <= tables
        names = [row[0] for row in db.execute("SELECT study_name FROM studies")]
        assert result.study_name in names
    finally:
        db.close()
    reopened = mloop.TrackingClient()
    try:
        assert reopened.get_run(result.run_id).id == result.run_id
    finally:
        reopened.close()


def test_step_sweep_minimize_and_pruning(flows: ModuleType) -> None:
    import optuna

    pruner = optuna.pruners.MedianPruner(n_startup_trials=2, n_warmup_steps=0)
    space = {"x": [2.0, 40.0, 3.0]}
    result = sweep(flows.quad, space, n_trials=10, metric="q", pruner=pruner, seed=3)
    done = [t for t in result.trials if t.state == "COMPLETE"]
    assert result.best is not None and result.best.value == max(t.value or 0 for t in done)
    assert result.best_params == {"x": 2.0}
    # A trial whose reported values fall below the median of earlier trials is stopped.
    pruned = [t for t in result.trials if t.state == "PRUNED"]
    assert pruned and all(t.params["x"] == 40.0 for t in pruned)
    assert {t.state for t in result.trials} == {"COMPLETE", "PRUNED"}
    client = mloop.tracking.default_client()
    for trial in result.trials:
        run = client.get_run(trial.run_id)
        assert run.status.value == ("FINISHED" if trial.state == "COMPLETE" else "KILLED")


def test_register_best_model_as_candidate(flows: ModuleType) -> None:
    result = sweep(
        flows.flow, {"x": [2, 5, 8]}, n_trials=4, metric="evaluate.score",
        params={"kind": "a"}, register_as="sweep-model",
    )  # fmt: skip
    assert result.registered is not None and result.best is not None
    assert result.registered.model == "sweep-model"
    assert result.registered.tags["mloop.sweep.candidate"] == "true"
    assert result.registered.tags["mloop.sweep.trial"] == str(result.best.number)
    model = mloop.registry.load(f"models:/sweep-model/{result.registered.version}")
    assert model.predict([[0.0]])[0] == result.best.params["x"]


@pytest.mark.parametrize(
    ("space", "needle"),
    [
        ({}, "non-empty space"),
        ({"x": {"type": "int", "low": 5, "high": 1}}, "'x'"),
        ({"x": {"type": "int", "low": 0.5, "high": 3}}, "whole numbers"),
        ({"lr": {"type": "float", "low": 0, "high": 1, "log": True}}, "'lr'"),
        ({"k": {"type": "categorical", "choices": []}}, "'k'"),
        ({"k": {"type": "normal"}}, "'k'"),
        ({"k": "abc"}, "'k'"),
    ],
)
def test_bad_space_is_refused(space: dict[str, Any], needle: str) -> None:
    with pytest.raises(InvalidInput, match=needle):
        parse_space(space)


def test_bad_space_or_metric_writes_no_sweep(flows: ModuleType) -> None:
    client = mloop.tracking.default_client()
    before = len(client.search_runs("", max_results=1000))
    with pytest.raises(InvalidInput, match="'x'"):
        sweep(flows.flow, {"x": {"type": "int", "low": 9, "high": 1}}, n_trials=2, metric="e")
    with pytest.raises(InvalidInput, match="names no step"):
        sweep(flows.flow, {"x": [1, 2]}, n_trials=2, metric="nowhere.score")
    with pytest.raises(InvalidInput, match="both fixed and searched"):
        sweep(flows.flow, {"x": [1, 2]}, n_trials=2, metric="evaluate", params={"x": 1})
    assert len(client.search_runs("", max_results=1000)) == before


def test_missing_metric_key_stops_the_sweep(flows: ModuleType) -> None:
    with pytest.raises(InvalidInput, match=r"no key 'roc_auc'.*keys: score, x"):
        sweep(flows.flow, {"x": [1, 2]}, n_trials=3, metric="evaluate.roc_auc")
    with pytest.raises(InvalidInput, match="not a finite number"):
        sweep(flows.flow, {"x": [1, 2]}, n_trials=2, metric="fit")


def test_duplicate_study_name(flows: ModuleType) -> None:
    sweep(flows.quad, {"x": [1.0, 2.0]}, n_trials=1, metric="q", study_name="same")
    with pytest.raises(AlreadyExists, match="'same'"):
        sweep(flows.quad, {"x": [1.0, 2.0]}, n_trials=1, metric="q", study_name="same")


def test_missing_optuna_names_the_extra(flows: ModuleType, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setitem(sys.modules, "optuna", None)
    with pytest.raises(MissingExtra, match=r"pip install 'mloop\[sweeps\]'"):
        sweep(flows.quad, {"x": [1.0]}, n_trials=1, metric="q")


def test_study_storage_has_mloops_sqlite_settings(client: mloop.TrackingClient) -> None:
    from sqlalchemy import text

    from mloop.pipelines.sweep import _close_storage, _optuna, _study_storage

    storage = _study_storage(client.settings, _optuna())
    try:
        with storage.engine.connect() as conn:
            pragma = {
                name: conn.execute(text(f"PRAGMA {name}")).scalar()
                for name in ("busy_timeout", "foreign_keys", "journal_mode")
            }
            # Every Optuna transaction took the write lock at BEGIN (BEGIN IMMEDIATE), so a
            # second writer is refused at once instead of deadlocking on a lock upgrade.
            other = sqlite3.connect(client.store.path, timeout=0, isolation_level=None)
            try:
                with pytest.raises(sqlite3.OperationalError, match="locked"):
                    other.execute("BEGIN IMMEDIATE")
            finally:
                other.close()
    finally:
        _close_storage(storage)
    timeout_ms = int(client.settings.sqlite_busy_timeout * 1000)
    assert pragma == {"busy_timeout": timeout_ms, "foreign_keys": 1, "journal_mode": "wal"}
