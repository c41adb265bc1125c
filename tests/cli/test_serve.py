"""``mloop serve``: a real server process with two workers, its metrics, and a clean stop."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import httpx
import pytest

from mloop.serving import get_deployment, read_predictions
from mloop.tracking import TrackingClient
from tests.cli.checks import assert_one_error_line
from tests.cli.conftest import Invoke
from tests.fixtures.serving import free_port


def wait_ready(url: str, proc: subprocess.Popen[bytes], timeout: float = 60) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise AssertionError(f"mloop serve exited: {proc.stderr.read().decode()}")  # type: ignore[union-attr]
        try:
            if httpx.get(f"{url}/ping", timeout=1).status_code == 200:
                return
        except httpx.TransportError:
            pass
        time.sleep(0.1)
    raise AssertionError("mloop serve did not become ready")


@pytest.mark.slow
def test_serve_with_two_workers_and_stop_cleanly(
    client: TrackingClient, fraud: str, mloop_home: Path, frame: tuple
) -> None:
    x, _ = frame
    port = free_port()
    url = f"http://127.0.0.1:{port}"
    proc = subprocess.Popen(
        [sys.executable, "-c", "from mloop.cli.main import main; main()", "serve",
         "fraud@champion", "--port", str(port), "--workers", "2"],
        env={**os.environ, "MLOOP_HOME": str(mloop_home)},
        stdout=subprocess.PIPE, stderr=subprocess.PIPE,
    )  # fmt: skip
    try:
        wait_ready(url, proc)
        with httpx.Client(base_url=url, timeout=30) as http:
            ids = []
            for i in range(40):
                answer = http.post("/predict", json=x.iloc[[i]].to_dict(orient="records"))
                assert answer.status_code == 200, answer.text
                ids.append(answer.json()["request_id"])
            metrics = http.get("/metrics").text
            # A label may reach the worker that did not make the prediction: it answers 503
            # with Retry-After until the other worker has written its log.
            for request_id in ids:
                deadline = time.monotonic() + 20
                while True:
                    sent = http.post("/feedback", json={"request_id": request_id, "label": 1})
                    if sent.status_code != 503 or time.monotonic() > deadline:
                        break
                    assert sent.headers["retry-after"] == "2"
                    time.sleep(0.5)
                assert sent.status_code == 202, sent.text
        served = [
            line for line in metrics.splitlines()
            if line.startswith("mloop_requests_total") and 'protocol="plain"' in line
        ]  # fmt: skip
        assert sum(float(line.rsplit(" ", 1)[1]) for line in served) == 40
    finally:
        proc.send_signal(signal.SIGINT)
        out, err = proc.communicate(timeout=60)
    assert proc.returncode == 0, err.decode()
    assert b"serving deployment fraud" in out
    assert get_deployment("fraud", client=client).alias == "champion"
    logged = read_predictions("fraud", client=client)
    assert len(logged) == 40 and logged.column("label").null_count == 0


def test_serve_refuses_bad_targets_and_settings(
    invoke: Invoke, client: TrackingClient, fraud: str
) -> None:
    assert "nosuch" in assert_one_error_line(invoke("serve", "nosuch@champion"))
    assert_one_error_line(invoke("serve", "fraud/9"))
    assert "workers" in assert_one_error_line(invoke("serve", "fraud@champion", "--workers", "0"))
    assert_one_error_line(invoke("serve", "models:/"))
    # A deployment of that name serving something else is not silently changed.
    assert invoke("deployments", "create", "fraud", "fraud/2").exit_code == 0
    line = assert_one_error_line(invoke("serve", "fraud@champion"))
    assert "already serves" in line
