"""The app on a real uvicorn server on 127.0.0.1: every route, good and bad input."""

from __future__ import annotations

from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from contextlib import contextmanager
from typing import Any

import httpx
import numpy as np
import pandas as pd
import pytest

from mloop import registry
from mloop.serving import ServingConfig, create_app, create_deployment
from mloop.tracking import TrackingClient
from tests.fixtures.serving import running_server


@contextmanager
def make_client(
    client: TrackingClient, deployment: str = "fraud", **settings: Any
) -> Iterator[httpx.Client]:
    """An HTTP client of a real server of ``deployment``."""
    config = ServingConfig(poll_interval_s=0.05, **settings)
    app = create_app(deployment, config=config, client=client)
    with running_server(app) as url, httpx.Client(base_url=url, timeout=30) as http:
        yield http


@pytest.fixture
def http(client: TrackingClient, fraud: str) -> Iterator[httpx.Client]:
    create_deployment("fraud", "fraud@champion", client=client)
    with make_client(client) as test_client:
        yield test_client


def split(x: pd.DataFrame) -> dict[str, Any]:
    return {"dataframe_split": {"columns": list(x.columns), "data": x.to_numpy().tolist()}}


def expected(client: TrackingClient, x: pd.DataFrame, version: int = 1) -> list[Any]:
    return registry.load(f"fraud/{version}", client=client).predict(x).tolist()


def test_invocations_answers_like_mlflow(
    http: httpx.Client, client: TrackingClient, frame: tuple
) -> None:
    x, _ = frame
    rows = x[:7]
    for payload in (
        split(rows),
        {"dataframe_records": rows.to_dict(orient="records")},
        {"instances": rows.to_dict(orient="records")},
        {"inputs": rows.to_dict(orient="list")},
    ):
        answer = http.post("/invocations", json=payload)
        assert answer.status_code == 200, answer.text
        assert answer.json() == {"predictions": expected(client, rows)}
        assert answer.headers["x-model-version"] == "1"
        assert len(answer.headers["x-request-id"]) == 29
    csv = http.post(
        "/invocations", content=rows.to_csv(index=False), headers={"content-type": "text/csv"}
    )
    assert csv.status_code == 200 and csv.json() == {"predictions": expected(client, rows)}


def test_health_version_and_metadata(http: httpx.Client) -> None:
    assert http.get("/ping").status_code == 200
    assert http.get("/health").status_code == 200
    assert http.get("/version").json()["versions"] == [1]
    assert http.get("/v2/health/live").json() == {"live": True}
    assert http.get("/v2/health/ready").status_code == 200
    assert "name" in http.get("/v2").json()
    meta = http.get("/v2/models/fraud").json()
    assert meta["name"] == "fraud" and meta["versions"] == ["1"]
    assert [i["name"] for i in meta["inputs"]] == ["amount", "age"]
    outputs = {o["name"]: o for o in meta["outputs"]}
    assert outputs["predict"]["datatype"] == "INT64"
    assert outputs["predict_proba"] == {
        "name": "predict_proba",
        "datatype": "FP64",
        "shape": [-1, 2],
    }
    assert http.get("/v2/models/fraud/versions/1/ready").status_code == 200
    missing = http.get("/v2/models/fraud/versions/2")
    assert missing.status_code == 404 and missing.json()["code"] == "NotFound"
    assert "not served" in missing.json()["error"]
    assert http.get("/v2/models/other").status_code == 404


def test_oip_infer_json(http: httpx.Client, client: TrackingClient, frame: tuple) -> None:
    x, _ = frame
    rows = x[:3]
    body = {
        "id": "abc",
        "inputs": [
            {"name": c, "datatype": "FP64", "shape": [3], "data": rows[c].tolist()}
            for c in rows.columns
        ],
    }
    answer = http.post("/v2/models/fraud/infer", json=body)
    assert answer.status_code == 200, answer.text
    data = answer.json()
    assert data["id"] == "abc" and data["model_version"] == "1"
    outputs = {o["name"]: o for o in data["outputs"]}
    assert outputs["predict"]["data"] == expected(client, rows)
    assert outputs["predict_proba"]["shape"] == [3, 2]


def test_predict_and_feedback(http: httpx.Client, client: TrackingClient, frame: tuple) -> None:
    x, _ = frame
    answer = http.post("/predict", json=x[:2].to_dict(orient="records"))
    assert answer.status_code == 200, answer.text
    body = answer.json()
    assert body["predictions"] == expected(client, x[:2])
    assert np.allclose(np.sum(body["probabilities"], axis=1), 1.0)
    request_id = body["request_id"]
    ok = http.post("/feedback", json={"request_id": request_id, "label": [1, 0]})
    assert ok.status_code == 202, ok.text
    unknown = http.post("/feedback", json={"request_id": "1" * 13 + "0" * 16, "label": 1})
    assert unknown.status_code == 404 and unknown.json()["error"] == "NotFound"


