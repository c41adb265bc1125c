"""Small fitted models and data sets shared by the evaluation tests."""

from __future__ import annotations

from typing import Any

import numpy as np
import pandas as pd
import pytest

FEATURES = ["f0", "f1", "f2", "f3"]


@pytest.fixture(scope="session")
def binary_data() -> pd.DataFrame:
    """600 rows: four features, a two-valued slice column, a 0/1 target."""
    from sklearn.datasets import make_classification

    x, y = make_classification(
        n_samples=600, n_features=4, n_informative=3, n_redundant=0, random_state=0
    )
    frame = pd.DataFrame(x, columns=FEATURES)
    frame["country"] = np.where(np.arange(600) % 3 == 0, "fr", "de")
    frame["y"] = y
    return frame


@pytest.fixture(scope="session")
def binary_model(binary_data: pd.DataFrame) -> Any:
    from sklearn.linear_model import LogisticRegression

    return LogisticRegression().fit(binary_data[FEATURES], binary_data["y"])


@pytest.fixture(scope="session")
def multiclass_data() -> pd.DataFrame:
    from sklearn.datasets import make_classification

    x, y = make_classification(
        n_samples=600, n_features=4, n_informative=3, n_redundant=0, n_classes=3, random_state=1
    )
    frame = pd.DataFrame(x, columns=FEATURES)
    frame["segment"] = np.array(["a", "b", "c"])[np.arange(600) % 3]
    frame["y"] = np.array(["cat", "dog", "eel"])[y]
    return frame


@pytest.fixture(scope="session")
def multiclass_model(multiclass_data: pd.DataFrame) -> Any:
    from sklearn.linear_model import LogisticRegression

    return LogisticRegression().fit(multiclass_data[FEATURES], multiclass_data["y"])


@pytest.fixture(scope="session")
def regression_data() -> pd.DataFrame:
    from sklearn.datasets import make_regression

    x, y = make_regression(n_samples=400, n_features=4, noise=5.0, random_state=2)
    frame = pd.DataFrame(x, columns=FEATURES)
    frame["region"] = np.where(np.arange(400) % 2 == 0, "north", "south")
    frame["y"] = y + 100.0
    return frame


@pytest.fixture(scope="session")
def regression_model(regression_data: pd.DataFrame) -> Any:
    from sklearn.linear_model import Ridge

    return Ridge().fit(regression_data[FEATURES], regression_data["y"])


class LabelsOnly:
    """A duck-typed classifier with predict only: wraps a fitted estimator."""

    def __init__(self, inner: Any) -> None:
        self.inner = inner

    def predict(self, data: pd.DataFrame) -> Any:
        return self.inner.predict(data[FEATURES])


class Wrapped:
    """A duck-typed model like mloop's LoadedModel: predict and predict_proba over DataFrames."""

    def __init__(self, inner: Any, *, proba_frame: bool = False) -> None:
        self.inner = inner
        self.proba_frame = proba_frame

    def predict(self, data: pd.DataFrame) -> Any:
        return pd.Series(self.inner.predict(data[FEATURES]))

    def predict_proba(self, data: pd.DataFrame) -> Any:
        proba = self.inner.predict_proba(data[FEATURES])
        if self.proba_frame:
            # columns deliberately reversed: evaluate() must align them by name
            frame = pd.DataFrame(proba, columns=list(self.inner.classes_))
            return frame[frame.columns[::-1]]
        return proba
