"""evaluate(): bad input, labels and probabilities, slices and fairness, importance, latency,
the data digest and the JSON form."""

from __future__ import annotations

import json
import subprocess
import sys
from typing import Any

import numpy as np
import pandas as pd
import pytest
from sklearn.inspection import permutation_importance

from mloop.errors import InvalidInput, MloopError
from mloop.evaluation import EvaluationResult, data_digest, evaluate
from tests.evaluation.conftest import FEATURES, LabelsOnly, Wrapped


class Constant:
    """Predicts one fixed label for every row."""

    def __init__(self, value: Any) -> None:
        self.value = value

    def predict(self, data: pd.DataFrame) -> Any:
        return np.full(len(data), self.value)


# --- bad input -------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("change", "kwargs", "match"),
    [
        (lambda d: d.iloc[0:0], {}, "data is empty"),
        (lambda d: d, {"target": "label"}, "target column 'label' is not in the data"),
        (lambda d: d.assign(y=0), {}, "holds a single class"),
        (lambda d: d.assign(y=d["y"].where(d.index % 7 != 0)), {}, "has 86 missing values"),
        (lambda d: d, {"slices": ["channel"]}, "slice column 'channel' is not in the data"),
        (lambda d: d, {"features": ["f0", "nope"]}, "feature columns not in the data: nope"),
        (lambda d: d, {"features": ["f0", "y"]}, "cannot also be a feature"),
        (lambda d: d, {"threshold": 1.5}, "threshold must be strictly between 0 and 1"),
        (lambda d: d, {"positive_label": 7}, "positive_label 7 is not one of the classes"),
        (lambda d: d, {"task": "ranking"}, "task must be"),
        (lambda d: d, {"importance": True, "importance_metric": "rmse"}, "does not apply"),
        (lambda d: d, {"importance": True, "importance_metric": "auc"}, "unknown metric 'auc'"),
    ],
)
def test_bad_input_raises_invalid_input(
    binary_data: pd.DataFrame, binary_model: Any, change: Any, kwargs: dict[str, Any], match: str
) -> None:
    args: dict[str, Any] = {"target": "y", "features": FEATURES, "latency": False} | kwargs
    if "features" in kwargs and kwargs["features"] is None:
        del args["features"]
    with pytest.raises(InvalidInput, match=match):
        evaluate(Wrapped(binary_model), change(binary_data), **args)


def test_data_that_is_not_a_frame_and_models_without_predict_are_refused(
    binary_data: pd.DataFrame,
) -> None:
    with pytest.raises(InvalidInput, match="must be a pandas DataFrame"):
        evaluate(Constant(1), binary_data.to_numpy(), target="y")  # type: ignore[arg-type]
    with pytest.raises(InvalidInput, match="has no predict"):
        evaluate(object(), binary_data, target="y")


def test_positive_label_on_multiclass_is_refused(
    multiclass_data: pd.DataFrame, multiclass_model: Any
) -> None:
    with pytest.raises(InvalidInput, match="positive_label applies to binary targets"):
        evaluate(
            multiclass_model,
            multiclass_data,
            target="y",
            features=FEATURES,
            positive_label="cat",
            latency=False,
        )


def test_regression_on_a_text_target_is_refused(multiclass_data: pd.DataFrame) -> None:
    with pytest.raises(InvalidInput, match="not a number"):
        evaluate(Constant(1.0), multiclass_data, target="y", task="regression", latency=False)


def test_model_failures_are_wrapped_naming_the_model(binary_data: pd.DataFrame) -> None:
    class Broken:
        name = "fraud-detector@4"

        def predict(self, data: pd.DataFrame) -> Any:
            raise KeyError("f9")

    with pytest.raises(MloopError, match="'fraud-detector@4' failed in predict") as info:
        evaluate(Broken(), binary_data, target="y", task="classification", latency=False)
    assert isinstance(info.value.__cause__, KeyError)

    class Short:
        def predict(self, data: pd.DataFrame) -> Any:
            return np.zeros(3)

    with pytest.raises(MloopError, match=r"shape \(3,\) for 600 rows"):
        evaluate(Short(), binary_data, target="y", task="classification", latency=False)


