"""Versions and traffic on a real server: alias swaps under load, canary splits, shadows, and
the prediction log that records it all."""

from __future__ import annotations

import threading
import time
from collections import Counter
from typing import Any

import httpx
import pandas as pd
import pytest

from mloop import registry
from mloop.serving import (
    ServingConfig,
    create_app,
    create_deployment,
    read_predictions,
    set_canary,
    set_shadow,
)
from mloop.tracking import TrackingClient
from tests.fixtures.serving import running_server


def record(x: pd.DataFrame, i: int) -> list[dict[str, Any]]:
    return x.iloc[[i % len(x)]].to_dict(orient="records")


def wait_for(check: Any, timeout: float = 10.0) -> None:
    deadline = time.monotonic() + timeout
    while not check():
        if time.monotonic() > deadline:
            raise AssertionError("condition not met in time")
        time.sleep(0.02)


def test_alias_move_swaps_models_under_load_without_failing(
    client: TrackingClient, fraud: str, frame: tuple
) -> None:
    x, _ = frame
    create_deployment("fraud", "fraud@champion", client=client)
    app = create_app("fraud", config=ServingConfig(poll_interval_s=0.05), client=client)
    statuses: Counter[int] = Counter()
    versions: list[int] = []
    stop = threading.Event()
    with running_server(app) as url:

        def load() -> None:
            with httpx.Client(base_url=url, timeout=30) as http:
                i = 0
                while not stop.is_set():
                    answer = http.post("/predict", json=record(x, i))
                    statuses[answer.status_code] += 1
                    if answer.status_code == 200:
                        versions.append(answer.json()["model_version"])
                    i += 1

        workers = [threading.Thread(target=load) for _ in range(4)]
        for w in workers:
            w.start()
        wait_for(lambda: len(versions) > 50)
        registry.set_alias("fraud", "champion", 2, client=client)
        wait_for(lambda: versions[-1] == 2)
        count = len(versions)
        wait_for(lambda: len(versions) > count + 50)
        stop.set()
        for w in workers:
            w.join()
    assert set(statuses) == {200}, statuses
    first_two = versions.index(2)
    assert set(versions[:first_two]) == {1}
    assert set(versions[first_two + 20 :]) == {2}


def test_canary_split_is_sticky_by_key_and_shadow_is_logged_not_returned(
    client: TrackingClient, fraud: str, frame: tuple
) -> None:
    x, _ = frame
    create_deployment("fraud", "fraud/1", client=client)
    set_canary("fraud", 2, 30.0, sticky_key="X-Customer", client=client)
    from tests.fixtures.serving import log_version

    log_version(client, frame, 5.0)
    set_shadow("fraud", 3, client=client)
    app = create_app("fraud", config=ServingConfig(poll_interval_s=0.05), client=client)
    with running_server(app) as url, httpx.Client(base_url=url, timeout=30) as http:
        seen: Counter[int] = Counter()
        for i in range(300):
            answer = http.post("/predict", json=record(x, i))
            assert answer.status_code == 200, answer.text
            seen[answer.json()["model_version"]] += 1
        assert set(seen) == {1, 2}, seen
        assert 0.2 < seen[2] / 300 < 0.4
        for customer in ("alice", "bob", "carol"):
            got = {
                http.post("/predict", json=record(x, i), headers={"X-Customer": customer}).json()[
                    "model_version"
                ]
                for i in range(20)
            }
            assert len(got) == 1, (customer, got)
    table = read_predictions("fraud", client=client).to_pandas()
    roles = Counter(table["role"].astype(str))
    assert roles["shadow"] == 360 and roles["primary"] + roles["canary"] == 360
    assert set(table.loc[table["role"] == "shadow", "model_version"]) == {3}
    assert set(table.loc[table["role"] == "canary", "model_version"]) == {2}


def test_prediction_log_holds_every_request_after_shutdown(
    client: TrackingClient, fraud: str, frame: tuple
) -> None:
    x, _ = frame
    create_deployment("fraud", "fraud@champion", client=client)
    app = create_app("fraud", config=ServingConfig(), client=client)
    ids = []
    with running_server(app) as url, httpx.Client(base_url=url, timeout=30) as http:
        for i in range(25):
            ids.append(http.post("/predict", json=record(x, i)).json()["request_id"])
        many = http.post("/invocations", json={"dataframe_records": x[:10].to_dict("records")})
        ids.append(many.headers["x-request-id"])
        assert http.post("/feedback", json={"request_id": ids[0], "label": 1}).status_code == 202
    table = read_predictions("fraud", client=client).to_pandas()
    assert len(table) == 35
    assert set(table["request_id"]) == set(ids)
    labelled = table[table["request_id"] == ids[0]]
    assert labelled["label"].tolist() == [1]
    assert (table["latency_ms"] >= 0).all() and set(table["model_version"]) == {1}


@pytest.mark.parametrize("binary", [False, True])
def test_tritonclient_infers(
    client: TrackingClient, fraud: str, frame: tuple, binary: bool
) -> None:
    import numpy as np
    import tritonclient.http as triton

    x, _ = frame
    rows = x[:4]
    want = registry.load("fraud/1", client=client)
    create_deployment("fraud", "fraud@champion", client=client)
    app = create_app("fraud", config=ServingConfig(), client=client)
    with running_server(app) as url:
        triton_client = triton.InferenceServerClient(url.removeprefix("http://"))
        try:
            assert triton_client.is_server_live() and triton_client.is_server_ready()
            assert triton_client.is_model_ready("fraud")
            meta = triton_client.get_model_metadata("fraud")
            assert [i["name"] for i in meta["inputs"]] == ["amount", "age"]
            inputs = []
            for column in ("amount", "age"):
                tensor = triton.InferInput(column, [4], "FP64")
                tensor.set_data_from_numpy(rows[column].to_numpy(), binary_data=binary)
                inputs.append(tensor)
            outputs = [
                triton.InferRequestedOutput("predict", binary_data=binary),
                triton.InferRequestedOutput("predict_proba", binary_data=binary),
            ]
            result = triton_client.infer("fraud", inputs, outputs=outputs)
            assert result.as_numpy("predict").tolist() == want.predict(rows).tolist()
            assert np.allclose(result.as_numpy("predict_proba"), want.predict_proba(rows))
            with pytest.raises(Exception, match="not served"):
                triton_client.infer("fraud", inputs, model_version="7")
        finally:
            triton_client.close()