@pytest.mark.parametrize(
    ("body", "headers", "status", "needle"),
    [
        (b"{not json", {}, 400, ""),
        (b'{"dataframe_split": {"columns": ["amount", "age"], "data": []}}', {}, 400, ""),
        (b'{"dataframe_records": [{"amount": 1.0, "age": 2.0, "zip": 3}]}', {}, 400, "zip"),
        (b'{"dataframe_records": [{"amount": "x", "age": 2.0}]}', {}, 400, "amount"),
        (b'{"dataframe_records": [{"amount": true, "age": 2.0}]}', {}, 400, "amount"),
        (b'{"inputs": {"amount": [1.0, true], "age": [2.0, 3.0]}}', {}, 400, "amount"),
        (b'{"dataframe_records": [{"amount": null, "age": 2.0}]}', {}, 400, "amount"),
        (b'{"dataframe_records": [{"age": 2.0}]}', {}, 400, "amount"),
        (b'{"nothing": 1}', {}, 400, ""),
        (b"amount,age\n1,2\n", {"content-type": "application/xml"}, 415, ""),
    ],
)
def test_bad_invocations_get_4xx_json(
    http: httpx.Client, body: bytes, headers: dict[str, str], status: int, needle: str
) -> None:
    headers = {"content-type": "application/json", **headers}
    answer = http.post("/invocations", content=body, headers=headers)
    assert answer.status_code == status, answer.text
    error = answer.json()
    assert set(error) >= {"error", "message"}
    assert needle in error["message"]
    # The server keeps serving.
    assert (
        http.post("/invocations", json={"inputs": {"amount": [1.0], "age": [0.0]}}).status_code
        == 200
    )


def test_a_50_mb_body_is_413_whether_announced_or_streamed(http: httpx.Client) -> None:
    big = b'{"inputs": {"amount": [' + b"1.0," * (12 * 1024 * 1024) + b"1.0]}}"
    assert len(big) > 48 * 1024 * 1024
    answer = http.post("/invocations", content=big, headers={"content-type": "application/json"})
    assert answer.status_code == 413 and answer.json()["error"] == "PayloadTooLarge"

    def chunks() -> Iterator[bytes]:  # no Content-Length: the limit applies while reading
        for start in range(0, len(big), 1 << 20):
            yield big[start : start + (1 << 20)]

    try:
        streamed = http.post(
            "/invocations", content=chunks(), headers={"content-type": "application/json"}
        )
    except httpx.WriteError:  # the server answered and closed before the upload ended
        pass
    else:
        assert streamed.status_code == 413 and streamed.json()["error"] == "PayloadTooLarge"
    assert http.get("/ping").status_code == 200


def test_unknown_route_and_method_are_json(http: httpx.Client) -> None:
    assert http.get("/nowhere").json()["error"] == "NotFound"
    assert http.get("/invocations").status_code == 405


def test_concurrent_requests_are_batched_in_order(
    http: httpx.Client, client: TrackingClient, frame: tuple
) -> None:
    x, _ = frame
    model = registry.load("fraud/1", client=client)
    proba = model.predict_proba(x)[:, 1]

    def one(i: int) -> float:
        row = x.iloc[[i]]
        answer = http.post("/predict", json=row.to_dict(orient="records"))
        assert answer.status_code == 200, answer.text
        return float(answer.json()["probabilities"][0][1])

    with ThreadPoolExecutor(16) as pool:
        got = list(pool.map(one, range(200)))
    assert np.allclose(got, proba[:200])
    metrics = http.get("/metrics").text
    assert "mloop_requests_total" in metrics and "mloop_batch_size_rows_bucket" in metrics


def test_serve_keeps_a_sub_second_graceful_timeout_and_warns_off_loopback(
    client: TrackingClient, fraud: str, monkeypatch: pytest.MonkeyPatch, caplog: Any
) -> None:
    import uvicorn

    from mloop.serving import server

    options: dict[str, Any] = {}
    monkeypatch.setattr(uvicorn, "run", lambda app, **kw: options.update(kw))
    names: list[str] = []
    config = ServingConfig(host="0.0.0.0", graceful_timeout_s=0.5, log_predictions=False)
    server.serve("fraud@champion", config=config, client=client, announce=names.append)
    # 0.5 s stays 0.5 s (int() made it 0, and 0 meant "wait forever").
    assert options["timeout_graceful_shutdown"] == 0.5
    assert names == ["fraud"]
    assert "exposes the model to the network without authentication" in caplog.text
    no_wait = server._uvicorn_options(ServingConfig(graceful_timeout_s=0))
    assert no_wait["timeout_graceful_shutdown"] == 0


@pytest.mark.parametrize(
    ("host", "loopback"),
    [("localhost", True), ("127.0.0.1", True), ("127.0.0.2", True), ("::1", True),
     ("0.0.0.0", False), ("10.1.2.3", False), ("::", False), ("example.com", False)],
)  # fmt: skip
def test_loopback_hosts(host: str, loopback: bool) -> None:
    from mloop.serving.server import _is_loopback

    assert _is_loopback(host) is loopback
