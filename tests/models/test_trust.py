"""Trust: nothing from a package runs on load unless trusted=True, and digests come first."""

from __future__ import annotations

import os
import pickle
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pytest
from sklearn.base import BaseEstimator, RegressorMixin

from mloop.errors import DigestMismatch, Forbidden, InvalidInput
from mloop.models import PythonModel, load_model, read_manifest, save_model
from tests.models.conftest import resign


class Evil:
    """A pickle whose loading creates a marker folder: proof that code ran."""

    def __init__(self, marker: Path) -> None:
        self.marker = marker

    def __reduce__(self) -> tuple[Any, ...]:
        return (os.mkdir, (str(self.marker),))


class Doubler(PythonModel):
    def predict(self, data: Any) -> Any:
        return np.asarray(data["x"]) * 2

    def predict_proba(self, data: Any) -> Any:
        return np.column_stack([np.zeros(len(data)), np.ones(len(data))])


class Scaled(RegressorMixin, BaseEstimator):
    """A custom scikit-learn estimator: skops does not trust its type by default."""

    def __init__(self, factor: float = 2.0) -> None:
        self.factor = factor

    def fit(self, X: Any, y: Any) -> Scaled:
        self.fitted_ = True
        return self

    def predict(self, X: Any) -> Any:
        return np.asarray(X)[:, 0] * self.factor


def _pyfunc_package(tmp_path: Path) -> Path:
    save_model(Doubler(), tmp_path / "pkg", input_example=pd.DataFrame({"x": [1.0, 2.0]}))
    return tmp_path / "pkg"


def test_pyfunc_round_trip_needs_trusted(tmp_path: Path) -> None:
    pkg = _pyfunc_package(tmp_path)
    manifest = read_manifest(pkg)
    assert manifest.flavor == "pyfunc"
    with pytest.raises(Forbidden, match=r"model.pkl is a pickle.*trusted=True") as err:
        load_model(pkg)
    assert err.value.details["field"] == "model.pkl"
    model = load_model(pkg, trusted=True)
    np.testing.assert_allclose(model.predict({"x": [1, 3]}), [2.0, 6.0])
    assert model.predict_proba([{"x": 1.0}]).shape == (1, 2)


def test_malicious_pickle_is_refused_without_running(tmp_path: Path) -> None:
    pkg = _pyfunc_package(tmp_path)
    marker = tmp_path / "pwned"
    (pkg / "model.pkl").write_bytes(pickle.dumps(Evil(marker)))
    resign(pkg)  # the attacker controls the whole folder, manifest included

    with pytest.raises(Forbidden, match=r"trusted=True"):
        load_model(pkg)
    assert not marker.exists()

    # The payload is real: a caller who says trusted=True runs it.
    with pytest.raises(InvalidInput, match=r"without predict"):
        load_model(pkg, trusted=True)
    assert marker.is_dir()


def test_digest_is_checked_before_a_trusted_unpickle(tmp_path: Path) -> None:
    pkg = _pyfunc_package(tmp_path)
    marker = tmp_path / "pwned"
    (pkg / "model.pkl").write_bytes(pickle.dumps(Evil(marker)))  # manifest not re-signed
    with pytest.raises(DigestMismatch, match=r"'model.pkl'"):
        load_model(pkg, trusted=True)
    assert not marker.exists()


def test_custom_sklearn_type_must_be_declared(tmp_path: Path) -> None:
    X = np.array([[1.0], [2.0]])
    model = Scaled().fit(X, None)
    name = f"{Scaled.__module__}.Scaled"
    with pytest.raises(InvalidInput, match=f"{name}.*trusted_types") as err:
        save_model(model, tmp_path / "p", input_example=X)
    assert err.value.details["field"] == "trusted_types"
    assert not (tmp_path / "p").exists()

    manifest = save_model(model, tmp_path / "p", input_example=X, trusted_types=[name])
    assert name in manifest.flavor_config["trusted_types"]
    np.testing.assert_allclose(load_model(tmp_path / "p").predict(X), [2.0, 4.0])


def test_skops_file_with_undeclared_type_is_refused(tmp_path: Path) -> None:
    import skops.io as sio
    from sklearn.linear_model import LinearRegression

    X = np.array([[1.0], [2.0]])
    save_model(LinearRegression().fit(X, [1.0, 2.0]), tmp_path / "p")
    # Swap in a file holding a type nobody declared, and re-sign the manifest.
    (tmp_path / "p" / "model.skops").write_bytes(sio.dumps(Scaled().fit(X, None)))
    resign(tmp_path / "p")
    with pytest.raises(Forbidden, match=r"Scaled.*trusted=True") as err:
        load_model(tmp_path / "p")
    assert err.value.details["field"] == "model.skops"
    assert load_model(tmp_path / "p", trusted=True).predict(X).tolist() == [2.0, 4.0]


def test_declared_dangerous_types_are_still_refused(tmp_path: Path) -> None:
    import json
    import os

    import skops.io as sio
    from sklearn.linear_model import LinearRegression
    from sklearn.preprocessing import FunctionTransformer

    X = np.array([[1.0], [2.0]])
    save_model(LinearRegression().fit(X, [1.0, 2.0]), tmp_path / "p")
    # An attacker swaps in a transformer that calls os.system and declares the type.
    (tmp_path / "p" / "model.skops").write_bytes(sio.dumps(FunctionTransformer(func=os.system)))
    path = tmp_path / "p" / "mloop-model.json"
    data = json.loads(path.read_text())
    data["flavor_config"]["trusted_types"] = ["posix.system", "nt.system", "builtins.eval"]
    path.write_text(json.dumps(data))
    resign(tmp_path / "p")
    with pytest.raises(Forbidden, match=r"\.system"):
        load_model(tmp_path / "p")


def test_skops_save_refuses_objects_that_run_code(tmp_path: Path) -> None:
    from sklearn.preprocessing import FunctionTransformer

    model = FunctionTransformer(func=eval).fit([[1.0]])
    with pytest.raises(InvalidInput, match=r"builtins.eval"):
        save_model(model, tmp_path / "p", flavor="sklearn", trusted_types=["builtins.eval"])
    assert not (tmp_path / "p").exists()
