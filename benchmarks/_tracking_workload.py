"""The tracking benchmark's data: the same runs, points and query for every tool.

Standard library only, imported by the mloop worker and by the MLflow worker alike, so both tools
store byte-for-byte the same values and the search must return the same runs in the same order.
"""

from __future__ import annotations

import random
from dataclasses import dataclass
from typing import Any

METRIC_KEYS = ("loss", "acc", "val_loss", "val_acc", "lr_now")
LR_VALUES = ("0.01", "0.1", "0.001")
SEARCH_FILTER = "metrics.acc > 0.5 and params.lr = '0.01'"
SEARCH_ORDER_BY = ("metrics.acc DESC",)
SEARCH_MAX_RESULTS = 100

EXPERIMENT_LOGGING = "bench"
EXPERIMENT_RUNS = "bench-runs"
EXPERIMENT_WARMUP = "warmup"

#: Marker the run-creation worker leaves once all runs of EXPERIMENT_RUNS are stored.
RUNS_READY = "runs-ready.json"


@dataclass(frozen=True)
class Sizes:
    """How much work each workload does."""

    log_runs: int = 10
    log_steps: int = 1_000
    batch_points: int = 1_000
    create_runs: int = 5_000
    search_repeats: int = 20
    memory_points: int = 1_000_000

    @property
    def log_points(self) -> int:
        """Points per logging workload (per-call and batched log the same points)."""
        return self.log_runs * len(METRIC_KEYS) * self.log_steps


FULL = Sizes()
QUICK = Sizes(log_runs=2, log_steps=200, create_runs=300, search_repeats=5, memory_points=100_000)


def sizes_from(spec: dict[str, Any]) -> Sizes:
    """The Sizes a worker was asked to use."""
    return Sizes(**spec["sizes"])


def point_value(key_index: int, step: int) -> float:
    """The value of metric ``key_index`` at ``step``: cheap and the same everywhere."""
    return 1.0 / (1.0 + step) + key_index * 0.125


@dataclass(frozen=True)
class RunRecord:
    """What run number ``i`` of the run-creation workload logs."""

    name: str
    params: dict[str, str]
    metrics: dict[str, float]
    tags: dict[str, str]


def run_record(i: int) -> RunRecord:
    """Run ``i``: 5 params (lr from a few values), 3 metrics (acc uniform in [0, 1)), 2 tags."""
    rng = random.Random(1_000_003 * i + 17)
    return RunRecord(
        name=f"run-{i:05d}",
        params={
            "lr": rng.choice(LR_VALUES),
            "batch_size": str(rng.choice((16, 32, 64, 128))),
            "optimizer": rng.choice(("sgd", "adam", "adamw")),
            "layers": str(rng.randint(1, 8)),
            "dropout": f"{rng.random() * 0.5:.3f}",
        },
        metrics={
            "acc": rng.random(),
            "loss": rng.random() * 3.0,
            "f1": rng.random(),
        },
        tags={"team": rng.choice(("vision", "nlp", "tabular")), "stage": "sweep"},
    )
