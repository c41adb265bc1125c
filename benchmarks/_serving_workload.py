"""The serving benchmark's model and payloads, the same for both tools (fixed seeds).

Imported by the orchestrator (mloop's environment) and by the MLflow worker (MLflow's
virtualenv); NumPy, pandas and scikit-learn are imported only inside the functions that need
them, and both environments have the same versions of them.
"""

from __future__ import annotations

from typing import Any

SEED = 0
N_SAMPLES = 20_000
N_FEATURES = 20
COLUMNS = [f"f{i}" for i in range(N_FEATURES)]
MODEL_NAME = "bench-hgb"
ALIAS = "champion"

#: How many distinct request bodies of each size the load generator sends in turn.
N_BODIES = 32
#: The one type of the model that skops does not trust by default; both tools are told to trust
#: it (the model is trained by the benchmark itself).
TRUSTED_TYPES = ["sklearn.ensemble._hist_gradient_boosting.predictor.TreePredictor"]
#: Rows in the input example stored with the model.
EXAMPLE_ROWS = 5


def training_data() -> tuple[Any, Any]:
    """``make_classification(n_samples=20000, n_features=20)`` with the benchmark's seed."""
    from sklearn.datasets import make_classification

    x, y = make_classification(n_samples=N_SAMPLES, n_features=N_FEATURES, random_state=SEED)
    return x, y


def train() -> Any:
    """The served model: a HistGradientBoostingClassifier fitted on :func:`training_data`."""
    from sklearn.ensemble import HistGradientBoostingClassifier

    x, y = training_data()
    return HistGradientBoostingClassifier(random_state=SEED).fit(as_frame(x), y)


def as_frame(x: Any) -> Any:
    """Rows as a DataFrame with the columns f0..f19."""
    import pandas as pd

    return pd.DataFrame(x, columns=COLUMNS)


def input_example() -> Any:
    """The input example stored with the model: the first rows as a DataFrame."""
    x, _ = training_data()
    return as_frame(x[:EXAMPLE_ROWS])


def payloads(rows: int) -> list[dict[str, Any]]:
    """``N_BODIES`` MLflow ``dataframe_split`` bodies of ``rows`` rows each, of training rows
    picked at random (fixed seed), no row twice."""
    import numpy as np

    x, _ = training_data()
    picked = x[np.random.default_rng(SEED + 1).permutation(len(x))[: N_BODIES * rows]]
    return [
        {
            "dataframe_split": {
                "columns": COLUMNS,
                "data": picked[i * rows : (i + 1) * rows].tolist(),
            }
        }
        for i in range(N_BODIES)
    ]
