"""Autologging XGBoost and LightGBM: eval results as metric histories, params, model."""

from __future__ import annotations

import inspect

import numpy as np
import pandas as pd
import pytest

import mloop
from mloop.autolog import autolog
from mloop.tracking import fluent

xgb = pytest.importorskip("xgboost")
lgb = pytest.importorskip("lightgbm")

Data = tuple[np.ndarray, np.ndarray]


def _runs() -> list[mloop.Run]:
    return list(fluent.search_runs(view="all"))


def _history(run_id: str, key: str) -> list[tuple[int, float]]:
    return [(m.step, m.value) for m in fluent.get_metric_history(run_id, key)]


def _artifacts(run_id: str) -> set[str]:
    return {entry.path for entry in fluent.list_artifacts(run_id)}


def test_xgboost_train_logs_histories(data: Data) -> None:
    x, y = data
    autolog(libraries=["xgboost"])
    train = xgb.DMatrix(x[:80], label=y[:80])
    valid = xgb.DMatrix(x[80:], label=y[80:])
    params = {"objective": "binary:logistic", "max_depth": 2, "eval_metric": "logloss"}
    booster = xgb.train(params, train, num_boost_round=5, evals=[(valid, "valid")],
                        verbose_eval=False)  # fmt: skip
    assert booster.num_boosted_rounds() == 5
    [run] = _runs()
    assert run.status == "FINISHED"
    assert run.params["max_depth"] == "2"
    assert run.params["num_boost_round"] == "5"
    history = _history(run.id, "valid-logloss")
    assert [step for step, _ in history] == [0, 1, 2, 3, 4]
    assert history[-1][1] < history[0][1]
    assert run.tags["mloop.autolog.train_rows"] == "80"
    assert run.tags["mloop.autolog"] == "xgboost"
    assert "model/mloop-model.json" in _artifacts(run.id)


def test_xgboost_train_keeps_callers_evals_result(data: Data) -> None:
    x, y = data
    autolog(libraries=["xgboost"], log_models=False)
    train = xgb.DMatrix(x, label=y)
    mine: dict[str, dict[str, list[float]]] = {}
    xgb.train({"objective": "binary:logistic"}, train, num_boost_round=3,
              evals=[(train, "train")], evals_result=mine, verbose_eval=False)  # fmt: skip
    assert len(mine["train"]["logloss"]) == 3
    [run] = _runs()
    assert len(_history(run.id, "train-logloss")) == 3


def test_xgb_classifier_fit_logs_once(data: Data) -> None:
    x, y = data
    autolog(libraries=["xgboost", "sklearn"])
    model = xgb.XGBClassifier(n_estimators=4, max_depth=2)
    model.fit(x, y, eval_set=[(x, y)], verbose=False)
    [run] = _runs()
    assert run.params["n_estimators"] == "4"
    assert [s for s, _ in _history(run.id, "validation_0-logloss")] == [0, 1, 2, 3]
    assert "training_accuracy_score" in run.metrics
    assert "mloop.autolog.train_digest" in run.tags
    assert "model/mloop-model.json" in _artifacts(run.id)


def test_lightgbm_train_logs_histories(data: Data) -> None:
    x, y = data
    autolog(libraries=["lightgbm"])
    frame = pd.DataFrame(x, columns=["a", "b", "c"])
    train = lgb.Dataset(frame[:80], label=y[:80])
    valid = lgb.Dataset(frame[80:], label=y[80:], reference=train)
    params = {"objective": "binary", "num_leaves": 4, "verbose": -1, "min_data_in_leaf": 5}
    booster = lgb.train(params, train, num_boost_round=6, valid_sets=[valid],
                        valid_names=["holdout"])  # fmt: skip
    assert booster.current_iteration() == 6
    [run] = _runs()
    assert run.params["num_leaves"] == "4"
    history = _history(run.id, "holdout-binary_logloss")
    assert [s for s, _ in history] == list(range(6))
    assert run.tags["mloop.autolog.train_rows"] == "80"
    assert "mloop.autolog.train_digest" in run.tags
    assert "model/mloop-model.json" in _artifacts(run.id)


def test_lgbm_regressor_fit_with_register_as(data: Data) -> None:
    x, _ = data
    y = x @ np.array([1.0, -1.0, 0.5])
    autolog(libraries=["lightgbm"], register_as="price")
    model = lgb.LGBMRegressor(n_estimators=5, num_leaves=4, verbose=-1, min_child_samples=5)
    if "eval_X" in inspect.signature(lgb.LGBMRegressor.fit).parameters:
        model.fit(x, y, eval_X=(x[80:],), eval_y=(y[80:],))  # eval_set is deprecated from 4.7
    else:
        model.fit(x, y, eval_set=[(x[80:], y[80:])])
    [run] = _runs()
    assert [s for s, _ in _history(run.id, "valid_0-l2")] == list(range(5))
    assert "training_r2_score" in run.metrics
    version = mloop.registry.resolve("models:/price/1")
    assert version.run_id == run.id
    assert version.flavor == "lightgbm"


def test_disable_restores_boosting_functions() -> None:
    train_x, train_l = xgb.train, lgb.train
    fit_x, fit_l = xgb.XGBClassifier.__dict__["fit"], lgb.LGBMClassifier.__dict__["fit"]
    autolog(libraries=["xgboost", "lightgbm"])
    assert xgb.train is not train_x
    autolog(disable=True)
    assert xgb.train is train_x and lgb.train is train_l
    assert xgb.XGBClassifier.__dict__["fit"] is fit_x
    assert lgb.LGBMClassifier.__dict__["fit"] is fit_l
