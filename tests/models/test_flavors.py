"""XGBoost, LightGBM and ONNX round trips; detection; a missing optional library."""

from __future__ import annotations

import sys
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from mloop.errors import InvalidInput, InvalidState, MissingExtra
from mloop.models import detect_flavor, load_model, read_manifest, save_model


def test_xgboost_classifier_round_trip(
    tmp_path: Path, frame: pd.DataFrame, labels: np.ndarray
) -> None:
    xgb = pytest.importorskip("xgboost")
    model = xgb.XGBClassifier(n_estimators=5, max_depth=2).fit(frame, labels)
    manifest = save_model(model, tmp_path / "p", input_example=frame.head(3))
    assert manifest.flavor == "xgboost"
    assert set(manifest.files) >= {"model.xgb.json"}
    loaded = load_model(tmp_path / "p")
    np.testing.assert_array_equal(loaded.predict(frame), model.predict(frame))
    np.testing.assert_allclose(loaded.predict_proba(frame), model.predict_proba(frame))
    assert type(loaded.raw).__name__ == "XGBClassifier"


def test_xgboost_booster_on_arrays(tmp_path: Path, frame: pd.DataFrame) -> None:
    xgb = pytest.importorskip("xgboost")
    X = frame.to_numpy()
    booster = xgb.train({"max_depth": 2}, xgb.DMatrix(X, label=X[:, 2]), num_boost_round=3)
    save_model(booster, tmp_path / "p", input_example=X[:2])
    loaded = load_model(tmp_path / "p")
    assert loaded.signature is not None and loaded.signature.is_tensor
    np.testing.assert_allclose(loaded.predict(X), booster.predict(xgb.DMatrix(X)))
    with pytest.raises(InvalidState, match=r"no predict_proba"):
        loaded.predict_proba(X)
    with pytest.raises(InvalidInput, match=r"dimension 1 must be 3, got 2"):
        loaded.predict(X[:, :2])


def test_lightgbm_classifier_round_trip(
    tmp_path: Path, frame: pd.DataFrame, labels: np.ndarray
) -> None:
    lgb = pytest.importorskip("lightgbm")
    model = lgb.LGBMClassifier(n_estimators=5, min_child_samples=5, verbose=-1)
    model.fit(frame, np.where(labels == 1, "fraud", "ok"))
    manifest = save_model(model, tmp_path / "p", input_example=frame.head(3))
    assert manifest.flavor == "lightgbm"
    assert manifest.flavor_config["classes"] == ["fraud", "ok"]
    loaded = load_model(tmp_path / "p")
    np.testing.assert_array_equal(loaded.predict(frame), model.predict(frame))
    np.testing.assert_allclose(loaded.predict_proba(frame), model.predict_proba(frame))


def test_lightgbm_regressor_on_arrays(tmp_path: Path, frame: pd.DataFrame) -> None:
    lgb = pytest.importorskip("lightgbm")
    X, y = frame.to_numpy(), frame["score"].to_numpy()
    model = lgb.LGBMRegressor(n_estimators=5, min_child_samples=5, verbose=-1).fit(X, y)
    save_model(model, tmp_path / "p", input_example=X[:2])
    loaded = load_model(tmp_path / "p")
    np.testing.assert_allclose(loaded.predict(X), model.predict(X))
    assert not loaded.has_proba


def test_onnx_from_skl2onnx(tmp_path: Path, frame: pd.DataFrame, labels: np.ndarray) -> None:
    pytest.importorskip("onnxruntime")
    skl2onnx = pytest.importorskip("skl2onnx")
    from sklearn.linear_model import LogisticRegression

    X = frame.to_numpy().astype("float32")
    clf = LogisticRegression().fit(X, labels)
    proto = skl2onnx.to_onnx(clf, X[:1], options={"zipmap": False})
    manifest = save_model(proto, tmp_path / "p", input_example=X[:3])
    assert manifest.flavor == "onnx"
    loaded = load_model(tmp_path / "p")
    np.testing.assert_array_equal(loaded.predict(X), clf.predict(X))
    np.testing.assert_allclose(loaded.predict_proba(X), clf.predict_proba(X), atol=1e-5)
    # float64 input is narrowed to the model's float32; bad shapes name the tensor.
    np.testing.assert_array_equal(loaded.predict(frame.to_numpy()), clf.predict(X))
    with pytest.raises(InvalidInput, match=r"dimension 1 must be 3"):
        loaded.predict(np.zeros((1, 5), dtype="float32"))


