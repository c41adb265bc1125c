"""The demo's serving step: serve the champion on loopback, call it in every protocol, send
labels, stop it, and read back the prediction log — what `mloop serve` does, in one process."""

from __future__ import annotations

import asyncio
import json
import socket
import threading
import time
import urllib.request
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    import pandas as pd

    from mloop.tracking.client import TrackingClient

__all__ = ["serve_and_query"]


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def _post(url: str, payload: Any) -> tuple[dict[str, Any], dict[str, str]]:
    request = urllib.request.Request(
        url, data=json.dumps(payload).encode(), headers={"Content-Type": "application/json"}
    )
    with urllib.request.urlopen(request, timeout=30) as answer:
        return json.loads(answer.read()), dict(answer.headers)


def serve_and_query(
    client: TrackingClient, model: str, rows: pd.DataFrame, labels: list[int]
) -> dict[str, Any]:
    """Serve ``model@champion`` (deployment ``model``) on a free loopback port, send MLflow,
    Open Inference Protocol and ``/predict`` requests plus ``/feedback`` labels, stop the
    server (which flushes its log) and summarise what the prediction log holds."""
    import uvicorn

    from mloop.serving.app import create_app
    from mloop.serving.config import ServingConfig
    from mloop.serving.predlog_read import read_predictions
    from mloop.serving.server import ensure_deployment

    deployment = ensure_deployment(f"{model}@champion", client=client)
    started_ms = time.time_ns() // 1_000_000
    port = _free_port()
    url = f"http://127.0.0.1:{port}"
    app = create_app(deployment, config=ServingConfig(port=port), client=client)
    server = uvicorn.Server(
        uvicorn.Config(app, host="127.0.0.1", port=port, log_level="warning", lifespan="on")
    )
    thread = threading.Thread(target=lambda: asyncio.run(server.serve()), daemon=True)
    thread.start()
    deadline = time.monotonic() + 60
    while not server.started:
        if not thread.is_alive() or time.monotonic() > deadline:
            raise RuntimeError("the demo's model server did not start")
        time.sleep(0.02)
    latencies: list[float] = []
    try:
        head = rows[:5]
        split = {"columns": list(head.columns), "data": head.to_numpy().tolist()}
        _post(f"{url}/invocations", {"dataframe_split": split})
        tensor = {
            "name": "input",
            "datatype": "FP64",
            "shape": list(head.shape),
            "data": head.to_numpy().ravel().tolist(),
        }
        _post(f"{url}/v2/models/{deployment}/infer", {"inputs": [tensor]})
        ids = []
        for i in range(len(rows)):
            began = time.perf_counter()
            body, _ = _post(f"{url}/predict", rows.iloc[[i]].to_dict(orient="records"))
            latencies.append((time.perf_counter() - began) * 1000)
            ids.append(body["request_id"])
        feedback = [{"request_id": r, "label": int(y)} for r, y in zip(ids, labels, strict=True)]
        _post(f"{url}/feedback", {"feedback": feedback})
        version = body["model_version"]
    finally:
        server.should_exit = True
        thread.join(timeout=60)
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
