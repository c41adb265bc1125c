"""Prometheus metrics of a model server: requests, errors, latency, batches, queue, predictions.

Each server owns a registry (so tests and several apps in one process never share counters).
With ``--workers N`` the workers are separate processes; the parent sets
``PROMETHEUS_MULTIPROC_DIR`` before they start, and ``/metrics`` then aggregates every worker's
files (prometheus-client's multiprocess mode).
"""

from __future__ import annotations

import os
from typing import Any

import numpy as np

__all__ = ["ServerMetrics"]

_LATENCY_BUCKETS = (
    0.0005, 0.001, 0.002, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0,
)  # fmt: skip
_BATCH_BUCKETS = (1, 2, 4, 8, 16, 32, 64, 128, 256, 512, 1024, 4096)
_VALUE_BUCKETS = (-1e3, -1e2, -10, -1, 0, 0.1, 0.25, 0.5, 0.75, 0.9, 1, 10, 1e2, 1e3, 1e4)
# Distinct predicted values counted by label before they are lumped as "other" (bounded series).
_MAX_CLASSES = 50


class ServerMetrics:
    """The metrics one server exports at ``/metrics``."""

    def __init__(self, deployment: str) -> None:
        from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram

        self.deployment = deployment
        self.multiprocess = bool(os.environ.get("PROMETHEUS_MULTIPROC_DIR"))
        self.registry = CollectorRegistry(auto_describe=True)
        registry = self.registry
        self.requests = Counter(
            "mloop_requests",
            "Requests answered, by protocol, model version and HTTP status.",
            ["deployment", "protocol", "model_version", "status"],
            registry=registry,
        )
        self.errors = Counter(
            "mloop_request_errors",
            "Requests answered with an error, by error code.",
            ["deployment", "protocol", "code"],
            registry=registry,
        )
        self.latency = Histogram(
            "mloop_request_latency_seconds",
            "Time from a request's arrival to its answer.",
            ["deployment", "protocol", "model_version"],
            buckets=_LATENCY_BUCKETS,
            registry=registry,
        )
        self.batch_size = Histogram(
            "mloop_batch_size_rows",
            "Rows per predict call.",
            ["deployment", "model_version"],
            buckets=_BATCH_BUCKETS,
            registry=registry,
        )
        self.queue_depth = Gauge(
            "mloop_queue_depth_rows",
            "Rows waiting for a model.",
            ["deployment", "model_version"],
            multiprocess_mode="livesum",
            registry=registry,
        )
        self.predicted_class = Counter(
            "mloop_predictions",
            "Predicted rows by predicted value (classifiers; values past 50 distinct are 'other').",
            ["deployment", "model_version", "role", "value"],
            registry=registry,
        )
        self.predicted_value = Histogram(
            "mloop_prediction_value",
            "Distribution of numeric predictions (regressors).",
            ["deployment", "model_version", "role"],
            buckets=_VALUE_BUCKETS,
            registry=registry,
        )
        self.log_dropped = Counter(
            "mloop_prediction_log_dropped_rows",
            "Prediction rows not logged because the log's buffer was full.",
            ["deployment"],
            registry=registry,
        )
        self._seen_values: set[str] = set()

    def observe_request(
        self, protocol: str, version: int | None, status: int, seconds: float
    ) -> None:
        """Count one answered request and its latency."""
        v = "" if version is None else str(version)
        self.requests.labels(self.deployment, protocol, v, str(status)).inc()
        self.latency.labels(self.deployment, protocol, v).observe(seconds)

    def observe_error(self, protocol: str, code: str) -> None:
        """Count one error answer by its code."""
        self.errors.labels(self.deployment, protocol, code).inc()

    def observe_batch(self, version: int, rows: int, queued: int) -> None:
        """Record one predict call's size and the queue left behind."""
        v = str(version)
        self.batch_size.labels(self.deployment, v).observe(rows)
        self.queue_depth.labels(self.deployment, v).set(queued)

    def observe_predictions(self, version: int, role: str, predictions: Any) -> None:
        """Count the predicted values (classes) or bucket them (numbers)."""
        values = np.asarray(predictions)
        if values.ndim != 1 or values.size == 0:
            return
        v = str(version)
        if values.dtype.kind == "f":
            hist = self.predicted_value.labels(self.deployment, v, role)
            for value in values.tolist():
                hist.observe(value)
            return
        uniques, counts = np.unique(values, return_counts=True)
        for value, count in zip(uniques.tolist(), counts.tolist(), strict=True):
            label = str(value)
            if label not in self._seen_values:
                if len(self._seen_values) >= _MAX_CLASSES:
                    label = "other"
                else:
                    self._seen_values.add(label)
            self.predicted_class.labels(self.deployment, v, role, label).inc(count)

    def render(self) -> tuple[bytes, str]:
        """The exposition text and its content type (every worker's, in multiprocess mode)."""
        from prometheus_client import CONTENT_TYPE_LATEST, CollectorRegistry, generate_latest

        if self.multiprocess:
            from prometheus_client import multiprocess

            registry = CollectorRegistry()
            multiprocess.MultiProcessCollector(registry)  # type: ignore[no-untyped-call]
            return generate_latest(registry), CONTENT_TYPE_LATEST
        return generate_latest(self.registry), CONTENT_TYPE_LATEST