def test_onnx_built_with_helper_and_column_signature(tmp_path: Path, frame: pd.DataFrame) -> None:
    pytest.importorskip("onnxruntime")
    onnx = pytest.importorskip("onnx")
    from onnx import TensorProto, helper

    weights = helper.make_tensor("w", TensorProto.DOUBLE, [3, 1], [1.0, 0.0, 0.0])
    graph = helper.make_graph(
        [helper.make_node("MatMul", ["x", "w"], ["y"])],
        "pick_amount",
        [helper.make_tensor_value_info("x", TensorProto.DOUBLE, [None, 3])],
        [helper.make_tensor_value_info("y", TensorProto.DOUBLE, [None, 1])],
        initializer=[weights],
    )
    proto = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)])
    proto.ir_version = 8
    save_model(proto, tmp_path / "p", input_example=frame.head(2))
    loaded = load_model(tmp_path / "p")
    out = loaded.predict(frame.head(4).to_dict("records"))
    np.testing.assert_allclose(out[:, 0], frame["amount"].head(4))
    assert not loaded.has_proba
    assert isinstance(onnx.load(str(tmp_path / "p" / "model.onnx")), onnx.ModelProto)


def test_onnx_flavor_refuses_other_objects(tmp_path: Path) -> None:
    pytest.importorskip("onnx")
    with pytest.raises(InvalidInput, match=r"onnx.ModelProto"):
        save_model(object(), tmp_path / "p", flavor="onnx")


def test_detect_flavor() -> None:
    from sklearn.linear_model import LinearRegression

    from mloop.models import PythonModel

    assert detect_flavor(LinearRegression()) == "sklearn"
    assert detect_flavor(PythonModel()) == "pyfunc"
    with pytest.raises(InvalidInput, match=r"cannot tell which flavor"):
        detect_flavor(object())


def test_missing_library_names_the_extra(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, frame: pd.DataFrame, labels: np.ndarray
) -> None:
    xgb = pytest.importorskip("xgboost")
    model = xgb.XGBClassifier(n_estimators=2).fit(frame, labels)
    save_model(model, tmp_path / "ok")
    monkeypatch.setitem(sys.modules, "xgboost", None)  # as if it were not installed
    with pytest.raises(MissingExtra, match=r"pip install 'mloop\[xgboost\]'"):
        save_model(model, tmp_path / "p")
    assert not (tmp_path / "p").exists()
    with pytest.raises(MissingExtra, match=r"mloop\[xgboost\]"):
        load_model(tmp_path / "ok")
    assert read_manifest(tmp_path / "ok").flavor == "xgboost"


@pytest.mark.parametrize(
    ("library", "file"),
    [("xgboost", "model.xgb.json"), ("lightgbm", "model.lgb.txt"), ("onnx", "model.onnx")],
)
def test_corrupted_native_file_is_a_clear_error(
    tmp_path: Path, frame: pd.DataFrame, labels: np.ndarray, library: str, file: str
) -> None:
    from tests.models.conftest import resign

    X = frame.to_numpy().astype("float32")
    if library == "xgboost":
        model: object = pytest.importorskip("xgboost").XGBRegressor(n_estimators=2).fit(X, labels)
    elif library == "lightgbm":
        lgb = pytest.importorskip("lightgbm")
        model = lgb.LGBMRegressor(n_estimators=2, verbose=-1).fit(X, labels)
    else:
        pytest.importorskip("onnxruntime")
        from sklearn.linear_model import LinearRegression

        skl2onnx = pytest.importorskip("skl2onnx")
        model = skl2onnx.to_onnx(LinearRegression().fit(X, labels), X[:1])
    save_model(model, tmp_path / "p")
    (tmp_path / "p" / file).write_bytes(b"\x00garbage")
    resign(tmp_path / "p")
    with pytest.raises(InvalidInput, match=rf"{file} could not be loaded by") as err:
        load_model(tmp_path / "p")
    assert err.value.details["field"] == file


@pytest.mark.parametrize("n_classes", [2, 3])
def test_predict_with_proba_equals_predict_for_every_listed_classifier(n_classes: int) -> None:
    from sklearn import ensemble, linear_model, tree
    from sklearn.datasets import make_classification
    from sklearn.pipeline import make_pipeline
    from sklearn.preprocessing import StandardScaler

    from mloop.models.flavors.sklearn import _ARGMAX_OF_PROBA, SklearnFlavor

    x, y = make_classification(
        n_samples=300, n_features=6, n_informative=4, n_classes=n_classes, random_state=0
    )
    labels = np.array(["no", "yes", "maybe"])[y]
    models = [
        ensemble.HistGradientBoostingClassifier(max_iter=20),
        ensemble.RandomForestClassifier(n_estimators=10, random_state=0),
        ensemble.ExtraTreesClassifier(n_estimators=10, random_state=0),
        tree.DecisionTreeClassifier(max_depth=4),
        tree.ExtraTreeClassifier(max_depth=4),
        ensemble.GradientBoostingClassifier(n_estimators=10),
        make_pipeline(StandardScaler(), linear_model.LogisticRegression()),
    ]
    final_names = {type(m.steps[-1][1] if hasattr(m, "steps") else m).__name__ for m in models}
    assert final_names == _ARGMAX_OF_PROBA
    for model in models:
        model.fit(x, labels)
        predictor = SklearnFlavor().wrap(model, {})
        predictions, proba = predictor.predict_with_proba(x)
        assert predictions.tolist() == model.predict(x).tolist(), model
        assert np.array_equal(proba, model.predict_proba(x))
