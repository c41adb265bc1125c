"""A monitored deployment for the tests: 25 float features, a logistic regression trained on a
registered reference (logged as the run's training input), served by deployment ``fraud-api``,
and a writer of prediction-log windows with chosen timestamps, shift and labels."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np
import pandas as pd
from sklearn.linear_model import LogisticRegression

from mloop.serving.predlog import PredictionBatch, PredictionLog
from mloop.tracking import TrackingClient

T0 = 1_763_906_400_000  # 2025-11-23 14:00:00 UTC, an hour boundary
HOUR = 3_600_000
DEP = "fraud-api"
FEATURES = [f"f{i:02d}" for i in range(25)]


def sample(n: int, seed: int, shift: float = 0.0, shifted: int = 25) -> pd.DataFrame:
    """``n`` rows of the features (the first ``shifted`` moved by ``shift`` std) and a label."""
    rng = np.random.default_rng(seed)
    x = rng.normal(size=(n, len(FEATURES)))
    x[:, :shifted] += shift
    frame = pd.DataFrame(x, columns=FEATURES)
    logit = 1.5 * frame["f00"] - 1.0 * frame["f01"] + 0.5 * frame["f02"]
    frame["label"] = (logit + rng.logistic(size=n) > 0).astype(np.int64)
    return frame


@dataclass
class Scenario:
    """The deployment, its model and a client."""

    client: TrackingClient
    model: LogisticRegression
    reference: str

    def log(
        self,
        start_ms: int,
        windows: int,
        rows: int,
        *,
        window_ms: int = HOUR,
        shift: float = 0.0,
        shifted: int = 25,
        seed: int = 1,
        labels: bool = False,
        flip_labels: bool = False,
        per_request: int = 50,
    ) -> None:
        """Log ``windows`` windows of ``rows`` rows from ``start_ms`` (requests of
        ``per_request`` rows spread over each window), with labels when asked."""
        log = PredictionLog(DEP, client=self.client, flush_rows=10**6, max_buffer_rows=10**7)
        sent: list[tuple[str, list[Any]]] = []
        counter = 0
        for w in range(windows):
            frame = sample(rows, seed + w, shift, shifted)
            x = frame[FEATURES]
            proba = self.model.predict_proba(x)
            predictions = self.model.predict(x)
            requests = rows // per_request
            starts = start_ms + w * window_ms + np.arange(requests) * (window_ms // requests)
            ids = []
            for ts in starts:
                ids.append(f"{int(ts):013d}{counter:016x}")
                counter += 1
            log.append(
                PredictionBatch(
                    model_version=1, role="primary", request_ids=ids,
                    row_counts=[per_request] * requests, ts_ms=[int(t) for t in starts],
                    latency_ms=[1.0] * requests, inputs=x, predictions=predictions,
                    probabilities=proba, classes=[0, 1],
                )
            )  # fmt: skip
            if labels:
                y = frame["label"].to_numpy()
                if flip_labels:
                    y = 1 - y
                for i, request_id in enumerate(ids):
                    sent.append((request_id, y[i * per_request : (i + 1) * per_request].tolist()))
        log.flush()
        for request_id, values in sent:
            log.append_feedback(request_id, values)
        log.close()


def make_scenario(client: TrackingClient, reference_rows: int = 5000) -> Scenario:
    """Register the reference, train and register the model, deploy it."""
    from mloop import data, registry
    from mloop.serving import create_deployment

    frame = sample(reference_rows, seed=0)
    version = data.register("transactions", frame, client=client)
    with client.start_run(experiment="monitoring") as run:
        run.log_input(version, context="training")
        model = LogisticRegression().fit(frame[FEATURES], frame["label"])
        run.log_model(model, "fraud", input_example=frame[FEATURES][:5])
    registry.set_alias("fraud", "champion", 1, client=client)
    create_deployment(DEP, "fraud@champion", client=client)
    return Scenario(client, model, version.ref)
