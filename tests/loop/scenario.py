"""A deployment whose fraud pattern changes: a champion trained before the change, a writer of
prediction-log rows (primary or canary, with labels) at chosen times, and monitor reports."""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import pandas as pd
from sklearn.linear_model import LogisticRegression

from mloop.serving.predlog import PredictionBatch, PredictionLog
from mloop.store.records import MonitorReport
from mloop.tracking import TrackingClient

DEP = "fraud-api"
MODEL = "fraud"
FEATURES = ["f0", "f1", "f2"]
MINUTE = 60_000


def now_ms() -> int:
    """The clock, in epoch ms."""
    return time.time_ns() // 1_000_000


def sample(n: int, seed: int, *, changed: bool) -> pd.DataFrame:
    """``n`` rows; before the change fraud follows f0, after it f1 (and f1 shifts)."""
    rng = np.random.default_rng(seed)
    x = pd.DataFrame(rng.normal(size=(n, 3)), columns=FEATURES)
    if changed:
        x["f1"] += 1.0
        logit = 3.0 * (x["f1"] - 1.0)
    else:
        logit = 3.0 * x["f0"]
    x["label"] = (logit + rng.logistic(size=n) > 0).astype(np.int64)
    return x


@dataclass
class Scenario:
    """The deployment ``fraud-api`` following ``fraud@champion`` (version 1)."""

    client: TrackingClient
    champion: LogisticRegression
    monitor: str = ""
    counter: int = field(default=0)

    def log(
        self,
        start_ms: int,
        end_ms: int,
        rows: int,
        *,
        changed: bool = True,
        version: int = 1,
        role: str = "primary",
        model: Any = None,
        labels: bool = True,
        latency_ms: float = 2.0,
        seed: int = 1,
        per_request: int = 10,
    ) -> None:
        """Log ``rows`` predictions spread over ``[start_ms, end_ms)`` (with labels)."""
        frame = sample(rows, seed, changed=changed)
        x = frame[FEATURES]
        predictor = model if model is not None else self.champion
        log = PredictionLog(DEP, client=self.client, flush_rows=10**6)
        requests = rows // per_request
        step_ms = max(1, (end_ms - start_ms) // requests)
        starts = [start_ms + i * step_ms for i in range(requests)]
        ids = []
        for ts in starts:
            ids.append(f"{ts:013d}{self.counter:016x}")
            self.counter += 1
        log.append(
            PredictionBatch(
                model_version=version, role=role, request_ids=ids,
                row_counts=[per_request] * requests, ts_ms=starts,
                latency_ms=[latency_ms] * requests, inputs=x.iloc[: requests * per_request],
                predictions=predictor.predict(x)[: requests * per_request],
                probabilities=predictor.predict_proba(x)[: requests * per_request],
                classes=[0, 1],
            )
        )  # fmt: skip
        log.flush()
        if labels:
            y = frame["label"].to_numpy()
            for i, request_id in enumerate(ids):
                log.append_feedback(request_id, y[i * per_request : (i + 1) * per_request].tolist())
        log.close()

    def report(
        self, start_ms: int, end_ms: int, *, status: str = "alert", check: str = "feature_drift"
    ) -> MonitorReport:
        """Store a report of the monitor for one window."""
        alerts = (
            [{"check": check, "reason": f"{check} past its threshold"}] if status == "alert" else []
        )
        found = self.client.store.add_monitor_report(
            self.monitor, window_start_ms=start_ms, window_end_ms=end_ms, rows=100,
            labelled_rows=100, status=status, alerts=alerts, summary={}, results=[],
        )  # fmt: skip
        assert found is not None
        return found


def make_scenario(client: TrackingClient, *, monitor: bool = True) -> Scenario:
    """Register data and the champion (trained before the change), deploy it; with
    ``monitor``, add a monitor record whose reports the tests write themselves."""
    from mloop import data, registry
    from mloop.serving import create_deployment

    frame = sample(2000, seed=0, changed=False)
    version = data.register("transactions", frame, client=client)
    with client.start_run(experiment="loop") as run:
        run.log_input(version, context="training")
        champion = LogisticRegression().fit(frame[FEATURES], frame["label"])
        run.log_model(champion, MODEL, input_example=frame[FEATURES][:5])
    registry.set_alias(MODEL, "champion", 1, client=client)
    create_deployment(DEP, f"{MODEL}@champion", client=client)
    if not monitor:
        return Scenario(client, champion)
    found = client.store.create_monitor(
        "fraud-monitor", deployment=DEP, reference=version.ref,
        reference_version_id=version.id, window="10m", config={"checks": ["feature_drift"]},
        reference_digest="0" * 64, reference_size=0, actor="test",
    )  # fmt: skip
    return Scenario(client, champion, monitor=found.name)
