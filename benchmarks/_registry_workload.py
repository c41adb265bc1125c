"""The registry benchmark's work: the same models, names, aliases and sizes for every tool.

Imported by the mloop worker and by the MLflow worker alike (both environments have NumPy and
scikit-learn), so both tools register the same N trained models (a LogisticRegression fitted
with a different ``C`` each: N distinct models of the same size) and move and resolve the same
alias in the same order.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

#: The model whose versions are timed.
MODEL_NAME = "bench-classifier"
#: MLflow only: the same logged models registered a second time through ``mlflow.register_model``.
MODEL_NAME_FLUENT = "bench-classifier-fluent"
#: Logged and registered in one call (package, store, register), in the "log_model" phase.
MODEL_NAME_LOGGED = "bench-classifier-logged"
#: Registered, aliased, resolved and downloaded once before any timer starts.
WARMUP_NAME = "warmup-classifier"
ALIAS = "champion"
EXPERIMENT = "registry-bench"

#: The timed phases, in the order each worker runs them (each needs the one before).
PHASES = ("register", "alias", "resolve", "download", "log_model")

N_FEATURES = 8
N_ROWS = 400


@dataclass(frozen=True)
class Sizes:
    """How much work each phase does."""

    versions: int = 500
    alias_moves: int = 2_000
    resolves: int = 2_000
    downloads: int = 200
    logged_models: int = 100


FULL = Sizes()
QUICK = Sizes(versions=10, alias_moves=50, resolves=50, downloads=5, logged_models=5)


def sizes_from(spec: dict[str, Any]) -> Sizes:
    """The Sizes a worker was asked to use."""
    return Sizes(**spec["sizes"])


def training_data() -> tuple[Any, Any]:
    """A fixed binary classification problem (NumPy, seeded)."""
    import numpy as np

    rng = np.random.default_rng(20261123)
    x = rng.normal(size=(N_ROWS, N_FEATURES))
    weights = rng.normal(size=N_FEATURES)
    y = (x @ weights + rng.normal(scale=0.5, size=N_ROWS) > 0).astype(int)
    return x, y


def train(i: int, x: Any, y: Any) -> Any:
    """Model number ``i``: a LogisticRegression with its own ``C``, so every version differs."""
    from sklearn.linear_model import LogisticRegression

    return LogisticRegression(C=0.01 * (i + 1), max_iter=500).fit(x, y)


def input_example(x: Any) -> Any:
    """The input example both tools package with every model."""
    return x[:5]


def alias_target(i: int, versions: int) -> int:
    """The version the ``i``-th alias move points at: a different one each move."""
    return i % versions + 1


def timings(times: list[float]) -> dict[str, float]:
    """Total, rate and per-operation median and 95th percentile of a list of seconds."""
    ordered = sorted(times)
    total = sum(times)
    return {
        "ops": len(times),
        "seconds": total,
        "rate": len(times) / total,
        "median_ms": ordered[len(ordered) // 2] * 1000,
        "p95_ms": ordered[min(len(ordered) - 1, int(len(ordered) * 0.95))] * 1000,
    }


def folder_summary(folder: Any) -> dict[str, int]:
    """How many files and bytes a downloaded model folder holds."""
    from pathlib import Path

    files = [p for p in Path(folder).rglob("*") if p.is_file()]
    return {"files": len(files), "bytes": sum(p.stat().st_size for p in files)}
