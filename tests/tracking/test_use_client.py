"""``use_client``: a given client as the process's default for a block."""

from __future__ import annotations

import pytest

import mloop
from mloop.errors import InvalidInput
from mloop.tracking import TrackingClient, default_client, use_client


def test_use_client_swaps_the_default_and_restores_it(client: TrackingClient) -> None:
    before = default_client()
    assert before is not client
    with mloop.use_client(client) as used:
        assert used is client
        assert default_client() is client
        with mloop.start_run(experiment="swapped") as run:  # code that takes no client
            mloop.log_metric("m", 1.0)
        inner = TrackingClient(client.settings)
        try:
            with use_client(inner):
                assert default_client() is inner
            assert default_client() is client  # nested blocks restore the outer one
        finally:
            inner.close()
    assert default_client() is before
    assert client.get_run(run.id).metrics["m"] == 1.0


def test_use_client_restores_on_error_and_checks_its_argument(client: TrackingClient) -> None:
    before = default_client()
    with pytest.raises(RuntimeError), use_client(client):
        raise RuntimeError("boom")
    assert default_client() is before
    with pytest.raises(InvalidInput, match="TrackingClient") as info, use_client("x"):  # type: ignore[arg-type]
        pass
    assert info.value.details["field"] == "client"