def test_mloop_errors_from_the_model_pass_through(binary_data: pd.DataFrame) -> None:
    class Strict:
        def predict(self, data: pd.DataFrame) -> Any:
            raise InvalidInput("column 'f0' has type object, expected float64")

    with pytest.raises(InvalidInput, match="column 'f0' has type object"):
        evaluate(Strict(), binary_data, target="y", task="classification", latency=False)


def test_non_finite_regression_predictions_are_refused(regression_data: pd.DataFrame) -> None:
    with pytest.raises(MloopError, match="returned 400 missing or infinite predictions"):
        evaluate(Constant(np.nan), regression_data, target="y", task="regression", latency=False)


# --- labels, probabilities, task -------------------------------------------------------------


def test_task_is_inferred(
    binary_data: pd.DataFrame, binary_model: Any, regression_data: pd.DataFrame
) -> None:
    # whole-number target: classification when the model has predict_proba, else regression
    assert (
        evaluate(
            binary_model, binary_data, target="y", features=FEATURES, latency=False, plots=False
        ).task
        == "classification"
    )
    assert (
        evaluate(LabelsOnly(binary_model), binary_data, target="y", latency=False, plots=False).task
        == "regression"
    )
    text = binary_data.assign(y=np.where(binary_data["y"] == 1, "yes", "no"))
    assert evaluate(Constant("yes"), text, target="y", latency=False).task == "classification"
    assert evaluate(Constant(1.0), regression_data, target="y", latency=False).task == "regression"


def test_text_labels_infer_the_larger_label_with_a_note(binary_data: pd.DataFrame) -> None:
    text = binary_data.assign(y=np.where(binary_data["y"] == 1, "fraud", "legit"))
    inferred = evaluate(Constant("fraud"), text, target="y", latency=False)
    assert inferred.positive_label == "legit"
    assert any("positive label inferred as 'legit'" in n for n in inferred.notes)
    chosen = evaluate(Constant("fraud"), text, target="y", positive_label="fraud", latency=False)
    assert chosen.positive_label == "fraud"
    assert chosen.metrics["recall"] == 1.0 and chosen.metrics["selection_rate"] == 1.0
    assert not any("positive label" in n for n in chosen.notes)


def test_probability_frames_are_aligned_by_column_name(
    binary_data: pd.DataFrame, binary_model: Any
) -> None:
    plain = evaluate(Wrapped(binary_model), binary_data, target="y", latency=False, plots=False)
    framed = evaluate(
        Wrapped(binary_model, proba_frame=True), binary_data, target="y", latency=False, plots=False
    )
    assert framed.metrics == pytest.approx(plain.metrics)
    assert plain.metrics["roc_auc"] > 0.6  # reversed columns would give < 0.5


def test_one_dimensional_probabilities_are_the_positive_class(
    binary_data: pd.DataFrame, binary_model: Any
) -> None:
    class PositiveOnly(Wrapped):
        def predict_proba(self, data: pd.DataFrame) -> Any:
            return self.inner.predict_proba(data[FEATURES])[:, 1]

    full = evaluate(Wrapped(binary_model), binary_data, target="y", latency=False, plots=False)
    one = evaluate(PositiveOnly(binary_model), binary_data, target="y", latency=False, plots=False)
    assert one.metrics == pytest.approx(full.metrics)


def test_bad_probabilities_are_omitted_with_a_note(binary_data: pd.DataFrame) -> None:
    class Odd(Constant):
        def predict_proba(self, data: pd.DataFrame) -> Any:
            return np.full((len(data), 3), 2.0)

    result = evaluate(Odd(1), binary_data, target="y", task="classification", latency=False)
    assert "roc_auc" not in result.metrics and "accuracy" in result.metrics
    assert any("predict_proba returned shape" in n for n in result.notes)


