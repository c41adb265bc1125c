"""Shared fixtures. Backend fixtures live in tests/fixtures/ (one module per backend)."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import TYPE_CHECKING

import pytest

if TYPE_CHECKING:
    from mloop.tracking import TrackingClient

pytest_plugins = [
    "tests.fixtures.postgres",
    "tests.fixtures.s3",
    "tests.fixtures.serving",
    "tests.fixtures.stores",
]


@pytest.fixture
def mloop_home(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[Path]:
    """An empty MLOOP_HOME in a temp folder, with every MLOOP_* variable cleared."""
    import os

    for name in list(os.environ):
        if name.startswith("MLOOP_") and not name.startswith("MLOOP_TEST_"):
            monkeypatch.delenv(name)
    home = tmp_path / "home"
    monkeypatch.setenv("MLOOP_HOME", str(home))
    yield home


@pytest.fixture
def client(mloop_home: Path) -> Iterator[TrackingClient]:
    """A tracking client on a fresh embedded store (the default client reset around it)."""
    from mloop.config import load_settings
    from mloop.tracking import TrackingClient, reset_default_client

    reset_default_client()
    with TrackingClient(load_settings()) as tracking:
        yield tracking
    reset_default_client()
