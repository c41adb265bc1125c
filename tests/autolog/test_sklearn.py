"""Autologging scikit-learn: one run per outermost fit, with params, metrics, data and model."""

from __future__ import annotations

import subprocess
import sys
import threading

import numpy as np
import pandas as pd
import pytest
from sklearn.linear_model import LinearRegression, LogisticRegression
from sklearn.model_selection import GridSearchCV
from sklearn.pipeline import Pipeline, make_pipeline
from sklearn.preprocessing import StandardScaler

import mloop
import mloop.autolog as autolog_module
from mloop.autolog import AutologWarning, autolog, inside_autolog, patched_libraries
from mloop.data.digest import table_digest
from mloop.errors import InvalidInput, MloopError
from mloop.registry.lineage import lineage
from mloop.tracking import fluent

Data = tuple[np.ndarray, np.ndarray]


def _runs() -> list[mloop.Run]:
    return list(fluent.search_runs(view="all"))


def _top_runs() -> list[mloop.Run]:
    return [run for run in _runs() if run.parent_id is None]


def _artifacts(run_id: str) -> set[str]:
    return {entry.path for entry in fluent.list_artifacts(run_id)}


def test_import_mloop_imports_no_library() -> None:
    code = (
        "import sys, mloop, mloop.autolog;"
        "print(sorted(m for m in ('sklearn', 'xgboost', 'lightgbm') if m in sys.modules))"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "[]"


def test_fit_logs_one_run(data: Data) -> None:
    x, y = data
    assert autolog(libraries=["sklearn"]) == ["sklearn"]
    model = LogisticRegression(C=0.5).fit(x, y)
    assert model.coef_.shape == (1, 3)
    [run] = _runs()
    assert run.status == "FINISHED"
    assert run.params["C"] == "0.5"
    assert run.params["max_iter"] == "100"
    for key in ("training_score", "training_accuracy_score", "training_f1_score",
                "training_precision_score", "training_recall_score", "training_roc_auc",
                "training_log_loss"):  # fmt: skip
        assert key in run.metrics, key
    assert run.metrics["training_score"] == pytest.approx(model.score(x, y))
    table = pd.DataFrame({"x0": x[:, 0], "x1": x[:, 1], "x2": x[:, 2], "target": y})
    expected = table_digest(__import__("pyarrow").Table.from_pandas(table, preserve_index=False))
    assert run.tags["mloop.autolog.train_digest"] == expected
    assert run.tags["mloop.autolog.train_rows"] == "120"
    assert run.tags["mloop.autolog.train_columns"] == "3"
    assert run.tags["mloop.autolog.estimator_name"] == "LogisticRegression"
    assert {"model/mloop-model.json", "model/model.skops", "model/input_example.json"} <= (
        _artifacts(run.id)
    )


def test_dataframe_regressor_metrics_and_digest(data: Data) -> None:
    x, _ = data
    frame = pd.DataFrame(x, columns=["a", "b", "c"])
    target = pd.Series(x @ np.array([1.0, 2.0, 0.5]), name="price")
    autolog(libraries=["sklearn"], log_models=False)
    LinearRegression().fit(frame, target)
    [run] = _runs()
    assert run.metrics["training_r2_score"] == pytest.approx(1.0)
    assert {"training_mean_squared_error", "training_root_mean_squared_error",
            "training_mean_absolute_error"} <= set(run.metrics)  # fmt: skip
    digest = table_digest(
        __import__("pyarrow").Table.from_pandas(frame.assign(price=target), preserve_index=False)
    )
    assert run.tags["mloop.autolog.train_digest"] == digest
    assert not any(path.startswith("model/") for path in _artifacts(run.id))


def test_pipeline_logs_once(data: Data) -> None:
    x, y = data
    autolog(libraries=["sklearn"])
    make_pipeline(StandardScaler(), LogisticRegression(C=2.0)).fit(x, y)
    [run] = _runs()
    assert run.tags["mloop.autolog.estimator_name"] == "Pipeline"
    assert run.params["logisticregression__C"] == "2.0"
    assert "training_accuracy_score" in run.metrics


def test_grid_search_logs_best_params_and_candidates(data: Data) -> None:
    x, y = data
    autolog(libraries=["sklearn"], max_tuning_runs=2)
    search = GridSearchCV(LogisticRegression(), {"C": [0.01, 1.0, 10.0]}, cv=3).fit(x, y)
    [run] = _top_runs()
    assert run.params["best_C"] == str(search.best_params_["C"])
    assert run.metrics["best_cv_score"] == pytest.approx(search.best_score_)
    children = [r for r in _runs() if r.parent_id == run.id]
    assert len(children) == 2
    assert all("mean_test_score" in child.metrics for child in children)
    paths = _artifacts(run.id)
    assert "cv_results.json" in paths
    assert "model/model.skops" in paths


def test_fit_inside_active_run_logs_into_it(data: Data) -> None:
    x, y = data
    autolog(libraries=["sklearn"])
    with mloop.start_run() as run:
        LogisticRegression().fit(x, y)
        assert fluent.active_run() is run
        assert not run.ended
        run.log_metric("after", 1.0)
    [stored] = _runs()
    assert stored.id == run.id
    assert {"training_score", "after"} <= set(stored.metrics)


def test_failing_fit_fails_the_run_and_propagates(data: Data) -> None:
    x, _ = data
    autolog(libraries=["sklearn"])
    y = np.zeros(len(x), dtype=int)  # one class: LogisticRegression refuses
    with pytest.raises(ValueError, match="class") as caught:
        LogisticRegression().fit(x, y)
    assert type(caught.value) is ValueError
    [run] = _runs()
    assert run.status == "FAILED"
    assert fluent.active_run() is None


def test_failing_fit_inside_user_run_leaves_it_open(data: Data) -> None:
    x, _ = data
    autolog(libraries=["sklearn"])
    with mloop.start_run() as run:
        with pytest.raises(ValueError):
            LogisticRegression().fit(x, np.zeros(len(x), dtype=int))
        assert not run.ended
    assert fluent.get_run(run.id).status == "FINISHED"


def test_disable_restores_originals_exactly(data: Data) -> None:
    originals = {
        "lr": LogisticRegression.__dict__["fit"],
        "pipe": Pipeline.__dict__["fit"],
        "search": GridSearchCV.fit,
    }
    lr_had_transform = "fit_transform" in vars(StandardScaler)
    autolog(libraries=["sklearn"])
    assert LogisticRegression.fit is not originals["lr"]
    autolog(disable=True)
    assert LogisticRegression.__dict__["fit"] is originals["lr"]
    assert Pipeline.__dict__["fit"] is originals["pipe"]
    assert GridSearchCV.fit is originals["search"]
    assert ("fit_transform" in vars(StandardScaler)) == lr_had_transform
    assert patched_libraries() == []
    x, y = data
    LogisticRegression().fit(x, y)
    assert _runs() == []


def test_autolog_twice_does_not_double_wrap(data: Data) -> None:
    original = LogisticRegression.__dict__["fit"]
    autolog(libraries=["sklearn"])
    autolog(libraries=["sklearn"], log_models=False)
    assert LogisticRegression.fit.__wrapped__ is original
    x, y = data
    LogisticRegression().fit(x, y)
    [run] = _runs()
    assert not any(p.startswith("model/") for p in _artifacts(run.id))
    autolog(disable=True)
    assert LogisticRegression.__dict__["fit"] is original


def test_module_is_callable(data: Data) -> None:
    assert autolog_module(libraries=["sklearn"]) == ["sklearn"]
    autolog_module(disable=True)
    assert patched_libraries() == []


def test_autologging_failure_warns_and_fit_goes_on(
    data: Data, monkeypatch: pytest.MonkeyPatch
) -> None:
    from mloop.autolog import records

    def broken(*args: object, **kwargs: object) -> None:
        raise RuntimeError("disk on fire")

    monkeypatch.setattr(records, "table_digest", broken, raising=False)
    monkeypatch.setattr("mloop.data.digest.table_digest", broken)
    autolog(libraries=["sklearn"])
    x, y = data
    with pytest.warns(AutologWarning, match="disk on fire"):
        model = LogisticRegression().fit(x, y)
    assert hasattr(model, "coef_")
    [run] = _runs()
    assert run.status == "FINISHED"
    assert "training_score" in run.metrics
    assert "mloop.autolog.train_digest" not in run.tags


def test_silent_suppresses_warnings(data: Data, monkeypatch: pytest.MonkeyPatch) -> None:
    def broken(*args: object, **kwargs: object) -> None:
        raise RuntimeError("nope")

    monkeypatch.setattr("mloop.data.digest.table_digest", broken)
    autolog(libraries=["sklearn"], silent=True)
    x, y = data
    LogisticRegression().fit(x, y)  # warnings are errors in this suite: none may escape
    assert len(_runs()) == 1


def test_register_as_registers_a_version_from_the_fit_run(data: Data) -> None:
    x, y = data
    autolog(libraries=["sklearn"], register_as="churn", log_datasets="register")
    LogisticRegression().fit(x, y)
    [run] = _runs()
    version = mloop.registry.resolve("models:/churn/1")
    assert version.run_id == run.id
    assert run.tags["mloop.autolog.model"] == version.uri
    tree = lineage(version)
    assert tree.run is not None and tree.run["id"] == run.id
    inputs = fluent.default_client().list_inputs(run.id)
    assert [i.context for i in inputs] == ["training"]
    dataset = mloop.data.lookup("churn-train")
    assert dataset.digest == run.tags["mloop.autolog.train_digest"]
    loaded = mloop.registry.load(version)
    assert list(loaded.predict(x[:3])) == list(LogisticRegression().fit(x, y).predict(x[:3]))


def test_threads_log_separately(data: Data) -> None:
    x, y = data
    autolog(libraries=["sklearn"], log_models=False)
    seen: list[bool] = []

    def fit() -> None:
        seen.append(inside_autolog())
        LogisticRegression().fit(x, y)

    threads = [threading.Thread(target=fit) for _ in range(3)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert seen == [False, False, False]
    assert len(_runs()) == 3
    assert {run.status for run in _runs()} == {"FINISHED"}


@pytest.mark.parametrize(
    ("options", "field"),
    [
        ({"libraries": ["torch"]}, "torch"),
        ({"log_datasets": "yes"}, "log_datasets"),
        ({"register_as": "bad name!"}, "bad name"),
        ({"max_tuning_runs": "5"}, "max_tuning_runs"),
    ],
)
def test_bad_options_are_refused(options: dict[str, object], field: str) -> None:
    with pytest.raises(MloopError, match=field):
        autolog(**options)  # type: ignore[arg-type]
    assert patched_libraries() == []
    assert isinstance(InvalidInput("x"), MloopError)


def test_only_importable_libraries_are_patched(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(autolog_module, "_importable", lambda name: name == "sklearn")
    assert autolog() == ["sklearn"]
    assert autolog(libraries=["scikit-learn", "xgboost"]) == ["sklearn"]


def test_user_subclass_is_recorded_and_custom_transformer_is_not(data: Data) -> None:
    from sklearn.base import BaseEstimator, TransformerMixin

    class Shifted(LogisticRegression):
        pass

    class Identity(TransformerMixin, BaseEstimator):  # type: ignore[misc]
        def fit(self, x: object, y: object = None) -> Identity:
            return self

        def transform(self, x: object) -> object:
            return x

    x, y = data
    autolog(libraries=["sklearn"], log_models=False)
    Identity().fit_transform(x)
    assert _runs() == []
    Shifted().fit(x, y)
    [run] = _runs()
    assert run.tags["mloop.autolog.estimator_name"] == "Shifted"


def test_fit_transform_alone_logs_and_no_datasets(data: Data) -> None:
    x, _ = data
    autolog(libraries=["sklearn"], log_datasets=False)
    out = StandardScaler().fit_transform(x)
    assert out.shape == x.shape
    [run] = _runs()
    assert run.params["with_mean"] == "True"
    assert not any(key.startswith("mloop.autolog.train") for key in run.tags)
    assert "model/model.skops" in _artifacts(run.id)
