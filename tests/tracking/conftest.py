"""Fixtures for the tracking tests: a client per store backend, and a clean default client."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from mloop.config import Settings, load_settings
from mloop.tracking import TrackingClient, reset_default_client
from mloop.tracking.source import clear_cache

__all__ = ["client", "settings"]

FAST = {"writer_flush_interval": 0.02, "heartbeat_interval": 0.1}


@pytest.fixture(autouse=True)
def _clean_default_client() -> Iterator[None]:
    reset_default_client()
    yield
    reset_default_client()
    clear_cache()


@pytest.fixture
def settings(mloop_home: Path, store_uri: str, monkeypatch: pytest.MonkeyPatch) -> Settings:
    """Settings on a fresh store of each backend, with short intervals; the default client
    (``mloop.*``) uses the same store through the environment."""
    monkeypatch.setenv("MLOOP_TRACKING_URI", store_uri)
    monkeypatch.setenv("MLOOP_WRITER_FLUSH_INTERVAL", str(FAST["writer_flush_interval"]))
    monkeypatch.setenv("MLOOP_HEARTBEAT_INTERVAL", str(FAST["heartbeat_interval"]))
    return load_settings()


@pytest.fixture
def client(settings: Settings) -> Iterator[TrackingClient]:
    """A tracking client on a fresh store (SQLite, and PostgreSQL when configured)."""
    with TrackingClient(settings) as tracking:
        yield tracking
