"""Metrics agree with scikit-learn's functions; directions and omissions are as documented."""

from __future__ import annotations

from typing import Any

import numpy as np
import pandas as pd
import pytest
from sklearn import metrics as skm
from sklearn.calibration import calibration_curve

from mloop.errors import InvalidInput
from mloop.evaluation import (
    HIGHER_IS_BETTER,
    KNOWN_METRICS,
    LOWER_IS_BETTER,
    direction,
    evaluate,
)
from tests.evaluation.conftest import FEATURES, LabelsOnly


def test_binary_metrics_match_sklearn(binary_data: pd.DataFrame, binary_model: Any) -> None:
    result = evaluate(binary_model, binary_data, target="y", features=FEATURES, latency=False)
    x, y = binary_data[FEATURES], binary_data["y"].to_numpy()
    pred, score = binary_model.predict(x), binary_model.predict_proba(x)[:, 1]
    m = result.metrics
    assert result.task == "classification" and result.positive_label == 1
    assert m["accuracy"] == pytest.approx(skm.accuracy_score(y, pred))
    assert m["balanced_accuracy"] == pytest.approx(skm.balanced_accuracy_score(y, pred))
    assert m["precision"] == pytest.approx(skm.precision_score(y, pred))
    assert m["recall"] == pytest.approx(skm.recall_score(y, pred))
    assert m["f1"] == pytest.approx(skm.f1_score(y, pred))
    assert m["mcc"] == pytest.approx(skm.matthews_corrcoef(y, pred))
    assert m["roc_auc"] == pytest.approx(skm.roc_auc_score(y, score))
    assert m["pr_auc"] == pytest.approx(skm.average_precision_score(y, score))
    assert m["log_loss"] == pytest.approx(skm.log_loss(y, binary_model.predict_proba(x)))
    assert m["brier"] == pytest.approx(skm.brier_score_loss(y, score))
    assert m["selection_rate"] == pytest.approx(pred.mean())
    tn, fp, _fn, _tp = skm.confusion_matrix(y, pred).ravel()
    assert m["false_positive_rate"] == pytest.approx(fp / (fp + tn))
    assert result.notes == []


def test_calibration_matches_sklearn_curve(binary_data: pd.DataFrame, binary_model: Any) -> None:
    result = evaluate(binary_model, binary_data, target="y", features=FEATURES, latency=False)
    score = binary_model.predict_proba(binary_data[FEATURES])[:, 1]
    frac, mean_pred = calibration_curve(binary_data["y"], score, n_bins=10)
    cal = result.calibration
    assert cal is not None and cal.kind == "positive"
    assert [b.fraction_positive for b in cal.bins] == pytest.approx(list(frac))
    assert [b.mean_predicted for b in cal.bins] == pytest.approx(list(mean_pred))
    assert sum(b.count for b in cal.bins) == len(binary_data)
    counts = np.array([b.count for b in cal.bins])
    expected_ece = float(np.sum(counts / counts.sum() * np.abs(frac - mean_pred)))
    assert cal.ece == pytest.approx(expected_ece)
    assert result.metrics["ece"] == pytest.approx(expected_ece)


def test_multiclass_metrics_are_macro_averages(
    multiclass_data: pd.DataFrame, multiclass_model: Any
) -> None:
    result = evaluate(
        multiclass_model, multiclass_data, target="y", features=FEATURES, latency=False
    )
    x, y = multiclass_data[FEATURES], multiclass_data["y"].to_numpy()
    pred, proba = multiclass_model.predict(x), multiclass_model.predict_proba(x)
    m = result.metrics
    assert result.classes == ["cat", "dog", "eel"] and result.positive_label is None
    assert m["precision"] == pytest.approx(skm.precision_score(y, pred, average="macro"))
    assert m["recall"] == pytest.approx(skm.recall_score(y, pred, average="macro"))
    assert m["f1"] == pytest.approx(skm.f1_score(y, pred, average="macro"))
    assert m["roc_auc"] == pytest.approx(skm.roc_auc_score(y, proba, multi_class="ovr"))
    assert m["log_loss"] == pytest.approx(skm.log_loss(y, proba))
    onehot = (y[:, None] == multiclass_model.classes_[None, :]).astype(float)
    assert m["brier"] == pytest.approx(np.mean(np.sum((onehot - proba) ** 2, axis=1)))
    assert m["pr_auc"] == pytest.approx(skm.average_precision_score(onehot, proba, average="macro"))
    assert "selection_rate" not in m
    assert result.calibration is not None and result.calibration.kind == "top_label"


def test_regression_metrics_match_sklearn(
    regression_data: pd.DataFrame, regression_model: Any
) -> None:
    result = evaluate(
        regression_model, regression_data, target="y", features=FEATURES, latency=False
    )
    y = regression_data["y"].to_numpy()
    pred = regression_model.predict(regression_data[FEATURES])
    m = result.metrics
    assert result.task == "regression"
    assert m["mse"] == pytest.approx(skm.mean_squared_error(y, pred))
    assert m["rmse"] == pytest.approx(skm.root_mean_squared_error(y, pred))
    assert m["mae"] == pytest.approx(skm.mean_absolute_error(y, pred))
    assert m["r2"] == pytest.approx(skm.r2_score(y, pred))
    assert m["mape"] == pytest.approx(skm.mean_absolute_percentage_error(y, pred))
    assert m["median_ae"] == pytest.approx(skm.median_absolute_error(y, pred))
    assert m["max_error"] == pytest.approx(skm.max_error(y, pred))
    assert m["explained_variance"] == pytest.approx(skm.explained_variance_score(y, pred))


def test_mape_is_omitted_with_a_note_when_the_target_holds_zero(
    regression_data: pd.DataFrame, regression_model: Any
) -> None:
    data = regression_data.copy()
    data.loc[0, "y"] = 0.0
    result = evaluate(regression_model, data, target="y", features=FEATURES, latency=False)
    assert "mape" not in result.metrics
    assert any(n.startswith("mape omitted") for n in result.notes)


def test_probability_metrics_are_omitted_without_predict_proba(
    binary_data: pd.DataFrame, binary_model: Any
) -> None:
    result = evaluate(
        LabelsOnly(binary_model), binary_data, target="y", task="classification", latency=False
    )
    for name in ("roc_auc", "pr_auc", "log_loss", "brier", "ece"):
        assert name not in result.metrics
    assert result.calibration is None
    assert "calibration.svg" not in result.plots and "roc.svg" not in result.plots
    assert any("no predict_proba" in n for n in result.notes)
    assert result.metrics["accuracy"] == pytest.approx(
        skm.accuracy_score(binary_data["y"], binary_model.predict(binary_data[FEATURES]))
    )
    with pytest.raises(InvalidInput, match=r"roc_auc.*available: accuracy"):
        result.metric("roc_auc")


def test_direction_table() -> None:
    assert direction("roc_auc") == "higher" and direction("log_loss") == "lower"
    assert direction("rmse") == "lower" and direction("r2") == "higher"
    assert direction("selection_rate") is None
    assert not HIGHER_IS_BETTER & LOWER_IS_BETTER
    assert {"accuracy", "brier", "mae"} <= KNOWN_METRICS
    with pytest.raises(InvalidInput, match=r"unknown metric 'auc'.*roc_auc"):
        direction("auc")
