"""The demo's serving step: serve the champion on loopback, call it in every protocol, send
labels, stop it, and read back the prediction log — what `mloop serve` does, in one process."""

from __future__ import annotations

import time
from typing import TYPE_CHECKING, Any

from mloop.examples.local_server import LocalServer, post_json

if TYPE_CHECKING:
    import pandas as pd

    from mloop.tracking.client import TrackingClient

__all__ = ["serve_and_query"]


def serve_and_query(
    client: TrackingClient, model: str, rows: pd.DataFrame, labels: list[int]
) -> dict[str, Any]:
    """Serve ``model@champion`` (deployment ``model``) on a free loopback port, send MLflow,
    Open Inference Protocol and ``/predict`` requests plus ``/feedback`` labels, stop the
    server (which flushes its log) and summarise what the prediction log holds."""
    from mloop.serving.predlog_read import read_predictions
    from mloop.serving.server import ensure_deployment

    deployment = ensure_deployment(f"{model}@champion", client=client)
    started_ms = time.time_ns() // 1_000_000
    latencies: list[float] = []
    with LocalServer(deployment, client) as server:
        url = server.url
        head = rows[:5]
        split = {"columns": list(head.columns), "data": head.to_numpy().tolist()}
        post_json(f"{url}/invocations", {"dataframe_split": split})
        tensor = {
            "name": "input",
            "datatype": "FP64",
            "shape": list(head.shape),
            "data": head.to_numpy().ravel().tolist(),
        }
        post_json(f"{url}/v2/models/{deployment}/infer", {"inputs": [tensor]})
        ids = []
        for i in range(len(rows)):
            began = time.perf_counter()
            body = post_json(f"{url}/predict", rows.iloc[[i]].to_dict(orient="records"))
            latencies.append((time.perf_counter() - began) * 1000)
            ids.append(body["request_id"])
        feedback = [{"request_id": r, "label": int(y)} for r, y in zip(ids, labels, strict=True)]
        post_json(f"{url}/feedback", {"feedback": feedback})
        version = body["model_version"]
    log = read_predictions(deployment, start_ms=started_ms, client=client).to_pandas()
    labelled = log[log["label"].notna()]
    correct = (labelled["prediction"].astype(int) == labelled["label"].astype(int)).mean()
    return {
        "deployment": deployment,
        "url": url,
        "version": version,
        "requests": len(rows) + 2,
        "logged_rows": len(log),
        "labelled_rows": len(labelled),
        "labelled_accuracy": round(float(correct), 4),
        "p50_ms": round(sorted(latencies)[len(latencies) // 2], 2),
    }
