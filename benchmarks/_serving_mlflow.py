"""MLflow side of the serving benchmark: train the model and save it for `mlflow models serve`.

Runs in MLflow's virtualenv (benchmarks/.venv-mlflow). The orchestrator (serving.py) then serves
the saved folder with ``mlflow models serve -m FOLDER --env-manager local -w 1``.
"""

from __future__ import annotations

import time
from pathlib import Path
from typing import Any

from _common import worker_main
from _serving_workload import TRUSTED_TYPES, input_example, train


def prepare(spec: dict[str, Any]) -> dict[str, Any]:
    """Train the model and save it with ``mlflow.sklearn.save_model`` in its default format
    (skops), with its input example, from which MLflow infers the signature it checks requests
    against."""
    import warnings

    import mlflow.sklearn
    import sklearn

    # Its hint that the inferred output schema holds integers (the class labels) is noise here.
    warnings.filterwarnings("ignore", message="Hint: Inferred schema contains integer")

    t0 = time.perf_counter()
    model = train()
    train_seconds = time.perf_counter() - t0
    folder = Path(spec["workdir"]) / "model"
    t0 = time.perf_counter()
    mlflow.sklearn.save_model(
        model,
        str(folder),
        input_example=input_example(),
        skops_trusted_types=TRUSTED_TYPES,
        # Given, so that MLflow does not spend time inferring them; --env-manager local
        # serves from this interpreter anyway.
        pip_requirements=[f"scikit-learn=={sklearn.__version__}"],
    )
    return {
        "model_path": str(folder),
        "train_seconds": train_seconds,
        "save_seconds": time.perf_counter() - t0,
    }


if __name__ == "__main__":
    worker_main({"prepare": prepare})