def test_threshold_moves_the_decision(binary_data: pd.DataFrame, binary_model: Any) -> None:
    low = evaluate(
        binary_model,
        binary_data,
        target="y",
        features=FEATURES,
        threshold=0.05,
        latency=False,
        plots=False,
    )
    high = evaluate(
        binary_model,
        binary_data,
        target="y",
        features=FEATURES,
        threshold=0.95,
        latency=False,
        plots=False,
    )
    assert low.metrics["recall"] > high.metrics["recall"]
    assert low.metrics["selection_rate"] > high.metrics["selection_rate"]
    assert low.metrics["roc_auc"] == pytest.approx(high.metrics["roc_auc"])
    assert low.threshold == 0.05


# --- slices and fairness ---------------------------------------------------------------------


def test_slices_and_fairness_gaps(binary_data: pd.DataFrame, binary_model: Any) -> None:
    result = evaluate(
        binary_model, binary_data, target="y", features=FEATURES, slices=["country"], latency=False
    )
    pred = binary_model.predict(binary_data[FEATURES])
    groups = {s.value: s for s in result.slices["country"]}
    assert set(groups) == {"de", "fr"} and groups["fr"].n == 200
    rate, recall = {}, {}
    for value in ("de", "fr"):
        mask = (binary_data["country"] == value).to_numpy()
        y = binary_data["y"].to_numpy()[mask]
        rate[value] = pred[mask].mean()
        recall[value] = (pred[mask] & y).sum() / y.sum()
        assert groups[value].metrics["selection_rate"] == pytest.approx(rate[value])
        assert groups[value].metrics["recall"] == pytest.approx(recall[value])
    gaps = result.fairness["country"]
    assert gaps.demographic_parity_difference == pytest.approx(abs(rate["de"] - rate["fr"]))
    assert gaps.equal_opportunity_difference == pytest.approx(abs(recall["de"] - recall["fr"]))
    assert gaps.recall == pytest.approx(recall)
    assert set(gaps.precision) == {"de", "fr"}
    assert result.slice_gap("recall") == pytest.approx(gaps.equal_opportunity_difference)
    assert result.slice_gap("demographic_parity_difference") == pytest.approx(
        gaps.demographic_parity_difference
    )
    assert gaps.max_gaps["accuracy"] == pytest.approx(result.slice_gap("accuracy", "country"))
    with pytest.raises(InvalidInput, match="no slice column 'city'"):
        result.slice_gap("recall", "city")
    with pytest.raises(InvalidInput, match="not defined for any group"):
        result.slice_gap("rmse")


def test_slices_with_one_class_omit_undefined_metrics(binary_data: pd.DataFrame) -> None:
    data = binary_data.assign(group=np.where(binary_data["y"] == 1, "pos", "neg"))
    result = evaluate(
        ConstantProba(), data, target="y", task="classification", slices=["group"], latency=False
    )
    neg = next(s for s in result.slices["group"] if s.value == "neg")
    assert "recall" not in neg.metrics and "roc_auc" not in neg.metrics
    assert "accuracy" in neg.metrics


class ConstantProba(Constant):
    def __init__(self) -> None:
        super().__init__(1)

    def predict_proba(self, data: pd.DataFrame) -> Any:
        return np.tile([0.3, 0.7], (len(data), 1))


def test_numeric_slices_are_binned_and_small_groups_get_no_metrics(
    regression_data: pd.DataFrame, regression_model: Any
) -> None:
    result = evaluate(
        regression_model,
        regression_data,
        target="y",
        features=FEATURES,
        slices=["f0", "region"],
        min_slice_size=250,
        latency=False,
    )
    assert len(result.slices["f0"]) == 5
    assert all(isinstance(s.value, str) and s.value.startswith("(") for s in result.slices["f0"])
    assert all(s.metrics == {} for s in result.slices["f0"])  # 80 rows each < 250
    assert all(s.metrics == {} for s in result.slices["region"])
    assert result.fairness == {}  # fairness gaps are for classification


class NeverCalled:
    """Fails the test if evaluate() calls it: bad input must be refused before predicting."""

    def predict(self, data: pd.DataFrame) -> Any:
        raise AssertionError("predict() was called")


