"""Limits on a real socket: a slow client (408), a slow model (504), a failing model (500 JSON,
no traceback), an untrusted model format, and the server's answers staying JSON throughout."""

from __future__ import annotations

import socket
import time
from typing import Any

import httpx
import numpy as np
import pandas as pd
import pytest

from mloop.errors import Forbidden
from mloop.models import PythonModel
from mloop.serving import ServingConfig, create_app, create_deployment
from mloop.tracking import TrackingClient
from tests.fixtures.serving import running_server


class Sleepy(PythonModel):
    """Sleeps on rows whose x is 99, fails on rows whose x is 13, else answers x * 2."""

    def predict(self, data: Any) -> Any:
        values = np.asarray(data["x"], dtype=float)
        if (values == 13).any():
            raise RuntimeError("secret internal detail")
        if (values == 99).any():
            time.sleep(1.0)
        return values * 2


@pytest.fixture
def sleepy(client: TrackingClient) -> str:
    example = pd.DataFrame({"x": [1.0, 2.0]})
    with client.start_run(experiment="serving") as run:
        run.log_model(Sleepy(), "sleepy", input_example=example)
    create_deployment("sleepy", "sleepy/1", client=client)
    return "sleepy"


def test_slow_client_gets_408(client: TrackingClient, fraud: str) -> None:
    create_deployment("fraud", "fraud@champion", client=client)
    app = create_app("fraud", config=ServingConfig(body_timeout_s=0.3), client=client)
    with running_server(app) as url:
        host, port = url.removeprefix("http://").split(":")
        with socket.create_connection((host, int(port)), timeout=10) as sock:
            sock.sendall(
                b"POST /invocations HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\n"
                b'Content-Length: 100\r\n\r\n{"inputs": '
            )
            received = b""
            while b'"}' not in received:
                chunk = sock.recv(65536)
                if not chunk:
                    break
                received += chunk
            answer = received.decode()
        assert answer.startswith("HTTP/1.1 408"), answer
        assert '"error":"RequestTimeout"' in answer
        with httpx.Client(base_url=url) as http:
            assert http.get("/ping").status_code == 200


def test_slow_model_gets_504_and_failing_model_500_without_detail(
    client: TrackingClient, sleepy: str
) -> None:
    config = ServingConfig(predict_timeout_s=0.2, trusted=True, log_predictions=False)
    app = create_app("sleepy", config=config, client=client)
    with running_server(app) as url, httpx.Client(base_url=url, timeout=30) as http:
        slow = http.post("/predict", json=[{"x": 99.0}])
        assert slow.status_code == 504 and slow.json()["error"] == "Timeout"
        time.sleep(1.0)  # the model finishes the slow row
        failing = http.post("/predict", json=[{"x": 13.0}])
        assert failing.status_code == 500
        assert failing.json()["error"] == "ModelCallFailed"
        assert "Traceback" not in failing.text and "secret" not in failing.text
        fine = http.post("/predict", json=[{"x": 2.0}])
        assert fine.status_code == 200 and fine.json()["predictions"] == [4.0]


def test_untrusted_format_refuses_to_start(client: TrackingClient, sleepy: str) -> None:
    import asyncio

    app = create_app("sleepy", config=ServingConfig(log_predictions=False), client=client)
    state = app.state.mloop
    with pytest.raises(Forbidden, match="trusted"):
        asyncio.run(state.start())


def test_overload_is_503_with_retry_after(client: TrackingClient, sleepy: str) -> None:
    from concurrent.futures import ThreadPoolExecutor

    config = ServingConfig(trusted=True, log_predictions=False, max_queue_rows=1, max_batch_size=1)
    app = create_app("sleepy", config=config, client=client)
    with running_server(app) as url:

        def call(_: int) -> httpx.Response:
            with httpx.Client(base_url=url, timeout=30) as http:
                return http.post("/predict", json=[{"x": 99.0}])

        with ThreadPoolExecutor(6) as pool:
            answers = list(pool.map(call, range(6)))
    statuses = sorted(a.status_code for a in answers)
    assert 200 in statuses and 503 in statuses, statuses
    refused = next(a for a in answers if a.status_code == 503)
    assert refused.headers["retry-after"] == "1" and refused.json()["error"] == "Overloaded"
