"""Fixtures of the loop tests: a scenario on a fresh embedded store."""

from __future__ import annotations

import pytest

from mloop.tracking import TrackingClient
from tests.loop.scenario import Scenario, make_scenario


@pytest.fixture
def scenario(client: TrackingClient) -> Scenario:
    """The fraud deployment with its champion and a monitor."""
    return make_scenario(client)