def test_too_many_text_groups_are_refused(binary_data: pd.DataFrame) -> None:
    data = binary_data.assign(user=[f"u{i}" for i in range(len(binary_data))])
    with pytest.raises(InvalidInput, match="slice column 'user' has 600 distinct values"):
        evaluate(
            NeverCalled(), data, target="y", task="classification", slices=["user"], latency=False
        )


def test_missing_slice_values_form_their_own_group(binary_data: pd.DataFrame) -> None:
    data = binary_data.assign(channel=np.where(binary_data.index % 2 == 0, "web", None))
    result = evaluate(
        Constant(1), data, target="y", task="classification", slices=["channel"], latency=False
    )
    assert {s.value for s in result.slices["channel"]} == {"web", None}


# --- importance, latency, plots --------------------------------------------------------------


def test_permutation_importance_matches_sklearn(
    binary_data: pd.DataFrame, binary_model: Any
) -> None:
    result = evaluate(
        Wrapped(binary_model),
        binary_data[[*FEATURES, "y"]],
        target="y",
        importance=True,
        n_repeats=3,
        random_state=7,
        latency=False,
        plots=False,
    )
    expected = permutation_importance(
        binary_model, binary_data[FEATURES], binary_data["y"], n_repeats=3, random_state=7
    )
    assert result.importance is not None and result.importance_metric == "accuracy"
    for i, name in enumerate(FEATURES):
        assert result.importance[name].mean == pytest.approx(expected.importances_mean[i])
        assert result.importance[name].std == pytest.approx(expected.importances_std[i])


def test_regression_importance_uses_r2_by_default_and_lower_metrics_flip(
    regression_data: pd.DataFrame, regression_model: Any
) -> None:
    r2 = evaluate(
        regression_model,
        regression_data,
        target="y",
        features=FEATURES,
        importance=True,
        n_repeats=2,
        latency=False,
        plots=False,
    )
    rmse = evaluate(
        regression_model,
        regression_data,
        target="y",
        features=FEATURES,
        importance=True,
        importance_metric="rmse",
        n_repeats=2,
        latency=False,
        plots=False,
    )
    assert r2.importance_metric == "r2" and rmse.importance_metric == "rmse"
    assert r2.importance is not None and rmse.importance is not None
    top = max(r2.importance, key=lambda f: r2.importance[f].mean)  # type: ignore[index]
    assert rmse.importance[top].mean > 0  # shuffling raises rmse: a positive importance


def test_latency_is_measured(binary_data: pd.DataFrame, binary_model: Any) -> None:
    result = evaluate(
        binary_model, binary_data, target="y", features=FEATURES, latency_calls=5, plots=False
    )
    lat = result.latency
    assert lat is not None and lat.calls == 5 and lat.batch_rows == 600
    assert 0 < lat.p50_ms <= lat.p99_ms and lat.rows_per_s > 0


def test_plots_are_valid_self_contained_svg(
    multiclass_data: pd.DataFrame,
    multiclass_model: Any,
    binary_data: pd.DataFrame,
    binary_model: Any,
    regression_data: pd.DataFrame,
    regression_model: Any,
) -> None:
    import xml.etree.ElementTree as ET

    binary = evaluate(binary_model, binary_data, target="y", features=FEATURES, latency=False)
    multi = evaluate(
        multiclass_model, multiclass_data, target="y", features=FEATURES, latency=False
    )
    regression = evaluate(
        regression_model, regression_data, target="y", features=FEATURES, latency=False
    )
    names = {"roc.svg", "pr.svg", "confusion.svg", "calibration.svg"}
    assert set(binary.plots) == names and set(multi.plots) == names
    assert set(regression.plots) == {"residuals.svg", "predicted_vs_actual.svg"}
    for result in (binary, multi, regression):
        for name, text in result.plots.items():
            root = ET.fromstring(text)
            assert root.tag == "{http://www.w3.org/2000/svg}svg", name
            assert root.find("{http://www.w3.org/2000/svg}title") is not None
            assert "href" not in text and "<script" not in text
            assert len(text) < 120_000, name
    assert (
        "cat" in multi.plots["confusion.svg"] and "false positive rate" in binary.plots["roc.svg"]
    )


def test_labels_are_escaped_in_plots(binary_data: pd.DataFrame) -> None:
    import xml.etree.ElementTree as ET

    data = binary_data.assign(y=np.where(binary_data["y"] == 1, "<a&b>", 'x"y'))
    result = evaluate(Constant("<a&b>"), data, target="y", latency=False)
    ET.fromstring(result.plots["confusion.svg"])
    assert "&lt;a&amp;b&gt;" in result.plots["confusion.svg"]


# --- digest and JSON form --------------------------------------------------------------------


def test_data_digest_ignores_row_and_column_order_but_not_values(
    binary_data: pd.DataFrame,
) -> None:
    digest = data_digest(binary_data)
    shuffled = binary_data.sample(frac=1.0, random_state=0)
    assert data_digest(shuffled) == digest
    assert data_digest(binary_data[binary_data.columns[::-1]]) == digest
    changed = binary_data.copy()
    changed.loc[3, "f0"] += 1e-9
    assert data_digest(changed) != digest
    assert data_digest(binary_data.iloc[:-1]) != digest
    assert data_digest(binary_data.rename(columns={"f0": "g0"})) != digest


def test_to_dict_is_strict_json_and_round_trips(
    binary_data: pd.DataFrame, binary_model: Any
) -> None:
    result = evaluate(
        binary_model,
        binary_data,
        target="y",
        features=FEATURES,
        slices=["country"],
        importance=True,
        n_repeats=2,
        latency_calls=3,
    )
    text = json.dumps(result.to_dict(), allow_nan=False)
    back = EvaluationResult.from_dict(json.loads(text))
    assert back == result
    assert back.metric("roc_auc") == result.metrics["roc_auc"]
    assert EvaluationResult.from_dict(result.to_dict(include_plots=False)).plots == {}


def test_non_finite_values_are_encoded(binary_data: pd.DataFrame) -> None:
    result = evaluate(Constant(1), binary_data, target="y", task="classification", latency=False)
    weird = EvaluationResult(
        **{**result.__dict__, "metrics": {"a": float("nan"), "b": float("inf")}}
    )
    raw = weird.to_dict()
    assert raw["metrics"] == {"a": None, "b": "inf"}
    json.dumps(raw, allow_nan=False)
    back = EvaluationResult.from_dict(raw)
    assert np.isnan(back.metrics["a"]) and back.metrics["b"] == float("inf")


@pytest.mark.parametrize(
    "raw",
    [[], {"task": "ranking"}, {"format": "other"}, {"task": "regression", "target": "y"}],
)
def test_malformed_results_are_refused(raw: Any) -> None:
    with pytest.raises(InvalidInput):
        EvaluationResult.from_dict(raw)


def test_importing_mloop_evaluation_does_not_import_sklearn_or_models() -> None:
    code = (
        "import sys, mloop.evaluation; "
        "print(any(m.split('.')[0] in ('sklearn', 'scipy') for m in sys.modules), "
        "'mloop.models' in sys.modules)"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.split() == ["False", "False"]


def test_features_default_to_the_columns_the_model_declares(
    binary_data: pd.DataFrame, binary_model: Any
) -> None:
    class Strict:
        """Like mloop's LoadedModel: declares its inputs and refuses extra columns."""

        input_columns = FEATURES
        digest = "ab" * 32

        def __init__(self, inner: Any) -> None:
            self.raw = inner

        def predict(self, data: pd.DataFrame) -> Any:
            if list(data.columns) != FEATURES:
                raise InvalidInput(f"unexpected columns {list(data.columns)}")
            return self.raw.predict(data)

        def predict_proba(self, data: pd.DataFrame) -> Any:
            return self.raw.predict_proba(self.raw_frame(data))

        def raw_frame(self, data: pd.DataFrame) -> pd.DataFrame:
            return data[FEATURES]

    result = evaluate(
        Strict(binary_model),
        binary_data,
        target="y",
        slices=["country"],
        latency=False,
        plots=False,
    )
    assert result.features == FEATURES and "roc_auc" in result.metrics
    everything = evaluate(
        Wrapped(binary_model), binary_data, target="y", latency=False, plots=False
    )
    assert everything.features == [*FEATURES, "country"]


def test_positive_label_of_another_type_is_refused(binary_data: pd.DataFrame) -> None:
    with pytest.raises(InvalidInput, match="positive_label 'yes' is not one of the classes"):
        evaluate(
            Constant(1),
            binary_data,
            target="y",
            task="classification",
            positive_label="yes",
            latency=False,
        )
    flipped = evaluate(
        Constant(1), binary_data, target="y", task="classification", positive_label=0, latency=False
    )
    assert flipped.positive_label == 0 and flipped.metrics["selection_rate"] == 0.0


def test_flat_metrics_name_every_finite_number(
    binary_data: pd.DataFrame, binary_model: Any
) -> None:
    result = evaluate(
        binary_model,
        binary_data,
        target="y",
        features=FEATURES,
        slices=["country"],
        importance=True,
        n_repeats=1,
        latency_calls=2,
        plots=False,
    )
    flat = result.flat_metrics(prefix="eval/")
    assert flat["eval/roc_auc"] == result.metrics["roc_auc"]
    assert "eval/fairness/country/demographic_parity_difference" in flat
    assert "eval/slice/country=fr/recall" in flat and "eval/latency/p99_ms" in flat
    assert "eval/importance/f0" in flat
    assert all(np.isfinite(v) for v in flat.values())


def test_importance_on_probability_metrics(binary_data: pd.DataFrame, binary_model: Any) -> None:
    result = evaluate(
        binary_model,
        binary_data,
        target="y",
        features=FEATURES,
        importance=True,
        importance_metric="log_loss",
        n_repeats=2,
        latency=False,
        plots=False,
    )
    assert result.importance is not None
    assert max(v.mean for v in result.importance.values()) > 0
    with pytest.raises(InvalidInput, match="needs probabilities"):
        evaluate(
            LabelsOnly(binary_model),
            binary_data,
            target="y",
            task="classification",
            importance=True,
            importance_metric="roc_auc",
            latency=False,
        )


def test_mixed_type_slice_values_are_grouped(binary_data: pd.DataFrame) -> None:
    mixed = np.where(binary_data.index % 3 == 0, "web", None).astype(object)
    mixed[1::3] = 7
    data = binary_data.assign(channel=mixed)
    result = evaluate(
        Constant(1), data, target="y", task="classification", slices=["channel"], latency=False
    )
    assert sorted(map(str, (s.value for s in result.slices["channel"]))) == ["7", "None", "web"]


def test_latency_is_noted_when_single_rows_fail(binary_data: pd.DataFrame) -> None:
    class BatchOnly(Constant):
        def predict(self, data: pd.DataFrame) -> Any:
            if len(data) < 2:
                raise ValueError("needs a batch")
            return super().predict(data)

    result = evaluate(BatchOnly(1), binary_data, target="y", task="classification")
    assert result.latency is None
    assert any(n.startswith("latency not measured") for n in result.notes)


def test_html_report_is_self_contained_and_escaped(
    binary_data: pd.DataFrame, binary_model: Any, tmp_path: Any
) -> None:
    from mloop.evaluation import Gate, save_html, to_html

    data = binary_data.assign(country=np.where(binary_data["country"] == "fr", "<fr>", "de"))
    result = evaluate(
        binary_model,
        data,
        target="y",
        features=FEATURES,
        slices=["country"],
        importance=True,
        n_repeats=1,
        latency_calls=2,
    )
    decision = Gate(min={"roc_auc": 0.99}).check(result)
    page = to_html(result, decision)
    assert "&lt;fr&gt;" in page and "<fr>" not in page
    assert "<script" not in page and "http://" not in page.replace("http://www.w3.org", "")
    assert "FAILED" in page and page.count("data:image/svg+xml;base64,") == len(result.plots)
    save_html(result, tmp_path / "eval.html")
    assert (tmp_path / "eval.html").read_text(encoding="utf-8").startswith("<!DOCTYPE html>")
